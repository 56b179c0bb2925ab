"""CUDA back ends: the whole step (model + sampling) replayed from a CUDA graph, in blocks of steps.

* ``cuda-graph``: the PyTorch step captured as is (capture ~0.1 s per request, nothing compiled);
* ``cuda-graph-compiled``: the step fused by ``torch.compile`` first (one compile per process and
  batch-size class, ~15-25 s, cached on disk by Inductor), then captured: the fastest at every batch;
* ``cuda-graph-fla``: the step with fla's fused recurrent kernel (one pass over the state), captured.

Each decodes with its own copy of the model in :data:`DECODE_DTYPE` (bfloat16: half the bytes a step
reads; the recurrent state stays float32, see :func:`lina.state.zero_gla_state`); logits stay within
:data:`BF16_LOGIT_TOLERANCE` of float32 (``tests/test_gpu.py``). Text contexts are padded to a multiple
of :data:`TEXT_BUCKET` positions (masked: the same numbers) so compiled shapes repeat across requests.
Logit processors run inside the graph; a list with one that is not ``graph_safe`` (`lina.logits`, e.g.
an experiment's) runs the eager loop on the same copy instead.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from lina.backends.base import Backend
from lina.cross_attention import TextContext
from lina.cuda_graphs import GraphDecoder
from lina.generate import Block, decode, step_blocks, suppressing
from lina.logits import LogitProcessor, MinTokens, graph_safe
from lina.model import LinaModel
from lina.sampling import SamplingConfig
from lina.state import LinaState

DECODE_DTYPE = torch.bfloat16
# Largest |logit difference| of the bfloat16 copy against float32, relative to the logits' spread
# (max - min per row), over a 64-step teacher-forced decode of random weights of the released size.
BF16_LOGIT_TOLERANCE = 0.02  # measured 0.0082 on an H200 (tests/test_gpu.py)
TEXT_BUCKET = 64       # text positions are padded up to a multiple of this
NOISE_BLOCK = 64       # steps of sampling noise drawn at once (GraphDecoder's block)
CHECK_EVERY = 16       # steps per block handed to `generate` (host checks for "all rows finished")


def pad_context(ctx: TextContext, multiple: int = TEXT_BUCKET) -> TextContext:
    """``ctx`` with its text positions padded (masked) up to a multiple of ``multiple``: ``[B, Tx']``.

    Padded positions are invalid: their attention weight is exactly 0, so every output is unchanged."""
    tx = ctx.keys.shape[1]
    extra = -tx % multiple
    if extra == 0:
        return ctx
    pad = lambda t, value=0.0: torch.nn.functional.pad(t, (0, 0, 0, extra), value=value)  # noqa: E731 [B, Tx, d]
    valid = torch.nn.functional.pad(ctx.valid, (0, extra), value=False)
    bias = None
    if ctx.score_bias is not None:
        bias = torch.nn.functional.pad(ctx.score_bias, (0, extra), value=-torch.finfo(ctx.score_bias.dtype).max)
    return TextContext(pad(ctx.keys), pad(ctx.values), pad(ctx.positions), valid, bias)


def decoding_copy(model: LinaModel, dtype: torch.dtype = DECODE_DTYPE) -> LinaModel:
    """``model`` in ``dtype`` for decoding (a copy; the caller's model is left as it is)."""
    if model.dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype).eval().requires_grad_(False)


class CudaGraph(Backend):
    name = "cuda-graph"
    check_every = CHECK_EVERY
    use_fla = False

    def __init__(self, model: LinaModel, dtype: torch.dtype = DECODE_DTYPE):
        super().__init__(decoding_copy(model, dtype))
        self._step = self.model.step

    @classmethod
    def applies(cls, model: LinaModel) -> str | None:
        if model.device.type != "cuda":
            return f"{cls.name} needs the model on a CUDA device (it is on {model.device})"
        return None

    def blocks(self, ctx: TextContext, state: LinaState, prompt: Tensor | None, sampling: SamplingConfig,
               generator: torch.Generator | None, processors: Sequence[LogitProcessor],
               block: int) -> Iterator[Block]:
        if not graph_safe(processors):
            yield from step_blocks(decode(self.model, ctx, state, prompt, sampling, generator, processors))
            return
        tx = ctx.keys.shape[1]
        dec = GraphDecoder(self.model, pad_context(ctx), state, prompt, sampling, generator, block=NOISE_BLOCK,
                           use_fla=self.use_fla, processors=processors, step=self._step,
                           bos_step=self.model.step)
        while True:
            tokens, alignment = dec.run_block(block)
            yield Block(tokens, alignment[..., :tx])

    @torch.inference_mode()
    def warm_up(self, batches: tuple[int, ...] = (1,), text_lengths: tuple[int, ...] = (TEXT_BUCKET,)) -> None:
        """Captures (and compiles) the step once per batch size and text bucket: 3 blocks each."""
        dev = self.model.device
        for batch in batches:
            for n in text_lengths:
                text = torch.full((batch, n), 3, dtype=torch.long, device=dev)
                ctx = self.model.encode_text(text, torch.full((batch,), n, device=dev))
                sampling = SamplingConfig()
                processors = [*suppressing(sampling, dev), MinTokens(torch.zeros(batch, dtype=torch.long, device=dev))]
                blocks = self.blocks(ctx, self.model.init_state(batch), None, sampling, None, processors, CHECK_EVERY)
                for _ in range(3):
                    next(blocks)
        torch.cuda.synchronize(dev)


class CudaGraphFla(CudaGraph):
    name = "cuda-graph-fla"
    use_fla = True

    @classmethod
    def applies(cls, model: LinaModel) -> str | None:
        from lina.ops.dispatch import fla_available
        return super().applies(model) or (None if fla_available() else "flash-linear-attention is not installed")


class CudaGraphCompiled(CudaGraph):
    """One ``torch.compile`` of the step for all requests (dynamic shapes: batch 1 and the others are
    the two compiles; text lengths are bucketed anyway); each request captures its own graph."""

    name = "cuda-graph-compiled"

    def __init__(self, model: LinaModel, dtype: torch.dtype = DECODE_DTYPE):
        super().__init__(model, dtype)
        _allow_recompiles()
        self._step = torch.compile(self.model.step, dynamic=True)

    @classmethod
    def applies(cls, model: LinaModel) -> str | None:
        why = super().applies(model)
        if why:
            return why
        try:
            import triton  # noqa: F401 - torch.compile's GPU code generator
        except ImportError:
            return "torch.compile needs Triton, which is not installed"
        return None


def _allow_recompiles(limit: int = 64) -> None:
    """Each (batch class, text bucket) may be a guard miss; past dynamo's default limit (8) it would
    silently run eagerly inside the graph."""
    import torch._dynamo as dynamo
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo.config, name):
            setattr(dynamo.config, name, max(limit, getattr(dynamo.config, name)))
