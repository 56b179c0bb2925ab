"""The preset manifest (`voices/presets.json`): a preset voice is its source clips with their
transcripts and the tuning settings, so that any model can tune it; states already tuned for a model
are listed under that model's id.

    {"format": 1, "presets": [{"id": "ava_happy", "name": "Ava — happy", "style": "happy",
      "description": "...", "sample": "ava_happy.flac",
      "clips": [{"audio": "clips/ava_happy/00.opus", "text": "Words of the clip."}, ...],
      "tuning": {"steps": 100, "rank": 1, "learning_rate": 0.05, "seed": 0},
      "states": {"lina-mini-v1-e8e861bedb": {"file": "ava_happy.safetensors", "key": "<preset key>"}}}]}

Clip paths are relative to the manifest's folder, or ``hf://owner/repo/path/in/repo`` (a file of a Hub
model repo, fetched once and cached by `huggingface_hub`). A state is trusted only under its key
(`preset_key`): the model id, the hash of the clips' bytes and transcripts, and the tuning settings.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

MANIFEST = "presets.json"
FORMAT = 1
HUB_PREFIX = "hf://"
KEY_VERSION = "lina-preset-v1"   # bump when the meaning of a key changes: every cached state is then stale


class ManifestError(ValueError):
    """The manifest cannot be read or is malformed (said in plain words)."""


@dataclass(frozen=True)
class ClipSpec:
    audio: str      # path relative to the manifest's folder, or hf://owner/repo/path
    text: str       # exactly its words


@dataclass(frozen=True)
class TuningSettings:
    """How a preset is tuned (`lina.tts.LinaTTS.tune_voice`): the manifest gives the first four; the app
    may bound a CPU run (fewer steps, cropped clips, smaller batches), which makes it another key."""

    steps: int = 100
    rank: int = 1
    learning_rate: float = 0.05
    seed: int = 0
    batch_size: int = 8
    crop_seconds: float = 0.0       # 0: whole clips

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PresetSpec:
    id: str
    name: str
    style: str
    description: str
    clips: tuple[ClipSpec, ...]
    tuning: TuningSettings
    sample: str = ""                                    # audio sample beside the manifest, if any
    states: dict = field(default_factory=dict)          # model id -> {"file": name, "key": preset key}

    def with_state(self, model_id: str, file: str, key: str) -> "PresetSpec":
        return replace(self, states={**self.states, model_id: {"file": file, "key": key}})

    def to_json(self) -> dict:
        data = asdict(self)
        data["clips"] = [asdict(c) for c in self.clips]
        tuning = self.tuning.as_dict()
        data["tuning"] = {k: tuning[k] for k in ("steps", "rank", "learning_rate", "seed")}
        return data


def _spec(entry: dict) -> PresetSpec:
    try:
        clips = tuple(ClipSpec(str(c["audio"]), str(c["text"])) for c in entry["clips"])
        tuning = entry.get("tuning", {})
        settings = TuningSettings(int(tuning.get("steps", 100)), int(tuning.get("rank", 1)),
                                  float(tuning.get("learning_rate", 0.05)), int(tuning.get("seed", 0)))
        states = {str(m): {"file": str(s["file"]), "key": str(s["key"])} for m, s in entry.get("states", {}).items()}
        return PresetSpec(str(entry["id"]), str(entry.get("name", entry["id"])), str(entry.get("style", "")),
                          str(entry.get("description", "")), clips, settings, str(entry.get("sample", "")), states)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ManifestError(f"preset entry {entry.get('id', '?') if isinstance(entry, dict) else '?'} "
                            f"is malformed ({error})") from None


def read_manifest(folder: str | Path) -> list[PresetSpec]:
    """The presets of `folder/presets.json` in file order; [] when there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{MANIFEST} cannot be read ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("presets"), list):
        raise ManifestError(f"{MANIFEST} is not a format-{FORMAT} preset manifest")
    specs = [_spec(e) for e in data["presets"]]
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ManifestError(f"{MANIFEST} lists a preset id twice")
    return specs


def write_manifest(path: str | Path, specs: list[PresetSpec]) -> None:
    """Atomically: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "presets": [s.to_json() for s in specs]}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def clip_path(clip: ClipSpec, folder: str | Path) -> Path:
    """A local file for the clip: in the folder, or fetched from the Hub (cached by huggingface_hub)."""
    if clip.audio.startswith(HUB_PREFIX):
        from huggingface_hub import hf_hub_download

        owner, repo, name = clip.audio[len(HUB_PREFIX):].split("/", 2)
        return Path(hf_hub_download(f"{owner}/{repo}", name))
    path = (Path(folder) / clip.audio).resolve()
    if Path(folder).resolve() not in path.parents:
        raise ManifestError(f"clip {clip.audio} lies outside the voices folder")
    return path


_file_hashes: dict[tuple[str, int, int], str] = {}   # (path, mtime_ns, size) -> sha256: hashed once per process


def file_sha256(path: Path) -> str:
    stat = path.stat()
    memo = (str(path), stat.st_mtime_ns, stat.st_size)
    if memo not in _file_hashes:
        _file_hashes[memo] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _file_hashes[memo]


def clips_hash(spec: PresetSpec, folder: str | Path) -> str:
    """SHA-256 over every clip's bytes and transcript, in order: a changed clip or word changes it."""
    digest = hashlib.sha256()
    for clip in spec.clips:
        digest.update(file_sha256(clip_path(clip, folder)).encode())
        digest.update(b"\0" + clip.text.encode() + b"\0")
    return digest.hexdigest()


def preset_key(spec: PresetSpec, folder: str | Path, model_id: str, settings: dict) -> str:
    """What a tuned state stands for: (model id, clips and transcripts, settings) as one SHA-256."""
    blob = json.dumps({"version": KEY_VERSION, "model_id": model_id, "clips": clips_hash(spec, folder),
                       "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
