"""A planned request spoken as its codes come: what `LinaTTS.stream` returns.

The rows are the request's (`lina.request.Request`: every sentence of every candidate in one batch)
and their codes come from the generation iterator `synthesize` collects (`lina.generate.chunks`, same
budgets, floors, seed and back end), so a stream says `synthesize`'s words; its audio differs only by
the streaming codec decoder's approximation (`lina.codec.streaming`). Each row has its own streaming
decoder; a candidate's first sentence is heard as its codes come, its later sentences (generated
alongside) as soon as those before them have ended, with the plan's silences between them.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from lina.constants import SAMPLE_RATE
from lina.generate import chunks
from lina.request import Request
from lina.sampling import SamplingConfig
from lina.synthesis import Synthesis

CHUNK_TOKENS = 15   # codes per row between pushes to the codec (0.2 s of audio): the first sound comes after this many steps


class StreamPiece(NamedTuple):
    """What a stream of several candidates yields: a piece of candidate ``candidate``'s audio ``[S]``."""

    candidate: int
    audio: np.ndarray


def _samples(audio: torch.Tensor) -> np.ndarray:
    """Decoder output ``[1, S]`` -> float32 ``[S]``."""
    return audio.reshape(-1).float().cpu().numpy() if audio.numel() else np.zeros(0, np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


class _Row:
    """One row's streaming decoder and what it has decoded and not yet handed out."""

    def __init__(self, decoder, limit: int):
        self.decoder, self.limit = decoder, limit
        self.made = 0                           # codes decoded (a row stops at its own budget)
        self.ended = False
        self.eos_at: int | None = None          # the step of the row's EOS, once it has one
        self.ready: list[np.ndarray] = []

    @property
    def finished(self) -> bool:
        """EOS within the budget, as `synthesize` counts it (a row cut at its budget is not finished)."""
        return self.eos_at is not None and self.eos_at <= self.limit

    def feed(self, codes: torch.Tensor, eos_at: int | None) -> None:
        """``codes [n]`` of this chunk; ``eos_at``: the step of the row's EOS once it has one."""
        self.eos_at = eos_at
        if self.ended:
            return
        codes = codes[: self.limit - self.made]
        self.made += len(codes)
        if len(codes):
            self.ready.append(_samples(self.decoder.push(codes[None])))
        if eos_at is not None or self.made >= self.limit:
            self.end()

    def end(self) -> None:
        if not self.ended:
            self.ready.append(_samples(self.decoder.flush()))
            self.ended = True


class _Candidate:
    """One candidate's audio on its way out: merged into pieces of at least ``wanted`` samples (the first
    at once), each watermarked on its own, and kept for the result."""

    def __init__(self, mark: Callable[[np.ndarray], np.ndarray], wanted: int):
        self.mark, self.wanted = mark, wanted
        self.sentence = 0                       # the sentence being heard
        self.pending: list[np.ndarray] = []
        self.parts: list[np.ndarray] = []       # what was handed out
        self.samples = 0                        # samples handed out or pending
        self.spans: list[tuple[float, float]] = []
        self.started: float | None = None       # start (s) of the sentence being heard

    def add(self, audio: np.ndarray) -> Iterator[np.ndarray]:
        if audio.size:
            self.pending.append(audio)
            self.samples += audio.size
            if not self.parts or sum(p.size for p in self.pending) >= self.wanted:
                yield from self.flush()

    def flush(self) -> Iterator[np.ndarray]:
        if self.pending:
            piece = np.concatenate(self.pending)
            self.pending = []
            piece = self.mark(piece) if piece.any() else piece   # silence carries no mark
            self.parts.append(piece)
            yield piece


class SpeechStream:
    """Iterates the audio of a :class:`lina.request.Request` as it is generated: float32 pieces ``[S]``
    (with several candidates, :class:`StreamPiece` s); :attr:`result` (a `Synthesis` without alignments
    or word times, its audio what was handed out) is set once the iteration has ended.

    ``piece_seconds`` > 0: pieces are merged up to at least that much audio before they are marked and
    handed out (the first goes out at once): fewer pieces, each marked once. Closing the stream stops
    the generation at the next chunk."""

    def __init__(self, backend, codec, mark: Callable[[np.ndarray], np.ndarray], request: Request,
                 sampling: SamplingConfig, seed: int | None, chunk_tokens: int = CHUNK_TOKENS,
                 piece_seconds: float = 0.0):
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
        self.backend, self.codec, self.request = backend, codec, request
        self.result: Synthesis | None = None
        self._pieces = self._run(mark, sampling, seed, chunk_tokens, int(piece_seconds * SAMPLE_RATE))

    def __iter__(self) -> SpeechStream:
        return self

    def __next__(self) -> np.ndarray | StreamPiece:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    def _run(self, mark, sampling: SamplingConfig, seed: int | None, chunk_tokens: int,
             wanted: int) -> Iterator[np.ndarray | StreamPiece]:
        request, plan = self.request, self.request.plan
        start = time.perf_counter()
        model = self.backend.model
        with torch.inference_mode():
            ctx = model.encode_text(request.text, request.lengths)
            state = model.init_state(request.rows, request.initial)
            pieces = chunks(model, ctx, state, request.config(sampling, seed), request.prompt, self.backend,
                            chunk_tokens)
        rows = [_Row(self.codec.streaming_decoder(), limit) for limit in request.limits]
        outs = [_Candidate(mark, wanted) for _ in range(request.candidates)]
        tag = (lambda c, a: a) if request.candidates == 1 else StreamPiece
        for c, out in enumerate(outs):
            yield from (tag(c, a) for a in out.add(_silence(plan.lead)))
        while any(out.sentence < len(plan.sentences) for out in outs):
            # Inference mode per step: a server may resume this generator on another thread.
            with torch.inference_mode():
                chunk = next(pieces, None)
                if chunk is not None:
                    codes, ends, eos = chunk.codes(), chunk.ends.tolist(), chunk.finished.tolist()
            # The rows being heard are decoded and handed out first, the rows generated alongside after:
            # the first audio waits for one row's codec work, not every row's.
            heard = [request.candidate_rows(c)[out.sentence] for c, out in enumerate(outs)
                     if out.sentence < len(plan.sentences)]
            for group in (heard, [r for r in range(request.rows) if r not in heard]):
                with torch.inference_mode():
                    for r in group:
                        if chunk is None:
                            rows[r].end()
                        else:
                            rows[r].feed(codes[r], ends[r] if eos[r] else None)
                for c, out in enumerate(outs):
                    yield from (tag(c, a) for a in self._drain(out, rows, request.candidate_rows(c)))
        for c, out in enumerate(outs):
            yield from (tag(c, a) for a in out.flush())
        audio = [np.concatenate(out.parts) if out.parts else np.zeros(0, np.float32) for out in outs]
        n = len(plan.sentences)
        self.result = Synthesis(audio, SAMPLE_RATE, request.spoken[:n],
                                [all(rows[r].finished for r in request.candidate_rows(c)) for c in range(len(outs))],
                                sum(row.made for row in rows), time.perf_counter() - start, None,
                                spans=[out.spans for out in outs], marks=plan.describe)

    def _drain(self, out: _Candidate, rows: list[_Row], mine: range) -> Iterator[np.ndarray]:
        """Hands out what a candidate can play now: its current sentence's decoded audio, then, once that
        row has ended, the silence after it and the next sentence's, in order."""
        pauses = self.request.plan.pauses
        while out.sentence < len(mine):
            row = rows[mine[out.sentence]]
            if out.started is None:
                out.started = out.samples / SAMPLE_RATE
            for audio in row.ready:
                yield from out.add(audio)
            row.ready = []
            if not row.ended:
                return
            out.spans.append((out.started, out.samples / SAMPLE_RATE))
            yield from out.add(_silence(pauses[out.sentence]))
            out.sentence, out.started = out.sentence + 1, None
