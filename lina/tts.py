"""The public API: text (and a voice or a prompt clip) in, 24 kHz audio out.

    tts = LinaTTS.from_pretrained("released")          # or a folder, or "tiny-random"
    out = tts.synthesize("Hello there.", voice=Voice.load("voices/ava_happy.safetensors"))
    out = tts.clone("Hello there.", "me.wav", "Transcript of me.wav.")
    voice, losses = tts.tune_voice([("a.wav", "text a"), ("b.wav", "text b")])
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lina.audio import (
    DEFAULT_OPTIONS,
    AudioError,
    AudioOptions,
    AudioSource,
    load_audio,
)
from lina.backends import AUTO, Backend, choose
from lina.constants import FRAME_RATE, HOP_LENGTH, SAMPLE_RATE
from lina.generate import GenerationConfig, generate, stream
from lina.ist import Clip, TuningConfig, tune_voice
from lina.marks import Glossary, describe_pauses, split_pauses
from lina.model import LinaModel
from lina.pretrained import Bundle, resolve, save_folder
from lina.rows import (  # noqa: F401 (speech_end re-exported: the row budgets were defined here first)
    MAX_ROW_SECONDS, MAX_SENTENCES, PAUSE_SECONDS, join_rows, min_row_tokens, row_seconds, speech_end)
from lina.sampling import DEFAULT_TOP_K, SamplingConfig
from lina.text import split_sentences
from lina.timestamps import WordTime, row_words
from lina.tokenizer import TextError, prepare_text
from lina.voice import Voice
from lina.watermark import apply_watermark, check_available

MAX_PROMPT_SECONDS = 15.0     # prompt continuation works best with 3-10 s of speech
ALIGNMENT_HEAD = 1            # of the cross-attention's two maps, the one word timestamps read


@dataclass(frozen=True)
class Plan:
    """What `LinaTTS.plan` makes of a text: its sentences (pause marks removed), the silence after each
    (seconds) and before the first, and the marks in words for the info line."""

    sentences: list[str]
    pauses: list[float]
    lead: float = 0.0
    describe: str = ""


@dataclass
class Rows:
    """One batch of `LinaTTS.generate_rows`, per row: audio ``[S_i]``, codes ``[T_i]``, EOS within the
    budget, alignment ``[T_i, Tx_i]``, the normalized text spoken, word times from the row's start."""

    waves: list[np.ndarray]
    codes: list[torch.Tensor]
    finished: list[bool]
    alignments: list[np.ndarray]
    spoken: list[str]
    words: list[list[WordTime]]


@dataclass
class Synthesis:
    """Result of one request. ``audio[c]`` is candidate ``c``: float32 ``[S]`` at ``sample_rate``."""

    audio: list[np.ndarray]
    sample_rate: int
    text: list[str]               # the sentences actually spoken (after normalization)
    finished: list[bool]          # per candidate: every sentence ended with EOS (no runaway)
    tokens: int                   # audio tokens generated in the whole batch
    seconds: float                # wall time of generation and decoding
    alignment: np.ndarray | None  # [T, Tx] cross-attention of the first row (audio steps x text tokens)
    # [T_i, Tx_i] per sentence of the first candidate (each row's own steps and text tokens); None if not kept
    alignments: list[np.ndarray] | None = None
    words: list[list[WordTime]] | None = None     # per candidate: the written words and when they are heard
    spans: list[list[tuple[float, float]]] | None = None  # per candidate: (start, end) s of each sentence
    marks: str = ""               # the pause marks it obeyed, in words ("" without any)

    @property
    def duration(self) -> float:
        return sum(len(a) for a in self.audio) / self.sample_rate

    @property
    def real_time_factor(self) -> float:
        return self.seconds / max(self.duration, 1e-9)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


class LinaTTS:
    """``backend``: how decoding runs (`lina.backends`: ``"auto"`` picks the fastest for the device,
    e.g. the C step on the CPU, a compiled step in CUDA graphs on a GPU), chosen once here; any name
    of ``lina.backends.BACKENDS`` (``"reference"``: ``LinaModel.step`` as it is) or a ready instance.

    ``watermark``: every audio ``synthesize``, ``clone`` and ``stream`` return carries an inaudible
    watermark (`lina.watermark`; `lina.watermark.detect_watermark` reads it back), so that speech made
    here, cloned voices above all, can be recognized later. ``False`` turns it off, for research only
    (e.g. to measure the model without it); the app always keeps it on."""

    def __init__(self, bundle: Bundle, device: str | torch.device | None = None, backend: str | Backend = AUTO,
                 watermark: bool = True):
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # An inference model: frozen once here, so concurrent voice tunings never toggle its weights.
        self.model: LinaModel = bundle.model.to(device).eval().requires_grad_(False)
        self.backend: Backend = choose(self.model, backend)
        self.codec = bundle.codec.to(device).eval()
        self.tokenizer = bundle.tokenizer
        self.name, self.license, self.description = bundle.name, bundle.license, bundle.description
        self.watermark = bool(watermark)
        if self.watermark:
            check_available()   # a machine without resemble-perth fails here, with the way out in the message
        # How prompt and tuning clips are read and cleaned (`lina.reference`): trimmed, loudness-normalized.
        self.audio_options: AudioOptions = DEFAULT_OPTIONS
        if self.codec.config.quantizer.bins != self.model.cfg.n_codebook:
            raise ValueError(f"codec has {self.codec.config.quantizer.bins} codes, the model expects "
                             f"{self.model.cfg.n_codebook}")

    @classmethod
    def from_pretrained(cls, name_or_path: str = "released", device: str | torch.device | None = None,
                        backend: str | Backend = AUTO, watermark: bool = True) -> LinaTTS:
        """``"released"`` (Hub), ``"tiny-random"``, a model folder, a ``.ckpt`` or a Hub repo in our format."""
        return cls(resolve(name_or_path), device, backend, watermark)

    def save_pretrained(self, folder: str) -> None:
        save_folder(Bundle(self.model, self.tokenizer, self.codec, self.name, self.license, self.description), folder)

    def mark(self, audio: np.ndarray) -> np.ndarray:
        """``audio: [S]`` at 24 kHz with the watermark (as it is when ``watermark`` is off)."""
        return apply_watermark(audio, SAMPLE_RATE) if self.watermark else audio

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def model_id(self) -> str:
        return self.model.cfg.model_id

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- inputs -------------------------------------------------------------------------------
    def plan(self, text: str) -> Plan:
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

    def sentences(self, text: str) -> list[str]:
        """Long text split into sentences, each checked speakable (raises :class:`TextError`)."""
        return self.plan(text).sentences

    def encode_audio(self, audio: AudioSource, max_seconds: float = MAX_PROMPT_SECONDS) -> torch.Tensor:
        """A user clip (path, bytes or ``(rate, array)``) -> codec ids ``[T]`` (raises ``AudioError``)."""
        return self._encode(load_audio(audio, options=self.audio_options), max_seconds)

    def encode_prompt(self, audio: AudioSource, max_seconds: float = MAX_PROMPT_SECONDS) -> torch.Tensor:
        """A prompt clip -> codec ids ``[T]`` that end where its speech ends.

        ``load_audio`` leaves a margin of silence after the last sound, as a whole clip should have.
        A prefix to continue must not: training rows are single utterances whose codes end in silence
        and then EOS, so a prompt ending in silence reads as a finished row and the model samples EOS
        within a few steps (lina-mini: empty output for every clip). The clip is cut at the end of its
        last sound, rounded up to a whole codec frame so no frame is part padding.
        """
        wav = load_audio(audio, options=self.audio_options)
        end = -(-speech_end(wav) // HOP_LENGTH) * HOP_LENGTH
        return self._encode(wav[:end], max_seconds)

    def _encode(self, wav: np.ndarray, max_seconds: float) -> torch.Tensor:
        if len(wav) > max_seconds * SAMPLE_RATE:
            raise AudioError(f"the clip is {len(wav) / SAMPLE_RATE:.1f} s long after trimming; "
                             f"use at most {max_seconds:g} s")
        with torch.inference_mode():
            return self.codec.encode(torch.from_numpy(wav).to(self.device)[None])[0]

    def _texts(self, sentences: Sequence[str], prefix: str = "",
               glossary: Glossary | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        respell = (glossary or Glossary()).apply
        prepared = [prepare_text(f"{prefix} {respell(s)}".strip(), self.tokenizer, self.model.cfg.max_text_len)
                    for s in sentences]
        ids = [torch.tensor(p.ids) for p in prepared]
        padded = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=self.tokenizer.pad_id)
        return padded.to(self.device), torch.tensor([len(i) for i in ids], device=self.device), [p.text for p in prepared]

    # ---- synthesis ----------------------------------------------------------------------------
    def synthesize(self, text: str, voice: Voice | Sequence[Voice | None] | None = None, *,
                   top_k: int = DEFAULT_TOP_K, temperature: float = 1.0, seed: int | None = 0,
                   candidates: int = 1, max_seconds: float = MAX_ROW_SECONDS,
                   voice_guidance: float = 0.0, glossary: Glossary | None = None) -> Synthesis:
        """Speaks ``text`` (split into sentences, all generated as one batch) with a tuned voice or none.

        ``voice`` may be a list with one voice per candidate: different voices share one batch.
        ``voice_guidance`` > 0 samples from ``log p_voice + w (log p_voice - log p_no_voice)``: more of the
        voice's speaker and style, at twice the decoding work (`lina.generate.guide`; a row without a voice
        comes out as without guidance); 0 = off.
        Pause marks in ``text`` (``[pause 0.5]``, ``<break time="500ms"/>``) become that much silence;
        ``glossary`` respells words before normalization (`lina.marks.Glossary`). The result carries word
        timestamps (``words``) from the model's alignment.
        """
        voices = list(voice) if isinstance(voice, (list, tuple)) else [voice] * candidates
        if len(voices) != candidates:
            raise ValueError(f"{len(voices)} voices for {candidates} candidates")
        return self._run(self.plan(text), voices, None, "", top_k, temperature, seed, max_seconds,
                         voice_guidance, glossary)

    def clone(self, text: str, prompt_audio: AudioSource, prompt_transcript: str, *, top_k: int = DEFAULT_TOP_K,
              temperature: float = 1.0, seed: int | None = 0, candidates: int = 1,
              max_seconds: float = MAX_ROW_SECONDS, glossary: Glossary | None = None) -> Synthesis:
        """Prompt continuation: the clip and its transcript are a prefix the model continues."""
        if not isinstance(prompt_transcript, str) or not prompt_transcript.strip():
            raise TextError("the transcript of the prompt clip is required")
        prompt = self.encode_prompt(prompt_audio)
        return self._run(self.plan(text), [None] * candidates, prompt, prompt_transcript, top_k, temperature,
                         seed, max_seconds, glossary=glossary)

    def synthesize_dialogue(self, script, voices=None, **options):
        """Every line of a script spoken by its own voice, all lines in one batch: see
        `lina.dialogue.synthesize_dialogue` (same arguments after the model)."""
        from lina.dialogue import synthesize_dialogue

        return synthesize_dialogue(self, script, voices, **options)

    def _run(self, plan: Plan, voices: list[Voice | None], prompt: torch.Tensor | None, prefix: str,
             top_k: int, temperature: float, seed: int | None, max_seconds: float,
             voice_guidance: float = 0.0, glossary: Glossary | None = None) -> Synthesis:
        start = time.perf_counter()
        sentences, n = plan.sentences, len(plan.sentences)
        rows = [s for _ in voices for s in sentences]
        if len(rows) > MAX_SENTENCES:
            raise TextError(f"{len(sentences)} sentences x {len(voices)} candidates exceeds {MAX_SENTENCES} rows")
        batch = self.generate_rows(rows, [v for v in voices for _ in sentences], top_k=top_k,
                                   temperature=temperature, seed=seed, max_seconds=max_seconds,
                                   voice_guidance=voice_guidance, prompt=prompt, prefix=prefix, glossary=glossary)
        audio, words, spans = [], [], []
        for c in range(len(voices)):
            wav, starts = join_rows(batch.waves[c * n:(c + 1) * n], plan.pauses, plan.lead)
            audio.append(self.mark(wav))
            spans.append([(s, s + len(w) / SAMPLE_RATE) for s, w in zip(starts, batch.waves[c * n:(c + 1) * n])])
            words.append([w.shifted(s) for r, s in zip(range(c * n, (c + 1) * n), starts) for w in batch.words[r]])
        steps = len(batch.codes[0]) if batch.codes else 0
        alignment = batch.alignments[0][:steps] if batch.alignments else None
        return Synthesis(audio, SAMPLE_RATE, batch.spoken[:n],
                         [all(batch.finished[c * n:(c + 1) * n]) for c in range(len(voices))],
                         sum(len(c) for c in batch.codes), time.perf_counter() - start, alignment,
                         batch.alignments[:n], words, spans, plan.describe)

    def generate_rows(self, rows: Sequence[str], voices: Sequence[Voice | None], *, top_k: int = DEFAULT_TOP_K,
                      temperature: float = 1.0, seed: int | None = 0, max_seconds: float = MAX_ROW_SECONDS,
                      voice_guidance: float = 0.0, prompt: torch.Tensor | None = None, prefix: str = "",
                      glossary: Glossary | None = None, timestamps: bool = True) -> Rows:
        """One batch, one ``generate`` call: row ``i`` speaks the sentence ``rows[i]`` with ``voices[i]`` (its
        own initial state). What `synthesize`, `clone` and dialogues share; returns every row's audio,
        codes, alignment and word timestamps (seconds from the row's start). ``timestamps=False`` leaves
        alignments and words empty (bulk synthesis: ~2 ms of CPU per row saved, and two copies per row)."""
        if len(rows) != len(voices):
            raise ValueError(f"{len(voices)} voices for {len(rows)} rows")
        text, lengths, spoken = self._texts(rows, prefix, glossary)
        initial = self._initial_states(list(voices))
        limits = [row_seconds(s, max_seconds) for s in rows]
        max_tokens = int(max(limits) * FRAME_RATE)
        # The floor counts the sentence to speak, not the prompt's transcript: the prompt is given.
        floors = tuple(min_row_tokens(s, int(lim * FRAME_RATE)) for s, lim in zip(rows, limits))
        cfg = GenerationConfig(SamplingConfig(top_k=top_k, temperature=temperature),
                               max_tokens=max_tokens, seed=seed, min_tokens=floors, voice_guidance=voice_guidance)
        decoder = self.backend.model
        with torch.inference_mode():
            ctx = decoder.encode_text(text, lengths)
            out = generate(decoder, ctx, decoder.init_state(len(rows), initial), cfg, prompt,
                           backend=self.backend, check_every=self.backend.check_every)
            codes = [c[: int(lim * FRAME_RATE)] for c, lim in zip(out.codes, limits)]
            finished = [bool(f) and len(c) == len(o) for f, c, o in zip(out.finished.tolist(), codes, out.codes)]
            waves = self._decode(codes)
        if not timestamps:
            return Rows(waves, codes, finished, [], spoken, [[] for _ in rows])
        alignments = [out.alignment[r, 0, : len(codes[r]), : int(lengths[r])].float().cpu().numpy()
                      for r in range(len(rows))]
        # Word times read the second attention: the position the position net chose (monotonic by
        # construction); the first one (drawn by the alignment view) is a content lookup, often diffuse.
        chosen = [out.alignment[r, ALIGNMENT_HEAD, : len(codes[r]), : int(lengths[r])].float().cpu().numpy()
                  for r in range(len(rows))]
        words = [row_words(s, prefix, a, t, self.tokenizer, glossary) for s, a, t in zip(rows, chosen, spoken)]
        return Rows(waves, codes, finished, alignments, spoken, words)

    def _initial_states(self, voices: list[Voice | None]) -> list[torch.Tensor] | None:
        if all(v is None for v in voices):
            return None
        cfg = self.model.cfg
        zero = torch.zeros(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_k_dim, cfg.head_v_dim)
        per_row = []
        for v in voices:
            if v is None:
                per_row.append(zero)
            else:
                v.check(cfg)
                per_row.append(torch.stack(v.initial_states(1)))
        states = torch.cat(per_row, dim=1).to(self.device)  # [L, B, H, Dk, Dv]
        return list(states)

    def _decode(self, codes: list[torch.Tensor]) -> list[np.ndarray]:
        lengths = torch.tensor([len(c) for c in codes], device=self.device)
        if int(lengths.max()) == 0:
            return [np.zeros(0, dtype=np.float32) for _ in codes]
        padded = torch.nn.utils.rnn.pad_sequence([c.clamp_min(0) for c in codes], batch_first=True)
        waves = self.codec.decode_batch(padded, lengths.clamp_min(1))
        return [w.float().cpu().numpy()[: len(c) * self.codec.hop_length] for w, c in zip(waves, codes)]

    def stream(self, text: str, voice: Voice | None = None, *, top_k: int = DEFAULT_TOP_K, temperature: float = 1.0,
               seed: int | None = 0, chunk_tokens: int = 15, voice_guidance: float = 0.0) -> Iterator[np.ndarray]:
        """Yields float32 audio chunks as tokens come, sentence after sentence (first audio early).
        ``voice_guidance``: as in `synthesize`."""
        for sentence in self.sentences(text):
            text_ids, lengths, _ = self._texts([sentence])
            max_tokens = int(row_seconds(sentence) * FRAME_RATE)
            cfg = GenerationConfig(SamplingConfig(top_k=top_k, temperature=temperature), max_tokens=max_tokens,
                                   seed=seed, min_tokens=min_row_tokens(sentence, max_tokens),
                                   voice_guidance=voice_guidance)
            decoder = self.codec.streaming_decoder()
            # Inference mode is per thread and a server may resume this generator on another thread:
            # enter it around each step rather than holding it across a `yield`.
            model = self.backend.model
            with torch.inference_mode():
                ctx = model.encode_text(text_ids, lengths)
                state = model.init_state(1, self._initial_states([voice]))
                chunks = stream(model, ctx, state, cfg, None, chunk_tokens, self.backend)
            while True:
                with torch.inference_mode():
                    item = next(chunks, None)
                    if item is None:
                        audio = decoder.flush()
                    else:
                        audio = decoder.push(item[0][0][None]) if len(item[0][0]) else None
                    samples = None if audio is None or not audio.numel() else audio.reshape(-1).float().cpu().numpy()
                if samples is not None:
                    yield self.mark(samples)
                if item is None:
                    break
            yield np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)

    # ---- voices -------------------------------------------------------------------------------
    def tune_voice(self, clips: Sequence[tuple[AudioSource, str]], *, steps: int = 100, rank: int = 1,
                   learning_rate: float = 0.05, batch_size: int = 8, seed: int = 0, anchor_weight: float = 0.0,
                   on_step: Callable[[int, float], None] | None = None, name: str = "", description: str = "",
                   style: str = "", start: Voice | None = None, crop_seconds: float = 0.0) -> tuple[Voice, list[float]]:
        """Initial-State Tuning from any number of ``(audio, transcript)`` clips; the model stays frozen.
        ``start``, ``anchor_weight``: start from that voice, kept near it (`lina.ist.tune_voice`).
        ``crop_seconds`` > 0: each step reads at most the first that many seconds of a clip (bounded memory
        and time per step; `lina.ist.TuningConfig.max_frames`)."""
        if not clips:
            raise ValueError("give at least one clip with its transcript")
        examples = []
        for i, (audio, transcript) in enumerate(clips):
            if not isinstance(transcript, str) or not transcript.strip():
                raise TextError(f"clip {i + 1} has no transcript")
            ids = prepare_text(transcript, self.tokenizer, self.model.cfg.max_text_len).ids
            try:
                codes = self.encode_audio(audio, max_seconds=MAX_ROW_SECONDS)
            except AudioError as exc:
                raise AudioError(f"clip {i + 1}: {exc}") from None
            examples.append(Clip(codes.cpu(), torch.tensor(ids)))
        cfg = TuningConfig(steps, batch_size, rank, learning_rate, seed=seed, anchor_weight=anchor_weight,
                           max_frames=int(crop_seconds * FRAME_RATE))
        return tune_voice(self.model, examples, cfg, on_step, start=start, name=name, description=description,
                          style=style)
