"""SEANet encoder of WavTokenizer (inference only; weight norm already folded into plain convs).

Parameter names (`stem`, `stages.{i}.residual.*`, `stages.{i}.down`, `lstm`, `proj`) are ours;
`lina.codec.released_weights` maps the original's `model.{n}.conv.conv.*` keys onto them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lina.codec.config import EncoderConfig


def _extra_right_padding(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Zeros to append so the last strided window is complete (no input sample is dropped)."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    full_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return full_length - length


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding of `[B, C, T]` that also works when T is not longer than the padding.

    Reflection needs more samples than the pad width; on shorter inputs the original first appends
    zeros, reflects, then cuts those zeros off again. We do the same so short clips match.
    """
    length = x.shape[-1]
    widest = max(left, right)
    filler = widest - length + 1 if length <= widest else 0
    if filler:
        x = F.pad(x, (0, filler))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - filler]


class PaddedConv1d(nn.Conv1d):
    """Non-causal conv that pads by reflection so the output has `ceil(T / stride)` frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C_in, T]` -> `[B, C_out, ceil(T / stride)]`."""
        kernel, stride, dilation = self.kernel_size[0], self.stride[0], self.dilation[0]
        padding_total = (kernel - 1) * dilation - (stride - 1)
        extra = _extra_right_padding(x.shape[-1], kernel, stride, padding_total)
        # Odd totals put the extra sample on the left, as the original does.
        right = padding_total // 2
        left = padding_total - right
        return super().forward(_reflect_pad(x, left, right + extra))


class ResidualUnit(nn.Module):
    """ELU -> conv(k, dilation) -> ELU -> conv(1) on a narrowed branch, plus a 1x1 conv shortcut."""

    def __init__(self, width: int, kernel_size: int, dilation: int, compress: int):
        super().__init__()
        hidden = width // compress
        self.conv1 = PaddedConv1d(width, hidden, kernel_size, dilation=dilation)
        self.conv2 = PaddedConv1d(hidden, width, 1)
        self.shortcut = PaddedConv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` -> `[B, C, T]`."""
        branch = self.conv2(F.elu(self.conv1(F.elu(x))))
        return self.shortcut(x) + branch


class EncoderStage(nn.Module):
    """Residual units, then ELU and a strided conv that doubles the width and divides time by `ratio`."""

    def __init__(self, width: int, ratio: int, config: EncoderConfig):
        super().__init__()
        self.residual = nn.ModuleList(
            ResidualUnit(width, config.residual_kernel_size, config.dilation_base**j, config.compress)
            for j in range(config.n_residual_layers)
        )
        # Kernel twice the stride: each output sees a window overlapping its neighbours by half.
        self.down = PaddedConv1d(width, 2 * width, kernel_size=2 * ratio, stride=ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` -> `[B, 2C, ceil(T / ratio)]`."""
        for unit in self.residual:
            x = unit(x)
        return self.down(F.elu(x))


class SEANetEncoder(nn.Module):
    """Waveform `[B, channels, S]` -> latent `[B, dimension, ceil(S / hop)]`."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        width = config.n_filters
        self.stem = PaddedConv1d(config.channels, width, config.kernel_size)
        stages = []
        for ratio in reversed(config.ratios):
            stages.append(EncoderStage(width, ratio, config))
            width *= 2
        self.stages = nn.ModuleList(stages)
        self.lstm = nn.LSTM(width, width, num_layers=config.lstm_layers, batch_first=True)
        self.proj = PaddedConv1d(width, config.dimension, config.last_kernel_size)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """`[B, channels, S]` -> `[B, dimension, T]`."""
        x = self.stem(audio)
        for stage in self.stages:
            x = stage(x)
        sequence = x.transpose(1, 2)
        recurrent, _ = self.lstm(sequence)
        # The LSTM is a residual layer: it refines, the skip keeps the conv features.
        x = (recurrent + sequence).transpose(1, 2)
        return self.proj(F.elu(x))
