"""Codec trainer GAN parts: discriminator shapes and gradients, mel loss, hinge and feature losses."""
from __future__ import annotations

import math

import pytest
import torch

from lab.training.codec.discriminators import (
    DEFAULT_PERIODS,
    DEFAULT_RESOLUTIONS,
    Discriminators,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
)
from lab.training.codec.losses import (
    DEFAULT_MEL_SCALES,
    MelLoss,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_filterbank,
)

SAMPLE_RATE = 24000
SECOND = SAMPLE_RATE


def tiny_discriminators() -> Discriminators:
    """Small enough for CPU training steps in a test."""
    return Discriminators(
        MultiPeriodDiscriminator(periods=(2, 3), channels=4, max_channels=16),
        MultiResolutionDiscriminator(resolutions=((256, 64, 256),), channels=4),
    )


def sine(length: int, batch: int = 2, hz: float = 440.0) -> torch.Tensor:
    t = torch.arange(length) / SAMPLE_RATE
    return 0.5 * torch.sin(2 * math.pi * hz * t).expand(batch, length).clone()


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One intra-op thread: these convolutions are so small that thread hand-offs dominate
    (10x slower with 2 threads on a shared 2-core CI box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def full() -> Discriminators:
    torch.manual_seed(0)
    return Discriminators()


@pytest.mark.parametrize("length", [SECOND, 24001, 12347])
def test_default_discriminator_shapes(full, length):
    with torch.no_grad():
        outputs = full(torch.randn(2, length))
    assert len(outputs) == len(DEFAULT_PERIODS) + len(DEFAULT_RESOLUTIONS)
    for (logits, features), period in zip(outputs, DEFAULT_PERIODS):
        assert logits.shape[:2] == (2, 1) and logits.shape[-1] == period
        assert len(features) == 5
        assert features[0].shape[2] == math.ceil(math.ceil(length / period) / 3)
    for (logits, features), (_, hop, _) in zip(outputs[len(DEFAULT_PERIODS):], DEFAULT_RESOLUTIONS):
        assert logits.shape[:2] == (2, 1) and logits.shape[-1] == 1 + length // hop
        assert len(features) == 5
        assert all(torch.isfinite(f).all() for f in features)


def test_parameter_counts(full):
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # Modest discriminators: a few M for the MPD, a fraction of a M for the MRD.
    assert count(full.mpd) < 20_000_000
    assert count(full.mrd) < 1_000_000


def test_gradients_reach_the_waveform():
    torch.manual_seed(0)
    d = tiny_discriminators()
    wav = torch.randn(2, 4001, requires_grad=True)
    outputs = d(wav)
    generator_adversarial_loss(outputs).backward()
    assert wav.grad is not None and wav.grad.abs().sum() > 0
    # Every sub-discriminator contributes a gradient on its own.
    for i in range(len(outputs)):
        w = wav.detach().clone().requires_grad_(True)
        logits, _ = d(w)[i]
        logits.sum().backward()
        assert w.grad.abs().sum() > 0, f"no gradient through discriminator {i}"


def test_rejects_non_batched_input():
    with pytest.raises(ValueError):
        tiny_discriminators()(torch.randn(1000))


# Non-zero entries of rows of librosa.filters.mel(sr=24000, n_fft=1024, n_mels=100) (librosa 0.11,
# slaney scale and norm), frozen here so that the test needs no librosa (whose import takes seconds).
LIBROSA_ROWS = {
    0: (1, [0.0205665473, 0.0181123614]),
    10: (15, [0.0122709312, 0.0264079776, 0.00584143028]),
    50: (87, [0.00118883234, 0.005629397, 0.0100699617, 0.0128076775, 0.00851904508, 0.00423041359]),
}


def test_filterbank_matches_librosa():
    ours = mel_filterbank(SAMPLE_RATE, 1024, 100)
    assert ours.shape == (100, 513)
    for row, (first, values) in LIBROSA_ROWS.items():
        expected = torch.zeros(513)
        expected[first:first + len(values)] = torch.tensor(values)
        # torch.allclose, not torch.testing.assert_close: the latter's first call costs seconds.
        assert torch.allclose(ours[row], expected, rtol=1e-5, atol=1e-9), (row, ours[row][first:first + len(values)])


@pytest.mark.parametrize("n_fft, hop, n_mels", DEFAULT_MEL_SCALES)
def test_default_scales_have_no_empty_filter(n_fft, hop, n_mels):
    assert (mel_filterbank(SAMPLE_RATE, n_fft, n_mels).sum(dim=1) > 0).all()


def test_mel_loss_zero_positive_and_monotonic():
    torch.manual_seed(0)
    target = sine(SECOND // 2) + 0.01 * torch.randn(2, SECOND // 2)
    noise = torch.randn_like(target)
    for loss in (MelLoss(), MultiScaleMelLoss()):
        assert loss(target, target).item() == 0.0
        values = [loss(target + scale * noise, target).item() for scale in (0.3, 0.1, 0.03, 0.01)]
        assert all(v > 0 for v in values)
        assert values == sorted(values, reverse=True), values


def test_mel_loss_gradient_and_dtype():
    target = sine(8000)
    prediction = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss = MelLoss()(prediction, target)
    loss.backward()
    assert loss.dtype == torch.float32 and prediction.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        MelLoss()(prediction, target[:, :-1])


def constant_outputs(value: float, n: int = 3) -> list:
    return [(torch.full((2, 1, 7, 3), value), [torch.full((2, 4, 7, 3), value)]) for _ in range(n)]


@pytest.mark.parametrize(
    "real, fake, expected",
    [(2.0, -2.0, 0.0), (1.0, -1.0, 0.0), (0.0, 0.0, 2.0), (-1.0, 1.0, 4.0), (0.5, -2.0, 0.5)],
)
def test_discriminator_hinge(real, fake, expected):
    loss = discriminator_loss(constant_outputs(real), constant_outputs(fake))
    assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize("fake, expected", [(2.0, 0.0), (1.0, 0.0), (0.0, 1.0), (-2.0, 3.0)])
def test_generator_hinge(fake, expected):
    assert generator_adversarial_loss(constant_outputs(fake)).item() == pytest.approx(expected)


def test_feature_matching():
    real, fake = constant_outputs(1.0), constant_outputs(-0.5)
    assert feature_matching_loss(real, real).item() == 0.0
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.5)
    # Real maps are detached: only the fake side receives gradients.
    r = torch.ones(2, 3, requires_grad=True)
    f = torch.zeros(2, 3, requires_grad=True)
    feature_matching_loss([(r, [r])], [(f, [f])]).backward()
    assert r.grad is None and f.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        discriminator_loss(real, fake[:1])


def test_discriminator_learns_sine_vs_noise():
    torch.manual_seed(0)
    d = tiny_discriminators()
    optimizer = torch.optim.Adam(d.parameters(), lr=1e-2)
    real = sine(2000, batch=4)

    def loss() -> torch.Tensor:
        fake = 0.3 * torch.randn(4, 2000)
        return discriminator_loss(d(real), d(fake))

    with torch.no_grad():
        before = loss().item()
    for _ in range(20):
        optimizer.zero_grad()
        step = loss()
        step.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss().item()
    assert after < 0.5 * before, (before, after)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast path needs CUDA")
@pytest.mark.gpu
def test_bf16_autocast_cuda():
    d = Discriminators().cuda()
    wav = torch.randn(2, SECOND, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        outputs = d(wav)
        loss = generator_adversarial_loss(outputs) + MultiScaleMelLoss().cuda()(wav, wav.detach() * 0.9)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(wav.grad).all()
