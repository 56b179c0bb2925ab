"""Loads the released Lina-Speech Lightning checkpoints (both hyper-parameter layouts) into LinaModel.

Sizes are read from the weights' shapes (which cannot disagree with the weights); the hyper-parameters
are then checked for variants this implementation does not have, whichever way they were stored:
``{"class_path", "init_args"}`` dicts, omegaconf containers, or pickled module objects (read as inert
records by :mod:`lina.unpickler`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lina.config import LinaConfig
from lina.constants import N_SPECIAL_TOKENS
from lina.unpickler import CheckpointError, Foreign, restricted_load

_PREFIXES = ("model.", "_orig_mod.")  # Lightning's attribute, torch.compile's wrapper

# Released name -> our name, applied in order to the key without prefix.
_RENAMES = [
    (r"^txt_embed\.", "text_embed."),
    (r"^rvq_embed\.weight$", "audio_embed.weight"),
    (r"^logits_head\.weight$", "head.weight"),
    (r"^txt_encoder\.sa\.(\d+)\.tmix\.", r"text_encoder.blocks.\1.attn."),
    (r"^txt_encoder\.sa\.(\d+)\.", r"text_encoder.blocks.\1."),
    (r"^attentive_rnn\.cross_att\.pos_embed\.embed\.", "cross_attention.positions.table."),
    (r"^attentive_rnn\.cross_att\.pos_embed\.dw_conv\.", "cross_attention.positions.conv."),
    (r"^attentive_rnn\.cross_att\.", "cross_attention."),
    (r"^attentive_rnn\.(encoder|decoder)\.", r"\1."),
    (r"\.tmix\.", ".mixer."),
    (r"\.cmix\.p_in\.", ".ffn.proj_in."),
    (r"\.cmix\.p_out\.", ".ffn.proj_out."),
    (r"\.gk_proj\.0\.", ".gate_down."),
    (r"\.gk_proj\.1\.", ".gate_up."),
    (r"\.(q|k|v)_conv1d\.weight$", r".\1_conv.weight"),
    (r"\.attn\.rotary\.freqs$", ".attn.freqs"),
    (r"\.g_norm_swish_gate\.weight$", ".out_norm"),
]


def strip_prefix(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def rename_key(key: str) -> str:
    key = strip_prefix(key)
    for pattern, repl in _RENAMES:
        key = re.sub(pattern, repl, key)
    return key


def _count(keys: list[str], pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_config(sd: dict[str, Tensor], model_id: str = "") -> LinaConfig:
    """Reads every size from the (renamed) state-dict shapes."""
    keys = list(sd)
    try:
        n_quant, n_vocab, d_model = sd["audio_embed.weight"].shape
        key_dim = sd["encoder.0.mixer.q_proj.weight"].shape[0]
        value_dim = sd["encoder.0.mixer.v_proj.weight"].shape[0]
        head_v = sd["encoder.0.mixer.out_norm"].shape[0]
        freqs = sd["text_encoder.blocks.0.attn.freqs"].shape[0]
        cfg = LinaConfig(
            d_model=d_model,
            n_layer=_count(keys, r"^encoder\.(\d+)\."),
            n_heads=value_dim // head_v,
            expand_k=key_dim / d_model,
            expand_v=value_dim / d_model,
            conv_size=sd["encoder.0.mixer.q_conv.weight"].shape[-1],
            gate_low_rank=sd["encoder.0.mixer.gate_down.weight"].shape[0],
            text_layers=_count(keys, r"^text_encoder\.blocks\.(\d+)\."),
            text_heads=d_model // (4 * freqs),  # rotary covers half of each head: 2 * freqs = head_dim / 2
            n_text_vocab=sd["text_embed.weight"].shape[0],
            n_codebook=n_vocab - N_SPECIAL_TOKENS,
            max_text_len=sd["cross_attention.positions.table.weight"].shape[0],
            pos_kernel=sd["cross_attention.positions.conv.weight"].shape[-1],
            model_id=model_id,
        )
    except KeyError as exc:
        raise CheckpointError(f"checkpoint lacks {exc.args[0]!r}: not a Lina-Speech AttentiveGLA model") from None
    if n_quant != 1:
        raise CheckpointError(f"{n_quant} quantizers: only single-codebook (WavTokenizer) models are supported")
    return cfg


def _plain(x: Any) -> Any:
    """Hyper-parameters as plain data: omegaconf containers (pickled or live) become dicts/lists."""
    if isinstance(x, Foreign):
        st = x.state if isinstance(x.state, dict) else {}
        if "_content" in st:
            return _plain(st["_content"])
        if "_val" in st:
            return _plain(st["_val"])
        return x
    if hasattr(x, "_content") or type(x).__module__.startswith("omegaconf"):
        try:
            from omegaconf import OmegaConf
            return OmegaConf.to_container(x, resolve=True)
        except Exception:  # noqa: BLE001
            return x
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _options(hp: Any) -> dict:
    """The constructor options of one hyper-parameter entry, whatever its storage."""
    hp = _plain(hp)
    if isinstance(hp, dict):
        return dict(hp.get("init_args", hp))
    if isinstance(hp, Foreign):
        return hp.attributes
    return {}


def _child(obj: Any, *path: str) -> Any:
    """Follows ``_modules`` names through pickled module records; None where the path breaks."""
    for name in path:
        obj = obj.children.get(name) if isinstance(obj, Foreign) else None
    return obj


def check_hyper_parameters(hparams: Any, cfg: LinaConfig) -> None:
    """Refuses released variants this implementation does not build (instead of loading them wrongly)."""
    hp = _plain(hparams) if hparams is not None else {}
    if not isinstance(hp, dict):
        return
    rnn = hp.get("attentive_rnn")
    opts = _options(rnn)
    if isinstance(rnn, Foreign):  # pickled objects keep their flags on the sub-modules
        cross = _child(rnn, "cross_att")
        gla = _child(rnn, "encoder", "0", "tmix")
        opts = {"rotary": (cross.attributes.get("rotary") is not None) if isinstance(cross, Foreign) else False,
                "blind": isinstance(cross, Foreign) and cross.qualname == "BlindCrossAttention",
                **({"use_short_conv": gla.attributes.get("use_short_conv"),
                    "share_conv_kernel": gla.attributes.get("share_conv_kernel", False),
                    "num_heads": gla.attributes.get("num_heads")} if isinstance(gla, Foreign) else {})}
        pos = _child(cross, "pos_embed")
        if isinstance(pos, Foreign) and pos.qualname != "ConvPos":
            opts["pos_type"] = pos.qualname
    wrong = []
    for name, expected in [("blind", True), ("use_short_conv", True), ("rotary", False),
                           ("cross_att_pp", False), ("share_conv_kernel", False), ("pos_type", "convolutional")]:
        if name in opts and opts[name] is not None and opts[name] != expected:
            wrong.append(f"{name}={opts[name]!r}")
    for name, value in [("d_model", cfg.d_model), ("n_layer", cfg.n_layer), ("heads", cfg.n_heads),
                        ("num_heads", cfg.n_heads)]:
        if name in opts and opts[name] not in (None, value):
            wrong.append(f"{name}={opts[name]!r} but the weights say {value}")
    if wrong:
        raise CheckpointError("unsupported or inconsistent Lina-Speech variant: " + ", ".join(wrong))


def load_released_checkpoint(path: str | Path, model_id: str = "") -> tuple[LinaConfig, dict[str, Tensor]]:
    """Reads a released Lightning checkpoint -> (config, state dict in our names), never executing code."""
    ckpt = restricted_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: no state_dict: not a Lightning checkpoint")
    sd = {rename_key(k): v for k, v in ckpt["state_dict"].items()}
    cfg = infer_config(sd, model_id=model_id or Path(path).stem)
    check_hyper_parameters(ckpt.get("hyper_parameters"), cfg)
    return cfg, sd


def load_into(model: torch.nn.Module, sd: dict[str, Tensor]) -> None:
    """Strict load: lists every missing and unexpected key and every shape mismatch."""
    own = model.state_dict()
    sd = dict(sd)
    if "audio_embed.weight" in sd and sd["audio_embed.weight"].dim() == 3:
        sd["audio_embed.weight"] = sd["audio_embed.weight"][0]
    if "head.weight" in sd and sd["head.weight"].dim() == 3:
        sd["head.weight"] = sd["head.weight"][0]
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint does not match the model: missing keys {missing[:20]}"
                              f"{' ...' if len(missing) > 20 else ''}; unexpected keys {unexpected[:20]}"
                              f"{' ...' if len(unexpected) > 20 else ''}")
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in sd.items() if v.shape != own[k].shape]
    if bad:
        raise CheckpointError("shape mismatch: " + "; ".join(bad[:10]))
    model.load_state_dict(sd, strict=True)
