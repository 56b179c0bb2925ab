"""The local part decoded in windows (exact) and streaming (approximate, seamless) decoding vs one pass.

Measured on the tiny reference codec with random codes (random weights make every frame attend
to every other and the group norms global, the hardest case for streaming):
  - `local_audio` window by window: bit-identical or within float rounding of `decode` (SNR = inf at
    windows of 37).
  - streaming (default 225-frame windows): SNR 18.4-19.5 dB vs one pass, the same at the seams as
    inside the chunks (seam/inner error power -0.03 dB), no larger sample jumps at seams.
"""
from __future__ import annotations

import math

import pytest
import torch

from lina.codec import Codec
from lina.codec.streaming import STREAMING, StreamConfig, fade_in, local_audio

HOP = 320
BINS = 1024
# Streaming differs from one pass by the window's view of global statistics (see module doc).
MIN_STREAMING_SNR_DB = 16.0
# Seams: error power near a seam at most this much above the error power inside chunks.
MAX_SEAM_EXCESS_DB = 1.5


@pytest.fixture(scope="module")
def codec(reference_dir) -> Codec:
    return Codec.from_released(reference_dir / "wavtokenizer_tiny.yaml", reference_dir / "wavtokenizer_tiny.ckpt")


def random_codes(batch: int, frames: int, seed: int) -> torch.Tensor:
    return torch.randint(0, BINS, (batch, frames), generator=torch.Generator().manual_seed(seed))


def snr_db(test: torch.Tensor, reference: torch.Tensor) -> float:
    noise = (test.double() - reference.double()).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(reference.double().pow(2).sum().item() / noise)


def stream(codec: Codec, codes: torch.Tensor, step: int, config: StreamConfig = STREAMING) -> torch.Tensor:
    decoder = codec.streaming_decoder(config)
    pieces = [decoder.push(codes[:, first : first + step]) for first in range(0, codes.shape[1], step)]
    return torch.cat(pieces + [decoder.flush()], dim=1)


# --- the local part in windows ------------------------------------------------------------------


def windowed_decode(codec: Codec, codes: torch.Tensor, lengths=None, window: int = 100) -> torch.Tensor:
    """Codes `[B, T]` -> audio `[B, T * hop]`: the global part once, the local part window by window."""
    with torch.inference_mode():
        features, mask = codec.prepare(codes, lengths)
        conv_mask = None if mask is None else mask[:, None, :].to(features.dtype)
        hidden = codec.backbone.global_part(features, conv_mask)
        frames = codes.shape[1]
        return torch.cat([local_audio(codec, hidden, first, min(frames, first + window), mask)
                          for first in range(0, frames, window)], dim=1)


@pytest.mark.parametrize("window", [37, 100, 1500])
def test_local_part_in_windows_equals_one_pass(codec, window):
    codes = random_codes(2, 260, seed=0)
    one_pass = codec.decode(codes)
    windowed = windowed_decode(codec, codes, window=window)
    assert windowed.shape == one_pass.shape == (2, 260 * HOP)
    assert (windowed - one_pass).abs().max() < 1e-5
    assert snr_db(windowed, one_pass) > 100


def test_local_part_in_windows_with_lengths(codec):
    codes = random_codes(2, 150, seed=1)
    lengths = torch.tensor([150, 71])
    torch.testing.assert_close(
        windowed_decode(codec, codes, lengths, window=40), codec.decode(codes, lengths), atol=1e-5, rtol=1e-4
    )


# --- streaming -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def streamed(codec):
    codes = random_codes(1, 420, seed=2)
    return codes, codec.decode(codes), stream(codec, codes, step=7)


def test_streaming_is_close_to_one_pass(streamed):
    codes, one_pass, output = streamed
    assert output.shape == one_pass.shape == (1, 420 * HOP)
    edge = 5 * HOP
    snr = snr_db(output[:, edge:-edge], one_pass[:, edge:-edge])
    max_abs = (output - one_pass)[:, edge:-edge].abs().max().item()
    peak = one_pass.abs().max().item()
    assert snr > MIN_STREAMING_SNR_DB, f"SNR {snr:.1f} dB, max-abs {max_abs:.3f} (peak {peak:.3f})"
    assert max_abs < 0.25 * peak


def test_streaming_has_no_seams(streamed):
    """Error near the crossfades is no larger than inside chunks; no sample jumps at seams."""
    codes, one_pass, output = streamed
    error = (output - one_pass)[0]
    chunk, fade = STREAMING.chunk_frames, STREAMING.crossfade_frames
    frames = codes.shape[1]
    at_seam = torch.zeros(frames * HOP, dtype=torch.bool)
    for seam in range(chunk, frames - STREAMING.window_frames // 4, chunk):
        at_seam[(seam - 1) * HOP : (seam + fade + 1) * HOP] = True
    inside = ~at_seam
    inside[: 5 * HOP] = inside[-5 * HOP :] = False
    excess = 10 * math.log10(error[at_seam].pow(2).mean().item() / error[inside].pow(2).mean().item())
    assert excess < MAX_SEAM_EXCESS_DB, f"seams carry {excess:.2f} dB more error"
    jumps = error.diff().abs()
    assert jumps[at_seam[1:]].max() <= 1.5 * jumps[inside[1:]].max()


def test_streaming_output_does_not_depend_on_push_sizes(codec):
    codes = random_codes(1, 300, seed=3)
    by_one = stream(codec, codes, step=1)
    for step in (13, 64, 300):
        assert torch.equal(stream(codec, codes, step=step), by_one)


def test_streaming_rows_are_independent(codec):
    codes = random_codes(2, 120, seed=4)
    together = stream(codec, codes, step=10)
    for row in range(2):
        alone = stream(codec, codes[row : row + 1], step=10)
        torch.testing.assert_close(together[row : row + 1], alone, atol=2e-5, rtol=1e-4)


def test_short_streams_and_reuse(codec):
    decoder = codec.streaming_decoder()
    assert decoder.flush().numel() == 0
    codes = random_codes(1, 5, seed=5)
    assert decoder.push(codes).shape == (1, 0)  # not enough for a step yet
    short = decoder.flush()
    torch.testing.assert_close(short, codec.decode(codes), atol=1e-5, rtol=1e-4)
    # The decoder starts over after a flush.
    torch.testing.assert_close(stream(codec, codes, step=2), short, atol=1e-5, rtol=1e-4)


def test_streaming_emits_as_codes_arrive(codec):
    config = StreamConfig(chunk_frames=10, context_frames=30, lookahead_frames=4, crossfade_frames=2)
    decoder = codec.streaming_decoder(config)
    codes = random_codes(1, 100, seed=6)
    emitted = 0
    for first in range(0, 100, 5):
        emitted += decoder.push(codes[:, first : first + 5]).shape[1]
        received = first + 5
        # Audio trails the received codes by at most lookahead + crossfade + one chunk.
        lag = received * HOP - emitted
        assert lag <= (config.lookahead_frames + config.crossfade_frames + config.chunk_frames) * HOP
    assert emitted + decoder.flush().shape[1] == 100 * HOP


def test_stream_config_checks_and_fades():
    with pytest.raises(ValueError):
        StreamConfig(chunk_frames=0)
    with pytest.raises(ValueError):
        StreamConfig(lookahead_frames=-1)
    assert STREAMING.window_frames == 225
    ramp = fade_in(640, torch.device("cpu"))
    torch.testing.assert_close(ramp + ramp.flip(0), torch.ones(640))
    assert ramp[0] < 1e-4 and ramp[-1] > 1 - 1e-4 and bool((ramp.diff() > 0).all())
