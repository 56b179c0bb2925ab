"""Text encoder: pre-LayerNorm self-attention blocks with rotary embeddings on half of each head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lina.config import LinaConfig
from lina.layers import SwiGLU

ROPE_THETA = 10_000.0


def rotary_frequencies(rotary_dim: int) -> Tensor:
    """``[rotary_dim // 2]`` inverse frequencies of the rotated pairs."""
    return 1.0 / ROPE_THETA ** (torch.arange(0, rotary_dim, 2)[: rotary_dim // 2].float() / rotary_dim)


def apply_rotary(x: Tensor, freqs: Tensor) -> Tensor:
    """Rotates adjacent pairs of the first ``2 * len(freqs)`` channels of ``x: [B, H, T, D]`` by position."""
    rot = 2 * freqs.shape[0]
    pos = torch.arange(x.shape[-2], device=x.device, dtype=freqs.dtype)
    angles = (pos[:, None] * freqs[None, :]).repeat_interleave(2, dim=-1)  # [T, rot]
    head, tail = x[..., :rot], x[..., rot:]
    pairs = head.unflatten(-1, (-1, 2))
    rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    head = head * angles.cos().to(x.dtype) + rotated_half * angles.sin().to(x.dtype)
    return torch.cat((head, tail), dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        # Stored with the weights: the released model keeps them as (frozen) parameters.
        self.register_buffer("freqs", rotary_frequencies((dim // heads) // 2))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x: [B, T, d]``, ``mask: [B, 1, T, T]`` (True = may attend) -> ``[B, T, d]``."""
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        q, k = apply_rotary(q, self.freqs), apply_rotary(k, self.freqs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return y.transpose(1, 2).flatten(-2)


class TextEncoderBlock(nn.Module):
    def __init__(self, cfg: LinaConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.text_heads)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = SwiGLU(cfg.d_model, cfg.ffn_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.ffn(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: LinaConfig):
        super().__init__()
        self.blocks = nn.ModuleList(TextEncoderBlock(cfg) for _ in range(cfg.text_layers))

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """``x: [B, T, d]`` embedded text, ``valid: [B, T]`` bool -> ``[B, T, d]``.

        Valid tokens attend to valid tokens; padding attends to itself only (the diagonal), which keeps
        every softmax row finite as the released model was trained.
        """
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        mask = ((valid[:, :, None] & valid[:, None, :]) | eye)[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return x
