"""Initial-State Tuning: learn a voice (low-rank initial GLA states) from clips, the model frozen."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lina.constants import BOS_ID, EOS_ID, N_SPECIAL_TOKENS, PAD_ID, TEXT_PAD_ID
from lina.model import LinaModel, teacher_forcing_loss
from lina.ops.dispatch import fla_kernels
from lina.tokenizer import pad_rows
from lina.voice import RELEASED_SCALE, Voice


@dataclass(frozen=True)
class Clip:
    """One tuning example: raw codec ids ``[T]`` and the tokenized transcript ``[Tx]`` (BOS..EOS)."""

    codes: Tensor
    text: Tensor


@dataclass(frozen=True)
class TuningConfig:
    """``anchor_weight``: weight of `anchor_penalty` (distance to a ``start`` voice's state) in the loss
    `tune_voice` minimizes; 0 = none. It needs a ``start`` voice."""

    steps: int = 100
    batch_size: int = 8
    rank: int = 1
    learning_rate: float = 0.05
    scale: float = RELEASED_SCALE
    seed: int = 0
    anchor_weight: float = 0.0
    # > 0: a clip longer than this many codes is tuned on its first `max_frames` only (no EOS target), so
    # a step's memory and time are bounded by batch_size x max_frames whatever the clips' lengths.
    max_frames: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.rank < 1 or not self.learning_rate > 0 \
                or not 0 <= self.anchor_weight < math.inf or self.max_frames < 0:  # (also refuses NaN)
            raise ValueError(f"invalid tuning settings: {self}")


# On CUDA the padded lengths of a tuning batch are rounded up to a multiple of this, so that the
# compiled kernels (fla's chunked GLA, forward and backward) see few distinct shapes across clips and
# voices; padding sits after each row's end, where it changes nothing the loss reads.
IST_BUCKET = 64


def _row(codes: Tensor, max_frames: int) -> Tensor:
    """BOS, codes + 3, EOS; a clip cut at ``max_frames`` keeps its start and has no EOS: the state is
    tuned for the beginning of a reading, which a prefix still is (a later window would not be)."""
    codes = codes.long().cpu() + N_SPECIAL_TOKENS
    if 0 < max_frames < len(codes):
        return torch.cat([torch.tensor([BOS_ID]), codes[:max_frames]])
    return torch.cat([torch.tensor([BOS_ID]), codes, torch.tensor([EOS_ID])])


def collate(clips: Sequence[Clip], device: torch.device,
            multiple: int = 1, max_frames: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """-> ``(text [B, Tx], text_len [B], audio [B, Ty] = BOS, codes+3, EOS (pad 0), audio_len [B])``;
    ``multiple``: ``Tx`` and ``Ty + 1`` (the model's input length) padded up to multiples of it;
    ``max_frames`` > 0: longer clips cut to their first ``max_frames`` codes (no EOS)."""
    text, text_len = pad_rows([c.text for c in clips], TEXT_PAD_ID, multiple)
    rows = [_row(c.codes, max_frames) for c in clips]
    audio = pad_sequence(rows, batch_first=True, padding_value=PAD_ID)
    if multiple > 1:
        audio = F.pad(audio, (0, -(audio.shape[1] - 1) % multiple), value=PAD_ID)
    audio_len = torch.tensor([len(r) for r in rows])
    return text.to(device), text_len.to(device), audio.to(device), audio_len.to(device)


def clip_loss(model: LinaModel, clips: Sequence[Clip], initial: list[Tensor] | None,
              use_fla: bool = True, max_frames: int = 0) -> Tensor:
    """Mean next-token cross-entropy of ``clips`` from the given initial states (``[B, H, Dk, Dv]`` each).

    ``use_fla``: fla's chunked kernels on CUDA. They compile and autotune on first use (minutes; batches
    are padded to :data:`IST_BUCKET` frames there so shapes repeat, and the Space keeps the results on
    disk, `lina_app.warmup`), so a one-off process tuning a voice or two may be faster without them."""
    text, text_len, audio, audio_len = collate(clips, model.device,
                                               IST_BUCKET if model.device.type == "cuda" else 1, max_frames)
    # Each clip's own text positions, as generation will see them: the state is tuned for inference.
    ctx = model.encode_text(text, text_len)
    with fla_kernels(sequences=use_fla):
        out = model(ctx, audio[:, :-1], model.init_state(len(clips), initial))
    return teacher_forcing_loss(out.logits, audio[:, 1:], audio_len)


def anchor_penalty(states: Tensor, anchor: Tensor) -> Tensor:
    """Mean over layers of ``||S_l - A_l||_F^2 / ||A_l||_F^2``; ``states``, ``anchor``: ``[L, H, Dk, Dv]``.

    Relative per layer, so every layer counts alike whatever the size of its state (tuned states differ
    in norm from layer to layer), and the weight means the same for any voice: 1 = a layer's state moved
    by its own size. A zero layer of ``anchor`` has no relative distance: ValueError."""
    norms = anchor.flatten(1).pow(2).sum(1)
    if not bool((norms > 0).all()):
        raise ValueError("the anchor state is zero in some layer: its relative distance is undefined")
    return ((states - anchor).flatten(1).pow(2).sum(1) / norms).mean()


def voice_distance(voice: Voice, anchor: Voice) -> float:
    """`anchor_penalty` between two voices' initial states (any ranks and scales): how far ``voice`` is
    from ``anchor``, e.g. a styled voice from the speaker's neutral one."""
    with torch.no_grad():
        return anchor_penalty(voice.layer_states(), anchor.layer_states().to(voice.k.device)).item()


def _batches(n_clips: int, batch_size: int, gen: torch.Generator):
    """Endless batches drawn without replacement within each pass over the clips."""
    order: list[int] = []
    while True:
        batch = []
        while len(batch) < min(batch_size, max(n_clips, 1)):
            if not order:
                order = torch.randperm(n_clips, generator=gen).tolist()
            batch.append(order.pop())
        yield batch


def tune_voice(model: LinaModel, clips: Sequence[Clip], cfg: TuningConfig = TuningConfig(),
               on_step: Callable[[int, float], bool | None] | None = None, use_fla: bool = True, *,
               start: Voice | None = None, **meta: str) -> tuple[Voice, list[float]]:
    """Learns a rank-``cfg.rank`` voice from any number and length of clips; returns it and the losses.

    ``on_step(step, loss)`` runs after each step; if it returns True the tuning stops there and the voice
    is the state with the lowest loss seen so far (each loss is measured at the state before its update):
    a visitor's "stop" keeps the best voice instead of losing the run.

    ``start``: a voice of rank ``cfg.rank`` for this model (e.g. the speaker's neutral voice, to tune a
    style as an offset from it) that ``k [L, R, H, Dk]``, ``v [L, R, H, Dv]`` start from instead of the
    random init; its state is kept exactly (``v`` is rescaled if its scale is not ``cfg.scale``).
    ``cfg.anchor_weight`` > 0 (needs ``start``) adds ``anchor_weight * anchor_penalty(S, S_start)`` to the
    minimized loss, ``S``/``S_start``: ``[L, H, Dk, Dv]`` of the current and the start voice (detached).
    The losses returned and given to ``on_step(step, loss)`` are the clip loss alone (`clip_loss` of the
    step's batch, before its update), with or without the penalty: comparable between runs; measure the
    distance of the result with `voice_distance`. The model's weights receive no gradient (asserted).
    ``use_fla``: as in `clip_loss`.
    """
    if not clips:
        raise ValueError("tune_voice needs at least one clip")
    if cfg.anchor_weight > 0 and start is None:
        raise ValueError("anchor_weight > 0 needs a start voice to anchor to")
    c = model.cfg
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (c.n_tunable_layers, cfg.rank, c.n_heads)
    # As released: k ~ N(0, 1), v ~ N(0, scale^2), so the starting state is small but not zero. Drawn with a
    # start too: the generator then draws the same batches as a run from random init, so the two compare.
    k = torch.randn(*shape, c.head_k_dim, generator=gen)
    v = torch.randn(*shape, c.head_v_dim, generator=gen) * cfg.scale
    anchor = None
    if start is not None:
        start.check(c)  # VoiceError (a ValueError): another model's layers/heads/dims or model_id
        if start.rank != cfg.rank:
            raise ValueError(f"start voice has rank {start.rank}, the tuning rank is {cfg.rank}: "
                             "a start voice must have the rank being tuned")
        # Same state S = scale * k v^T under cfg.scale: the factor goes to v, whose init is scale-sized too.
        k, v = start.k.float().clone(), start.v.float() * (start.scale / cfg.scale)
        if cfg.anchor_weight > 0:  # S_start from these very k, v: exactly zero penalty and gradient at step 0
            anchor = Voice(k, v, cfg.scale).layer_states().to(model.device)
            anchor_penalty(anchor, anchor)  # a zero layer fails here, not after a step
    k = k.to(model.device).requires_grad_()
    v = v.to(model.device).requires_grad_()
    opt = torch.optim.AdamW([k, v], lr=cfg.learning_rate, weight_decay=0.0)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    was_training = model.training
    model.eval()
    losses: list[float] = []
    best: tuple[float, Tensor, Tensor] | None = None
    stopped = False
    try:
        for step, idx in zip(range(cfg.steps), _batches(len(clips), cfg.batch_size, gen)):
            voice = Voice(k, v, cfg.scale)
            loss = clip_loss(model, [clips[i] for i in idx], voice.initial_states(len(idx)), use_fla=use_fla,
                             max_frames=cfg.max_frames)
            opt.zero_grad(set_to_none=True)
            if anchor is None:
                loss.backward()
            else:  # styles as offsets from the start voice: pull the state back towards it
                (loss + cfg.anchor_weight * anchor_penalty(voice.layer_states(), anchor)).backward()
            assert all(p.grad is None for p in model.parameters()), "a gradient reached the frozen model"
            losses.append(loss.item())
            if best is None or losses[-1] < best[0]:  # the state this loss was measured at, before its update
                best = (losses[-1], k.detach().clone(), v.detach().clone())
            opt.step()
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"voice tuning diverged at step {step} (loss {losses[-1]})")
            if on_step is not None and on_step(step, losses[-1]):
                stopped = True
                break
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
    if stopped and best is not None:  # asked to stop early: the lowest-loss state seen so far
        k, v = best[1], best[2]
    voice = Voice(k.detach().clone(), v.detach().clone(), cfg.scale, model_id=c.model_id, **meta)
    return voice, losses
