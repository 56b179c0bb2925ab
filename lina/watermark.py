"""An inaudible watermark on generated speech, and its detector.

The network is Resemble AI's Perth "implicit" watermarker (package `resemble-perth`, MIT): an encoder
that adds a learned residual to the log-magnitude spectrogram below 2 kHz, and a three-speed decoder
that says, from the spectrogram alone, whether that residual is there (one bit: no payload). Its
weights ship inside the wheel, so it works offline; they are read here as plain tensors
(`torch.load(weights_only=True)`: no pickle code runs). The network is rebuilt below rather than
imported because the package's own code needs torchaudio (no build for our torch) and
`pkg_resources`; the layer names are the checkpoint's, so the weights load as they are.

    from lina.watermark import apply_watermark, detect_watermark
    marked = apply_watermark(audio, 24000)        # float32 [S] -> float32 [S], same length
    detect_watermark(marked, 24000).present       # True

Cost on this 2-core CPU: see docs/reliability.md (section "Watermark").
"""
from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
from torch import nn
from torch.nn import functional as F

# The checkpoint's settings (its hparams.yaml): 32 kHz, 2048-point Hann STFT, hop 320, mark below 2 kHz.
PERTH_RATE = 32_000
N_FFT = 2048
HOP = 320
HIDDEN = 256
MAX_MARK_HZ = 2000
SUBBAND = round((N_FFT // 2 + 1) * MAX_MARK_HZ / (PERTH_RATE / 2))   # 128 frequency bins carry the mark
MAGNITUDE_FLOOR_DB = -180.0          # 20 log10(1e-9), the checkpoint's stft_magnitude_min
HEADROOM_DB = 15.0
MAX_LOG_MAGNITUDE = 10.0             # as Perth: magnitudes are capped at 10**10 when rebuilt
FRAME_MASK_SHARE = 0.05              # frames quieter than 5 % of the loudest frame's sum carry no mark
KERNEL = 7
DEPTH = 5
DECODER_SPEEDS = (1.25, 1.0, 0.75)   # slow, normal, fast branches: time-stretched views of the spectrogram
THRESHOLD = 0.5                      # decoder output above this: marked
WEIGHTS = Path("perth_net", "pretrained", "implicit", "perth_net_250000.pth.tar")
RESAMPLE_QUALITY = "HQ"
SILENT_RUN_SECONDS = 0.010           # exact zeros this long or longer are digital silence, kept as it is


class WatermarkError(RuntimeError):
    """The watermark cannot be applied or read (the package with its weights is missing)."""


@dataclass(frozen=True)
class Detection:
    """What `detect_watermark` finds: the decoder's confidence in [0, 1] and the verdict."""

    score: float
    present: bool


class _Conv(nn.Module):
    """Conv1d ("same" padding) + optional LeakyReLU; named `conv` as in the checkpoint."""

    def __init__(self, inputs: int, outputs: int, kernel: int, act: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(inputs, outputs, kernel, padding=(kernel - 1) // 2)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x) if self.act else x


def _stack(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(_Conv(inputs, HIDDEN, 1), *[_Conv(HIDDEN, HIDDEN, KERNEL) for _ in range(DEPTH)],
                         _Conv(HIDDEN, outputs, 1, act=False))


def _frame_mask(spec: torch.Tensor) -> torch.Tensor:
    """`[B, F, T]` normalized log-magnitudes -> `[B, T]` 1 where a frame is loud enough to carry the mark."""
    energy = spec.sum(dim=1)
    return (energy > energy.max(dim=1).values[:, None] * FRAME_MASK_SHARE).float()


class PerthNet(nn.Module):
    """`encoder`: `[B, F, T]` -> residual for the low `SUBBAND` bins; `decoder_*`: -> `[B]` confidence."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = _stack(SUBBAND, SUBBAND)
        self.decoder = nn.Module()
        self.decoder.slow_layers = _stack(SUBBAND, 2)
        self.decoder.normal_layers = _stack(SUBBAND, 2)
        self.decoder.fast_layers = _stack(SUBBAND, 2)

    def residual(self, spec: torch.Tensor) -> torch.Tensor:
        """What the encoder adds to the low `SUBBAND` bins of `[B, F, T]`: `[B, SUBBAND, T]`."""
        return self.encoder.layers(spec[:, :SUBBAND]) * _frame_mask(spec)[:, None]

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """The marked spectrogram `[B, F, T]` (Perth's own form; `apply_watermark` needs only `residual`)."""
        out = spec.clone()
        out[:, :SUBBAND] += self.residual(spec)
        return out

    def detect(self, spec: torch.Tensor) -> torch.Tensor:
        mask = _frame_mask(spec)[:, None]
        low = spec[:, :SUBBAND]
        frames = low.shape[2]
        marks, attention = [], []
        branches = (self.decoder.slow_layers, self.decoder.normal_layers, self.decoder.fast_layers)
        for speed, layers in zip(DECODER_SPEEDS, branches):
            view = low if speed == 1.0 else F.interpolate(low, size=int(frames * speed), mode="linear",
                                                         align_corners=True)
            out = layers(view)                                                # [B, 2, T']
            m = F.interpolate(mask, size=out.shape[2], mode="nearest")        # [B, 1, T']
            pooled = (out * m).sum(dim=2) / m.sum(dim=2).clamp_min(1e-9)     # [B, 2]
            attention.append(pooled[:, 0])
            marks.append(pooled[:, 1])
        weights = torch.softmax(torch.stack(attention, dim=1), dim=1)
        return (torch.stack(marks, dim=1) * weights).sum(dim=1)


def _weights_path() -> Path:
    spec = importlib.util.find_spec("perth")
    if spec is None or not spec.submodule_search_locations:
        raise WatermarkError("the watermark needs the resemble-perth package (pip install resemble-perth); "
                             "LinaTTS(..., watermark=False) turns the watermark off, for research only")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS
    if not path.is_file():
        raise WatermarkError(f"resemble-perth is installed without its weights ({WEIGHTS})")
    return path


def check_available() -> None:
    """Raises `WatermarkError` at once where the weights are missing (rather than at the first output)."""
    _weights_path()


_lock = threading.Lock()
_net: PerthNet | None = None


def network() -> PerthNet:
    """The Perth network, loaded once per process (9.4 M parameters, ~0.3 s)."""
    global _net
    with _lock:
        if _net is None:
            state = torch.load(_weights_path(), map_location="cpu", weights_only=True)["model"]
            net = PerthNet()
            # The audio processor's buffers (its STFT window) are rebuilt by `_window`, not loaded.
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("ap.")})
            _net = net.eval().requires_grad_(False)
        return _net


_WINDOW = torch.hann_window(N_FFT)


def _window() -> torch.Tensor:
    return _WINDOW


def _analyze(signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[S]` at 32 kHz -> normalized log-magnitude `[1, F, T]` in ~[0, 1] and phase `[F, T]`."""
    spec = torch.stft(signal, N_FFT, HOP, N_FFT, _window(), center=True, pad_mode="reflect", return_complex=True)
    db = 20 * torch.log10(spec.abs().clamp_min(10 ** (MAGNITUDE_FLOOR_DB / 20)))
    return ((db - MAGNITUDE_FLOOR_DB) / (HEADROOM_DB - MAGNITUDE_FLOOR_DB))[None], torch.angle(spec)


def _magnitude(spec: torch.Tensor) -> torch.Tensor:
    """Normalized log-magnitudes -> linear magnitudes (the inverse of `_analyze`)."""
    db = spec * (HEADROOM_DB - MAGNITUDE_FLOOR_DB) + MAGNITUDE_FLOOR_DB
    return 10 ** (db / 20).clamp(max=MAX_LOG_MAGNITUDE)


def _synthesize(spec: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
    """`[1, F, T]` normalized log-magnitudes and their phase -> `[length]` at 32 kHz (Perth's re-synthesis)."""
    return torch.istft(torch.polar(_magnitude(spec[0]), phase), N_FFT, HOP, N_FFT, _window(), center=True,
                       length=length)


def _mark_delta(spec: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
    """`_synthesize(embed(spec)) - _synthesize(spec)` in one inverse STFT (it is linear): only the low bins
    the encoder changes differ, the rest of the spectrum is zero. -> `[length]` at 32 kHz."""
    low = spec[0, :SUBBAND]
    change = _magnitude(low + network().residual(spec)[0]) - _magnitude(low)
    full = torch.zeros(phase.shape, dtype=phase.dtype)
    full[:SUBBAND] = change
    return torch.istft(torch.polar(full, phase), N_FFT, HOP, N_FFT, _window(), center=True, length=length)


def _to_perth_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate == PERTH_RATE:
        return audio
    return soxr.resample(audio, sample_rate, PERTH_RATE, quality=RESAMPLE_QUALITY).astype(np.float32)


def apply_watermark(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Float32 mono `[S]` -> the same audio with the mark, `[S]` at `sample_rate`.

    Only the part the encoder changes is carried back: the difference between the marked and the
    re-synthesized unmarked signal at 32 kHz (`_mark_delta`), resampled and added. The STFT round trip
    and the two resamplings thus never touch the rest of the audio."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size < N_FFT // 2 + 1 or not np.any(audio):
        return audio.copy()  # too short (or silent) to carry a mark: returned as it is
    high = torch.from_numpy(_to_perth_rate(audio, sample_rate))
    with torch.inference_mode():
        spec, phase = _analyze(high)
        delta = _mark_delta(spec, phase, len(high)).numpy()
    if sample_rate != PERTH_RATE:
        delta = soxr.resample(delta, PERTH_RATE, sample_rate, quality=RESAMPLE_QUALITY)
    delta = np.pad(delta[: audio.size], (0, max(0, audio.size - delta.size))).astype(np.float32)
    # Digital silence stays silent (the pauses between sentences and dialogue lines are exact zeros,
    # and callers rely on that); the mark's spread into them would be a faint hiss, not a mark.
    delta[_digital_silence(audio, sample_rate)] = 0.0
    return audio + delta


def _digital_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """`[S]` bool: samples inside runs of exact zeros at least `SILENT_RUN_SECONDS` long."""
    zero = np.concatenate([[False], audio == 0.0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    long = (ends - starts) >= SILENT_RUN_SECONDS * sample_rate
    steps = np.zeros(audio.size + 1, dtype=np.int64)
    np.add.at(steps, starts[long], 1)
    np.add.at(steps, ends[long], -1)
    return np.cumsum(steps[:-1]) > 0


def watermark_score(audio: np.ndarray, sample_rate: int) -> float:
    """The decoder's confidence that `audio` (mono `[S]`) carries the mark, in [0, 1]."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size < N_FFT // 2 + 1 or not np.any(audio):
        return 0.0
    high = torch.from_numpy(_to_perth_rate(audio, sample_rate))
    with torch.inference_mode():
        spec, _ = _analyze(high)
        return float(network().detect(spec).clamp(0.0, 1.0)[0])


def detect_watermark(audio, sample_rate: int | None = None) -> Detection:
    """Does `audio` carry the mark? `audio`: mono float `[S]` with its `sample_rate`, or anything
    `lina.audio.load_audio` reads (a path, file bytes, `(rate, array)`), read as it is (no trimming or
    loudness change, which would not matter but cost time)."""
    if sample_rate is None:
        from lina.audio import AudioOptions, load_audio
        sample_rate = PERTH_RATE
        audio = load_audio(audio, PERTH_RATE, AudioOptions(trim_silence=False, normalize_loudness=False,
                                                           min_speech_seconds=0.0))
    score = watermark_score(audio, sample_rate)
    return Detection(score, score > THRESHOLD)
