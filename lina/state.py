"""Recurrent state of the model: passed in and returned, never stored on modules."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class GLAState:
    """State of one GLA layer for a batch.

    conv: last ``conv_size - 1`` inputs of the q, k, v short convolutions, ``[B, D, W-1]`` each.
    recurrent: the matrix memory ``[B, H, Dk, Dv]`` (float32).
    """

    conv_q: Tensor
    conv_k: Tensor
    conv_v: Tensor
    recurrent: Tensor


@dataclass
class LinaState:
    """All recurrent state of a batch: audio encoder, decoder and the cross-attention's position net."""

    encoder: list[GLAState]
    decoder: list[GLAState]
    pos_net: GLAState

    @property
    def tunable(self) -> list[GLAState]:
        """Layers whose initial state a voice sets (encoder then decoder, the released order)."""
        return self.encoder + self.decoder

    def with_initial(self, initial: list[Tensor]) -> "LinaState":
        """Same conv buffers, recurrent matrices of the tunable layers replaced by ``initial[i] [B, H, Dk, Dv]``."""
        layers = [replace(s, recurrent=s0.float()) for s, s0 in zip(self.tunable, initial, strict=True)]
        n = len(self.encoder)
        return LinaState(layers[:n], layers[n:], self.pos_net)


def zero_gla_state(batch: int, key_dim: int, value_dim: int, heads: int, conv_size: int,
                   device: torch.device | str, dtype: torch.dtype) -> GLAState:
    w = conv_size - 1
    return GLAState(
        conv_q=torch.zeros(batch, key_dim, w, device=device, dtype=dtype),
        conv_k=torch.zeros(batch, key_dim, w, device=device, dtype=dtype),
        conv_v=torch.zeros(batch, value_dim, w, device=device, dtype=dtype),
        recurrent=torch.zeros(batch, heads, key_dim // heads, value_dim // heads, device=device,
                              dtype=torch.float32),
    )
