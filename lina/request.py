"""A request planned once: text -> sentences (:class:`Plan`) -> the rows of one generation batch (:class:`Request`).

`LinaTTS.synthesize`, `clone` and `stream`, dialogues and bulk synthesis all build a `Request`; it feeds
one generation iterator (`lina.generate.chunks`), which `synthesize` collects and decodes in a batch and
`stream` feeds to streaming codec decoders, so both say the same words for the same seed.

Rows are candidate-major: with ``n`` sentences, row ``c * n + s`` is candidate ``c`` speaking sentence
``s``; a dialogue or a bulk batch is one "candidate" whose sentences are its rows.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lina.config import LinaConfig
from lina.constants import FRAME_RATE
from lina.generate import GenerationConfig
from lina.marks import Glossary, describe_pauses, split_pauses
from lina.rows import MAX_ROW_SECONDS, MAX_SENTENCES, PAUSE_SECONDS, min_row_tokens, row_seconds
from lina.sampling import SamplingConfig
from lina.text import split_sentences
from lina.tokenizer import TextError, pad_rows, prepare_text
from lina.voice import Voice


@dataclass(frozen=True)
class Plan:
    """What :func:`plan_text` makes of a text: its sentences (pause marks removed), the silence after each
    (seconds) and before the first, and the marks in words for the info line."""

    sentences: list[str]
    pauses: list[float]
    lead: float = 0.0
    describe: str = ""


def plan_text(text: str) -> Plan:
    """Long text -> its sentences (each checked speakable), the silence after each and before the
    first: pause marks (`lina.marks`) cut the text and set their silence, the usual gap between
    sentences is ``PAUSE_SECONDS``. Raises :class:`TextError` (also for a malformed mark)."""
    if not isinstance(text, str) or not text.strip():
        raise TextError("the text is empty")
    chunks = split_pauses(text)
    lead = chunks[0].pause if not chunks[0].text else 0.0
    sentences: list[str] = []
    pauses: list[float] = []
    for chunk in chunks:
        pieces = [p for p in split_sentences(chunk.text) if any(ch.isalnum() for ch in p)]
        if not pieces:
            if pauses:  # a mark after text that says nothing: its silence still counts
                pauses[-1] += chunk.pause
            continue
        sentences += pieces
        pauses += [PAUSE_SECONDS] * (len(pieces) - 1) + [chunk.pause or PAUSE_SECONDS]
    if not sentences:
        raise TextError("nothing speakable in the text")
    if len(sentences) > MAX_SENTENCES:
        raise TextError(f"the text has {len(sentences)} sentences; the limit is {MAX_SENTENCES} per request")
    if not chunks[-1].pause:
        pauses[-1] = 0.0  # no silence after the last sentence, unless a mark asks for it
    return Plan(sentences, pauses, lead, describe_pauses(chunks))


@dataclass(frozen=True)
class Request:
    """One generation batch of ``B = candidates x len(plan.sentences)`` rows, everything decoding needs."""

    plan: Plan                    # the sentences each candidate speaks, the silences between them
    candidates: int
    text: Tensor                  # [B, Tx] text ids, padded with the tokenizer's pad id
    lengths: Tensor               # [B] long
    spoken: list[str]             # [B] the normalized text each row speaks
    initial: list[Tensor] | None  # per tunable layer [B, H, Dk, Dv] (zeros for a row without a voice); None: none has one
    limits: tuple[int, ...]       # [B] tokens each row may keep (its length budget)
    floors: tuple[int, ...]       # [B] tokens each row generates before EOS may be sampled
    prompt: Tensor | None = None  # [P] codec ids every row continues (prompt continuation)
    prefix: str = ""              # the prompt's transcript, read before each row's text
    glossary: Glossary | None = None

    @property
    def rows(self) -> int:
        return len(self.limits)

    @property
    def row_sentences(self) -> list[str]:
        """``[B]`` the sentence of each row, as written."""
        return self.plan.sentences * self.candidates

    def candidate_rows(self, candidate: int) -> range:
        """The rows of one candidate, in sentence order."""
        n = len(self.plan.sentences)
        return range(candidate * n, (candidate + 1) * n)

    def config(self, sampling: SamplingConfig, seed: int | None) -> GenerationConfig:
        """The decoding settings: the longest budget as the cap, every row's EOS floor."""
        return GenerationConfig(sampling, max_tokens=max(self.limits), seed=seed, min_tokens=self.floors)


def plan_rows(plan: Plan, voices: Sequence[Voice | None], tokenizer, cfg: LinaConfig, device: torch.device,
              candidates: int = 1, prompt: Tensor | None = None, prefix: str = "",
              max_seconds: float = MAX_ROW_SECONDS, glossary: Glossary | None = None) -> Request:
    """The rows of ``candidates`` readings of ``plan``; ``voices``: one per row (``[B]``).

    Raises :class:`TextError` for a sentence the tokenizer refuses, `lina.voice.VoiceError` for a voice
    of another model. Budgets: `lina.rows.row_seconds` within ``max_seconds``; the EOS floor counts the
    sentence to speak, not the prompt's transcript (the prompt is given)."""
    sentences = plan.sentences * candidates
    if len(voices) != len(sentences):
        raise ValueError(f"{len(voices)} voices for {len(sentences)} rows")
    text, lengths, spoken = text_rows(sentences, tokenizer, cfg.max_text_len, prefix, glossary)
    initial = initial_states(voices, cfg, device)
    limits = tuple(int(row_seconds(s, max_seconds) * FRAME_RATE) for s in sentences)
    floors = tuple(min_row_tokens(s, limit) for s, limit in zip(sentences, limits))
    return Request(plan, candidates, text.to(device), lengths.to(device), spoken, initial, limits, floors,
                   prompt, prefix, glossary)


def text_rows(sentences: Sequence[str], tokenizer, max_text_len: int, prefix: str = "",
              glossary: Glossary | None = None) -> tuple[Tensor, Tensor, list[str]]:
    """Sentences -> ``(ids [B, Tx] padded, lengths [B], the normalized text of each)``: glossary
    respellings, then ``prefix`` + sentence through `lina.tokenizer.prepare_text`."""
    respell = (glossary or Glossary()).apply
    prepared = [prepare_text(f"{prefix} {respell(s)}".strip(), tokenizer, max_text_len) for s in sentences]
    ids, lengths = pad_rows([p.ids for p in prepared], tokenizer.pad_id)
    return ids, lengths, [p.text for p in prepared]


def initial_states(voices: Sequence[Voice | None], cfg: LinaConfig, device: torch.device) -> list[Tensor] | None:
    """Each row's voice as initial recurrent states: per tunable layer ``[B, H, Dk, Dv]`` (zeros for a
    row without a voice); None when no row has one. Raises `lina.voice.VoiceError` for a foreign voice."""
    if all(v is None for v in voices):
        return None
    zero = torch.zeros(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_k_dim, cfg.head_v_dim)
    per_row = []
    for v in voices:
        if v is None:
            per_row.append(zero)
        else:
            v.check(cfg)
            per_row.append(torch.stack(v.initial_states(1)))
    return list(torch.cat(per_row, dim=1).to(device))  # [L, B, H, Dk, Dv] -> L x [B, H, Dk, Dv]
