"""Autoregressive decoding: one parallel prefill of BOS + prompt, then one GLA step per token.

The core is :func:`decode`, an endless iterator of sampled tokens (the eager loop; a back end of
:mod:`lina.backends` may produce them otherwise, e.g. in blocks from a CUDA graph); :func:`generate`
adds per-row EOS, length limits (a cap, and a floor before which EOS is not sampled) and the removal of
special ids; :func:`stream` yields code chunks as they come. Both take the back end that decodes
(default: the reference, ``LinaModel.step`` in a Python loop).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lina.constants import BOS_ID, EOS_ID, FRAME_RATE, N_SPECIAL_TOKENS
from lina.cross_attention import TextContext
from lina.model import LinaModel, ModelOutput
from lina.sampling import SamplingConfig, block_token, sample_top_k
from lina.state import LinaState

DEFAULT_MAX_SECONDS = 30.0
MAX_VOICE_GUIDANCE = 10.0  # beyond this the guided distribution is all voice difference, no speech model


@dataclass(frozen=True)
class GenerationConfig:
    """``min_tokens``: tokens each row generates before EOS may be sampled, one number for every row
    or one per row. A small model can rate an early EOS likely (silence after a sentence-final pitch
    reads as "the row is over", e.g. right after a prompt clip); a floor derived from the text length
    keeps such a row from ending before its text could have been spoken."""

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_tokens: int = int(DEFAULT_MAX_SECONDS * FRAME_RATE)
    seed: int | None = 0
    min_tokens: int | tuple[int, ...] = 0
    voice_guidance: float = 0.0  # > 0: sample from `guide` (each row beside its no-voice twin, see `decode`)

    def __post_init__(self) -> None:
        if not 0.0 <= self.voice_guidance <= MAX_VOICE_GUIDANCE:  # (also refuses NaN)
            raise ValueError(f"voice_guidance must be in [0, {MAX_VOICE_GUIDANCE:g}], got {self.voice_guidance}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        floors = (self.min_tokens,) if isinstance(self.min_tokens, int) else tuple(self.min_tokens)
        if any(not 0 <= m < self.max_tokens for m in floors):
            # A floor at max_tokens or beyond would make EOS impossible: every such row a runaway.
            raise ValueError(f"min_tokens must be in [0, max_tokens={self.max_tokens}), got {self.min_tokens}")
        object.__setattr__(self, "min_tokens", self.min_tokens if isinstance(self.min_tokens, int) else floors)

    def floors(self, batch: int, device: torch.device) -> Tensor:
        """``min_tokens`` as ``[B]`` long (raises when a per-row tuple does not match the batch)."""
        if isinstance(self.min_tokens, int):
            return torch.full((batch,), self.min_tokens, dtype=torch.long, device=device)
        if len(self.min_tokens) != batch:
            raise ValueError(f"min_tokens has {len(self.min_tokens)} rows for a batch of {batch}")
        return torch.tensor(self.min_tokens, dtype=torch.long, device=device)


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


def guide(logits: Tensor, weight: float) -> Tensor:
    """Voice guidance: ``logits [2B, V]`` = a batch with its voices, then the same rows without ->
    ``log p_voice + weight * (log p_voice - log p_none)`` ``[B, V]``: the next-token distribution moved
    further in the direction the voice (its initial state) moves it, i.e. more of its speaker and style.
    ``weight`` 0 gives ``log p_voice``, the unguided distribution."""
    logp = logits.float().log_softmax(dim=-1)
    with_voice, without = logp.chunk(2)
    return with_voice + weight * (with_voice - without)


def decode(model: LinaModel, ctx: TextContext, state: LinaState, prompt: Tensor | None,
           sampling: SamplingConfig, generator: torch.Generator | None = None,
           min_tokens: Tensor | Sequence[int] | int = 0, guidance: float = 0.0,
           step: StepFn | None = None) -> Iterator[Step]:
    """Endless iterator of sampled tokens, EOS included (the caller decides when to stop).

    ``step``: the decoding step (default ``model.step``, the reference); a fast one also takes a
    lone BOS prefill (see :func:`prefill`).

    ``min_tokens`` (one for all rows, or ``[B]``): a row cannot sample EOS at steps ``< min_tokens``
    (steps count from the first token after the prompt).
    ``guidance`` > 0: every row also runs as its no-voice twin (the same state with zero initial
    recurrent matrices), fed the same tokens, and tokens are sampled from ``guide(logits, guidance)``:
    twice the work per step.
    """
    batch = ctx.keys.shape[0]
    if guidance:
        twin = state.with_initial([torch.zeros_like(s.recurrent) for s in state.tunable])
        ctx, state = ctx.index(torch.arange(batch, device=ctx.keys.device).repeat(2)), state.cat(twin)
        if prompt is not None and prompt.dim() == 2 and prompt.shape[0] == batch:
            prompt = prompt.repeat(2, 1)

    def combine(logits: Tensor) -> Tensor:
        return guide(logits, guidance) if guidance else logits

    run = model.step if step is None else step
    logits, state, alignment = prefill(model, ctx, state, prompt, step)
    logits, alignment = combine(logits[:, -1]), alignment[:batch, :, -1]
    floors = torch.as_tensor(min_tokens, dtype=torch.long, device=logits.device).expand(logits.shape[0])
    last_floor = int(floors.max())
    step = 0
    while True:
        if step < last_floor:
            logits = block_token(logits, EOS_ID, step < floors)
        tokens = sample_top_k(logits, sampling, generator)
        yield Step(tokens, alignment)
        out = run(ctx, tokens.repeat(2) if guidance else tokens, state)
        logits, state, alignment = combine(out.logits), out.state, out.alignment[:batch]
        step += 1


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
    batch = ctx.keys.shape[0]
    generator, floors = _generator(model, cfg.seed), cfg.floors(batch, model.device)
    if backend is None:  # the reference back end: model.step in a Python loop
        return step_blocks(decode(model, ctx, state, prompt, cfg.sampling, generator, floors, cfg.voice_guidance))
    return backend.blocks(ctx, state, prompt, cfg.sampling, generator, floors, cfg.voice_guidance, block)


def stream(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig,
           prompt: Tensor | None = None, chunk_tokens: int = 25, backend=None) -> Iterator[tuple[list[Tensor], Tensor]]:
    """Yields ``(codes per row for this chunk, finished [B])`` every ``chunk_tokens`` steps and at the end.

    A row's chunk is empty once it has finished; the iterator ends when every row has finished or at
    ``max_tokens``. ``backend``: a :class:`lina.backends.Backend` of ``model`` (default: the reference).
    """
    batch = ctx.keys.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=model.device)
    pending: list[Tensor] = []
    i = 0
    for block in _blocks(model, ctx, state, cfg, prompt, backend, chunk_tokens):
        for tokens in block.tokens.unbind(1):
            keep = ~finished & (tokens != EOS_ID)
            pending.append(torch.where(keep, tokens - N_SPECIAL_TOKENS, -1))
            finished |= tokens == EOS_ID
            i += 1
            last = bool(finished.all()) or i == cfg.max_tokens
            if len(pending) == chunk_tokens or last:
                rows = torch.stack(pending, dim=1)  # [B, n]; -1 marks nothing for that row
                yield [row[row >= 0] for row in rows], finished.clone()
                pending = []
            if last:
                return


@torch.inference_mode()
def generate(model: LinaModel, ctx: TextContext, state: LinaState, cfg: GenerationConfig,
             prompt: Tensor | None = None, backend=None, check_every: int = 1) -> Generation:
    """Generates until every row has emitted EOS or ``max_tokens`` steps; codes exclude the prompt.

    ``backend``: a :class:`lina.backends.Backend` of ``model`` (default: the reference).
    ``check_every``: steps between checks for "every row has finished" (a host synchronisation); a
    back end that decodes in blocks checks once per block, so it may run up to a block past the last
    EOS (those steps are dropped: the codes are the same)."""
    batch = ctx.keys.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=model.device)
    lengths = torch.full((batch,), cfg.max_tokens, dtype=torch.long, device=model.device)
    tokens, alignments = [], []
    done = 0
    for block in _blocks(model, ctx, state, cfg, prompt, backend, check_every):
        take = min(block.tokens.shape[1], cfg.max_tokens - done)
        toks = block.tokens[:, :take]
        tokens.append(toks)
        alignments.append(block.alignment[:, :, :take])
        eos = toks == EOS_ID
        newly = ~finished & eos.any(1)
        lengths = torch.where(newly, done + eos.float().argmax(1), lengths)  # argmax: the first EOS
        finished |= newly
        done += take
        if done >= cfg.max_tokens or bool(finished.all()):
            break
    out = torch.cat(tokens, dim=1)
    steps = min(int(lengths.max()) + 1, out.shape[1]) if bool(finished.all()) else out.shape[1]
    codes = [(row[:n] - N_SPECIAL_TOKENS).clamp_min(0) for row, n in zip(out, lengths.tolist())]
    return Generation(codes, finished, torch.cat(alignments, dim=2)[:, :, :steps], steps)
