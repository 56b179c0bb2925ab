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


def local_audio(
    codec: "Codec", hidden: torch.Tensor, first: int, last: int, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Audio `[B, (last - first) * hop]` of frames [first, last) from the global part's output.

    `hidden [B, dim, T]` is `backbone.global_part` of the whole sequence, `mask [B, T]` its frame
    mask or None. Only frames within the halo of [first, last) go through the local part.
    """
    backbone, head, hop = codec.backbone, codec.head, codec.hop_length
    halo = backbone.local_halo + head.halo
    low, high = max(0, first - halo), min(hidden.shape[2], last + halo)
    window_mask = None if mask is None else mask[:, low:high]
    conv_mask = None if mask is None else window_mask[:, None, :].to(hidden.dtype)
    audio = head(backbone.local_part(hidden[:, :, low:high], conv_mask), window_mask)
    return audio[:, (first - low) * hop : (last - low) * hop]


@torch.inference_mode()
def decode_long(
    codec: "Codec", codes: torch.Tensor, lengths: Optional[torch.Tensor] = None, window_frames: int = LONG_FORM_WINDOW
) -> torch.Tensor:
    """Codes `[B, T]` (optional `lengths [B]`) -> audio `[B, T * hop_length]`, like `Codec.decode`."""
    if window_frames < 1:
        raise ValueError(f"window_frames must be positive, got {window_frames}")
    features, mask = codec.prepare(codes, lengths)
    conv_mask = None if mask is None else mask[:, None, :].to(features.dtype)
    hidden = codec.backbone.global_part(features, conv_mask)
    frames = codes.shape[1]
    pieces = [
        local_audio(codec, hidden, first, min(frames, first + window_frames), mask)
        for first in range(0, frames, window_frames)
    ]
    return torch.cat(pieces, dim=1)
