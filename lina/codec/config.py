"""Frozen configurations of the codec: SEANet encoder, codebook, Vocos backbone and ISTFT head.

The defaults are the released WavTokenizer 24 kHz / 75 Hz single-codebook model. Every value a
released YAML can change is a field; what its code hard-codes (ELU, reflect padding, weight norm)
is implied by the modules and not configurable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from lina.constants import HOP_LENGTH, SAMPLE_RATE

# Width of the SEANet latent, of the codebook entries and of the backbone's input.
LATENT_DIM = 512


@dataclass(frozen=True)
class EncoderConfig:
    """SEANet encoder: waveform `[B, 1, S]` -> latent `[B, dimension, S / prod(ratios)]`."""

    channels: int = 1
    n_filters: int = 32
    # Upsampling order, as the original writes them; the encoder applies them reversed.
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    dimension: int = LATENT_DIM
    n_residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    # Residual branches run at `width // compress` channels.
    compress: int = 2
    lstm_layers: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratios", tuple(int(r) for r in self.ratios))
        if not self.ratios or min(self.ratios) < 1:
            raise ValueError(f"encoder ratios must be positive integers, got {self.ratios}")

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        return math.prod(self.ratios)


@dataclass(frozen=True)
class QuantizerConfig:
    """Single euclidean codebook of `bins` entries of width `dim`."""

    bins: int = 4096
    dim: int = LATENT_DIM


@dataclass(frozen=True)
class BackboneConfig:
    """Vocos backbone with the WavTokenizer attention pos-net and bandwidth-conditioned norms."""

    input_channels: int = LATENT_DIM
    dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    # Rows of the AdaLayerNorm tables (one per training bandwidth); inference uses row 0.
    adanorm_num_embeddings: int = 4


@dataclass(frozen=True)
class HeadConfig:
    """ISTFT head with "same" padding: frames `[B, T, dim]` -> audio `[B, T * hop_length]`."""

    dim: int = 768
    n_fft: int = 1280
    hop_length: int = HOP_LENGTH

    def __post_init__(self) -> None:
        if self.n_fft % 2 or self.n_fft < self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise ValueError(
                f"n_fft={self.n_fft} must be even, at least hop_length={self.hop_length}, and leave "
                "an even overlap so that 'same' padding trims equally on both sides"
            )


@dataclass(frozen=True)
class CodecConfig:
    """Whole codec; the parts must agree on widths and on the hop length."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        problems = []
        if self.encoder.dimension != self.quantizer.dim:
            problems.append(f"encoder.dimension {self.encoder.dimension} != quantizer.dim {self.quantizer.dim}")
        if self.quantizer.dim != self.backbone.input_channels:
            problems.append(
                f"quantizer.dim {self.quantizer.dim} != backbone.input_channels {self.backbone.input_channels}"
            )
        if self.backbone.dim != self.head.dim:
            problems.append(f"backbone.dim {self.backbone.dim} != head.dim {self.head.dim}")
        if self.encoder.hop_length != self.head.hop_length:
            problems.append(
                f"encoder hop {self.encoder.hop_length} (prod of ratios) != head.hop_length {self.head.hop_length}"
            )
        if problems:
            raise ValueError("inconsistent codec config: " + "; ".join(problems))

    @property
    def hop_length(self) -> int:
        """Audio samples per code."""
        return self.head.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CodecConfig":
        """Inverse of `to_dict`; unknown fields raise `TypeError` naming them."""
        parts = {"encoder": EncoderConfig, "quantizer": QuantizerConfig, "backbone": BackboneConfig, "head": HeadConfig}
        kwargs = {name: part(**data[name]) for name, part in parts.items() if name in data}
        rest = {k: v for k, v in data.items() if k not in parts}
        return cls(**kwargs, **rest)
