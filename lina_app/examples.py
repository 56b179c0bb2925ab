"""Clickable examples of each tab, all offline: clips shipped in assets/examples (a synthetic piper voice,
rendered by lab/scripts/render_examples.py, so no real person is cloned) and texts for the preset voices.

Every list leaves out what is missing (a checkout without the clips shows no clip examples).
"""
from __future__ import annotations

from pathlib import Path

from lina_app.presets import Preset, default_preset
from lina_app.settings import REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"
CLONE_CLIP = "joe_clone.flac"
TUNE_CLIPS = ("joe_tune_1.flac", "joe_tune_2.flac", "joe_tune_3.flac", "joe_tune_4.flac")
CLONE_TEXTS = ("The weather will be fine tomorrow, with a light wind from the west.",
               "Thank you for calling. Your order is on its way.")
TUNE_VOICE_NAME = "joe (example)"
TUNE_STEPS_EXAMPLE = 20
# (text, style of the preset that reads it; the default voice where the folder has no such style)
PRESET_TEXTS = (("Good morning. Here is the news.", "neutral"),
                ("What a wonderful surprise, thank you so much!", "happy"),
                ("Come closer, I have a secret to tell you.", "whisper"),
                ("The meeting starts at ten. Please bring your notes.", "neutral"))


def transcript_of(clip: Path) -> str:
    """The words of a shipped clip: the `.txt` beside it."""
    return " ".join(clip.with_suffix(".txt").read_text(encoding="utf-8").split())


def _shipped(name: str, folder: Path) -> Path | None:
    path = folder / name
    return path if path.is_file() and path.with_suffix(".txt").is_file() else None


def clone_examples(folder: Path = EXAMPLES_DIR) -> list[list[str]]:
    """Rows of (clip, transcript, text to speak) for the clone tab."""
    clip = _shipped(CLONE_CLIP, folder)
    return [[str(clip), transcript_of(clip), text] for text in CLONE_TEXTS] if clip else []


def tune_examples(folder: Path = EXAMPLES_DIR) -> list[list]:
    """Rows of (clips, one transcript line per clip, steps, voice name) for the tuning tab."""
    clips = [p for p in (_shipped(name, folder) for name in TUNE_CLIPS) if p]
    if not clips:
        return []
    return [[[str(p) for p in clips], "\n".join(transcript_of(p) for p in clips), TUNE_STEPS_EXAMPLE,
             TUNE_VOICE_NAME]]


def preset_examples(presets: list[Preset]) -> list[list[str]]:
    """Rows of (text, preset id) for the presets tab; the preset id is "" when the folder has none."""
    usable = [p for p in presets if p.compatible]
    fallback = default_preset(usable)
    rows = []
    for text, style in PRESET_TEXTS:
        match = next((p for p in usable if p.style.lower() == style), fallback)
        rows.append([text, match.id if match else ""])
    return rows
