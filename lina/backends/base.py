"""The reference back end: ``LinaModel.step`` in a Python loop (:func:`lina.generate.decode`).

Every other back end (:mod:`lina.backends.cpu`, :mod:`lina.backends.cuda`) is a faster way of computing
the same steps and is tested against this one (greedy tokens equal).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from lina.cross_attention import TextContext
from lina.generate import Block, decode, step_blocks
from lina.logits import LogitProcessor
from lina.model import LinaModel, ModelOutput
from lina.sampling import SamplingConfig
from lina.state import LinaState


class Backend:
    """How one model decodes. ``model`` is the module it decodes with (a back end may hold its own
    copy, e.g. in bfloat16 on CUDA): text contexts and states for it come from that module.

    Subclasses override :meth:`step` (one step, eager) and/or :meth:`blocks` (whole decoding)."""

    name = "reference"
    #: steps between the host's checks for "every row has finished" (`lina.generate.generate`)
    check_every = 1

    def __init__(self, model: LinaModel):
        self.model = model

    @classmethod
    def applies(cls, model: LinaModel) -> str | None:
        """None where this back end can run ``model``, else why not (plain words)."""
        return None

    def step(self, ctx: TextContext, token: Tensor, state: LinaState) -> ModelOutput:
        """One step ``token: [B]`` -> logits ``[B, V]`` (see :meth:`lina.model.LinaModel.step`)."""
        return self.model.step(ctx, token, state)

    def fast_step(self):
        """The step :func:`lina.generate.decode` runs (None: ``model.step``, BOS prefill as a sequence)."""
        return None

    def blocks(self, ctx: TextContext, state: LinaState, prompt: Tensor | None, sampling: SamplingConfig,
               generator: torch.Generator | None, processors: Sequence[LogitProcessor],
               block: int) -> Iterator[Block]:
        """Endless blocks of sampled tokens (EOS included; the caller stops), every step's scores through
        ``processors`` (`lina.logits`). ``block``: how many steps the caller wants at a time (a hint:
        eager back ends yield one step per block)."""
        return step_blocks(decode(self.model, ctx, state, prompt, sampling, generator, processors,
                                  self.fast_step()))

    def warm_up(self, batches: tuple[int, ...] = (1,), text_lengths: tuple[int, ...] = (32,)) -> None:
        """Runs the shapes decoding will see (compilation, graph capture, kernel autotuning) once."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.model.dtype}, {self.model.device})"


class Reference(Backend):
    """``LinaModel.step`` as it is: every device, dtype and autograd; the reference of the tests."""
