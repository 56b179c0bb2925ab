"""Decoding with the whole step (model + sampling) captured in one CUDA graph.

At batch 1 a step is ~200 small kernels; launching them from Python costs more than running them.
Replaying a captured graph removes that overhead. Sampling is inside the graph (Gumbel-max over the
top-k, with noise drawn in blocks outside it) and nothing copies to the host until a block of steps
is done, so the GPU never waits for Python. Same tokens as :func:`lina.generate.decode` (greedy), by
block; the product path reaches it through :mod:`lina.backends.cuda`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import torch
from torch import Tensor

from lina.cross_attention import TextContext
from lina.generate import StepFn, prefill, suppressing
from lina.logits import LogitProcessor, process
from lina.ops.dispatch import fla_kernels
from lina.model import LinaModel
from lina.sampling import SamplingConfig
from lina.state import GLAState, LinaState


def _state_tensors(state: LinaState) -> list[Tensor]:
    layers = state.encoder + state.decoder + [state.pos_net]
    return [getattr(s, f.name) for s in layers for f in fields(GLAState)]


def store_state(static: LinaState, new: LinaState) -> None:
    """Copies ``new`` into the static buffers ``static``, skipping the tensors that already are them (a
    step run with ``inplace=True`` updated those in place: a copy would be a second pass over them)."""
    for dst, src in zip(_state_tensors(static), _state_tensors(new)):
        if not _same(dst, src):
            dst.copy_(src)


def _same(a: Tensor, b: Tensor) -> bool:
    """``b`` is ``a`` or a view of exactly its elements (what torch.compile returns for a mutated input)."""
    return a is b or (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
                      and a.dtype == b.dtype)


def gumbel_top_k(logits: Tensor, noise: Tensor, cfg: SamplingConfig) -> Tensor:
    """Samples like :func:`lina.sampling.sample_top_k` (softmax over the top-k at a temperature) via
    Gumbel-max with pre-drawn ``noise: [B, k]``; no host synchronisation. ``logits: [B, V]`` -> ``[B]``."""
    logits = logits.float()
    if cfg.top_k == 1:
        return logits.argmax(-1)
    values, indices = logits.topk(cfg.top_k, dim=-1)
    choice = (values / cfg.temperature + noise).argmax(-1, keepdim=True)
    return indices.gather(-1, choice)[:, 0]


class GraphDecoder:
    """Generates blocks of tokens for a fixed batch with one CUDA graph replay per step.

    ``ctx`` and the state after the prefill are copied into static buffers; ``run(n)`` returns the
    next ``n`` sampled tokens ``[B, n]``, ``run_block(n)`` also their alignments. Tokens equal those of
    eager decoding for greedy sampling.

    ``step``: the step to capture (default ``model.step``; called with ``inplace=True``);
    ``compile_step``: wrap it in ``torch.compile`` first (one compile per shape; a back end that
    decodes many requests passes an already compiled step instead). ``use_fla``: fla's fused step
    kernel (one pass over the state, the better choice at large batch). ``processors``: the logit
    processors of every step, run inside the graph (each ``graph_safe``; default: ``sampling.suppress``
    only; `lina.generate.GenerationConfig.logit_processors` adds the EOS floor), their ``step`` the
    device's count of tokens sampled (0 for the prefill's prediction).
    ``bos_step``: without a prompt, the lone BOS runs as this step (see `lina.generate.prefill`)
    instead of a one-position sequence pass (fla's chunked kernels, which autotune on first use).
    """

    needs_cuda = True  # a CPU stand-in for tests overrides this and `_capture`

    @torch.inference_mode()
    def __init__(self, model: LinaModel, ctx: TextContext, state: LinaState, prompt: Tensor | None,
                 sampling: SamplingConfig, generator: torch.Generator | None = None, block: int = 64,
                 use_fla: bool = False, compile_step: bool = False,
                 processors: Sequence[LogitProcessor] | None = None,
                 step: StepFn | None = None, bos_step: StepFn | None = None):
        if self.needs_cuda and model.device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device")
        self.model, self.sampling, self.block, self.generator = model, sampling, block, generator
        self.use_fla = use_fla
        step = model.step if step is None else step
        # torch.compile fuses the step's ~200 small kernels (norms, gates, the recurrent update) into
        # fewer Triton kernels before the graph captures them; it costs a compile on first use.
        self._step = torch.compile(step, dynamic=False) if compile_step else step
        logits, state, alignment = prefill(model, ctx, state, prompt, bos_step)
        self.batch = logits.shape[0]
        dev = model.device
        self.processors = suppressing(sampling, dev) if processors is None else list(processors)
        self.count = torch.zeros((), dtype=torch.long, device=dev)  # steps sampled so far (all blocks)
        self.align = torch.zeros(self.batch, 2, block, alignment.shape[-1], dtype=alignment.dtype, device=dev)
        k = min(sampling.top_k, logits.shape[-1])
        self.noise = torch.empty(block, self.batch, k, device=dev)
        self.step_index = torch.zeros((), dtype=torch.long, device=dev)
        self.out = torch.zeros(self.batch, block, dtype=torch.long, device=dev)
        self.ctx = ctx
        self.state = state
        self._refill()
        self.token = gumbel_top_k(process(self.processors, logits[:, -1], 0, None), self.noise[0], sampling)
        self.graph = self._capture()
        self.out[:, 0] = self.token
        self.align[:, :, 0] = alignment[:, :, -1]
        self.step_index.fill_(1)
        self.count.fill_(1)
        self.pos = 1    # host copy of step_index: where the graph writes next in ``out``
        self.read = 0   # next token of ``out`` not yet returned

    def _refill(self) -> None:
        u = torch.rand(self.noise.shape, device=self.noise.device, generator=self.generator)
        self.noise.copy_(-torch.log(-torch.log(u.clamp_min(1e-20))))

    def _body(self) -> None:
        # inplace: the recurrent matrices (most of the bytes a large-batch step moves) are updated in
        # the static buffers themselves; only the small convolution windows are copied back.
        with fla_kernels(steps=self.use_fla):
            out = self._step(self.ctx, self.token, self.state, inplace=True)
        store_state(self.state, out.state)
        noise = self.noise.index_select(0, self.step_index).squeeze(0)
        scores = process(self.processors, out.logits, self.count, self.token)
        self.token.copy_(gumbel_top_k(scores, noise, self.sampling))
        self.out.index_copy_(1, self.step_index, self.token[:, None])
        self.align.index_copy_(2, self.step_index, out.alignment[:, :, None].to(self.align.dtype))
        self.step_index.add_(1)
        self.count.add_(1)

    def _capture(self) -> torch.cuda.CUDAGraph:
        live = _state_tensors(self.state) + [self.token, self.step_index, self.count]
        saved = [t.clone() for t in live]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(2):  # warm-up allocations outside the graph
                self._body()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            self._body()
        for dst, src in zip(live, saved):
            dst.copy_(src)  # capture ran the body: restore the post-prefill state
        return graph

    @torch.inference_mode()
    def run(self, n: int) -> Tensor:
        """The next ``n`` sampled tokens ``[B, n]`` (the first is the prefill's prediction)."""
        return self.run_block(n)[0]

    @torch.inference_mode()
    def run_block(self, n: int) -> tuple[Tensor, Tensor]:
        """The next ``n`` sampled tokens ``[B, n]`` and the alignments of the steps that scored them
        ``[B, 2, n, Tx]``."""
        pieces, aligns, need = [], [], n
        while need > 0:
            if self.read == self.pos:
                if self.pos == self.block:  # block consumed: new noise, write from the start again
                    self._refill()
                    self.step_index.zero_()
                    self.pos = self.read = 0
                replays = min(need, self.block - self.pos)
                for _ in range(replays):
                    self.graph.replay()
                self.pos += replays
            take = min(need, self.pos - self.read)
            pieces.append(self.out[:, self.read:self.read + take].clone())
            aligns.append(self.align[:, :, self.read:self.read + take].clone())
            self.read += take
            need -= take
        return torch.cat(pieces, dim=1), torch.cat(aligns, dim=2)
