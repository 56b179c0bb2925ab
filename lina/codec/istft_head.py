"""ISTFT head: frame features -> complex spectrum (log-magnitude and phase) -> waveform.

The inverse STFT uses "same" padding: frame t is centred on sample t * hop + hop / 2, so T frames
give exactly T * hop samples (torch.istft only offers "center" padding, which gives one hop less
and different edges). Overlap-add is normalized by the summed squared window, frame by frame of
each row, so padded rows of a batch end exactly where they would alone.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lina.codec.config import HeadConfig

# exp(log-magnitude) is clipped here: an untrained or unlucky frame must not blow up the output.
MAX_MAGNITUDE = 1e2
# Smallest window envelope accepted; below it a sample would be divided by (almost) nothing.
MIN_ENVELOPE = 1e-11


def overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Sum frames `[B, N, T]` placed every `hop_length` samples -> `[B, (T - 1) * hop + N]`."""
    batch, size, count = frames.shape
    # fold is overlap-add: each column (one frame) lands at offset t * hop of a 1 x length image.
    length = (count - 1) * hop_length + size
    summed = F.fold(frames, output_size=(1, length), kernel_size=(1, size), stride=(1, hop_length))
    return summed.reshape(batch, length)


def istft_same(
    spectrum: torch.Tensor, window: torch.Tensor, hop_length: int, frame_mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Inverse STFT with "same" padding.

    spectrum `[B, n_fft / 2 + 1, T]` complex, window `[n_fft]`, frame_mask `[B, T]` or None ->
    audio `[B, T * hop_length]` (zero past each row's last valid frame).
    """
    n_fft = window.shape[0]
    trim = (n_fft - hop_length) // 2
    frames = torch.fft.irfft(spectrum, n=n_fft, dim=1) * window[None, :, None]
    # One envelope serves the whole batch unless rows end at different frames.
    squared = window.square()[None, :, None].expand(1, n_fft, spectrum.shape[2])
    if frame_mask is not None:
        weights = frame_mask[:, None, :].to(frames.dtype)
        frames = frames * weights
        squared = squared * weights
    audio = overlap_add(frames, hop_length)[:, trim:-trim]
    envelope = overlap_add(squared, hop_length)[:, trim:-trim]
    # `check_window` guarantees a positive envelope wherever a frame exists, so no data-dependent
    # check (and no device sync) is needed; only past a row's last frame can it vanish.
    covered = envelope > MIN_ENVELOPE
    audio = torch.where(covered, audio / torch.where(covered, envelope, torch.ones_like(envelope)), 0.0)
    if frame_mask is not None:
        # The last valid frame's window reaches past the row's end: cut there, as a lone row is cut.
        audio = audio * frame_mask.to(audio.dtype).repeat_interleave(hop_length, dim=1)
    return audio


def check_window(window: torch.Tensor, hop_length: int) -> None:
    """Raise `ValueError` unless overlap-add of `window` can be normalized for every length.

    Every output sample lies under the window of its own frame at offset `trim + (s mod hop)`, and
    a single frame gets nothing else, so the envelope is positive for all lengths exactly when the
    squared window is positive over `[trim, trim + hop)`.
    """
    trim = (window.shape[0] - hop_length) // 2
    smallest = float(window[trim : trim + hop_length].double().square().min())
    if not smallest > MIN_ENVELOPE:
        raise ValueError(f"ISTFT window cannot be inverted at hop {hop_length}: squared minimum {smallest:.3g}")


class ISTFTHead(nn.Module):
    """Frame features `[B, T, dim]` -> waveform `[B, T * hop_length]`."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.hop_length = config.hop_length
        self.out = nn.Linear(config.dim, config.n_fft + 2)
        # A buffer, not a constant: checkpoints store the window and the fixtures use their own.
        self.register_buffer("window", torch.hann_window(config.n_fft))

    @property
    def halo(self) -> int:
        """Frames on each side whose spectra reach the samples of a frame (window overlap)."""
        n_fft = self.window.shape[0]
        return ((n_fft + self.hop_length) // 2 - 1) // self.hop_length

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, T, dim]` -> complex spectrum `[B, n_fft / 2 + 1, T]`."""
        log_magnitude, phase = self.out(x).transpose(1, 2).float().chunk(2, dim=1)
        magnitude = log_magnitude.exp().clamp(max=MAX_MAGNITUDE)
        # cos/sin directly: the network's phase is an angle, wrapping it is pointless.
        return torch.complex(magnitude * phase.cos(), magnitude * phase.sin())

    def forward(self, x: torch.Tensor, frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`x [B, T, dim]`, `frame_mask [B, T]` or None -> audio `[B, T * hop_length]` (float32)."""
        return istft_same(self.spectrum(x), self.window.float(), self.hop_length, frame_mask)

    def check_window(self) -> None:
        """Raise `ValueError` if the (loaded) window cannot be inverted; see `check_window`."""
        check_window(self.window, self.hop_length)
