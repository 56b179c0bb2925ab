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

    def index(self, rows: Tensor) -> "GLAState":
        return GLAState(self.conv_q[rows], self.conv_k[rows], self.conv_v[rows], self.recurrent[rows])

    def cat(self, other: "GLAState") -> "GLAState":
        """This batch's rows, then ``other``'s."""
        return GLAState(*(torch.cat([a, b]) for a, b in ((self.conv_q, other.conv_q), (self.conv_k, other.conv_k),
                                                          (self.conv_v, other.conv_v), (self.recurrent, other.recurrent))))


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

    def index(self, rows: Tensor) -> "LinaState":
        """Keeps the given batch rows (e.g. drops finished rows)."""
        return LinaState([s.index(rows) for s in self.encoder], [s.index(rows) for s in self.decoder],
                         self.pos_net.index(rows))

    def cat(self, other: "LinaState") -> "LinaState":
        """This batch's rows, then ``other``'s (e.g. a batch and its no-voice twin, for voice guidance)."""
        return LinaState([a.cat(b) for a, b in zip(self.encoder, other.encoder, strict=True)],
                         [a.cat(b) for a, b in zip(self.decoder, other.decoder, strict=True)], self.pos_net.cat(other.pos_net))

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
