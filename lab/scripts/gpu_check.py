"""On a CUDA machine: fla's kernels against our PyTorch GLA (fp64 reference), op- and model-level.

    PYTHONPATH=. python lab/scripts/gpu_check.py      # prints markdown tables, writes $OUT/gpu_check.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: lab is not installed

from lab.bench.common import write_result
from lina.config import LinaConfig
from lina.model import LinaModel, count_parameters
from lina.ops import gla_chunked, gla_recurrent, gla_step
from lina.ops.dispatch import _fla_ops

CASES = [  # (B, T, H, Dk, Dv): released widths (1024 model, 4 heads) and a many-head case
    (2, 300, 4, 256, 512),
    (4, 1000, 8, 64, 128),
]


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.double() - ref).abs().max() / ref.abs().max()).item()


def op_rows() -> list[dict]:
    chunk_gla, fused_recurrent_gla = _fla_ops()
    rows = []
    for b, t, h, dk, dv in CASES:
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k = (torch.randn(b, t, h, dk, device="cuda", generator=g) for _ in range(2))
        v = torch.randn(b, t, h, dv, device="cuda", generator=g)
        gate = F.logsigmoid(torch.randn(b, t, h, dk, device="cuda", generator=g)) / 16
        for with_state in (False, True):
            s0 = torch.randn(b, h, dk, dv, device="cuda", generator=g) if with_state else None
            scale = dk ** -0.5
            ref_o, ref_s = gla_recurrent(q.double(), k.double(), v.double(), gate.double(),
                                         None if s0 is None else s0.double(), scale)
            fo, fs = chunk_gla(q, k, v, gate, scale=scale, initial_state=s0, output_final_state=True)
            to, ts = gla_chunked(q, k, v, gate, s0, scale)
            st = torch.zeros(b, h, dk, dv, device="cuda") if s0 is None else s0
            fro, frs = fused_recurrent_gla(q[:, :1], k[:, :1], v[:, :1], gate[:, :1], scale=scale,
                                           initial_state=st, output_final_state=True)
            tso, tss = gla_step(q[:, 0], k[:, 0], v[:, 0], gate[:, 0], st, scale)
            rows.append({"shape": [b, t, h, dk, dv], "initial_state": with_state,
                         "fla_chunk_out": rel_err(fo, ref_o), "fla_chunk_state": rel_err(fs, ref_s),
                         "torch_chunk_out": rel_err(to, ref_o), "torch_chunk_state": rel_err(ts, ref_s),
                         "fla_step_vs_torch_step_out": rel_err(fro[:, 0], tso.double()),
                         "fla_step_vs_torch_step_state": rel_err(frs, tss.double())})
    return rows


def model_rows() -> dict:
    torch.manual_seed(0)
    cfg = LinaConfig(model_id="random-released-size")
    model = LinaModel(cfg).cuda().eval()
    text = torch.randint(3, 256, (2, 80), device="cuda")
    audio = torch.randint(3, cfg.n_audio_vocab, (2, 400), device="cuda")
    s0 = [torch.randn(2, cfg.n_heads, cfg.head_k_dim, cfg.head_v_dim, device="cuda") * 0.1
          for _ in range(cfg.n_tunable_layers)]
    out = {"parameters": count_parameters(model)}
    with torch.no_grad():
        ctx = model.encode_text(text, torch.tensor([80, 60], device="cuda"))
        for name, init in (("zero_state", None), ("voice_state", s0)):
            with fla_kernels(sequences=True):
                fla = model(ctx, audio, model.init_state(2, init)).logits
            with fla_kernels(sequences=False):
                ref = model(ctx, audio, model.init_state(2, init)).logits
            out[f"logits_rel_err_{name}"] = rel_err(fla, ref.double())
    return out


def main() -> None:
    assert torch.cuda.is_available() and _fla_ops() is not None, "needs CUDA and flash-linear-attention"
    torch.backends.cuda.matmul.allow_tf32 = True  # as deployed; the errors below include it
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "ops": op_rows(),
              "model": model_rows()}
    write_result("gpu_check", result)
    print(f"device: {result['device']}, torch {result['torch']}")
    print("| B,T,H,Dk,Dv | S0 | fla chunk o | fla chunk S | torch chunk o | torch chunk S | fla step vs torch o | S |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["ops"]:
        print(f"| {r['shape']} | {r['initial_state']} | {r['fla_chunk_out']:.1e} | {r['fla_chunk_state']:.1e} | "
              f"{r['torch_chunk_out']:.1e} | {r['torch_chunk_state']:.1e} | {r['fla_step_vs_torch_step_out']:.1e} | "
              f"{r['fla_step_vs_torch_step_state']:.1e} |")
    print("model:", json.dumps(result["model"]))


if __name__ == "__main__":
    main()
