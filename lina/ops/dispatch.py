"""Chooses the GLA kernels by device: fla's Triton kernels on CUDA when installed, PyTorch otherwise.

fla is imported lazily, and only for CUDA tensors: importing it needs Triton and fails on CPU.
Which of fla's kernels a block of code may use is set with :func:`fla_kernels` (a context, so no flag
is threaded through the model's modules): by default whole sequences (prefill, training, voice
tuning) run fla's chunked kernel on CUDA and single steps the PyTorch ops (a decode back end that
wants fla's fused step says so, see :mod:`lina.backends`).
"""
from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar

import torch
from torch import Tensor

from lina.ops.gla import _acc, gla_chunked, gla_step, gla_step_inplace


@functools.lru_cache(maxsize=1)
def _fla_ops():
    """``(chunk_gla, fused_recurrent_gla)`` or None when flash-linear-attention cannot be imported."""
    try:
        from fla.ops.gla import chunk_gla, fused_recurrent_gla
    except Exception:  # noqa: BLE001 - any import failure means "use the PyTorch path"
        return None
    return chunk_gla, fused_recurrent_gla


def fla_available() -> bool:
    return _fla_ops() is not None


_FLA_SEQUENCES: ContextVar[bool] = ContextVar("lina_fla_sequences", default=True)
_FLA_STEPS: ContextVar[bool] = ContextVar("lina_fla_steps", default=False)


@contextlib.contextmanager
def fla_kernels(sequences: bool | None = None, steps: bool | None = None):
    """Within the block, fla's chunked kernel for whole sequences (``sequences``) and its fused
    recurrent kernel for single steps (``steps``) are used on CUDA tensors where fla is installed, or
    not; None keeps the current choice. Defaults: sequences yes, steps no."""
    tokens = [(var, var.set(value)) for var, value in ((_FLA_SEQUENCES, sequences), (_FLA_STEPS, steps))
              if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def gla_sequence(q: Tensor, k: Tensor, v: Tensor, g: Tensor, initial_state: Tensor | None,
                 scale: float, use_fla: bool | None = None) -> tuple[Tensor, Tensor]:
    """Whole sequence: ``q, k, g: [B, T, H, Dk]``, ``v: [B, T, H, Dv]`` -> ``(o, state [B, H, Dk, Dv])``.
    ``use_fla`` None: as :func:`fla_kernels` says."""
    use_fla = _FLA_SEQUENCES.get() if use_fla is None else use_fla
    ops = _fla_ops() if (use_fla and q.is_cuda) else None
    if ops is None:
        return gla_chunked(q, k, v, g, initial_state, scale)
    chunk_gla, _ = ops
    init = None if initial_state is None else initial_state.float().contiguous()
    o, state = chunk_gla(q, k, v, g, scale=scale, initial_state=init, output_final_state=True)
    return o, state


def gla_single_step(q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor, scale: float,
                    use_fla: bool | None = None, inplace: bool = False) -> tuple[Tensor, Tensor]:
    """One step: ``q, k, g: [B, H, Dk]``, ``v: [B, H, Dv]``, ``state: [B, H, Dk, Dv]``.

    ``use_fla`` None: as :func:`fla_kernels` says. The PyTorch step is the default on every device: at batch 1 a fused kernel launch costs more than
    the arithmetic, and the plain ops can be captured in a CUDA graph.

    ``inplace``: the new state may be written into ``state`` and returned as that same tensor (without
    autograd, for a float32 state): the PyTorch step then makes no state-sized temporaries
    (:func:`gla_step_inplace`). fla's kernel always writes a new tensor (no API to alias its final state
    with the initial one), so there the result is copied into ``state``: the same traffic as a caller's copy.
    """
    use_fla = _FLA_STEPS.get() if use_fla is None else use_fla
    ops = _fla_ops() if (use_fla and q.is_cuda) else None
    inplace = inplace and not torch.is_grad_enabled() and state.dtype == _acc(q) and state.is_contiguous()
    if ops is None:
        if inplace:
            return gla_step_inplace(q, k, v, g, state, scale), state
        return gla_step(q, k, v, g, state, scale)
    _, fused_recurrent_gla = ops
    o, new = fused_recurrent_gla(q[:, None], k[:, None], v[:, None], g[:, None], scale=scale,
                                 initial_state=state.float().contiguous(), output_final_state=True)
    if inplace:
        return o[:, 0], state.copy_(new)
    return o[:, 0], new
