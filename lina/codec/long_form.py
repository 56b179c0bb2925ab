"""Long code sequences in bounded memory, with the same result as one pass.

The backbone splits in two. Its global part (embed, pos-net with group norms and attention, first
norm) keeps only `[B, dim, T]` activations: the attention scores are computed in query blocks.
Its local part (ConvNeXt stack, head) holds the wide activations (`intermediate_dim`, the
spectrum, the frames of the inverse FFT), and there frame t only depends on frames
t +- (`local_halo` + head `halo`). So the local part runs window by window with that many extra
frames on each side, and the cut edges fall outside what is kept: the output equals the one-pass
decode up to float rounding, while peak memory no longer grows with `T * intermediate_dim`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

if TYPE_CHECKING:
    from lina.codec.codec import Codec

# Frames of output per window of the local part (20 s of audio).
LONG_FORM_WINDOW = 1500


@torch.inference_mode()
def decode_long(
    codec: "Codec", codes: torch.Tensor, lengths: Optional[torch.Tensor] = None, window_frames: int = LONG_FORM_WINDOW
) -> torch.Tensor:
    """Codes `[B, T]` (optional `lengths [B]`) -> audio `[B, T * hop_length]`, like `Codec.decode`."""
    if window_frames < 1:
        raise ValueError(f"window_frames must be positive, got {window_frames}")
    features, mask = codec.prepare(codes, lengths)
    backbone, head, hop = codec.backbone, codec.head, codec.hop_length
    conv_mask = None if mask is None else mask[:, None, :].to(features.dtype)
    hidden = backbone.global_part(features, conv_mask)
    halo = backbone.local_halo + head.halo
    frames = codes.shape[1]
    pieces = []
    for first in range(0, frames, window_frames):
        last = min(frames, first + window_frames)
        low, high = max(0, first - halo), min(frames, last + halo)
        window_mask = None if mask is None else mask[:, low:high]
        window_conv_mask = None if conv_mask is None else conv_mask[:, :, low:high]
        local = backbone.local_part(hidden[:, :, low:high], window_conv_mask)
        audio = head(local, window_mask)
        pieces.append(audio[:, (first - low) * hop : (last - low) * hop])
    return torch.cat(pieces, dim=1)
