"""A voice is a low-rank initial recurrent state for every tunable GLA layer (Initial-State Tuning).

Layer ``i`` starts from ``S0_i = scale * sum_r k_r v_r^T`` (``[H, Dk, Dv]``) instead of zeros. The file
layout is the released one (``layer{i}_k [1, r, H, Dk, 1]``, ``layer{i}_v [1, r, H, 1, Dv]``, encoder
layers then decoder layers) plus safetensors metadata; files without metadata are read with the
released scale 0.02.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from lina.config import LinaConfig
from lina.voice_errors import MAX_VOICE_BYTES, VoiceError
from lina.voice_hub import download_voice_file, push_voice

RELEASED_SCALE = 0.02
FORMAT = "lina-voice"
FORMAT_VERSION = "1"
MAX_RANK = 64
# Metadata key of the SHA-256 of the tensors (names, shapes and float32 bytes in key order): a file whose data
# was changed after saving (a flipped byte speaks garbage, it does not fail to parse) is refused on load.
CHECKSUM_KEY = "sha256"
_KEY = re.compile(r"^layer(\d+)_(k|v)$")


@dataclass
class Voice:
    """``k: [L, R, H, Dk]``, ``v: [L, R, H, Dv]`` (float32) for the L tunable layers."""

    k: Tensor
    v: Tensor
    scale: float = RELEASED_SCALE
    name: str = ""
    description: str = ""
    style: str = ""
    model_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return self.k.shape[1]

    @property
    def n_layers(self) -> int:
        return self.k.shape[0]

    def layer_states(self) -> Tensor:
        """Every tunable layer's initial state ``[L, H, Dk, Dv]`` (float32): ``scale * sum_r k_r v_r^T``."""
        return self.scale * torch.einsum("lrhk,lrhv->lhkv", self.k.float(), self.v.float())

    def initial_states(self, batch: int = 1) -> list[Tensor]:
        """Per tunable layer the matrix ``[batch, H, Dk, Dv]`` (float32)."""
        return [s.unsqueeze(0).expand(batch, -1, -1, -1) for s in self.layer_states()]

    def check(self, cfg: LinaConfig) -> None:
        """Raises :class:`VoiceError` unless this voice fits the model ``cfg`` describes."""
        want = (cfg.n_tunable_layers, cfg.n_heads, cfg.head_k_dim, cfg.head_v_dim)
        have = (self.n_layers, self.k.shape[2], self.k.shape[3], self.v.shape[3])
        if have != want:
            raise VoiceError(f"voice is for a model with (layers, heads, Dk, Dv) = {have}, this model has {want}")
        if self.model_id and cfg.model_id and self.model_id != cfg.model_id:
            raise VoiceError(f"voice was tuned for model '{self.model_id}', the loaded model is '{cfg.model_id}'")

    def to(self, device: torch.device | str) -> "Voice":
        return Voice(self.k.to(device), self.v.to(device), self.scale, self.name, self.description, self.style,
                     self.model_id, dict(self.extra))

    def save(self, path: str | Path) -> None:
        tensors = {}
        for i in range(self.n_layers):
            tensors[f"layer{i}_k"] = self.k[i].float().unsqueeze(0).unsqueeze(-1).contiguous()
            tensors[f"layer{i}_v"] = self.v[i].float().unsqueeze(0).unsqueeze(-2).contiguous()
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "scale": repr(self.scale), "rank": str(self.rank),
                "name": self.name, "description": self.description, "style": self.style,
                "model_id": self.model_id, "extra": json.dumps(self.extra), CHECKSUM_KEY: tensor_checksum(tensors)}
        save_file(tensors, str(path), metadata=meta)

    def push_to_hub(self, repo_id: str, consent: str, source_clips: list[dict] | None = None,
                    token: str | None = None, private: bool | None = None) -> str:
        """Uploads this voice and its card (model id, source clips, `consent`) to Hub repo `repo_id` (created if
        needed); `source_clips` default to those the Space records in `extra`. -> the commit URL."""
        return push_voice(self, repo_id, consent, source_clips, token=token, private=private)

    @classmethod
    def from_hub(cls, repo_id: str, model: LinaConfig | None = None, revision: str | None = None,
                 token: str | None = None) -> "Voice":
        """The voice of Hub repo `repo_id` (its voice.safetensors only: nothing is executed); raises
        :class:`VoiceError` in plain words when it is missing, damaged, or, given `model`, made for another."""
        repo_id = str(repo_id or "").strip()
        voice = cls.load(download_voice_file(repo_id, revision, token))
        if model is not None:
            try:
                voice.check(model)
            except VoiceError as error:
                raise VoiceError(f"The voice in '{repo_id}' cannot speak with the loaded model: {error}.") from None
        return voice

    @classmethod
    def load(cls, path: str | Path) -> "Voice":
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise VoiceError(f"The voice file cannot be read ({exc.strerror or exc}).") from None
        if size > MAX_VOICE_BYTES:
            raise VoiceError(f"This file ({size / 2**20:.1f} MB) is too large to be a voice file: voices are at most "
                             f"{MAX_VOICE_BYTES // 2**20} MB.")
        try:
            tensors = load_file(str(path))
            from safetensors import safe_open
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError, RuntimeError):
            # The parser's own words ("invalid JSON in header ...") mean nothing to a visitor.
            raise VoiceError("This is not a voice file: voice files are the .safetensors files that voice "
                             "tuning saves.") from None
        expected = meta.get(CHECKSUM_KEY)
        if expected is not None and expected != tensor_checksum(tensors):
            raise VoiceError("This voice file is damaged: its data no longer matches the checksum it was saved "
                             "with. Download or tune the voice again.")
        return cls.from_tensors(tensors, meta)

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], meta: dict[str, str] | None = None) -> "Voice":
        meta = meta or {}
        layers: dict[int, dict[str, Tensor]] = {}
        for key, t in tensors.items():
            m = _KEY.match(key)
            if not m:
                raise VoiceError(f"unexpected entry {key!r} in voice file")
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = t
        if not layers or sorted(layers) != list(range(len(layers))) or any(len(p) != 2 for p in layers.values()):
            raise VoiceError("voice file must hold layer{i}_k and layer{i}_v for i = 0..L-1")
        ks, vs = [], []
        for i in range(len(layers)):
            k, v = layers[i]["k"], layers[i]["v"]
            if not (k.is_floating_point() and v.is_floating_point()):
                raise VoiceError(f"layer {i}: voice tensors must be floating point, got {k.dtype}/{v.dtype}")
            if k.dim() != 5 or v.dim() != 5 or k.shape[-1] != 1 or v.shape[-2] != 1 or k.shape[0] != 1 \
                    or k.shape[:3] != v.shape[:3]:
                raise VoiceError(f"layer {i}: shapes {tuple(k.shape)} / {tuple(v.shape)} are not "
                                 "[1, r, H, Dk, 1] / [1, r, H, 1, Dv]")
            ks.append(k[0, ..., 0].float())
            vs.append(v[0, :, :, 0].float())
        if len({tuple(k.shape) for k in ks}) != 1 or len({tuple(v.shape) for v in vs}) != 1:
            raise VoiceError("voice layers differ in shape")
        k, v = torch.stack(ks), torch.stack(vs)
        if k.shape[1] > MAX_RANK:
            raise VoiceError(f"voice rank {k.shape[1]} exceeds {MAX_RANK}")
        if not (torch.isfinite(k).all() and torch.isfinite(v).all()):
            raise VoiceError("voice holds non-finite values")
        try:
            scale = float(meta.get("scale", RELEASED_SCALE))
            extra = json.loads(meta.get("extra", "{}") or "{}")
        except ValueError:
            raise VoiceError("voice metadata is malformed") from None
        return cls(k, v, scale, meta.get("name", ""), meta.get("description", ""), meta.get("style", ""),
                   meta.get("model_id", ""), extra if isinstance(extra, dict) else {})


def tensor_checksum(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, shape and float32 bytes, in key order (hex)."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{key}:{tuple(t.shape)};".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()
