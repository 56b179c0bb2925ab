"""Decode back ends: how a model's steps run, chosen once per `lina.tts.LinaTTS`.

    backend = choose(model, "auto")      # or a name of BACKENDS
    generate(backend.model, ctx, state, cfg, backend=backend)

| name | where | what |
|---|---|---|
| ``reference`` | any | ``LinaModel.step`` in a Python loop: the reference of every test |
| ``fused`` | CPU, float32 | the fused PyTorch step (`lina.ops.fused_step`) |
| ``native`` | CPU, float32 | one C call per step (`lina.ops.native`); the fused step where it does not apply |
| ``cuda-graph`` | CUDA | the step in a CUDA graph, bfloat16 weights |
| ``cuda-graph-compiled`` | CUDA + Triton | the step compiled by ``torch.compile``, then in a CUDA graph |
| ``cuda-graph-fla`` | CUDA + fla | the step with fla's fused recurrent kernel, in a CUDA graph |

``auto``: ``native`` on the CPU, ``cuda-graph-compiled`` on CUDA (``cuda-graph`` without Triton), the
reference elsewhere.
"""
from __future__ import annotations

from lina.backends.base import Backend, Reference
from lina.backends.cpu import Fused, Native
from lina.backends.cuda import CudaGraph, CudaGraphCompiled, CudaGraphFla
from lina.model import LinaModel

AUTO = "auto"
BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (Reference, Fused, Native, CudaGraph, CudaGraphCompiled,
                                                           CudaGraphFla)}
AUTO_ORDER = {"cpu": ("native", "fused"), "cuda": ("cuda-graph-compiled", "cuda-graph")}


def auto_name(model: LinaModel) -> str:
    """The back end ``auto`` picks for ``model`` (its device and dtype)."""
    for name in AUTO_ORDER.get(model.device.type, ()):
        if BACKENDS[name].applies(model) is None:
            return name
    return Reference.name


def choose(model: LinaModel, name: str | Backend = AUTO) -> Backend:
    """A back end for ``model``: ``name`` from :data:`BACKENDS`, ``"auto"``, or a ready instance."""
    if isinstance(name, Backend):
        return name
    if name == AUTO:
        name = auto_name(model)
    if name not in BACKENDS:
        raise ValueError(f"unknown decode back end {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    why = BACKENDS[name].applies(model)
    if why:
        raise ValueError(f"back end {name!r} cannot run this model: {why}")
    return BACKENDS[name](model)


__all__ = ["AUTO", "BACKENDS", "Backend", "Reference", "Fused", "Native", "CudaGraph", "CudaGraphCompiled",
           "CudaGraphFla", "auto_name", "choose"]
