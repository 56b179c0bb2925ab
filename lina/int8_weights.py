"""Int8 storage for shipped weights: each matrix as int8 rows with one fp16 scale per row.

The embedded model lives in the git repository, so its size matters twice: in every clone and in
every working tree sent to a GPU machine. Int8 with a per-row absmax scale halves fp16 files; the
error (at most half a step of 1/127 of the row's largest value) is far below what the weights'
training noise already is. Loaders call `dequantize_state` on whatever they read: files without
int8 entries pass through unchanged, so fp32/fp16 files keep working.

    python -m lina.int8_weights assets/lina-mini/model.safetensors assets/lina-mini/codec/codec.safetensors
"""
from __future__ import annotations

import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

INT8_SUFFIX = ".int8"
SCALE_SUFFIX = ".int8_scale"
INT8_MAX = 127
# Small tensors (norms, biases, gates, windows) stay in floating point: they are few bytes and sensitive.
MIN_ELEMENTS = 4096


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float tensors of >= 2 dims and >= MIN_ELEMENTS -> `name.int8` (same shape) + `name.int8_scale`
    `[shape[0]]` fp16; other float tensors -> fp16; the rest unchanged."""
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            out[name] = tensor
        elif tensor.dim() >= 2 and tensor.numel() >= MIN_ELEMENTS:
            rows = tensor.detach().float().reshape(tensor.shape[0], -1)
            scale = (rows.abs().amax(dim=1) / INT8_MAX).clamp(min=torch.finfo(torch.float16).tiny)
            scale = scale.half().float()  # quantize against the scale the file will hold
            codes = (rows / scale[:, None]).round().clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
            out[name + INT8_SUFFIX] = codes.reshape(tensor.shape).contiguous()
            out[name + SCALE_SUFFIX] = scale.half()
        else:
            out[name] = tensor.detach().half().contiguous()
    return out


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `quantize_state` (to float32); names without int8 entries pass through."""
    out = {}
    for name, tensor in state.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if name.endswith(INT8_SUFFIX):
            base = name[: -len(INT8_SUFFIX)]
            scale = state.get(base + SCALE_SUFFIX)
            if scale is None or scale.shape != tensor.shape[:1]:
                raise ValueError(f"{base}: int8 weights without a matching [{tensor.shape[0]}] scale")
            shape = (-1,) + (1,) * (tensor.dim() - 1)
            out[base] = tensor.float() * scale.float().reshape(shape)
        else:
            out[name] = tensor
    return out


def quantize_file(path: str) -> None:
    """Rewrite a safetensors file in place with `quantize_state`, keeping its metadata."""
    with safe_open(path, "pt") as handle:
        metadata = handle.metadata()
    save_file(quantize_state(load_file(path)), path, metadata=metadata)


if __name__ == "__main__":
    for file in sys.argv[1:]:
        quantize_file(file)
        print(f"int8: {file}")
