"""Logit processors: rules applied to a batch's next-token scores before sampling.

Decoding (`lina.generate.decode`, and `lina.cuda_graphs.GraphDecoder` inside its graph) calls each
processor of its list in order on the scores of every step, then samples (`lina.sampling.sample_top_k`:
top-k and temperature stay there). The built-in ones:

* :class:`SuppressTokens`: ids never valid as a next token (PAD and BOS: the released head still scores them);
* :class:`MinTokens`: the EOS floor, no EOS before a row has generated its minimum length.

An experiment plugs in as one more processor (``GenerationConfig.processors``) instead of a branch in the
decode loop. ``graph_safe``: the processor runs inside a CUDA graph (tensor operations only, no host
synchronisation, no new tensors from Python values); the CUDA back ends decode eagerly otherwise.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lina.constants import EOS_ID


class LogitProcessor:
    """One rule on the scores of a step. Subclasses override :meth:`apply`."""

    graph_safe = False  # a processor written for CUDA graphs says so (see the module docstring)

    def apply(self, logits: Tensor, step: int | Tensor, last: Tensor | None) -> Tensor:
        """``logits: [B, V]`` float32 -> ``[B, V]`` (a new tensor or ``logits`` itself, not modified in place).

        ``step``: tokens sampled so far per row (every row counts alike; 0 for the prefill's prediction),
        an int in the eager loop, a 0-dim long tensor on the device inside a CUDA graph. ``last: [B]``:
        the tokens sampled at the previous step (None at step 0)."""
        raise NotImplementedError


class SuppressTokens(LogitProcessor):
    """``ids`` can never be sampled: their scores become -inf."""

    graph_safe = True

    def __init__(self, ids: Sequence[int], device: torch.device | str = "cpu"):
        self.ids = torch.tensor(list(ids), dtype=torch.long, device=device)  # [K], made once (not in a graph)

    def apply(self, logits: Tensor, step: int | Tensor, last: Tensor | None) -> Tensor:
        return logits.index_fill(-1, self.ids, float("-inf"))


class MinTokens(LogitProcessor):
    """The EOS floor: row ``b`` cannot sample EOS at steps ``< floors[b]`` (steps count from the first
    token after the prompt). A small model can rate an early EOS likely; the floor keeps a row from
    ending before its text could have been spoken."""

    graph_safe = True

    def __init__(self, floors: Tensor, eos: int = EOS_ID):
        self.floors, self.eos = floors, eos       # [B] long, on the decoding device
        self.last_floor = int(floors.max()) if floors.numel() else 0

    def apply(self, logits: Tensor, step: int | Tensor, last: Tensor | None) -> Tensor:
        if isinstance(step, int) and step >= self.last_floor:
            return logits  # eager loop past every floor: nothing to do (no copy)
        blocked = logits.clone()
        blocked[:, self.eos] = torch.where(step < self.floors, float("-inf"), blocked[:, self.eos])
        return blocked


def process(processors: Sequence[LogitProcessor], logits: Tensor, step: int | Tensor,
            last: Tensor | None) -> Tensor:
    """``logits: [B, V]`` (any float dtype) through every processor in order -> ``[B, V]`` float32."""
    logits = logits.float()
    for processor in processors:
        logits = processor.apply(logits, step, last)
    return logits


def graph_safe(processors: Sequence[LogitProcessor]) -> bool:
    """Whether every processor may run inside a CUDA graph."""
    return all(p.graph_safe for p in processors)
