"""Position-aware "blind" cross-attention between audio steps and text.

Attention #1 (audio query, text keys) reads a mix of convolutional embeddings of the text *positions*;
a GLA block (the position net) runs over time on that mix, so it can only move forward smoothly;
attention #2 uses its output as query against the position embeddings and reads the text values.
The audio stack thus sees text content only through a position it chose: the alignment is monotonic
by construction and survives long texts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lina.config import LinaConfig
from lina.layers import GLABlock
from lina.ops.fused_step import score_bias
from lina.state import GLAState


@dataclass
class TextContext:
    """What the audio side needs from the encoded text, computed once per utterance batch.

    keys, values: ``[B, Tx, d]``; positions: ``[B or 1, Tx, d]``; valid: ``[B, Tx]`` bool;
    score_bias: ``valid`` as an additive attention mask ``[B, 1, Tx]`` (the fast step's; made there
    when absent).
    """

    keys: Tensor
    values: Tensor
    positions: Tensor
    valid: Tensor
    score_bias: Tensor | None = None


class ConvPositions(nn.Module):
    """Learned position table smoothed by a depthwise convolution ("same" padding, zeros outside)."""

    def __init__(self, cfg: LinaConfig):
        super().__init__()
        self.table = nn.Embedding(cfg.max_text_len, cfg.d_model)
        self.conv = nn.Conv1d(cfg.d_model, cfg.d_model, cfg.pos_kernel, groups=cfg.d_model,
                              padding=cfg.pos_kernel // 2)

    def forward(self, length: int, valid: Tensor | None = None) -> Tensor:
        """Embeddings of positions ``0..length-1``: ``[1, length, d]``, or ``[B, length, d]`` with ``valid``.

        With ``valid: [B, length]`` the table rows past each text's end are zeroed before the
        convolution, so every row gets exactly what it would get alone (how the model runs at batch 1).
        Without it, the whole padded length is embedded, as the released model was trained.
        """
        if length > self.table.num_embeddings:
            raise ValueError(f"text of {length} tokens exceeds the position table ({self.table.num_embeddings})")
        idx = torch.arange(length, device=self.table.weight.device)
        table = self.table(idx).T.unsqueeze(0)  # [1, d, length]
        if valid is not None:
            table = table * valid[:, None, :].to(table.dtype)
        return self.conv(table).transpose(1, 2)


def _attend(query: Tensor, keys: Tensor, values: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Single-head attention. ``query [B, T, d]``, ``keys/values [B|1, Tx, d]``, ``valid [B, Tx]``.

    Masked scores get the most negative finite value, as the released model (a fully masked row stays
    finite). Returns ``(out [B, T, d], weights [B, T, Tx])``.
    """
    scores = query @ keys.transpose(-1, -2) / math.sqrt(query.shape[-1])
    scores = scores.masked_fill(~valid[:, None, :], -torch.finfo(scores.dtype).max)
    weights = scores.softmax(dim=-1)
    return weights @ values, weights


def always_valid_first(valid: Tensor) -> Tensor:
    """The released model always lets every step see text position 0 (the BOS token)."""
    valid = valid.clone()
    valid[:, 0] = True
    return valid


class BlindCrossAttention(nn.Module):
    def __init__(self, cfg: LinaConfig):
        super().__init__()
        d = cfg.d_model
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.ln_q = nn.LayerNorm(d)
        self.ln_k = nn.LayerNorm(d)
        self.ln_v = nn.LayerNorm(d)
        self.positions = ConvPositions(cfg)
        self.pos_net = GLABlock(cfg)

    def context(self, text: Tensor, valid: Tensor, training_positions: bool = False) -> TextContext:
        """``text: [B, Tx, d]`` encoded text, ``valid: [B, Tx]`` -> the reusable :class:`TextContext`.

        ``training_positions`` embeds the padded length for every row (the released training numbers);
        by default each row's positions are those it has alone, so batching never changes a row.
        """
        positions = self.positions(text.shape[1], None if training_positions else valid)
        valid = always_valid_first(valid)
        keys = self.ln_k(self.k(text))
        return TextContext(keys, self.ln_v(self.v(text)), positions, valid, score_bias(valid, keys.dtype))

    def forward(self, x: Tensor, ctx: TextContext, state: GLAState) -> tuple[Tensor, GLAState, Tensor]:
        """``x: [B, T, d]`` -> ``(out [B, T, d], pos_net state, alignment [B, 2, T, Tx])``."""
        mix, att1 = _attend(self.ln_q(self.q(x)), ctx.keys, ctx.positions, ctx.valid)
        query, state = self.pos_net(mix, state)
        out, att2 = _attend(query, ctx.positions, ctx.values, ctx.valid)
        return out, state, torch.stack((att1, att2), dim=1)

    def step(self, x: Tensor, ctx: TextContext, state: GLAState,
             inplace: bool = False) -> tuple[Tensor, GLAState, Tensor]:
        """``x: [B, d]`` -> ``(out [B, d], pos_net state, alignment [B, 2, Tx])``."""
        mix, att1 = _attend(self.ln_q(self.q(x))[:, None], ctx.keys, ctx.positions, ctx.valid)
        query, state = self.pos_net.step(mix[:, 0], state, inplace=inplace)
        out, att2 = _attend(query[:, None], ctx.positions, ctx.values, ctx.valid)
        return out[:, 0], state, torch.stack((att1[:, 0], att2[:, 0]), dim=1)
