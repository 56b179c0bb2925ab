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
    # PAD and BOS are never a valid next token; the released head still scores them. Decoding turns
    # this into the `lina.logits.SuppressTokens` processor.
    suppress: tuple[int, ...] = (PAD_ID, BOS_ID)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def sample_top_k(logits: Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """``logits: [B, V]`` -> token ids ``[B]``. ``top_k=1`` is greedy (argmax), with no randomness.

    Only top-k and temperature: suppressed ids and other rules are logit processors (`lina.logits`),
    applied before."""
    logits = logits.float()
    if cfg.top_k == 1:
        return logits.argmax(dim=-1)
    k = min(cfg.top_k, logits.shape[-1])
    values, indices = logits.topk(k, dim=-1)
    probs = (values / cfg.temperature).softmax(dim=-1)
    choice = torch.multinomial(probs, 1, generator=generator)
    return indices.gather(-1, choice)[:, 0]
