"""The evaluation cases and their per-utterance measurements.

Cases (each test utterance of each target speaker, fixed seeds):

- ``reference``: the speaker's real clip itself (upper bound of every metric);
- ``codec``: that clip encoded and decoded by the model's codec (upper bound of any generation; also
  PESQ-wb / STOI / MCD against the clip);
- ``plain``: ``synthesize(text)`` with no voice (its speaker similarity is the no-cloning baseline);
- ``prompt``: ``clone(text, prompt, transcript)`` with the enrollment clip closest to 4 s (3-5 s);
- ``ist``: ``synthesize(text, voice=tune_voice(enrollment clips up to ist_seconds))``, or with the
  speaker's pre-tuned voice of ``ist_voices_dir`` (`lab.eval.tuned`: never one tuned on a scored clip);
- ``preset:<name>``: each voice file of ``voices/`` that fits the model, on the distinct test texts
  (no real clips of those speakers: no similarity).

Speaker similarity is measured against the target speaker's enrollment clips (normalized mean of
their embeddings), never against the clip being scored.
"""
from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch

from lab.eval.asr import DEFAULT_ASR, ToolUnavailable, asr_model
from lab.eval.testlist import TestList, Utterance
from lina.audio import load_audio
from lina.constants import SAMPLE_RATE

CASES = ("reference", "codec", "plain", "prompt", "ist", "preset")
MODEL_CASES = ("plain", "prompt", "ist", "preset")   # what thresholds judge
METRICS = ("asr", "speaker", "dnsmos", "signal")
PROMPT_TARGET_SECONDS = 4.0


@dataclass
class EvalConfig:
    seed: int = 0
    cases: tuple[str, ...] = CASES
    metrics: tuple[str, ...] = METRICS
    asr_model: str = DEFAULT_ASR              # speech recognizer of the asr metric (lab.eval.asr.ASR_MODELS)
    ist_steps: int = 100
    ist_seconds: float = 60.0
    ist_rank: int = 1
    ist_learning_rate: float = 0.05
    ist_speakers: int | None = None           # tune voices for the first N speakers only (None: all)
    prompt_seconds: float = PROMPT_TARGET_SECONDS
    max_seconds: float | None = None          # cap of one generated sentence (None: the API's own)
    voices_dir: str | Path | None = "voices"
    ist_voices_dir: str | Path | None = None  # pre-tuned voices for the ist case (lab.eval.tuned); None: tune here
    cache_dir: str | Path | None = None
    audio_dir: str | Path | None = None      # where generated audio is written (None: nowhere)
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        bad = [c for c in self.cases if c not in CASES] + [m for m in self.metrics if m not in METRICS]
        if bad:
            raise ValueError(f"unknown cases/metrics {bad}; cases: {CASES}, metrics: {METRICS}")
        asr_model(self.asr_model)  # an unknown recognizer fails here, before any audio is generated


@dataclass
class ItemResult:
    """One clip of one case, with everything measured on it (None: not measured / not applicable)."""

    case: str
    utterance: str
    speaker: str | None
    text: str
    seed: int | None = None
    seconds: float = 0.0                  # audio duration
    transcript: str | None = None
    wer: float | None = None
    cer: float | None = None
    similarity: float | None = None
    dnsmos: dict | None = None
    silent: bool | None = None
    sound_seconds: float | None = None
    finished: bool | None = None          # None for real audio
    signal: dict | None = None            # codec case: pesq_wb, stoi, mcd
    audio_file: str | None = None
    # Timing (not reproducible, kept apart from the metrics in results.json).
    compute_seconds: float | None = None  # generation (or codec round-trip) wall time
    rtf: float | None = None

    @property
    def runaway(self) -> bool | None:
        return None if self.finished is None else not self.finished


@dataclass
class RunResult:
    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)          # skipped cases, missing tools
    tuning: dict = field(default_factory=dict)              # per speaker: steps, clips, seconds, loss
    unavailable: dict = field(default_factory=dict)         # metric -> reason


def utterance_seed(base: int, utt_id: str) -> int:
    """Stable per utterance: adding utterances to a list never changes the others' seeds."""
    return (base * 1_000_003 + zlib.crc32(utt_id.encode())) % 2**31


class _Metrics:
    """Lazily loaded tools; a missing one is reported once and its metric left empty."""

    def __init__(self, cfg: EvalConfig, result: RunResult):
        self.cfg, self.result = cfg, result
        self.speaker_refs: dict[str, np.ndarray | None] = {}

    def _try(self, metric: str, fn, *args):
        if metric not in self.cfg.metrics or metric in self.result.unavailable:
            return None
        try:
            return fn(*args)
        except ToolUnavailable as e:
            self.result.unavailable[metric] = str(e)
            self.result.notes.append(f"{metric}: {e}")
            return None

    def embed(self, audio: np.ndarray):
        from lab.eval.speaker import speaker_embedding

        return self._try("speaker", speaker_embedding, audio, SAMPLE_RATE)

    def measure(self, item: ItemResult, audio: np.ndarray, reference: np.ndarray | None = None) -> None:
        from lab.eval.quality import check_silence

        item.seconds = len(audio) / SAMPLE_RATE
        sil = check_silence(audio, SAMPLE_RATE)
        item.silent, item.sound_seconds = sil.silent, round(sil.sound_seconds, 3)
        if "asr" in self.cfg.metrics:
            from lab.eval.asr import transcribe
            from lab.eval.scoring import cer, wer

            item.transcript = self._try("asr", transcribe, audio, SAMPLE_RATE, self.cfg.asr_model)
            if item.transcript is not None:
                item.wer, item.cer = wer(item.text, item.transcript), cer(item.text, item.transcript)
        if item.speaker is not None and self.speaker_refs.get(item.speaker) is not None:
            from lab.eval.speaker import cosine

            item.similarity = cosine(self.embed(audio), self.speaker_refs[item.speaker])
        if not sil.silent:
            from lab.eval.quality import dnsmos

            item.dnsmos = self._try("dnsmos", dnsmos, audio, SAMPLE_RATE)
        if reference is not None and "signal" in self.cfg.metrics:
            from lab.eval.signal import codec_roundtrip_metrics

            item.signal = codec_roundtrip_metrics(reference, audio, SAMPLE_RATE)


def _write(cfg: EvalConfig, item: ItemResult, audio: np.ndarray) -> None:
    if cfg.audio_dir is None:
        return
    folder = Path(cfg.audio_dir) / item.case.replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{item.utterance}.wav"
    soundfile.write(str(path), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    item.audio_file = str(path.relative_to(Path(cfg.audio_dir).parent))


def evaluate(tts, tests: TestList, cfg: EvalConfig | None = None) -> RunResult:
    """Runs every configured case of ``tests`` on the ``LinaTTS`` model ``tts``."""
    cfg = cfg or EvalConfig()
    log = cfg.log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    result = RunResult()
    metrics = _Metrics(cfg, result)
    cache = {} if cfg.cache_dir is None else {"cache_dir": cfg.cache_dir}
    cap = {} if cfg.max_seconds is None else {"max_seconds": cfg.max_seconds}

    # Real clips, cleaned exactly as the app cleans uploads (24 kHz, trimmed, loudness-normalized).
    clips: dict[str, np.ndarray] = {}
    for u in tests.utterances:
        clips[u.id] = load_audio(tests.audio_path(u, **cache))
    for spk in tests.speakers:
        embs = [metrics.embed(clips[u.id]) for u in tests.enrollment(spk)] if "speaker" in cfg.metrics else []
        from lab.eval.speaker import mean_embedding

        metrics.speaker_refs[spk] = mean_embedding(embs) if embs else None
        if "speaker" in cfg.metrics and metrics.speaker_refs[spk] is None and "speaker" not in result.unavailable:
            result.notes.append(f"{spk}: no enrollment clips, no speaker similarity")
    log(f"[eval] {len(tests.tests())} test utterances, {len(tests.speakers)} speakers, cases {','.join(cfg.cases)}")

    def record(case: str, u: Utterance, audio: np.ndarray, seconds: float | None, finished: bool | None,
               seed: int | None, reference: np.ndarray | None = None, speaker: str | None = "") -> None:
        item = ItemResult(case, u.id, u.speaker if speaker == "" else speaker, u.text, seed=seed, finished=finished)
        metrics.measure(item, audio, reference)
        if seconds is not None:
            item.compute_seconds = round(seconds, 4)
            item.rtf = round(seconds / max(item.seconds, 1e-9), 4) if len(audio) else None
        _write(cfg, item, audio)
        result.items.append(item)
        log(f"[eval] {case:>10} {u.id}: wer={_fmt(item.wer)} sim={_fmt(item.similarity)} "
            f"dnsmos={_fmt((item.dnsmos or {}).get('ovrl'))} {'SILENT ' if item.silent else ''}"
            f"{'RUNAWAY' if item.runaway else ''}")

    for k, spk in enumerate(tests.speakers):
        utts = tests.tests(spk)
        enroll = tests.enrollment(spk)
        if "reference" in cfg.cases:
            for u in utts:
                record("reference", u, clips[u.id], None, None, None)
        if "codec" in cfg.cases:
            for u in utts:
                start = time.perf_counter()
                with torch.inference_mode():
                    ref = torch.from_numpy(clips[u.id]).to(tts.device)[None]
                    out = tts.codec.decode(tts.codec.encode(ref))[0].float().cpu().numpy()[: len(clips[u.id])]
                record("codec", u, out, time.perf_counter() - start, None, None, reference=clips[u.id])
        if "plain" in cfg.cases:
            for u in utts:
                seed = utterance_seed(cfg.seed, u.id)
                syn = tts.synthesize(u.text, seed=seed, **cap)
                record("plain", u, syn.audio[0], syn.seconds, syn.finished[0], seed)
        if "prompt" in cfg.cases:
            if not enroll:
                result.notes.append(f"prompt: {spk} has no enrollment clip, skipped")
            else:
                p = min(enroll, key=lambda e: abs(len(clips[e.id]) / SAMPLE_RATE - cfg.prompt_seconds))
                for u in utts:
                    seed = utterance_seed(cfg.seed, u.id)
                    syn = tts.clone(u.text, (SAMPLE_RATE, clips[p.id]), p.text, seed=seed, **cap)
                    record("prompt", u, syn.audio[0], syn.seconds, syn.finished[0], seed)
        if "ist" in cfg.cases and (cfg.ist_speakers is None or k < cfg.ist_speakers):
            voice = (_pretuned_voice(tts, spk, utts, cfg, result, log) if cfg.ist_voices_dir
                     else _voice_tuned_here(tts, spk, enroll, clips, cfg, result, log))
            for u in utts if voice is not None else ():
                seed = utterance_seed(cfg.seed, u.id)
                syn = tts.synthesize(u.text, voice=voice, seed=seed, **cap)
                record("ist", u, syn.audio[0], syn.seconds, syn.finished[0], seed)
    if "preset" in cfg.cases:
        _presets(tts, tests, cfg, result, record)
    return result


def _pretuned_voice(tts, spk: str, utts: list[Utterance], cfg: EvalConfig, result: RunResult, log):
    """The ist case's voice of ``spk`` from ``cfg.ist_voices_dir`` (None, noted, if it has none)."""
    from lab.eval.tuned import find_tuned_voice, tuning_record

    found = find_tuned_voice(cfg.ist_voices_dir, spk, tts.model.cfg, {u.id for u in utts})
    if found is None:
        result.notes.append(f"ist: no pre-tuned voice of {spk} in {cfg.ist_voices_dir}, skipped")
        return None
    result.tuning[spk] = tuning_record(*found)
    log(f"[eval] ist {spk}: pre-tuned {found[1].name}")
    return found[0]


def _voice_tuned_here(tts, spk: str, enroll: list[Utterance], clips: dict, cfg: EvalConfig, result: RunResult, log):
    """The ist case's voice of ``spk``, tuned on its enrollment clips up to ``cfg.ist_seconds`` (None if none)."""
    if not enroll:
        result.notes.append(f"ist: {spk} has no enrollment clip, skipped")
        return None
    chosen, total = [], 0.0
    for e in enroll:
        if chosen and total >= cfg.ist_seconds:
            break
        chosen.append(e)
        total += len(clips[e.id]) / SAMPLE_RATE
    start = time.perf_counter()
    voice, losses = tts.tune_voice([((SAMPLE_RATE, clips[e.id]), e.text) for e in chosen],
                                   steps=cfg.ist_steps, rank=cfg.ist_rank,
                                   learning_rate=cfg.ist_learning_rate, seed=cfg.seed, name=spk)
    result.tuning[spk] = {"clips": len(chosen), "audio_seconds": round(total, 2), "steps": cfg.ist_steps,
                          "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4),
                          "seconds": round(time.perf_counter() - start, 2)}
    log(f"[eval] ist {spk}: {len(chosen)} clips, {total:.1f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return voice


def _presets(tts, tests: TestList, cfg: EvalConfig, result: RunResult, record) -> None:
    from lina.voice import Voice, VoiceError

    folder = Path(cfg.voices_dir) if cfg.voices_dir else None
    files = sorted(folder.glob("*.safetensors")) if folder and folder.is_dir() else []
    if not files:
        result.notes.append(f"preset: no voice files in {folder}")
        return
    texts = list({u.text: u for u in tests.tests()}.values())   # distinct sentences, first speaker's ids
    cap = {} if cfg.max_seconds is None else {"max_seconds": cfg.max_seconds}
    for path in files:
        try:
            voice = Voice.load(path)
            voice.check(tts.model.cfg)
        except VoiceError as e:
            result.notes.append(f"preset {path.name}: skipped ({e})")
            continue
        for u in texts:
            seed = utterance_seed(cfg.seed, u.id)
            syn = tts.synthesize(u.text, voice=voice, seed=seed, **cap)
            record(f"preset:{path.stem}", u, syn.audio[0], syn.seconds, syn.finished[0], seed, speaker=None)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"
