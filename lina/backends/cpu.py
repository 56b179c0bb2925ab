"""CPU back ends: the fused PyTorch step (:mod:`lina.ops.fused_step`) and the C step (:mod:`lina.ops.native`).

Both read the model's matrices through one packing (:func:`lina.ops.fused_step.pack_model`: the
parameters become views of a few transposed buffers, same values and state dict). The back end owns
that packing: in-place writes are seen without a copy; it is redone when a parameter no longer points
into it (``.to()``, ``param.data = ...``: checked at every step) or is another object
(``load_state_dict(assign=True)``: checked at the first step of each text context, since listing the
parameters costs a third of a step).
Outside their scope (autograd on, another dtype, a CUDA tensor) they run the reference step.
"""
from __future__ import annotations

import torch
from torch import Tensor

import weakref

from lina.backends.base import Backend
from lina.cross_attention import TextContext
from lina.model import LinaModel, ModelOutput
from lina.ops import native
from lina.ops.fused_step import PackedModel, model_step, pack_model, pointers
from lina.state import LinaState


class Fused(Backend):
    """The fused PyTorch step (TorchScript where available): ~40 ops per GLA block instead of ~200."""

    name = "fused"

    def __init__(self, model: LinaModel):
        super().__init__(model)
        self._packing: PackedModel | None | bool = False  # False: not packed yet; None: not packable
        self._params: list[int] = []                         # ids of the parameters it was packed from
        self._context = lambda: None                          # weak reference to the last text context

    @classmethod
    def applies(cls, model: LinaModel) -> str | None:
        if model.device.type != "cpu" or model.dtype != torch.float32:
            return f"the {cls.name} step runs float32 weights on the CPU (model: {model.dtype} on {model.device})"
        return None

    def packed(self, ctx: TextContext | None = None) -> PackedModel | None:
        """The packing of the model's current parameters (None: a layout the fused step does not take).
        ``ctx``: the text context of the step (a new one triggers the parameter identity check)."""
        p = self._packing
        if ctx is None or self._context() is not ctx:
            params = [id(t) for t in self.model.parameters()]
            if params != self._params:
                p, self._params = False, params
            self._context = (lambda: None) if ctx is None else weakref.ref(ctx)
        if p is False or (p is not None and pointers(p.views) != p.pointers):
            p = self._packing = pack_model(self.model)
        return p

    def _covers(self, token: Tensor) -> bool:
        return token.device.type == "cpu" and self.model.dtype == torch.float32 and not torch.is_grad_enabled()

    def step(self, ctx: TextContext, token: Tensor, state: LinaState) -> ModelOutput:
        packed = self.packed(ctx) if self._covers(token) else None
        if packed is None:
            return self.model.step(ctx, token, state)
        return ModelOutput(*self._packed_step(packed, ctx, token, state))

    def _packed_step(self, packed: PackedModel, ctx: TextContext, token: Tensor, state: LinaState):
        return model_step(packed, ctx, token, state)

    def fast_step(self):
        return self.step


class Native(Fused):
    """One C call per step (``native_step.c``; int8-form matrices read as int8) for batches up to
    :data:`lina.ops.native.MAX_BATCH`, the fused step above that, and until the C library is built
    (in the background, about a second, on first use) or where no C compiler exists."""

    name = "native"

    def __init__(self, model: LinaModel):
        super().__init__(model)
        native.load()  # start the build now, so it is ready by the first request

    def _packed_step(self, packed: PackedModel, ctx: TextContext, token: Tensor, state: LinaState):
        lib = native.load()
        out = None if lib is None else native.model_step(lib, packed, ctx, token, state)
        return out or model_step(packed, ctx, token, state)

    def warm_up(self, batches: tuple[int, ...] = (1,), text_lengths: tuple[int, ...] = (32,)) -> None:
        native.load(wait=True)
