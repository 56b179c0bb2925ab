"""Quality: DNSMOS (speechmos, its ONNX models ship in the wheel) and the failure flags.

DNSMOS (P.835 SIG/BAK/OVRL and P.808) was trained on noisy real speech: it reacts to noise and
artefacts, and only loosely ranks clean synthetic voices. Report it; do not optimize for it.

Flags: ``silence`` (no output at all, or less than ``MIN_SPEECH_SECONDS`` of sound above
``SPEECH_FLOOR_DBFS``) and ``runaway`` (the model never emitted EOS: ``Synthesis.finished`` False).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from lab.eval.asr import ToolUnavailable
from lab.eval.audio import METRIC_RATE, frame_rms_db, peak_limit, resample

DNSMOS_NAME = "DNSMOS P.835 (speechmos)"
# A 20 ms frame is "sound" above this level (digital silence and faint hiss are below).
SPEECH_FLOOR_DBFS = -50.0
MIN_SPEECH_SECONDS = 0.2
# DNSMOS scores 9 s windows; longer clips are scored on hops of 1 s (cost grows with length).
DNSMOS_MAX_SECONDS = 30.0

_lock = threading.Lock()


@dataclass(frozen=True)
class SilenceCheck:
    silent: bool
    seconds: float        # duration of the whole clip
    sound_seconds: float  # duration of frames above SPEECH_FLOOR_DBFS
    peak: float

    def to_dict(self) -> dict:
        return {"silent": self.silent, "seconds": round(self.seconds, 3),
                "sound_seconds": round(self.sound_seconds, 3), "peak": round(self.peak, 4)}


def check_silence(audio, sr: int) -> SilenceCheck:
    """Flags empty or (near-)silent output."""
    x = resample(audio, sr, METRIC_RATE)
    levels = frame_rms_db(x, METRIC_RATE)
    sound = float((levels > SPEECH_FLOOR_DBFS).sum()) * 0.01  # 10 ms hop
    peak = float(np.abs(x).max()) if x.size else 0.0
    return SilenceCheck(sound < MIN_SPEECH_SECONDS, x.size / METRIC_RATE, sound, peak)


def is_silent(audio, sr: int) -> bool:
    return check_silence(audio, sr).silent


def is_runaway(finished: bool | None) -> bool | None:
    """No EOS before the length cap (``Synthesis.finished`` False). None when unknown (real audio)."""
    return None if finished is None else not bool(finished)


def dnsmos(audio, sr: int = 24_000) -> dict[str, float] | None:
    """``{"ovrl", "sig", "bak", "p808"}`` MOS estimates (1..5); None for silent or empty audio."""
    try:
        from speechmos import dnsmos as _dnsmos
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolUnavailable(f"DNSMOS needs speechmos, librosa, onnxruntime and requests ({e}); "
                              "pip install -r requirements-eval.txt") from e
    if check_silence(audio, sr).silent:
        return None  # speechmos would loop forever on empty input and score digital silence as clean
    x = peak_limit(resample(audio, sr, METRIC_RATE))[: int(DNSMOS_MAX_SECONDS * METRIC_RATE)]
    with _lock:  # speechmos keeps its ONNX sessions in a module global
        out = _dnsmos.run(x, METRIC_RATE)
    return {"ovrl": float(out["ovrl_mos"]), "sig": float(out["sig_mos"]), "bak": float(out["bak_mos"]),
            "p808": float(out["p808_mos"])}
