"""Initial-State Tuning: learn a voice (low-rank initial GLA states) from clips, the model frozen."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from lina.constants import BOS_ID, EOS_ID, N_SPECIAL_TOKENS, PAD_ID, TEXT_PAD_ID
from lina.model import LinaModel, teacher_forcing_loss
from lina.voice import RELEASED_SCALE, Voice


@dataclass(frozen=True)
class Clip:
    """One tuning example: raw codec ids ``[T]`` and the tokenized transcript ``[Tx]`` (BOS..EOS)."""

    codes: Tensor
    text: Tensor


@dataclass(frozen=True)
class TuningConfig:
    steps: int = 100
    batch_size: int = 8
    rank: int = 1
    learning_rate: float = 0.05
    scale: float = RELEASED_SCALE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.rank < 1 or not self.learning_rate > 0:
            raise ValueError(f"invalid tuning settings: {self}")


def collate(clips: Sequence[Clip], device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """-> ``(text [B, Tx], text_len [B], audio [B, Ty] = BOS, codes+3, EOS (pad 0), audio_len [B])``."""
    text = pad_sequence([c.text.long() for c in clips], batch_first=True, padding_value=TEXT_PAD_ID)
    rows = [torch.cat([torch.tensor([BOS_ID]), c.codes.long().cpu() + N_SPECIAL_TOKENS, torch.tensor([EOS_ID])])
            for c in clips]
    audio = pad_sequence(rows, batch_first=True, padding_value=PAD_ID)
    text_len = torch.tensor([len(c.text) for c in clips])
    audio_len = torch.tensor([len(r) for r in rows])
    return text.to(device), text_len.to(device), audio.to(device), audio_len.to(device)


def clip_loss(model: LinaModel, clips: Sequence[Clip], initial: list[Tensor] | None,
              use_fla: bool = True) -> Tensor:
    """Mean next-token cross-entropy of ``clips`` from the given initial states (``[B, H, Dk, Dv]`` each).

    ``use_fla``: fla's chunked kernels on CUDA. They compile and autotune for every new clip shape
    (minutes on first use), so a process tuning a few voices of varied clips is faster without them."""
    text, text_len, audio, audio_len = collate(clips, model.device)
    # Each clip's own text positions, as generation will see them: the state is tuned for inference.
    ctx = model.encode_text(text, text_len)
    out = model(ctx, audio[:, :-1], model.init_state(len(clips), initial), use_fla=use_fla)
    return teacher_forcing_loss(out.logits, audio[:, 1:], audio_len)


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
               on_step: Callable[[int, float], None] | None = None, use_fla: bool = True,
               **meta: str) -> tuple[Voice, list[float]]:
    """Learns a rank-``cfg.rank`` voice from any number and length of clips; returns it and the losses.

    ``on_step(step, loss)`` reports progress. The model's weights receive no gradient (asserted).
    ``use_fla``: as in `clip_loss`.
    """
    if not clips:
        raise ValueError("tune_voice needs at least one clip")
    c = model.cfg
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (c.n_tunable_layers, cfg.rank, c.n_heads)
    # As released: k ~ N(0, 1), v ~ N(0, scale^2), so the starting state is small but not zero.
    k = torch.randn(*shape, c.head_k_dim, generator=gen).to(model.device).requires_grad_()
    v = (torch.randn(*shape, c.head_v_dim, generator=gen) * cfg.scale).to(model.device).requires_grad_()
    opt = torch.optim.AdamW([k, v], lr=cfg.learning_rate, weight_decay=0.0)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    was_training = model.training
    model.eval()
    losses: list[float] = []
    try:
        for step, idx in zip(range(cfg.steps), _batches(len(clips), cfg.batch_size, gen)):
            voice = Voice(k, v, cfg.scale)
            loss = clip_loss(model, [clips[i] for i in idx], voice.initial_states(len(idx)), use_fla=use_fla)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            assert all(p.grad is None for p in model.parameters()), "a gradient reached the frozen model"
            opt.step()
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"voice tuning diverged at step {step} (loss {losses[-1]})")
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
    voice = Voice(k.detach().clone(), v.detach().clone(), cfg.scale, model_id=c.model_id, **meta)
    return voice, losses
