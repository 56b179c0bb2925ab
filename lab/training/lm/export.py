"""A run's weights in our folder format (`lina.pretrained.save_folder`), fp16, with the codec beside them.

The model id is ``"<name>-<version>-<hash>"``: the hash covers the exported fp16 weights, so voices
tuned on one export refuse another (`lina.voice.Voice.check`). `lina.pretrained.load_folder` casts the
weights back to fp32 on load.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from lab.training.codec.freeze import codes_id
from lab.training.lm import checkpoint
from lina.codec import Codec
from lina.config import LinaConfig
from lina.model import LinaModel, count_parameters
from lina.pretrained import Bundle, save_folder
from lina.text_frontend import tokenizer_from_str

NAME = "lina-mini"
VERSION = "v1"
HASH_CHARS = 10
EXPORT_DTYPE = torch.float16  # half the size; the ids the model samples are unchanged in our tests
LICENSE = "MIT"
DESCRIPTION = ("lina-mini: a small Lina-Speech model trained from scratch on a synthetic English corpus "
               "(offline TTS engines reading public-domain texts; lab/training/corpus)")


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    """Short sha256 of the tensors (names, dtypes, shapes and bytes), in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:HASH_CHARS]


def export(source: str | Path, codec_dir: str | Path, out: str | Path, name: str = NAME, version: str = VERSION,
           license: str = LICENSE, description: str = DESCRIPTION) -> str:
    """Writes ``out/`` (config.json, model.safetensors fp16, tokenizer.json or phonemes.json, card.json,
    codec/); returns the id.

    ``source``: a run folder, its ``last.pt`` or a shard folder.
    """
    ckpt = checkpoint.load(source)
    cfg = LinaConfig.from_dict(ckpt["config"])
    model = LinaModel(cfg)
    model.load_state_dict(ckpt["model"])
    model = model.to(EXPORT_DTYPE).eval()
    model_id = f"{name}-{version}-{weights_hash(model.state_dict())}"
    model.cfg = dataclasses.replace(cfg, model_id=model_id)
    codec = Codec.from_pretrained(codec_dir)
    if codec.config.quantizer.bins != cfg.n_codebook:
        raise ValueError(f"codec has {codec.config.quantizer.bins} codes, the model {cfg.n_codebook}")
    learned = ckpt.get("codes_id")  # the codec whose codes the model learned (runs before it was recorded: None)
    made = codes_id(codec) if learned else None
    if learned and made != learned:
        raise ValueError(f"the model learned the codes of codec {learned}, but {codec_dir} makes codes "
                         f"{made}: export it with the codec its training codes came from (or one "
                         f"whose decoder was trained on those codes)")
    tokenizer = tokenizer_from_str(cfg.text_frontend, ckpt["tokenizer"])
    save_folder(Bundle(model, tokenizer, codec, name, license, description), out)
    card_path = Path(out) / "card.json"
    card = json.loads(card_path.read_text())
    card.update({"model_id": model_id, "parameters": count_parameters(model), "dtype": str(EXPORT_DTYPE),
                 "text_frontend": cfg.text_frontend, "codes_id": learned,
                 "training": {"steps": ckpt["step"], "epoch": ckpt["data"]["epoch"], "seconds": ckpt["elapsed"],
                              "settings": ckpt["settings"]}})
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return model_id
