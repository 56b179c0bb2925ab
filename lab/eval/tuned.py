"""Pre-tuned IST voices for the ``ist`` case: voices tuned elsewhere (a GPU, `lab/scripts/make_presets.py
--only-test`) are scored here instead of tuning on this machine.

A voice qualifies for a test speaker when its metadata names that speaker (``extra.speaker``), it fits
the model, and none of the clips it was tuned on (``extra.clip_ids``) is one of that speaker's test
utterances: tuning on a test sentence would leak its words and its audio into the score.
"""
from __future__ import annotations

from pathlib import Path

from lina.voice import Voice, VoiceError


class LeakError(ValueError):
    """A voice was tuned on a clip that is scored."""


def find_tuned_voice(folder: str | Path, speaker: str, model_cfg, test_ids: set[str]) -> tuple[Voice, Path] | None:
    """The voice of ``folder`` tuned for ``speaker`` on clips outside ``test_ids``; None if there is none.

    Raises `LeakError` when the speaker's voice was tuned on one of ``test_ids``, `VoiceError` when it was
    tuned for another model (both are mistakes worth stopping for, not silently skipping)."""
    for path in sorted(Path(folder).glob("*.safetensors")):
        voice = Voice.load(path)
        if voice.extra.get("speaker") != speaker:
            continue
        voice.check(model_cfg)
        leaked = sorted(set(voice.extra.get("clip_ids") or ()) & test_ids)
        if leaked:
            raise LeakError(f"{path.name} was tuned on {len(leaked)} scored clip(s), e.g. {leaked[0]}")
        return voice, path
    return None


def tuning_record(voice: Voice, path: Path) -> dict:
    """What the results say of a pre-tuned voice (the same keys as a voice tuned during the run)."""
    x = voice.extra
    return {"clips": len(x.get("clip_ids") or ()), "audio_seconds": x.get("clip_seconds"), "steps": x.get("steps"),
            "first_loss": x.get("first_loss"), "last_loss": x.get("final_loss"), "seconds": x.get("tuning_seconds"),
            "pretuned": path.name}


__all__ = ["LeakError", "VoiceError", "find_tuned_voice", "tuning_record"]
