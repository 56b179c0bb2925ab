"""Autoregressive decoding: one parallel prefill of BOS + prompt, then one GLA step per token.

The core is :func:`decode`, an endless iterator of sampled tokens (the eager loop; a back end of
:mod:`lina.backends` may produce them otherwise, e.g. in blocks from a CUDA graph); each step's scores
pass through a list of logit processors (`lina.logits`: PAD/BOS suppressed, the EOS floor, and whatever
an experiment adds) before top-k sampling. :func:`chunks` is the one generation iterator every consumer
reads: blocks of steps with per-row EOS and the length cap; :func:`generate` collects it, :func:`stream`
yields its codes as they come. All take the back end that decodes (default: the reference,
``LinaModel.step`` in a Python loop).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lina.constants import BOS_ID, EOS_ID, FRAME_RATE, N_SPECIAL_TOKENS
from lina.cross_attention import TextContext
from lina.logits import LogitProcessor, MinTokens, SuppressTokens, process
from lina.model import LinaModel, ModelOutput
from lina.sampling import SamplingConfig, sample_top_k
from lina.state import LinaState

DEFAULT_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class GenerationConfig:
    """``min_tokens``: tokens each row generates before EOS may be sampled, one number for every row
    or one per row (the :class:`lina.logits.MinTokens` processor). ``processors``: logit processors
    applied after the built-in ones (suppressed ids, the EOS floor), e.g. an experiment's."""

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_tokens: int = int(DEFAULT_MAX_SECONDS * FRAME_RATE)
    seed: int | None = 0
    min_tokens: int | tuple[int, ...] = 0
    processors: tuple[LogitProcessor, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        floors = (self.min_tokens,) if isinstance(self.min_tokens, int) else tuple(self.min_tokens)
        if any(not 0 <= m < self.max_tokens for m in floors):
            # A floor at max_tokens or beyond would make EOS impossible: every such row a runaway.
            raise ValueError(f"min_tokens must be in [0, max_tokens={self.max_tokens}), got {self.min_tokens}")
        object.__setattr__(self, "min_tokens", self.min_tokens if isinstance(self.min_tokens, int) else floors)
        object.__setattr__(self, "processors", tuple(self.processors))

    def floors(self, batch: int, device: torch.device) -> Tensor:
        """``min_tokens`` as ``[B]`` long (raises when a per-row tuple does not match the batch)."""
        if isinstance(self.min_tokens, int):
            return torch.full((batch,), self.min_tokens, dtype=torch.long, device=device)
        if len(self.min_tokens) != batch:
            raise ValueError(f"min_tokens has {len(self.min_tokens)} rows for a batch of {batch}")
        return torch.tensor(self.min_tokens, dtype=torch.long, device=device)

    def logit_processors(self, batch: int, device: torch.device) -> list[LogitProcessor]:
        """The built-in processors of this config (suppressed ids, EOS floor), then ``processors``."""
        return [*suppressing(self.sampling, device), MinTokens(self.floors(batch, device)), *self.processors]


def suppressing(sampling: SamplingConfig, device: torch.device | str) -> list[LogitProcessor]:
    """``[SuppressTokens(sampling.suppress)]``, or none when nothing is suppressed."""
    return [SuppressTokens(sampling.suppress, device)] if sampling.suppress else []


@dataclass
class Step:
    tokens: Tensor      # [B] sampled model-space ids (codec id + 3, or EOS)
    alignment: Tensor   # [B, 2, Tx] cross-attention weights of the step that scored them


@dataclass
class Block:
    """Consecutive steps of a batch: what a back end's ``blocks`` yields."""

    tokens: Tensor      # [B, n]
    alignment: Tensor   # [B, 2, n, Tx]


StepFn = Callable[[TextContext, Tensor, LinaState], ModelOutput]


@dataclass
class Generation:
    codes: list[Tensor]     # per row: raw codec ids [T_i] (prompt, EOS and special ids removed)
    finished: Tensor        # [B] bool: the row emitted EOS before max_tokens
    alignment: Tensor       # [B, 2, T, Tx] cross-attention weights over the generated steps
    steps: int              # decoding steps run (tokens per row, at most max_tokens)


@dataclass
class Chunk:
    """Consecutive steps of a batch as :func:`chunks` yields them (never past ``max_tokens``).

    ``ends[b]``: the step of row ``b``'s EOS, ``max_tokens`` while it has none; the row's tokens from
    there on are not codes."""

    tokens: Tensor      # [B, n] sampled model-space ids, steps start .. start + n
    alignment: Tensor   # [B, 2, n, Tx]
    start: int          # steps before this chunk
    ends: Tensor        # [B] long, as of the end of this chunk
    finished: Tensor    # [B] bool: the row has emitted EOS (by the end of this chunk)

    def codes(self) -> list[Tensor]:
        """Per row, the codec ids of this chunk ``[n_b]`` (empty once the row has ended)."""
        n = self.tokens.shape[1]
        keep = (self.ends - self.start).clamp(0, n).tolist()
        return [codes_of(row[:k]) for row, k in zip(self.tokens, keep)]


def codes_of(tokens: Tensor) -> Tensor:
    """Model-space tokens ``[T]`` before a row's EOS -> codec ids ``[T]`` (special ids read as code 0)."""
    return (tokens - N_SPECIAL_TOKENS).clamp_min(0)


def prompt_input(batch: int, prompt: Tensor | None, device: torch.device) -> Tensor:
    """BOS followed by the prompt's codec ids shifted into model space: ``[B, 1 + P]``."""
    bos = torch.full((batch, 1), BOS_ID, dtype=torch.long, device=device)
    if prompt is None:
        return bos
    if prompt.dim() == 1:
        prompt = prompt[None]
    if prompt.shape[0] == 1 and batch > 1:
        prompt = prompt.expand(batch, -1)
    if prompt.shape[0] != batch:
        raise ValueError(f"prompt has {prompt.shape[0]} rows for a batch of {batch}")
    return torch.cat([bos, prompt.to(device).long() + N_SPECIAL_TOKENS], dim=1)


def prefill(model: LinaModel, ctx: TextContext, state: LinaState, prompt: Tensor | None,
            step: StepFn | None = None) -> tuple[Tensor, LinaState, Tensor]:
    """Consumes BOS + prompt in one parallel pass -> ``(logits [B, 1+P, V], state, alignment [B, 2, 1+P, Tx])``.

    ``step``: where there is no prompt, BOS alone is one call of this step instead (a fast step's
    back end: one position through the sequence path costs more than a step)."""
    if prompt is None and step is not None:
        out = step(ctx, torch.full((ctx.keys.shape[0],), BOS_ID, dtype=torch.long, device=model.device), state)
        return out.logits[:, None], out.state, out.alignment[:, :, None]
    out = model(ctx, prompt_input(ctx.keys.shape[0], prompt, model.device), state)
    return out.logits, out.state, out.alignment


def decode(model: LinaModel, ctx: TextContext, state: LinaState, prompt: Tensor | None,
           sampling: SamplingConfig, generator: torch.Generator | None = None,
           processors: Sequence[LogitProcessor] | None = None, step: StepFn | None = None) -> Iterator[Step]:
    """Endless iterator of sampled tokens, EOS included (the caller decides when to stop).

    ``processors``: the logit processors every step's scores pass through before sampling (default:
    ``sampling.suppress`` only; :meth:`GenerationConfig.logit_processors` adds the EOS floor).
    ``step``: the decoding step (default ``model.step``, the reference); a fast one also takes a
    lone BOS prefill (see :func:`prefill`).
    """
    if processors is None:
        processors = suppressing(sampling, model.device)
    run = model.step if step is None else step
    logits, state, alignment = prefill(model, ctx, state, prompt, step)
    logits, alignment = logits[:, -1], alignment[:, :, -1]
    tokens, count = None, 0
    while True:
        tokens = sample_top_k(process(processors, logits, count, tokens), sampling, generator)
        yield Step(tokens, alignment)
        out = run(ctx, tokens, state)
        logits, state, alignment = out.logits, out.state, out.alignment
        count += 1


def step_blocks(steps: Iterator[Step]) -> Iterator[Block]:
    """:func:`decode`'s steps as one-step blocks (``tokens [B, 1]``): how eager decoding feeds the block loops."""
    for s in steps:
        yield Block(s.tokens[:, None], s.alignment[:, :, None])


def _generator(model: LinaModel, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    gen = torch.Generator(device=model.device)
    gen.manual_seed(seed)
    return gen


def _blocks(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig, prompt: Tensor | None,
            backend, block: int) -> Iterator[Block]:
    generator = _generator(model, cfg.seed)
    processors = cfg.logit_processors(ctx.keys.shape[0], model.device)
    if backend is None:  # the reference back end: model.step in a Python loop
        return step_blocks(decode(model, ctx, state, prompt, cfg.sampling, generator, processors))
    return backend.blocks(ctx, state, prompt, cfg.sampling, generator, processors, block)


def chunks(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig,
           prompt: Tensor | None = None, backend=None, size: int = 1) -> Iterator[Chunk]:
    """The generation iterator: :class:`Chunk` s of ``size`` steps (the last may be shorter) until every
    row has emitted EOS or ``max_tokens`` steps have run.

    ``backend``: a :class:`lina.backends.Backend` of ``model`` (default: the reference), asked for blocks
    of ``size`` steps; "every row has finished" (a host synchronisation) is checked once per block it
    yields (eager back ends: every step), so decoding stops at the block where the last row ends. The
    tokens depend neither on ``size`` nor on the back end's block (same seed, same tokens)."""
    batch = ctx.keys.shape[0]
    ends = torch.full((batch,), cfg.max_tokens, dtype=torch.long, device=model.device)
    tokens: list[Tensor] = []
    aligns: list[Tensor] = []
    done = start = 0
    for block in _blocks(model, ctx, state, cfg, prompt, backend, size):
        take = min(block.tokens.shape[1], cfg.max_tokens - done)
        toks = block.tokens[:, :take]
        eos = toks == EOS_ID
        newly = (ends == cfg.max_tokens) & eos.any(1)
        ends = torch.where(newly, done + eos.float().argmax(1), ends)  # argmax: the first EOS
        tokens.append(toks)
        aligns.append(block.alignment[:, :, :take])
        done += take
        finished = ends < cfg.max_tokens
        last = done >= cfg.max_tokens or bool(finished.all())
        if done - start >= size or last:
            yield Chunk(_joined(tokens, 1), _joined(aligns, 2), start, ends, finished)
            tokens, aligns, start = [], [], done
        if last:
            return


def _joined(parts: list[Tensor], dim: int) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


def stream(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig,
           prompt: Tensor | None = None, chunk_tokens: int = 25, backend=None) -> Iterator[tuple[list[Tensor], Tensor]]:
    """Yields ``(codes per row for this chunk, finished [B])`` every ``chunk_tokens`` steps and at the end
    (:func:`chunks`' codes). A row's chunk is empty once it has finished."""
    for chunk in chunks(model, ctx, state, cfg, prompt, backend, chunk_tokens):
        yield chunk.codes(), chunk.finished


@torch.inference_mode()
def generate(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig,
             prompt: Tensor | None = None, backend=None, check_every: int = 1) -> Generation:
    """:func:`chunks` collected: generates until every row has emitted EOS or ``max_tokens`` steps;
    codes exclude the prompt.

    ``backend``: a :class:`lina.backends.Backend` of ``model`` (default: the reference).
    ``check_every``: steps between checks for "every row has finished"; a back end that decodes in
    blocks checks once per block, so it may run up to a block past the last EOS (those steps are
    dropped: the codes are the same)."""
    tokens, aligns, ends, finished = [], [], None, None
    for chunk in chunks(model, ctx, state, cfg, prompt, backend, check_every):
        tokens.append(chunk.tokens)
        aligns.append(chunk.alignment)
        ends, finished = chunk.ends, chunk.finished
    out = torch.cat(tokens, dim=1)
    steps = min(int(ends.max()) + 1, out.shape[1]) if bool(finished.all()) else out.shape[1]
    codes = [codes_of(row[:n]) for row, n in zip(out, ends.tolist())]
    return Generation(codes, finished, torch.cat(aligns, dim=2)[:, :, :steps], steps)
