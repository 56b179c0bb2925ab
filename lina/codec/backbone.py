"""Vocos backbone as WavTokenizer extends it: conv embed, attention pos-net, AdaLayerNorm ConvNeXt.

Every block takes an optional `mask [B, 1, T]` (1.0 on valid frames) so that a padded batch
decodes each row as if it were alone: group-norm statistics and attention ignore padding, and
every convolution sees zeros past a row's end, exactly like its own zero padding would give.
Parameter names follow the original (`embed`, `pos_net.{i}`, `norm`, `convnext.{i}`, ...).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lina.codec.config import BackboneConfig

# Normalization epsilon of every norm in the backbone.
NORM_EPS = 1e-6
# Group count of the pos-net GroupNorms.
POS_NET_GROUPS = 32
# The released model was trained with one AdaLayerNorm row per bandwidth; inference always uses 0.
BANDWIDTH_ID = 0
EMBED_KERNEL = 7
POS_NET_KERNEL = 3
DWCONV_KERNEL = 7
# Queries per attention call (13.6 s of audio): bounds the score matrix to [block, T].
ATTENTION_QUERY_BLOCK = 1024


def zero_padding(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Zero the padded frames of `[B, C, T]` (no-op without a mask)."""
    return x if mask is None else x * mask


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm over (channels of a group) x (valid frames); padded frames come out zero."""

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`[B, C, T]` -> `[B, C, T]`."""
        if mask is None:
            return super().forward(x)
        batch, channels, frames = x.shape
        grouped = x.reshape(batch, self.num_groups, -1, frames)
        group_mask = mask.reshape(batch, 1, 1, frames).to(x.dtype)
        count = group_mask.sum(dim=(2, 3), keepdim=True) * grouped.shape[2]
        mean = (grouped * group_mask).sum(dim=(2, 3), keepdim=True) / count
        centered = (grouped - mean) * group_mask
        variance = centered.pow(2).sum(dim=(2, 3), keepdim=True) / count
        normed = (centered * torch.rsqrt(variance + self.eps)).reshape(batch, channels, frames)
        return (normed * self.weight[:, None] + self.bias[:, None]) * mask


class ResnetBlock(nn.Module):
    """Two (GroupNorm -> SiLU -> conv3) layers with an identity skip; `[B, C, T]` -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = MaskedGroupNorm(POS_NET_GROUPS, dim, eps=NORM_EPS)
        self.conv1 = nn.Conv1d(dim, dim, POS_NET_KERNEL, padding=POS_NET_KERNEL // 2)
        self.norm2 = MaskedGroupNorm(POS_NET_GROUPS, dim, eps=NORM_EPS)
        self.conv2 = nn.Conv1d(dim, dim, POS_NET_KERNEL, padding=POS_NET_KERNEL // 2)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv1(zero_padding(F.silu(self.norm1(x, mask)), mask))
        h = self.conv2(zero_padding(F.silu(self.norm2(h, mask)), mask))
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over time with 1x1-conv projections; `[B, C, T]` -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = MaskedGroupNorm(POS_NET_GROUPS, dim, eps=NORM_EPS)
        self.q = nn.Conv1d(dim, dim, 1)
        self.k = nn.Conv1d(dim, dim, 1)
        self.v = nn.Conv1d(dim, dim, 1)
        self.proj_out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.norm(x, mask)
        # [B, C, T] -> [B, 1 head, T, C]
        q, k, v = (proj(h).transpose(1, 2).unsqueeze(1) for proj in (self.q, self.k, self.v))
        key_mask = None if mask is None else mask.bool()[:, None]  # [B, 1, 1, T]: valid keys
        # Queries in blocks: scores never exceed [block, T], so long inputs stay in linear memory.
        attended = torch.cat(
            [
                F.scaled_dot_product_attention(q[:, :, first : first + ATTENTION_QUERY_BLOCK], k, v, attn_mask=key_mask)
                for first in range(0, q.shape[2], ATTENTION_QUERY_BLOCK)
            ],
            dim=2,
        )
        return x + self.proj_out(attended.squeeze(1).transpose(1, 2))


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are rows of per-bandwidth tables; `[B, T, C]` -> same."""

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(x, (x.shape[-1],), eps=NORM_EPS)
        return normed * self.scale.weight[BANDWIDTH_ID] + self.shift.weight[BANDWIDTH_ID]


class ConvNeXtBlock(nn.Module):
    """Depthwise conv7 -> AdaLayerNorm -> MLP(GELU) -> layer scale, residual; `[B, C, T]` -> same."""

    def __init__(self, dim: int, intermediate_dim: int, adanorm_num_embeddings: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, DWCONV_KERNEL, padding=DWCONV_KERNEL // 2, groups=dim)
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.norm(self.dwconv(zero_padding(x, mask)).transpose(1, 2))
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    """Codebook features `[B, input_channels, T]` -> frame features `[B, T, dim]`."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        dim = config.dim
        self.embed = nn.Conv1d(config.input_channels, dim, EMBED_KERNEL, padding=EMBED_KERNEL // 2)
        # Index layout of the original pos_net: res, res, attention, res, res, final GroupNorm.
        self.pos_net = nn.ModuleList(
            [
                ResnetBlock(dim),
                ResnetBlock(dim),
                AttentionBlock(dim),
                ResnetBlock(dim),
                ResnetBlock(dim),
                MaskedGroupNorm(POS_NET_GROUPS, dim, eps=NORM_EPS),
            ]
        )
        self.norm = AdaLayerNorm(config.adanorm_num_embeddings, dim)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(dim, config.intermediate_dim, config.adanorm_num_embeddings)
            for _ in range(config.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=NORM_EPS)

    @property
    def local_halo(self) -> int:
        """Frames on each side that affect a frame of `local` output (the depthwise convs' reach)."""
        return len(self.convnext) * (DWCONV_KERNEL // 2)

    def global_part(self, features: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed, pos-net (group norms and attention see the whole sequence) and first norm.

        `features [B, C_in, T]`, `mask [B, 1, T]` or None -> `[B, dim, T]`.
        """
        x = self.embed(zero_padding(features, mask))
        for block in self.pos_net:
            x = block(x, mask)
        return self.norm(x.transpose(1, 2)).transpose(1, 2)

    def local_part(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ConvNeXt stack and final norm: frame t depends on frames t +- `local_halo` only.

        `x [B, dim, T]`, `mask [B, 1, T]` or None -> `[B, T, dim]`.
        """
        for block in self.convnext:
            x = block(x, mask)
        return self.final_layer_norm(x.transpose(1, 2))

    def forward(self, features: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`features [B, C_in, T]`, `mask [B, 1, T]` or None -> `[B, T, dim]`."""
        return self.local_part(self.global_part(features, mask), mask)
