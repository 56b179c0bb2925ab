"""Preset voices: `voices/*.safetensors` (name, style, description in the metadata), each with an
optional sample beside it (same stem, any common audio suffix). The folder may be empty."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lina.config import LinaConfig
from lina.voice import Voice, VoiceError

VOICE_SUFFIX = ".safetensors"
SAMPLE_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")


@dataclass
class Preset:
    """One file of the voices folder, read and checked against the loaded model."""

    id: str                 # the file's stem: stable, unique, what `/speak` takes
    name: str
    style: str
    description: str
    model_id: str
    rank: int
    compatible: bool        # fits the loaded model
    problem: str            # why not, when it does not
    path: str
    sample: str | None      # audio sample beside the file, if any

    @property
    def label(self) -> str:
        text = self.name or self.id
        # Shipped names already carry their style ('Ava — neutral'): not twice.
        return f"{text} ({self.style})" if self.style and self.style.lower() not in text.lower() else text

    def public(self) -> dict:
        """What `/voices` returns (no server paths)."""
        data = asdict(self)
        data.pop("path")
        data["sample"] = bool(self.sample)
        return data


def _sample_of(voice_file: Path) -> str | None:
    for suffix in SAMPLE_SUFFIXES:
        candidate = voice_file.with_suffix(suffix)
        if candidate.is_file():
            return str(candidate)
    return None


def list_presets(folder: str | Path | None, cfg: LinaConfig) -> list[Preset]:
    """Every voice file of `folder`, sorted by id; unreadable or foreign ones are kept, flagged."""
    if folder is None or not Path(folder).is_dir():
        return []
    presets = []
    for path in sorted(Path(folder).glob(f"*{VOICE_SUFFIX}")):
        try:
            voice = Voice.load(path)
        except VoiceError as error:
            presets.append(Preset(path.stem, path.stem, "", "", "", 0, False, str(error), str(path), None))
            continue
        try:
            voice.check(cfg)
            compatible, problem = True, ""
        except VoiceError as error:
            compatible, problem = False, str(error)
        presets.append(Preset(path.stem, voice.name or path.stem, voice.style, voice.description, voice.model_id,
                              voice.rank, compatible, problem, str(path), _sample_of(path)))
    return presets


def find_preset(presets: list[Preset], key: str) -> Preset | None:
    """By id (file stem), else by display name, case-insensitively."""
    key = (key or "").strip().lower()
    for match in (lambda p: p.id.lower() == key, lambda p: p.name.lower() == key):
        for preset in presets:
            if match(preset):
                return preset
    return None


DEFAULT_STYLE = "neutral"   # the page opens on a plain reading voice, not on the alphabetically first style


def default_preset(presets: list[Preset]) -> Preset | None:
    """The first compatible neutral voice, else the first compatible one, else None."""
    usable = [p for p in presets if p.compatible]
    neutral = [p for p in usable if p.style.lower() == DEFAULT_STYLE]
    return (neutral or usable or [None])[0]


def load_preset(preset: Preset) -> Voice:
    if not preset.compatible:
        raise VoiceError(f"preset voice '{preset.id}' cannot be used with this model: {preset.problem}")
    return Voice.load(preset.path)
