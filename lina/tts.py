"""The public API: text (and a voice or a prompt clip) in, 24 kHz audio out.

    tts = LinaTTS.from_pretrained("released")          # or a folder, or "tiny-random"
    out = tts.synthesize("Hello there.", voice=Voice.load("voices/ava_happy.safetensors"))
    out = tts.clone("Hello there.", "me.wav", "Transcript of me.wav.")
    voice, losses = tts.tune_voice([("a.wav", "text a"), ("b.wav", "text b")])
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from lina.audio import DEFAULT_OPTIONS, AudioError, AudioOptions, AudioSource, load_audio, speech_end
from lina.backends import AUTO, Backend, choose
from lina.constants import FRAME_RATE, HOP_LENGTH, SAMPLE_RATE
from lina.generate import generate
from lina.ist import Clip, TuningConfig, tune_voice
from lina.marks import Glossary
from lina.model import LinaModel
from lina.pretrained import Bundle, resolve, save_folder
from lina.request import Plan, Request, plan_rows, plan_text
from lina.rows import (  # noqa: F401 (re-exported: the row budgets were defined here first)
    MAX_ROW_SECONDS, MAX_SENTENCES, PAUSE_SECONDS, join_rows, min_row_tokens, row_seconds)
from lina.sampling import DEFAULT_TOP_K, SamplingConfig
from lina.speech_stream import CHUNK_TOKENS, SpeechStream
from lina.synthesis import Rows, Synthesis
from lina.timestamps import row_words
from lina.tokenizer import TextError, prepare_text
from lina.voice import Voice
from lina.watermark import apply_watermark, check_available

MAX_PROMPT_SECONDS = 15.0     # prompt continuation works best with 3-10 s of speech
ALIGNMENT_HEAD = 1            # of the cross-attention's two maps, the one word timestamps read


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
        """Long text -> its sentences, the silences between them (`lina.request.plan_text`; raises
        :class:`TextError`)."""
        return plan_text(text)

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

    # ---- synthesis ----------------------------------------------------------------------------
    def synthesize(self, text: str, voice: Voice | Sequence[Voice | None] | None = None, *,
                   top_k: int = DEFAULT_TOP_K, temperature: float = 1.0, seed: int | None = 0,
                   candidates: int = 1, max_seconds: float = MAX_ROW_SECONDS,
                   glossary: Glossary | None = None) -> Synthesis:
        """Speaks ``text`` (split into sentences, all generated as one batch) with a tuned voice or none.

        ``voice`` may be a list with one voice per candidate: different voices share one batch.
        Pause marks in ``text`` (``[pause 0.5]``, ``<break time="500ms"/>``) become that much silence;
        ``glossary`` respells words before normalization (`lina.marks.Glossary`). The result carries word
        timestamps (``words``) from the model's alignment.
        """
        request = self._request(text, voice, candidates, None, "", max_seconds, glossary)
        return self._run(request, SamplingConfig(top_k, temperature), seed)

    def clone(self, text: str, prompt_audio: AudioSource, prompt_transcript: str, *, top_k: int = DEFAULT_TOP_K,
              temperature: float = 1.0, seed: int | None = 0, candidates: int = 1,
              max_seconds: float = MAX_ROW_SECONDS, glossary: Glossary | None = None) -> Synthesis:
        """Prompt continuation: the clip and its transcript are a prefix the model continues."""
        prompt = self._prompt(prompt_audio, prompt_transcript)
        request = self._request(text, None, candidates, prompt, prompt_transcript, max_seconds, glossary)
        return self._run(request, SamplingConfig(top_k, temperature), seed)

    def stream(self, text: str, voice: Voice | Sequence[Voice | None] | None = None, *, top_k: int = DEFAULT_TOP_K,
               temperature: float = 1.0, seed: int | None = 0, chunk_tokens: int = CHUNK_TOKENS,
               candidates: int = 1, max_seconds: float = MAX_ROW_SECONDS, glossary: Glossary | None = None,
               prompt_audio: AudioSource | None = None, prompt_transcript: str | None = None,
               piece_seconds: float = 0.0) -> SpeechStream:
        """Yields float32 audio pieces ``[S]`` as tokens come (first audio after ``chunk_tokens`` steps):
        what `synthesize` (or, given ``prompt_audio`` and its transcript, `clone`) says for the same
        arguments, every sentence and candidate generated in one batch, each sentence heard once those
        before it have ended (`lina.speech_stream`). With ``candidates`` > 1 it yields
        ``StreamPiece(candidate, audio)`` s. ``piece_seconds``: pieces merged up to that length (the
        first goes out at once). The stream's ``result`` is its `Synthesis` once it has ended."""
        prompt = None if prompt_audio is None else self._prompt(prompt_audio, prompt_transcript)
        request = self._request(text, voice, candidates, prompt, prompt_transcript or "", max_seconds, glossary)
        return SpeechStream(self.backend, self.codec, self.mark, request, SamplingConfig(top_k, temperature), seed,
                            chunk_tokens, piece_seconds)

    def synthesize_dialogue(self, script, voices=None, **options):
        """Every line of a script spoken by its own voice, all lines in one batch: see
        `lina.dialogue.synthesize_dialogue` (same arguments after the model)."""
        from lina.dialogue import synthesize_dialogue

        return synthesize_dialogue(self, script, voices, **options)

    def generate_rows(self, rows: Sequence[str], voices: Sequence[Voice | None], *, top_k: int = DEFAULT_TOP_K,
                      temperature: float = 1.0, seed: int | None = 0, max_seconds: float = MAX_ROW_SECONDS,
                      prompt: torch.Tensor | None = None, prefix: str = "", glossary: Glossary | None = None,
                      timestamps: bool = True) -> Rows:
        """One batch, one ``generate`` call: row ``i`` speaks the sentence ``rows[i]`` with ``voices[i]`` (its
        own initial state). What dialogues and bulk synthesis use; returns every row's audio, codes,
        alignment and word timestamps (seconds from the row's start). ``timestamps=False`` leaves
        alignments and words empty (bulk synthesis: ~2 ms of CPU per row saved, and two copies per row)."""
        if len(rows) != len(voices):
            raise ValueError(f"{len(voices)} voices for {len(rows)} rows")
        request = plan_rows(Plan(list(rows), [0.0] * len(rows)), voices, self.tokenizer, self.model.cfg, self.device,
                            prompt=prompt, prefix=prefix, max_seconds=max_seconds, glossary=glossary)
        return self._collect(request, SamplingConfig(top_k, temperature), seed, timestamps)

    def _prompt(self, audio: AudioSource, transcript: str | None) -> torch.Tensor:
        if not isinstance(transcript, str) or not transcript.strip():
            raise TextError("the transcript of the prompt clip is required")
        return self.encode_prompt(audio)

    def _request(self, text: str, voice: Voice | Sequence[Voice | None] | None, candidates: int,
                 prompt: torch.Tensor | None, prefix: str, max_seconds: float, glossary: Glossary | None) -> Request:
        """``text`` planned as ``candidates`` readings in one batch; ``voice``: one for all or one per candidate."""
        voices = list(voice) if isinstance(voice, (list, tuple)) else [voice] * candidates
        if len(voices) != candidates:
            raise ValueError(f"{len(voices)} voices for {candidates} candidates")
        plan = self.plan(text)
        n = len(plan.sentences)
        if n * candidates > MAX_SENTENCES:
            raise TextError(f"{n} sentences x {candidates} candidates exceeds {MAX_SENTENCES} rows")
        return plan_rows(plan, [v for v in voices for _ in range(n)], self.tokenizer, self.model.cfg, self.device,
                         candidates, prompt, prefix, max_seconds, glossary)

    def _run(self, request: Request, sampling: SamplingConfig, seed: int | None) -> Synthesis:
        """The request's rows collected and decoded in one batch, each candidate's sentences joined."""
        start = time.perf_counter()
        batch = self._collect(request, sampling, seed)
        plan, n = request.plan, len(request.plan.sentences)
        audio, words, spans, finished = [], [], [], []
        for c in range(request.candidates):
            mine = request.candidate_rows(c)
            waves = [batch.waves[r] for r in mine]
            wav, starts = join_rows(waves, plan.pauses, plan.lead)
            audio.append(self.mark(wav))
            spans.append([(s, s + len(w) / SAMPLE_RATE) for s, w in zip(starts, waves)])
            words.append([w.shifted(s) for r, s in zip(mine, starts) for w in batch.words[r]])
            finished.append(all(batch.finished[r] for r in mine))
        steps = len(batch.codes[0]) if batch.codes else 0
        alignment = batch.alignments[0][:steps] if batch.alignments else None
        return Synthesis(audio, SAMPLE_RATE, batch.spoken[:n], finished, sum(len(c) for c in batch.codes),
                         time.perf_counter() - start, alignment, batch.alignments[:n], words, spans, plan.describe)

    def _collect(self, request: Request, sampling: SamplingConfig, seed: int | None, timestamps: bool = True) -> Rows:
        """The generation iterator collected (`lina.generate.generate`), each row cut at its budget, the
        rows decoded in one batch; with ``timestamps``, alignments and word times."""
        decoder = self.backend.model
        with torch.inference_mode():
            ctx = decoder.encode_text(request.text, request.lengths)
            out = generate(decoder, ctx, decoder.init_state(request.rows, request.initial),
                           request.config(sampling, seed), request.prompt, backend=self.backend,
                           check_every=self.backend.check_every)
            codes = [c[:limit] for c, limit in zip(out.codes, request.limits)]
            finished = [bool(f) and len(c) == len(o) for f, c, o in zip(out.finished.tolist(), codes, out.codes)]
            waves = self._decode(codes)
        if not timestamps:
            return Rows(waves, codes, finished, [], request.spoken, [[] for _ in codes])
        lengths = request.lengths.tolist()
        alignments = [out.alignment[r, 0, : len(codes[r]), : lengths[r]].float().cpu().numpy()
                      for r in range(request.rows)]
        # Word times read the second attention: the position the position net chose (monotonic by
        # construction); the first one (drawn by the alignment view) is a content lookup, often diffuse.
        chosen = [out.alignment[r, ALIGNMENT_HEAD, : len(codes[r]), : lengths[r]].float().cpu().numpy()
                  for r in range(request.rows)]
        words = [row_words(s, request.prefix, a, t, self.tokenizer, request.glossary)
                 for s, a, t in zip(request.row_sentences, chosen, request.spoken)]
        return Rows(waves, codes, finished, alignments, request.spoken, words)

    def _decode(self, codes: list[torch.Tensor]) -> list[np.ndarray]:
        """Rows' codes ``[T_i]`` -> audio ``[T_i * hop]`` each, decoded in one padded batch."""
        lengths = torch.tensor([len(c) for c in codes], device=self.device)
        if int(lengths.max()) == 0:
            return [np.zeros(0, dtype=np.float32) for _ in codes]
        padded = torch.nn.utils.rnn.pad_sequence([c.clamp_min(0) for c in codes], batch_first=True)
        waves = self.codec.decode_batch(padded, lengths.clamp_min(1))
        return [w.float().cpu().numpy()[: len(c) * self.codec.hop_length] for w, c in zip(waves, codes)]

    # ---- voices -------------------------------------------------------------------------------
    def tune_voice(self, clips: Sequence[tuple[AudioSource, str]], *, steps: int = 100, rank: int = 1,
                   learning_rate: float = 0.05, batch_size: int = 8, seed: int = 0,
                   on_step: Callable[[int, float], None] | None = None, name: str = "", description: str = "",
                   style: str = "", crop_seconds: float = 0.0) -> tuple[Voice, list[float]]:
        """Initial-State Tuning from any number of ``(audio, transcript)`` clips; the model stays frozen.
        ``crop_seconds`` > 0: each step reads at most the first that many seconds of a clip (bounded memory
        and time per step; `lina.ist.TuningConfig.max_frames`). Starting from another voice and keeping near
        it: `lina.ist.tune_voice` (``start``, ``TuningConfig.anchor_weight``)."""
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
        cfg = TuningConfig(steps, batch_size, rank, learning_rate, seed=seed, max_frames=int(crop_seconds * FRAME_RATE))
        return tune_voice(self.model, examples, cfg, on_step, name=name, description=description, style=style)
