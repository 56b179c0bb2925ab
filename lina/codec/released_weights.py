"""Maps a released WavTokenizer Lightning checkpoint onto `Codec` parameter names.

The checkpoint is read with `torch.load(weights_only=True)`: tensors and plain containers only,
no pickle code runs. Training-only entries are dropped by explicit prefix/pattern; everything
else must map onto a parameter of ours, and anything left over or missing is an error.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from lina.codec.config import EncoderConfig
from lina.codec.errors import CodecFormatError

# Parts of the training module inference never uses: GAN discriminators, losses, and the SEANet
# decoder that WavTokenizer trains alongside but replaces by the Vocos backbone + ISTFT head.
IGNORED_PREFIXES = (
    "feature_extractor.encodec.decoder.",
    "multiperioddisc.",
    "multiresddisc.",
    "dac.",
    "dacdiscriminator.",
    "melspec_loss.",
    "disc_loss.",
    "gen_loss.",
    "feat_matching_loss.",
)
# EMA statistics of the codebook: they only update the codebook during training.
IGNORED_PATTERN = re.compile(
    r"feature_extractor\.encodec\.quantizer\.vq\.layers\.\d+\._codebook\.(inited|cluster_size|embed_avg)"
)
# Added to every key by torch.compile'd modules.
COMPILED_PREFIX = "_orig_mod."

_ENCODER = "feature_extractor.encodec.encoder.model."
_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"
# The original wraps every conv twice (SConv1d -> NormConv1d -> Conv1d).
_CONV_WRAPPING = "conv.conv."
# Weight-norm parametrization: weight = g * v / |v|, with the norm over all but the output axis.
_NORM_G, _NORM_V = "weight_g", "weight_v"


def is_ignored(key: str) -> bool:
    """Whether a released key is training-only and must be dropped."""
    return key.startswith(IGNORED_PREFIXES) or IGNORED_PATTERN.fullmatch(key) is not None


def encoder_module_names(config: EncoderConfig) -> dict[str, str]:
    """Original `model.{n}.` module prefixes -> ours, following the original's layer order.

    The original is one flat Sequential: stem conv; per stage its residual blocks, an ELU and the
    down-sampling conv; the LSTM; an ELU; the projection conv. ELUs hold no weights.
    """
    names = {"0.conv.conv.": "stem."}
    index = 1
    for stage in range(len(config.ratios)):
        for unit in range(config.n_residual_layers):
            ours = f"stages.{stage}.residual.{unit}."
            # Residual branch: ELU at block.0 / block.2, convs at block.1 / block.3.
            names[f"{index}.block.1.{_CONV_WRAPPING}"] = ours + "conv1."
            names[f"{index}.block.3.{_CONV_WRAPPING}"] = ours + "conv2."
            names[f"{index}.shortcut.{_CONV_WRAPPING}"] = ours + "shortcut."
            index += 1
        index += 1  # ELU
        names[f"{index}.{_CONV_WRAPPING}"] = f"stages.{stage}.down."
        index += 1
    names[f"{index}.lstm."] = "lstm."
    index += 2  # LSTM, ELU
    names[f"{index}.{_CONV_WRAPPING}"] = "proj."
    return names


def _rename(key: str, encoder_names: dict[str, str]) -> str | None:
    """Our name for a released key, or None if no rule covers it."""
    if key.startswith(_ENCODER):
        rest = key[len(_ENCODER) :]
        for original, ours in encoder_names.items():
            if rest.startswith(original):
                return "encoder." + ours + rest[len(original) :]
        return None
    if key == _CODEBOOK:
        return "quantizer.codebook"
    if key == "head.istft.window":
        return "head.window"
    if key.startswith(("backbone.", "head.out.")):
        return key
    return None


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each `weight_g` / `weight_v` pair by the plain `weight` it parametrizes."""
    folded = {}
    for key, value in state.items():
        if key.endswith(_NORM_V):
            continue
        if key.endswith(_NORM_G):
            stem = key[: -len(_NORM_G)]
            v = state.get(stem + _NORM_V)
            if v is None:
                raise CodecFormatError(f"{key} has no matching {stem + _NORM_V}")
            norm = v.double().flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
            folded[stem + "weight"] = (v.double() * (value.double() / norm)).to(v.dtype)
        else:
            folded[key] = value
    orphans = [k for k in state if k.endswith(_NORM_V) and k[: -len(_NORM_V)] + _NORM_G not in state]
    if orphans:
        raise CodecFormatError(f"weight_v without weight_g: {orphans}")
    return folded


def translate_released_state(raw: dict[str, torch.Tensor], config: EncoderConfig) -> dict[str, torch.Tensor]:
    """Released Lightning `state_dict` -> our names with weight norm folded.

    Raises `CodecFormatError` listing every key that is neither ignored nor understood.
    """
    names = encoder_module_names(config)
    renamed, unknown = {}, []
    for key, value in raw.items():
        key = key.replace(COMPILED_PREFIX, "")
        if is_ignored(key):
            continue
        ours = _rename(key, names)
        if ours is None:
            unknown.append(key)
        else:
            renamed[ours] = value
    if unknown:
        raise CodecFormatError(f"unexpected keys in the WavTokenizer checkpoint: {sorted(unknown)}")
    return fold_weight_norm(renamed)


def read_lightning_state(path: str | Path) -> dict[str, torch.Tensor]:
    """`state_dict` of a Lightning checkpoint, loaded without running pickle code."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CodecFormatError(
            f"{path}: refused to unpickle objects other than tensors and plain containers ({error})"
        ) from None
    except (OSError, RuntimeError, EOFError) as error:
        raise CodecFormatError(f"{path}: not a readable PyTorch checkpoint ({error})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CodecFormatError(f"{path}: no 'state_dict' in the checkpoint")
    return state
