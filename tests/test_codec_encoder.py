"""SEANet encoder vs an independent restatement of the original layout, loaded from original keys.

The reference fixture cannot check the encoder: with its random weights the latent barely
varies over time (std 0.0016 against a code distance margin of 0.12), so every frame maps to
code 698 whatever the encoder does (zero padding or no LSTM give the same codes). This test
rebuilds the original's flat `model.{n}` Sequential with weight-normalized convs straight from the
checkpoint's `weight_g` / `weight_v` keys (no renaming, no folding of ours) and compares latents.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lina.codec import Codec
from lina.codec.released_weights import read_lightning_state

PREFIX = "feature_extractor.encodec.encoder."


class OracleConv(nn.Module):
    """`conv.conv` nesting as in the original keys; pads so the output has ceil(T / stride) frames."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            inner = nn.utils.weight_norm(nn.Conv1d(c_in, c_out, kernel, stride, dilation=dilation))
        self.conv = nn.Module()
        self.conv.conv = inner

    def forward(self, x):
        conv = self.conv.conv
        (kernel,), (stride,), (dilation,) = conv.kernel_size, conv.stride, conv.dilation
        length = x.shape[-1]
        fixed = (kernel - 1) * dilation - (stride - 1)
        span = (math.ceil(length / stride) - 1) * stride + (kernel - 1) * dilation + 1
        right, left = fixed // 2, fixed - fixed // 2
        right += span - (length + fixed)
        short = max(0, max(left, right) - length + 1)  # reflection needs more samples than the pad
        padded = F.pad(F.pad(x, (0, short)), (left, right), mode="reflect")
        return conv(padded[..., : padded.shape[-1] - short])


class OracleResidual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.block = nn.Sequential(nn.ELU(), OracleConv(width, width // 2, 3), nn.ELU(), OracleConv(width // 2, width, 1))
        self.shortcut = OracleConv(width, width, 1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class OracleLSTM(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.lstm = nn.LSTM(width, width, 2)  # time-major, as the original

    def forward(self, x):
        y = x.permute(2, 0, 1)
        return (self.lstm(y)[0] + y).permute(1, 2, 0)


def oracle_encoder() -> nn.Sequential:
    layers, width = [OracleConv(1, 32, 7)], 32
    for ratio in (2, 4, 5, 8):
        layers += [OracleResidual(width), nn.ELU(), OracleConv(width, 2 * width, 2 * ratio, ratio)]
        width *= 2
    layers += [OracleLSTM(width), nn.ELU(), OracleConv(width, 512, 7)]
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def encoders(reference_dir):
    ours = Codec.from_released(reference_dir / "wavtokenizer_tiny.yaml", reference_dir / "wavtokenizer_tiny.ckpt")
    state = read_lightning_state(reference_dir / "wavtokenizer_tiny.ckpt")
    oracle = nn.Module()
    oracle.model = oracle_encoder()
    oracle.load_state_dict({k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)})
    return ours.encoder.eval(), oracle.model.eval()


@pytest.mark.parametrize("samples", [36000, 24321, 640, 100, 7])
def test_encoder_matches_the_original_layout(encoders, samples):
    ours, oracle = encoders
    wav = 0.3 * torch.randn(2, 1, samples, generator=torch.Generator().manual_seed(samples))
    with torch.no_grad():
        expected = oracle(wav)
        latent = ours(wav)
    assert latent.shape == expected.shape == (2, 512, math.ceil(samples / 320))
    torch.testing.assert_close(latent, expected, atol=1e-5, rtol=1e-4)
