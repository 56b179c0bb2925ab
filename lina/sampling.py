"""Top-k sampling with temperature, reproducible from a seed."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lina.constants import BOS_ID, PAD_ID

DEFAULT_TOP_K = 100


@dataclass(frozen=True)
class SamplingConfig:
    top_k: int = DEFAULT_TOP_K
    temperature: float = 1.0
    # PAD and BOS are never a valid next token; the released head still scores them.
    suppress: tuple[int, ...] = (PAD_ID, BOS_ID)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def block_token(logits: Tensor, token: int, rows: Tensor) -> Tensor:
    """``logits: [B, V]`` with ``token`` made impossible (-inf) in the rows where ``rows: [B]`` is True."""
    blocked = logits.clone()
    blocked[:, token] = torch.where(rows, float("-inf"), blocked[:, token])
    return blocked


def sample_top_k(logits: Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """``logits: [B, V]`` -> token ids ``[B]``. ``top_k=1`` is greedy (argmax), with no randomness."""
    logits = logits.float()
    if cfg.suppress:
        logits = logits.index_fill(-1, torch.tensor(cfg.suppress, device=logits.device), float("-inf"))
    if cfg.top_k == 1:
        return logits.argmax(dim=-1)
    k = min(cfg.top_k, logits.shape[-1])
    values, indices = logits.topk(k, dim=-1)
    probs = (values / cfg.temperature).softmax(dim=-1)
    choice = torch.multinomial(probs, 1, generator=generator)
    return indices.gather(-1, choice)[:, 0]
