"""Codec trainer losses: log-mel L1 reconstruction, hinge GAN losses and feature matching.

The GAN losses take the lists of `DiscriminatorOutput` that `Discriminators` returns, one entry
per sub-discriminator, and average over the entries so that adding a period or a resolution
does not rescale the loss.

Every spectral computation runs in float32 with autocast disabled, whatever the caller's
precision: a bf16 log-mel would quantize the loss itself (bf16 has 8 mantissa bits).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lab.training.codec.discriminator_output import DiscriminatorOutput

# Floor of the mel magnitudes before the log: -11.5 nats, about -100 dB below full scale.
LOG_FLOOR = 1e-5

# Slaney's mel scale (Auditory Toolbox; librosa's default, htk=False): linear below 1 kHz,
# logarithmic above, continuous at the break.
SLANEY_HZ_PER_MEL = 200.0 / 3.0
SLANEY_BREAK_HZ = 1000.0
SLANEY_BREAK_MEL = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL  # 15 mels
SLANEY_LOG_STEP = math.log(6.4) / 27.0  # 27 mel steps per factor 6.4 in frequency

# (n_fft, hop, n_mels) of MultiScaleMelLoss. n_mels grows with n_fft so that no triangle
# falls between two FFT bins (an empty filter would only add a constant).
DEFAULT_MEL_SCALES = ((512, 128, 50), (1024, 256, 100), (2048, 512, 128))


def hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney mel of frequencies `hz` (any shape, float64 recommended)."""
    linear = hz / SLANEY_HZ_PER_MEL
    log = SLANEY_BREAK_MEL + torch.log(hz.clamp(min=SLANEY_BREAK_HZ) / SLANEY_BREAK_HZ) / SLANEY_LOG_STEP
    return torch.where(hz >= SLANEY_BREAK_HZ, log, linear)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of `hz_to_mel`."""
    linear = mel * SLANEY_HZ_PER_MEL
    log = SLANEY_BREAK_HZ * torch.exp(SLANEY_LOG_STEP * (mel - SLANEY_BREAK_MEL))
    return torch.where(mel >= SLANEY_BREAK_MEL, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> Tensor:
    """Slaney-scale, slaney-normalized triangular filterbank `[n_mels, n_fft // 2 + 1]` (float32).

    Same construction as `librosa.filters.mel(htk=False, norm="slaney")`: triangles with
    corners equally spaced in mel, each scaled by 2 / (its width in Hz) so that every filter
    has the same area (constant energy per mel band for white noise).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2}, got {f_min}, {f_max}")
    # float64: the corner differences of narrow filters would lose digits in float32.
    fft_hz = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
        hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_edges = mel_to_hz(mel_edges)  # [n_mels + 2]
    widths = hz_edges.diff()  # [n_mels + 1]
    offsets = hz_edges[:, None] - fft_hz[None, :]  # [n_mels + 2, n_freq]
    rising = -offsets[:-2] / widths[:-1, None]  # left corner -> centre
    falling = offsets[2:] / widths[1:, None]  # centre -> right corner
    weights = torch.minimum(rising, falling).clamp(min=0)
    weights = weights * (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.float()


class MelLoss(nn.Module):
    """L1 distance between log-mel spectrograms of a prediction and a target.

    Magnitude (power 1) STFT with a Hann window of `n_fft` samples, centred frames
    (reflect padding), slaney mel filterbank, `log(clamp(mel, 1e-5))`; mean over all elements.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        n_fft: int = 1024,
        hop: int = 256,
        n_mels: int = 100,
        f_min: float = 0.0,
        f_max: float | None = None,
    ):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        # Non-persistent buffers: they follow .to(device) but are rebuilt from the arguments,
        # so they never bloat or pin down a checkpoint.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer(
            "filterbank", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max), persistent=False
        )

    def log_mel(self, wav: Tensor) -> Tensor:
        """`wav [B, S]` -> float32 log-mel `[B, n_mels, 1 + S // hop]`."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(),
                self.n_fft,
                self.hop,
                window=self.window,
                center=True,
                return_complex=True,
            )
            mel = torch.matmul(self.filterbank, spec.abs())  # [n_mels, F] @ [B, F, T]
            return mel.clamp(min=LOG_FLOOR).log()

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        """`prediction, target [B, S]` -> scalar float32 loss."""
        if prediction.shape != target.shape:
            raise ValueError(f"shape mismatch: {tuple(prediction.shape)} vs {tuple(target.shape)}")
        return F.l1_loss(self.log_mel(prediction), self.log_mel(target))


class MultiScaleMelLoss(nn.Module):
    """Mean of `MelLoss` over several (n_fft, hop, n_mels) scales: fine time and fine frequency."""

    def __init__(
        self,
        sample_rate: int = 24000,
        scales: Sequence[tuple[int, int, int]] = DEFAULT_MEL_SCALES,
        f_min: float = 0.0,
        f_max: float | None = None,
    ):
        super().__init__()
        if not scales:
            raise ValueError("MultiScaleMelLoss needs at least one scale")
        self.losses = nn.ModuleList(
            MelLoss(sample_rate, n_fft, hop, n_mels, f_min, f_max) for n_fft, hop, n_mels in scales
        )

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        """`prediction, target [B, S]` -> scalar float32 loss."""
        return torch.stack([loss(prediction, target) for loss in self.losses]).mean()


def _check_pairs(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput]) -> None:
    if len(real) != len(fake) or not real:
        raise ValueError(f"need as many real as fake outputs (> 0), got {len(real)} and {len(fake)}")


def discriminator_loss(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the discriminators: mean over them of `E[relu(1 - D(real))] + E[relu(1 + D(fake))]`.

    Zero once every real logit is >= 1 and every fake logit is <= -1; pass the fake outputs of
    a detached generator waveform so that this loss does not reach the generator.
    """
    _check_pairs(real, fake)
    total = sum(
        F.relu(1 - r_logits.float()).mean() + F.relu(1 + f_logits.float()).mean()
        for (r_logits, _), (f_logits, _) in zip(real, fake)
    )
    return total / len(real)


def generator_adversarial_loss(fake: list[DiscriminatorOutput]) -> Tensor:
    """Hinge loss of the generator: mean over discriminators of `E[relu(1 - D(fake))]`."""
    if not fake:
        raise ValueError("need at least one discriminator output")
    return sum(F.relu(1 - logits.float()).mean() for logits, _ in fake) / len(fake)


def feature_matching_loss(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput]) -> Tensor:
    """Mean over every hidden feature map of every discriminator of `E|D_i(real) - D_i(fake)|`.

    The real maps are detached: this loss trains the generator only, and the discriminator
    must not learn to make its features easy to match.
    """
    _check_pairs(real, fake)
    distances = [
        F.l1_loss(f_map.float(), r_map.detach().float())
        for (_, r_maps), (_, f_maps) in zip(real, fake)
        for r_map, f_map in zip(r_maps, f_maps, strict=True)
    ]
    return torch.stack(distances).mean()
