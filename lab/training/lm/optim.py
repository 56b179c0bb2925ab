"""AdamW with weight decay on weight matrices only, and the warmup + cosine learning-rate schedule."""
from __future__ import annotations

import math

import torch
from torch import nn

BETAS = (0.9, 0.95)        # a shorter second-moment memory than 0.999: steadier with bf16 and large lr
WEIGHT_DECAY = 0.01
EPS = 1e-8
MIN_LR_RATIO = 0.1         # the cosine ends at 10% of the peak, not 0: the last steps still learn
MATRIX_DIM = 2             # parameters with >= 2 dims (linear, embedding, conv filters) are decayed


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = WEIGHT_DECAY) -> torch.optim.AdamW:
    """AdamW whose first group (matrices) is decayed and second (biases, norms, gains) is not.

    Parameters are grouped in ``named_parameters`` order, so a saved optimizer state fits a fresh
    model of the same config.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= MATRIX_DIM]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < MATRIX_DIM]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.is_cuda for p in decay + no_decay)  # one kernel for all parameters on CUDA
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS, eps=EPS, fused=fused or None)


def lr_at(step: int, peak: float, warmup: int, total: int, min_ratio: float = MIN_LR_RATIO) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup to ``peak`` over ``warmup`` steps,
    then a cosine from ``peak`` down to ``min_ratio * peak`` at ``total`` (held there afterwards)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
