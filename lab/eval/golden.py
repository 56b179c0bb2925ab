"""Golden samples: catch silent drift of a model's output for fixed sentences and a fixed seed.

``write_goldens`` synthesizes a few sentences and stores, per sentence, a few KB: duration, EOS flag,
a SHA-1 of the 16-bit audio (exact-match fast path), a 24 x 24 log-mel "thumbnail" (dB, time axis
averaged into 24 equal spans) with the 48-band mean log-mel spectrum, and, when resemblyzer is
installed, a float16 speaker embedding. ``check_goldens`` regenerates and compares:

- duration within ``max_duration_change`` (relative);
- thumbnail mean absolute difference <= ``max_thumb_db`` and mean-spectrum RMS difference
  <= ``max_spectrum_db``;
- embedding cosine >= ``min_embedding`` (only where both sides have one).

Numpy only (resemblyzer optional): the app can run the check without the evaluation requirements.
Sampling is seeded, so goldens are platform-specific: write them where they are checked (CPU CI).
CLI: ``python -m lab.eval.golden --model tiny-random --write goldens.json`` (or ``--check``).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lina.constants import SAMPLE_RATE

FORMAT, VERSION = "lina-golden", 1
GOLDEN_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Four hours of steady work faced us.",
    "The girl at the booth sold 50 bonds.",
)
N_FFT, HOP, N_MELS, THUMB_MELS, THUMB_FRAMES = 1024, 256, 48, 24, 24
DB_FLOOR = -100.0


@dataclass(frozen=True)
class GoldenLimits:
    max_duration_change: float = 0.10
    max_thumb_db: float = 2.0
    max_spectrum_db: float = 1.5
    min_embedding: float = 0.95


@dataclass
class GoldenReport:
    ok: bool
    samples: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"golden check {'passed' if self.ok else 'FAILED'}"]
        for s in self.samples:
            lines.append(f"  {'ok ' if s['ok'] else 'BAD'} {s['text'][:40]!r}: exact={s['exact']} "
                         f"duration {s['duration_change']:+.1%} thumb {s['thumb_db']:.2f} dB "
                         f"spectrum {s['spectrum_db']:.2f} dB emb {s['embedding_cos']}"
                         + ("" if s["ok"] else f" ({'; '.join(s['reasons'])})"))
        return "\n".join(lines)


def _mel_filterbank(n_mels: int, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    """HTK mel triangles ``[n_mels, n_fft // 2 + 1]`` from 0 Hz to Nyquist."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(0.0), mel(sr / 2), n_mels + 2))
    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))


def log_mel(audio: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel power in dB ``[frames, n_mels]`` (Hann window, 1024/256 at 24 kHz), floored at -100 dB."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.maximum(10 * np.log10(power @ _mel_filterbank(n_mels).T + 1e-12), DB_FLOOR)


def thumbnail(audio: np.ndarray) -> np.ndarray:
    """``[THUMB_FRAMES, THUMB_MELS]`` dB: log-mel averaged over equal spans of time (any length)."""
    spec = log_mel(audio, THUMB_MELS)
    spans = np.array_split(np.arange(len(spec)), THUMB_FRAMES)
    return np.stack([spec[s].mean(axis=0) if len(s) else spec[-1] for s in spans])


def _embedding(audio: np.ndarray) -> np.ndarray | None:
    try:
        from lab.eval.speaker import speaker_embedding

        return speaker_embedding(audio, SAMPLE_RATE)
    except (ImportError, RuntimeError, ValueError):  # resemblyzer missing or unusable: go on without it
        return None


def _sha1(audio: np.ndarray) -> str:
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    return hashlib.sha1(pcm.tobytes()).hexdigest()


def describe(audio: np.ndarray, finished: bool, with_embedding: bool = True) -> dict:
    """The stored summary of one output (a few KB of JSON)."""
    audio = np.asarray(audio, dtype=np.float32)
    emb = _embedding(audio) if with_embedding else None
    return {
        "seconds": round(len(audio) / SAMPLE_RATE, 4),
        "finished": bool(finished),
        "sha1": _sha1(audio),
        "thumb_db": np.round(thumbnail(audio), 1).tolist(),
        "spectrum_db": np.round(log_mel(audio).mean(axis=0), 2).tolist(),
        "embedding_f16": None if emb is None else base64.b64encode(emb.astype("<f2").tobytes()).decode(),
    }


def _synthesize(tts, text: str, seed: int, top_k: int | None, voice=None, max_seconds: float | None = None):
    kwargs = {} if top_k is None else {"top_k": top_k}
    if max_seconds is not None:
        kwargs["max_seconds"] = max_seconds
    out = tts.synthesize(text, voice=voice, seed=seed, **kwargs)
    return out.audio[0], out.finished[0]


def write_goldens(tts, path: str | Path, sentences=GOLDEN_SENTENCES, seed: int = 0, top_k: int | None = None,
                  voice=None, with_embedding: bool = True, max_seconds: float | None = None) -> dict:
    """(Re)writes the golden file for ``tts`` (a ``LinaTTS``); returns its content.

    ``voice`` (a ``Voice``) is not stored: pass the same one to ``check_goldens``.
    """
    samples = []
    for text in sentences:
        audio, finished = _synthesize(tts, text, seed, top_k, voice, max_seconds)
        samples.append({"text": text, **describe(audio, finished, with_embedding)})
    data = {"format": FORMAT, "version": VERSION, "model_id": tts.model_id, "seed": seed, "top_k": top_k,
            "max_seconds": max_seconds,
            "voice": getattr(voice, "name", None) if voice is not None else None, "samples": samples}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    return data


def compare(stored: dict, audio: np.ndarray, finished: bool, limits: GoldenLimits = GoldenLimits()) -> dict:
    """One regenerated output against its stored summary."""
    audio = np.asarray(audio, dtype=np.float32)
    seconds = len(audio) / SAMPLE_RATE
    exact = _sha1(audio) == stored["sha1"]
    change = seconds / max(stored["seconds"], 1e-9) - 1.0
    thumb = float(np.abs(thumbnail(audio) - np.asarray(stored["thumb_db"])).mean())
    spectrum = float(np.sqrt(((log_mel(audio).mean(axis=0) - np.asarray(stored["spectrum_db"])) ** 2).mean()))
    cos = None
    if stored.get("embedding_f16") and not exact:
        ref = np.frombuffer(base64.b64decode(stored["embedding_f16"]), dtype="<f2").astype(np.float32)
        emb = _embedding(audio)
        if emb is not None:
            cos = round(float(emb @ ref / max(np.linalg.norm(emb) * np.linalg.norm(ref), 1e-12)), 4)
    reasons = []
    if abs(change) > limits.max_duration_change:
        reasons.append(f"duration {stored['seconds']:.2f} -> {seconds:.2f} s")
    if bool(finished) != bool(stored["finished"]):
        reasons.append(f"EOS {stored['finished']} -> {bool(finished)}")
    if thumb > limits.max_thumb_db:
        reasons.append(f"log-mel thumbnail differs by {thumb:.2f} dB (limit {limits.max_thumb_db})")
    if spectrum > limits.max_spectrum_db:
        reasons.append(f"mean spectrum differs by {spectrum:.2f} dB (limit {limits.max_spectrum_db})")
    if cos is not None and cos < limits.min_embedding:
        reasons.append(f"speaker embedding cosine {cos} (limit {limits.min_embedding})")
    return {"text": stored["text"], "exact": exact, "duration_change": change, "thumb_db": thumb,
            "spectrum_db": spectrum, "embedding_cos": 1.0 if exact else cos, "ok": not reasons, "reasons": reasons}


def check_goldens(tts, path: str | Path, limits: GoldenLimits = GoldenLimits(), voice=None) -> GoldenReport:
    """Regenerates every golden sentence with the stored seed and compares; ``.ok`` False on drift."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path} is not a {FORMAT} v{VERSION} file")
    samples = []
    if data.get("model_id") != tts.model_id:
        return GoldenReport(False, [{"text": "", "exact": False, "duration_change": 0.0, "thumb_db": 0.0,
                                     "spectrum_db": 0.0, "embedding_cos": None, "ok": False,
                                     "reasons": [f"goldens are for {data.get('model_id')!r}, model is {tts.model_id!r}"]}])
    for stored in data["samples"]:
        audio, finished = _synthesize(tts, stored["text"], data["seed"], data.get("top_k"), voice,
                                      data.get("max_seconds"))
        samples.append(compare(stored, audio, finished, limits))
    return GoldenReport(all(s["ok"] for s in samples), samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.eval.golden", description="write or check golden samples")
    p.add_argument("--model", default="tiny-random")
    p.add_argument("--seed", type=int, default=0)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="FILE")
    action.add_argument("--check", type=Path, metavar="FILE")
    args = p.parse_args(argv)
    from lina.tts import LinaTTS

    tts = LinaTTS.from_pretrained(args.model, device="cpu", watermark=False)  # the model, not the mark
    if args.write:
        data = write_goldens(tts, args.write, seed=args.seed)
        print(f"wrote {len(data['samples'])} golden samples to {args.write} ({args.write.stat().st_size} bytes)")
        return 0
    report = check_goldens(tts, args.check)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
