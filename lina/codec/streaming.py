"""Streaming decoding: codes arrive over time, audio leaves in chunks without seams.

The backbone sees the whole sequence (self-attention and group norms are global), so audio
decoded before the last code is known can only approximate the one-pass decode. Each step
re-decodes a window made of `context_frames` already emitted frames, the new frames and
`lookahead_frames` newer ones whose audio is not emitted yet (their own audio still depends on
frames to come). Consecutive steps overlap by `crossfade_frames`, blended with complementary
raised-cosine ramps so no seam is audible.

Frame bookkeeping, in codes (one code = `hop_length` samples):

    window:   [start ............................................................ available)
    parts:    [start .. emitted)[emitted ........................ stable)[held back .)
              left context      blended ramp | emitted now | next ramp   lookahead
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Protocol

import torch

from lina.codec.backbone import VocosBackbone
from lina.codec.istft_head import ISTFTHead


class WindowedCodec(Protocol):
    """What windowed decoding uses of a codec (`lina.codec.codec.Codec` is one; it builds on this module)."""

    backbone: VocosBackbone
    head: ISTFTHead
    hop_length: int
    device: torch.device

    def prepare(self, codes: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]: ...


def local_audio(
    codec: WindowedCodec, hidden: torch.Tensor, first: int, last: int, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Audio `[B, (last - first) * hop]` of frames [first, last) from the global part's output.

    The backbone splits in two. Its global part (embed, pos-net with group norms and attention, first norm)
    keeps only `[B, dim, T]` activations. Its local part (ConvNeXt stack, head) holds the wide activations
    (`intermediate_dim`, the spectrum, the frames of the inverse FFT), and there frame t only depends on frames
    t +- (`local_halo` + head `halo`). So the local part runs on [first, last) with that many extra frames on
    each side, and the cut edges fall outside what is kept: the same audio as the one-pass decode up to float
    rounding, for a fraction of the work.

    `hidden [B, dim, T]` is `backbone.global_part` of the whole sequence, `mask [B, T]` its frame mask or None.
    """
    backbone, head, hop = codec.backbone, codec.head, codec.hop_length
    halo = backbone.local_halo + head.halo
    low, high = max(0, first - halo), min(hidden.shape[2], last + halo)
    window_mask = None if mask is None else mask[:, low:high]
    conv_mask = None if mask is None else window_mask[:, None, :].to(hidden.dtype)
    audio = head(backbone.local_part(hidden[:, :, low:high], conv_mask), window_mask)
    return audio[:, (first - low) * hop : (last - low) * hop]


@dataclass(frozen=True)
class StreamConfig:
    """Window sizes of chunked decoding, in codes (75 codes per second)."""

    # Frames emitted per step (the last step of a stream may emit fewer or more).
    chunk_frames: int = 15
    # Already emitted frames decoded again as left context.
    context_frames: int = 200
    # Newest frames decoded but held back until more arrive.
    lookahead_frames: int = 8
    # Overlap of consecutive steps, blended.
    crossfade_frames: int = 2

    def __post_init__(self) -> None:
        if self.chunk_frames < 1 or self.crossfade_frames < 1:
            raise ValueError("chunk_frames and crossfade_frames must be at least 1")
        if self.context_frames < 0 or self.lookahead_frames < 0:
            raise ValueError("context_frames and lookahead_frames must not be negative")

    @property
    def window_frames(self) -> int:
        """Largest window one step decodes (bounds memory and compute per step)."""
        return self.context_frames + self.chunk_frames + self.crossfade_frames + self.lookahead_frames


# Streaming for the app: 0.2 s steps; audio lags the newest code by 10 frames (0.13 s) plus the
# step. Windows of 225 frames (3 s) are the length of the released model's training crops, so its
# group norms see statistics like those it was trained with.
STREAMING = StreamConfig()


def fade_in(length: int, device: torch.device) -> torch.Tensor:
    """Raised-cosine ramp `[length]` from ~0 to ~1; `ramp + ramp.flip(0) == 1`."""
    steps = (torch.arange(length, device=device, dtype=torch.float64) + 0.5) / length
    return (0.5 - 0.5 * torch.cos(math.pi * steps)).float()


class StreamingDecoder:
    """Feed codes `[B, T_chunk]` with `push`, get audio `[B, S_chunk]` back; `flush` at the end.

    All rows advance together. The concatenated output has exactly `T_total * hop_length` samples
    per row and stays close to a one-pass decode (see tests for the measured SNR).
    """

    def __init__(self, codec: WindowedCodec, config: StreamConfig = STREAMING):
        self.codec = codec
        self.config = config
        self.hop = codec.hop_length
        self.reset()

    def reset(self) -> None:
        """Forget every code received: the next `push` starts a new stream."""
        self.codes: Optional[torch.Tensor] = None  # [B, frames kept], first one is frame `offset`
        self.offset = 0
        self.emitted = 0  # frames whose audio is final (and returned), excluding the held ramp
        self.tail: Optional[torch.Tensor] = None  # [B, crossfade samples] of the last window

    @property
    def available(self) -> int:
        """Frames received so far."""
        return self.offset + (0 if self.codes is None else self.codes.shape[1])

    def push(self, codes: torch.Tensor) -> torch.Tensor:
        """New codes `[B, T_chunk]` -> newly final audio `[B, S]` (S may be 0)."""
        codes = codes.to(self.codec.device, torch.long)
        if codes.dim() != 2:
            raise ValueError(f"codes must be [B, T], got shape {tuple(codes.shape)}")
        self.codes = codes if self.codes is None else torch.cat([self.codes, codes], dim=1)
        pieces = []
        step = self.config.chunk_frames + self.config.crossfade_frames
        while self.available - self.config.lookahead_frames - self.emitted >= step:
            pieces.append(self._step(self.emitted + step, final=False))
        return self._join(pieces, codes.shape[0])

    def flush(self) -> torch.Tensor:
        """Audio `[B, S]` of every frame not returned yet; the decoder is then empty again."""
        if self.codes is None:
            return torch.zeros(0, 0, device=self.codec.device)
        batch = self.codes.shape[0]
        pieces = []
        # Steps stay window-sized however much is left.
        step = self.config.chunk_frames + self.config.crossfade_frames
        while self.available - self.emitted > step + self.config.lookahead_frames:
            pieces.append(self._step(self.emitted + step, final=False))
        if self.available > self.emitted:
            pieces.append(self._step(self.available, final=True))
        self.reset()
        return self._join(pieces, batch)

    def _join(self, pieces: list[torch.Tensor], batch: int) -> torch.Tensor:
        if not pieces:
            return torch.zeros(batch, 0, device=self.codec.device)
        return torch.cat(pieces, dim=1)

    @torch.inference_mode()
    def _step(self, stable: int, final: bool) -> torch.Tensor:
        """Decode the window around frames [emitted, stable) and return what becomes final."""
        cfg, hop = self.config, self.hop
        start = max(0, self.emitted - cfg.context_frames)
        end = self.available if final else min(self.available, stable + cfg.lookahead_frames)
        features, _ = self.codec.prepare(self.codes[:, start - self.offset : end - self.offset])
        # The whole window sets the global statistics; the costly local part only runs near the
        # frames emitted now (same numbers as decoding the window whole, a fraction of the work).
        hidden = self.codec.backbone.global_part(features)
        audio = local_audio(self.codec, hidden, self.emitted - start, stable - start)
        if self.tail is not None:
            ramp = fade_in(self.tail.shape[1], audio.device)
            blended = self.tail * ramp.flip(0) + audio[:, : ramp.shape[0]] * ramp
            audio = torch.cat([blended, audio[:, ramp.shape[0] :]], dim=1)
        if final:
            self.emitted, self.tail = stable, None
            return audio
        keep = cfg.crossfade_frames * hop
        self.tail = audio[:, -keep:]
        self.emitted = stable - cfg.crossfade_frames
        # Drop codes no later window will look at.
        first_needed = max(0, self.emitted - cfg.context_frames)
        self.codes = self.codes[:, first_needed - self.offset :]
        self.offset = first_needed
        return audio[:, :-keep]
