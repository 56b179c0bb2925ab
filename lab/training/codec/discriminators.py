"""GAN discriminators of the codec trainer: HiFi-GAN multi-period and UnivNet/Vocos multi-resolution
(and, from `lab.training.codec.stft_discriminator`, DAC's multi-band complex STFT).

Every discriminator maps a waveform `[B, S]` to a `DiscriminatorOutput` (in `discriminator_output`):
its logits (any shape, compared element-wise by the hinge losses) and the list of its hidden
feature maps (for the feature-matching loss). `Discriminators` runs the chosen families and
concatenates their outputs, so the losses in `lab.training.codec.losses` see one flat list.

Mixed precision: the convolutions may run under `torch.autocast(bf16)`; the STFT of the
multi-resolution discriminator is computed in float32 with autocast disabled (bf16 FFTs are
not supported on CUDA, and the magnitudes of a loud waveform need the float32 range anyway).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from lab.training.codec.discriminator_output import LEAKY_SLOPE, DiscriminatorOutput
from lab.training.codec.stft_discriminator import MultiBandSTFTDiscriminator

# --- Multi-period discriminator (HiFi-GAN) ---
DEFAULT_PERIODS = (2, 3, 5, 7, 11)  # primes, so that the periods share few sub-samplings
MPD_KERNEL = 5  # along time (the S / p axis); the period axis is never mixed (kernel 1)
MPD_STRIDE = 3
MPD_STRIDED_LAYERS = 4  # stride-3 convolutions: 3^4 = 81x downsampling of the S / p axis
MPD_CHANNEL_GROWTH = 4  # channels multiply by this per strided layer, up to max_channels
MPD_POST_KERNEL = 3

# --- Multi-resolution discriminator (UnivNet / Vocos) ---
# (n_fft, hop, win_length) of each resolution.
DEFAULT_RESOLUTIONS = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))
MRD_KERNEL = (9, 3)  # wide along frequency (harmonic structure), narrow along time
MRD_STRIDE = (2, 1)  # halve the frequency axis, keep every frame
MRD_STRIDED_LAYERS = 3
MRD_LAST_KERNEL = (3, 3)


def _same_padding(kernel: int) -> int:
    """Padding that keeps the length of a stride-1 convolution with an odd `kernel`."""
    return (kernel - 1) // 2


def _run_stack(
    x: Tensor, convs: nn.ModuleList, post: nn.Module
) -> DiscriminatorOutput:
    """Apply `convs` (each followed by a leaky ReLU) then `post`; returns (logits, activations)."""
    features: list[Tensor] = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    return post(x), features


class PeriodDiscriminator(nn.Module):
    """One period `p` of the multi-period discriminator.

    The waveform `[B, S]` is folded into `[B, 1, ceil(S/p), p]` so that each column holds the
    samples `p` apart; 2-D convolutions with kernel `(k, 1)` then look at periodic structure
    that a 1-D discriminator smears over.
    """

    def __init__(self, period: int, channels: int = 32, max_channels: int = 512):
        super().__init__()
        self.period = period
        pad = (_same_padding(MPD_KERNEL), 0)
        convs = []
        c_in, c_out = 1, channels
        for _ in range(MPD_STRIDED_LAYERS):
            convs.append(weight_norm(nn.Conv2d(c_in, c_out, (MPD_KERNEL, 1), (MPD_STRIDE, 1), pad)))
            c_in, c_out = c_out, min(c_out * MPD_CHANNEL_GROWTH, max_channels)
        # A last stride-1 layer at full width before the logit projection (as in HiFi-GAN).
        convs.append(weight_norm(nn.Conv2d(c_in, c_in, (MPD_KERNEL, 1), 1, pad)))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(
            nn.Conv2d(c_in, 1, (MPD_POST_KERNEL, 1), 1, (_same_padding(MPD_POST_KERNEL), 0))
        )

    def forward(self, wav: Tensor) -> DiscriminatorOutput:
        """`wav [B, S]` -> (logits `[B, 1, T', p]`, feature maps `[B, C_i, T_i, p]`)."""
        batch, length = wav.shape
        remainder = length % self.period
        x = wav.unsqueeze(1)  # [B, 1, S]: F.pad's reflect mode wants a channel axis
        if remainder:
            # Reflect rather than zero-pad: a zero tail would be an easy real/fake cue.
            x = F.pad(x, (0, self.period - remainder), mode="reflect")
        x = x.view(batch, 1, -1, self.period)  # [B, 1, ceil(S/p), p]
        return _run_stack(x, self.convs, self.post)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN multi-period discriminator: one `PeriodDiscriminator` per period."""

    def __init__(
        self,
        periods: Sequence[int] = DEFAULT_PERIODS,
        channels: int = 32,
        max_channels: int = 512,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, channels, max_channels) for p in periods
        )

    def forward(self, wav: Tensor) -> list[DiscriminatorOutput]:
        """`wav [B, S]` -> one `DiscriminatorOutput` per period."""
        return [d(wav) for d in self.discriminators]


class ResolutionDiscriminator(nn.Module):
    """One STFT resolution of the multi-resolution discriminator.

    Input of the convolutions: the linear STFT magnitude as an image `[B, 1, n_fft/2 + 1, frames]`
    (UnivNet's choice), strided along frequency so that the receptive field spans many bins.
    """

    def __init__(self, n_fft: int, hop: int, win_length: int, channels: int = 32):
        super().__init__()
        self.n_fft, self.hop, self.win_length = n_fft, hop, win_length
        # Not persistent: it is derived from win_length, and keeping it out of the state dict
        # lets checkpoints survive a change of window construction.
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        pad = tuple(_same_padding(k) for k in MRD_KERNEL)
        last_pad = tuple(_same_padding(k) for k in MRD_LAST_KERNEL)
        convs = [weight_norm(nn.Conv2d(1, channels, MRD_KERNEL, 1, pad))]
        for _ in range(MRD_STRIDED_LAYERS):
            convs.append(weight_norm(nn.Conv2d(channels, channels, MRD_KERNEL, MRD_STRIDE, pad)))
        convs.append(weight_norm(nn.Conv2d(channels, channels, MRD_LAST_KERNEL, 1, last_pad)))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(channels, 1, MRD_LAST_KERNEL, 1, last_pad))

    def magnitude(self, wav: Tensor) -> Tensor:
        """`wav [B, S]` -> float32 STFT magnitude `[B, 1, n_fft/2 + 1, 1 + S // hop]`."""
        # STFT outside autocast and in float32: cuFFT has no bf16 path for these sizes, and
        # bf16 magnitudes would lose the quiet bins the discriminator should also judge.
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav.float(),
                self.n_fft,
                self.hop,
                self.win_length,
                window=self.window.float(),
                center=True,
                return_complex=True,
            )
        return spec.abs().unsqueeze(1)

    def forward(self, wav: Tensor) -> DiscriminatorOutput:
        """`wav [B, S]` -> (logits `[B, 1, F', frames]`, feature maps `[B, C, F_i, frames]`)."""
        return _run_stack(self.magnitude(wav), self.convs, self.post)


class MultiResolutionDiscriminator(nn.Module):
    """UnivNet / Vocos multi-resolution (STFT magnitude) discriminator."""

    def __init__(
        self,
        resolutions: Sequence[tuple[int, int, int]] = DEFAULT_RESOLUTIONS,
        channels: int = 32,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ResolutionDiscriminator(n_fft, hop, win, channels) for n_fft, hop, win in resolutions
        )

    def forward(self, wav: Tensor) -> list[DiscriminatorOutput]:
        """`wav [B, S]` -> one `DiscriminatorOutput` per resolution."""
        return [d(wav) for d in self.discriminators]


# Discriminator families a `Discriminators` can hold, in the order their outputs are listed.
FAMILIES = ("mpd", "mrd", "mbstft")
DEFAULT_FAMILIES = ("mpd", "mrd")


def _default_family(name: str) -> nn.Module:
    if name == "mpd":
        return MultiPeriodDiscriminator()
    if name == "mrd":
        return MultiResolutionDiscriminator()
    if name == "mbstft":
        return MultiBandSTFTDiscriminator()
    raise ValueError(f"unknown discriminator family {name!r}; known: {', '.join(FAMILIES)}")


class Discriminators(nn.Module):
    """Several discriminator families; forward returns their outputs as one list (in `FAMILIES` order).

    `names` picks the families built with default sizes; a module passed by keyword is used as given
    (and joins `names`). Each family is an attribute named after it, so checkpoints of a set keep
    their keys (`mpd.*`, `mrd.*`, `mbstft.*`). An empty set is allowed (a mel-only run): forward gives [].
    """

    def __init__(
        self,
        mpd: MultiPeriodDiscriminator | None = None,
        mrd: MultiResolutionDiscriminator | None = None,
        mbstft: nn.Module | None = None,
        names: Sequence[str] = DEFAULT_FAMILIES,
    ):
        super().__init__()
        given = {"mpd": mpd, "mrd": mrd, "mbstft": mbstft}
        unknown = set(names) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown discriminator families {sorted(unknown)}; known: {', '.join(FAMILIES)}")
        wanted = set(names) | {n for n, m in given.items() if m is not None}
        self.names = tuple(n for n in FAMILIES if n in wanted)
        for name in self.names:
            setattr(self, name, given[name] if given[name] is not None else _default_family(name))

    def forward(self, wav: Tensor) -> list[DiscriminatorOutput]:
        """`wav [B, S]` -> the outputs of every family's sub-discriminators, one list."""
        if wav.dim() != 2:
            raise ValueError(f"expected a waveform batch [B, S], got shape {tuple(wav.shape)}")
        return [out for name in self.names for out in getattr(self, name)(wav)]
