"""Preset voices: those of the manifest `voices/presets.json` (clips + transcripts + settings, a state per
model id; `lina_app.preset_tuner` makes them speakable with the loaded model), and any other
`voices/*.safetensors` (name, style, description in the metadata), each with an optional sample beside
it (same stem, any common audio suffix). The folder may be empty."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lina.config import LinaConfig
from lina.voice import Voice, VoiceError
from lina_app.preset_tuner import UNAVAILABLE, PresetTuner

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
    managed: bool = False   # a manifest preset: its state comes from the tuner (shipped, cached or tuned)
    status: str = ""        # lina_app.preset_tuner: ready / tuning / queued / on_first_use / failed / unavailable
    status_text: str = ""
    progress: float = 0.0
    wait_seconds: float = 0.0

    @property
    def label(self) -> str:
        text = self.name or self.id
        # Shipped names already carry their style ('Ava — neutral'): not twice.
        return f"{text} ({self.style})" if self.style and self.style.lower() not in text.lower() else text

    def public(self) -> dict:
        """What `/voices` returns (no server paths)."""
        data = asdict(self)
        data.pop("path")
        data.pop("managed")
        data["sample"] = bool(self.sample)
        if not self.status:  # a plain voice file: usable or not, nothing to tune
            data.update(status="ready" if self.compatible else "unavailable",
                        status_text="ready" if self.compatible else f"not usable with this model: {self.problem}",
                        progress=float(self.compatible))
        return data


def _sample_of(voice_file: Path) -> str | None:
    for suffix in SAMPLE_SUFFIXES:
        candidate = voice_file.with_suffix(suffix)
        if candidate.is_file():
            return str(candidate)
    return None


def list_presets(folder: str | Path | None, cfg: LinaConfig, skip: set[str] = frozenset()) -> list[Preset]:
    """Every voice file of `folder` (but those named in `skip`), sorted by id; unreadable or foreign ones
    are kept, flagged."""
    if folder is None or not Path(folder).is_dir():
        return []
    presets = []
    for path in sorted(Path(folder).glob(f"*{VOICE_SUFFIX}")):
        if path.name in skip:
            continue
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


def manifest_presets(tuner: PresetTuner) -> list[Preset]:
    """The manifest's presets with where each stands for the loaded model, in manifest order."""
    presets = []
    for spec in tuner.specs.values():
        status = tuner.status(spec.id)
        public = status.public()
        usable = status.state != UNAVAILABLE
        sample = tuner.folder / spec.sample if spec.sample else None
        presets.append(Preset(spec.id, spec.name, spec.style, spec.description, tuner.tts.model_id,
                              spec.tuning.rank, usable, "" if usable else status.text(), "",
                              str(sample) if sample and sample.is_file() else None, True, public["status"],
                              public["status_text"], public["progress"], public["wait_seconds"]))
    return presets


def state_files(tuner: PresetTuner) -> set[str]:
    """File names of the manifest's shipped states: listed through their preset, not as voice files."""
    return {state["file"] for spec in tuner.specs.values() for state in spec.states.values()}


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
    """The first compatible neutral voice (ready ones first), else the first compatible one, else None."""
    usable = sorted((p for p in presets if p.compatible), key=lambda p: p.status not in ("", "ready"))
    neutral = [p for p in usable if p.style.lower() == DEFAULT_STYLE]
    return (neutral or usable or [None])[0]


def load_preset(preset: Preset) -> Voice:
    if not preset.compatible:
        raise VoiceError(f"preset voice '{preset.id}' cannot be used with this model: {preset.problem}")
    return Voice.load(preset.path)
