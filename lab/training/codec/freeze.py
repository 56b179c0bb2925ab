"""Frozen codes: an id for a codec's encoder + codebook, so an LM and a decoder can say which codes they use.

`codes_id(codec)` is a SHA-256 over the encoder's and the codebook's config and float32 weights
(names, shapes and bytes, in name order), 16 hex digits. Two codecs with the same id turn the same
audio into the same codes (in float32), whatever their decoders. `export --freeze` (lab.training.codec.runs.freeze_run) writes a codec folder with the
encoder and codebook in float32 (fp16 weights would move the encoder's latents and so some codes) and
`codes.json`:
    {"codes_id": ..., "step": ..., "total_step": ..., ...}
LM v2 trains on codes made by that folder's encoder; decoder-only runs start from it
(`train --init FOLDER --phase gan`), carry its id in their TrainConfig and refuse to save a codec
whose id moved. Exported decoders then ship with the same id, and the LM needs no retraining.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from lina.codec.codec import Codec

CODES_JSON = "codes.json"
# State-dict prefixes that decide the codes (everything the encode path reads).
CODE_PARTS = ("encoder.", "quantizer.")
ID_HEX_DIGITS = 16


def codes_id(codec: Codec) -> str:
    """The id of `codec`'s codes: encoder + codebook config and float32 weights."""
    digest = hashlib.sha256()
    config = codec.config.to_dict()
    digest.update(json.dumps({k: config[k] for k in ("encoder", "quantizer", "sample_rate")}, sort_keys=True).encode())
    state = codec.state_dict()
    for name in sorted(k for k in state if k.startswith(CODE_PARTS)):
        tensor = state[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:ID_HEX_DIGITS]


def read_codes_id(folder: str | Path) -> str | None:
    """The codes id recorded in an exported codec folder (None if it has none)."""
    path = Path(folder) / CODES_JSON
    return json.loads(path.read_text())["codes_id"] if path.exists() else None


def write_codes_json(codec: Codec, folder: Path, **info) -> str:
    """Record the codes id of `codec` (float32 weights) in `folder/codes.json`; returns the id."""
    ident = codes_id(codec)
    (folder / CODES_JSON).write_text(json.dumps({"codes_id": ident, **info}, indent=1) + "\n")
    return ident


def check_frozen(codec: Codec, expected: str | None) -> None:
    """Raise when a decoder-only run's encoder or codebook no longer has the id it started with."""
    if expected is not None and codes_id(codec) != expected:
        raise RuntimeError(f"the frozen encoder or codebook changed (codes id {codes_id(codec)}, expected "
                           f"{expected}): the LM's codes would no longer mean what it learned")
