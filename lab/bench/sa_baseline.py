"""A same-size self-attention decoder with a KV cache: the baseline GLA is measured against.

Same width, the same number of time-mixing blocks as Lina (2 * n_layer + the position net), one
cross-attention to the text in the middle, SwiGLU feed-forwards, preallocated KV caches, PyTorch's
fused attention. Lives in lab/bench/, not in the product.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lina.config import LinaConfig
from lina.layers import SwiGLU


class SABlock(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.ffn = SwiGLU(d, ffn)

    def step(self, x: Tensor, cache_k: Tensor, cache_v: Tensor, t: int) -> Tensor:
        """``x: [B, d]``; caches ``[B, H, T_max, Dh]`` filled up to ``t`` (exclusive)."""
        q, k, v = (z.unflatten(-1, (self.heads, -1)) for z in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        cache_k[:, :, t] = k
        cache_v[:, :, t] = v
        # One query per step: two batched matmuls over the filled cache (SDPA picks a slow kernel here).
        scores = (q[:, :, None] @ cache_k[:, :, : t + 1].transpose(-1, -2)) * q.shape[-1] ** -0.5
        y = scores.float().softmax(-1).to(q.dtype) @ cache_v[:, :, : t + 1]
        x = x + self.out(y[:, :, 0].flatten(-2))
        return x + self.ffn(self.norm2(x))


class SADecoder(nn.Module):
    def __init__(self, cfg: LinaConfig):
        super().__init__()
        d, self.heads = cfg.d_model, cfg.n_heads
        self.embed = nn.Embedding(cfg.n_audio_vocab, d)
        n_blocks = 2 * cfg.n_layer + 1
        self.blocks = nn.ModuleList(SABlock(d, cfg.n_heads, cfg.ffn_dim) for _ in range(n_blocks))
        self.cross_q, self.cross_out = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.head = nn.Linear(d, cfg.n_audio_vocab, bias=False)
        self.middle = cfg.n_layer

    def caches(self, batch: int, max_len: int) -> list[tuple[Tensor, Tensor]]:
        p = self.head.weight
        dh = p.shape[1] // self.heads
        return [(p.new_zeros(batch, self.heads, max_len, dh), p.new_zeros(batch, self.heads, max_len, dh))
                for _ in self.blocks]

    def step(self, token: Tensor, text_kv: tuple[Tensor, Tensor], caches, t: int) -> Tensor:
        x = self.embed(token)
        for i, (block, (ck, cv)) in enumerate(zip(self.blocks, caches)):
            x = block.step(x, ck, cv, t)
            if i == self.middle:
                q = self.cross_q(x).unflatten(-1, (self.heads, -1))[:, :, None]
                y = F.scaled_dot_product_attention(q, *text_kv)
                x = x + self.cross_out(y[:, :, 0].flatten(-2))
        return self.head(x)

    def kv_bytes_per_row(self, length: int) -> int:
        d = self.head.weight.shape[1]
        return 2 * len(self.blocks) * length * d * self.head.weight.element_size()
