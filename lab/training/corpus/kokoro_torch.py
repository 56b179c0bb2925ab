"""Kokoro-82M in PyTorch (CPU or CUDA), with the weights of the int8 ONNX file the corpus engine runs.

The network is the `kokoro` package's (hexgrad, Apache-2.0: CustomAlbert, ProsodyPredictor, TextEncoder,
istftnet.Decoder), weight norm removed and the dequantized ONNX weights loaded (`kokoro_weights`). Two parts
are swapped for copies of what the ONNX export traced, so both back ends give the same audio:
- `OnnxStft`: the traced inverse is a conv-transpose iSTFT whose window envelope was frozen at one frame, so
  only the first 20 samples are normalized and the rest keep the x4 gain (copied here, so the level is the
  ONNX file's). The forward is torch.stft with atan2 phases, as the export's; onnxruntime's DFT leaves
  rounding noise in near-silent bins (and the Nyquist bin), whose phases therefore differ between the two;
- `SeededSineGen`: the export has no random ops (no initial phase draw, no additive noise). With `noise=True`
  the library's draws come back, taken from a per-utterance `torch.Generator` seeded by the caller's seed.
The activations stay float (the ONNX file rounds them to uint8 on the fly): predicted durations move by a
frame here and there, and on equal durations the audio differs by a log-mel L1 of 0.10-0.14 (the model's
own noise draws, two seeds apart: 0.03; Whisper reads both alike). On equal decoder inputs it is 0.08 at a
1.03x level; with the ONNX graph's harmonic-source spectrum swapped in, 0.06 at 1.00x: the rest is the
decoder's uint8 activations. kokoro_check measures it.

    python -m lab.training.corpus.kokoro_weights --out .kokoro_carry/kokoro_v1_int8.safetensors   # once
    python -m lab.training.corpus.kokoro_check --asr      # the comparison with the ONNX engine
    lab/scripts/gpu_kokoro_bench.sh                            # speed on the GPU host
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from . import kokoro_batch
from .kokoro_shapes import STYLE_HALF

KOKORO_RATE = 24000
N_TOKENS = 178
HIDDEN = 512
# Kokoro-82M v1.0 config.json (hexgrad/Kokoro-82M): the shapes the ONNX file's weights confirm.
PLBERT = dict(hidden_size=768, num_attention_heads=12, intermediate_size=2048, max_position_embeddings=512,
              num_hidden_layers=12, dropout=0.1)
ISTFTNET = dict(upsample_kernel_sizes=[20, 12], upsample_rates=[10, 6], gen_istft_hop_size=5, gen_istft_n_fft=20,
                resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], resblock_kernel_sizes=[3, 7, 11],
                upsample_initial_channel=512)
N_LAYER, MAX_DUR, DROPOUT, TEXT_KERNEL, N_MELS = 3, 50, 0.2, 5, 80
# Tensors of the library's modules that the ONNX file does not hold, with the value the export used.
_IDENTITY_NORM = (".norm.weight", ".norm.bias")  # AdaIN1d's InstanceNorm1d(affine=True): 1 and 0
_UNUSED = ("bert.pooler.",)  # ALBERT's pooler: its output is never read


def kokoro_modules():
    """The `kokoro` package's istftnet, modules and model, imported without its __init__ (which needs misaki)."""
    if importlib.util.find_spec("kokoro") is None:
        raise ImportError("the kokoro package is not installed: python3 -m pip install --no-deps kokoro==0.9.4 "
                          "(and transformers, loguru)")
    if "kokoro" not in sys.modules:  # a bare package object: its submodules import, its __init__ does not run
        spec = importlib.util.find_spec("kokoro")
        pkg = types.ModuleType("kokoro")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["kokoro"] = pkg
    return (importlib.import_module("kokoro.istftnet"), importlib.import_module("kokoro.modules"),
            importlib.import_module("kokoro.model"))


class OnnxStft(torch.nn.Module):
    """The STFT pair as the ONNX export traced it (see the module docstring); buffers only, not saved."""

    N_FFT, HOP = 20, 5

    def __init__(self, inverse_basis, window_sum) -> None:
        super().__init__()
        self.register_buffer("inverse_basis", inverse_basis, persistent=False)  # [22, 1, 20]
        self.register_buffer("window_sum", window_sum, persistent=False)  # [20]: one frame's squared window
        self.register_buffer("window", torch.hann_window(self.N_FFT, periodic=True, dtype=torch.float32), persistent=False)

    lengths: list[int] | None = None  # valid samples per batch row (kokoro_batch): each row is transformed alone

    def transform(self, x):
        """x [B, N] -> (magnitude, phase) [B, 11, N // 5 + 1]; padded rows: frames past a row's end are 0."""
        if self.lengths is not None:
            out = torch.zeros(x.shape[0], 2, self.N_FFT // 2 + 1, x.shape[-1] // self.HOP + 1, device=x.device)
            for i, n in enumerate(self.lengths):
                mag, phase = self._transform(x[i: i + 1, :n])
                out[i, 0, :, : mag.shape[-1]], out[i, 1, :, : mag.shape[-1]] = mag[0], phase[0]
            return out[:, 0], out[:, 1]
        return self._transform(x)

    def _transform(self, x):
        spec = torch.stft(x, self.N_FFT, self.HOP, self.N_FFT, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        re, im = spec.real, spec.imag
        # atan2, as the export's atan(im / re) +- pi gives wherever im != 0. onnxruntime's DFT leaves rounding noise
        # in the imaginary part of the Nyquist bin (its phase reads pi +- 0.1 there): that bin cannot be matched.
        return torch.sqrt(re * re + im * im), torch.atan2(im, re)

    def inverse(self, magnitude, phase):
        """[B, 11, F] each -> [B, 1, 5 * (F - 1)] audio; padded rows: each row alone, zeros past its end."""
        if self.lengths is not None:
            out = torch.zeros(magnitude.shape[0], 1, self.HOP * (magnitude.shape[-1] - 1), device=magnitude.device)
            for i, n in enumerate(self.lengths):
                frames = n // self.HOP + 1
                y = self._inverse(magnitude[i: i + 1, :, :frames], phase[i: i + 1, :, :frames])
                out[i, :, : y.shape[-1]] = y[0]
            return out
        return self._inverse(magnitude, phase)

    def _inverse(self, magnitude, phase):
        x = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        y = torch.nn.functional.conv_transpose1d(x, self.inverse_basis, stride=self.HOP)
        head = min(y.shape[-1], self.window_sum.shape[0])
        ws = self.window_sum[:head]
        norm = torch.where(ws > torch.finfo(torch.float32).tiny, ws, torch.ones_like(ws))
        y = torch.cat([y[..., :head] / norm, y[..., head:]], dim=-1) * (self.N_FFT / self.HOP)
        return y[..., self.N_FFT // 2: -(self.N_FFT // 2)]


def make_sine_gen(base_cls):
    """A subclass of the library's SineGen whose two draws come from per-utterance generators, or are left out."""
    F = torch.nn.functional

    class SeededSineGen(base_cls):
        noise = False
        seeds: list[int] = []
        lengths: list[int] | None = None  # valid samples per batch row: the draws of a row do not depend on the batch

        def _draws(self, f0):
            b, n, dim = f0.shape[0], f0.shape[1], self.dim
            rand_ini = torch.zeros(b, dim, device=f0.device)
            noise = torch.zeros(b, n, dim, device=f0.device)
            for i in range(b):
                g = torch.Generator(device=f0.device).manual_seed(int(self.seeds[i]))
                rand_ini[i] = torch.rand(dim, generator=g, device=f0.device)
                m = n if self.lengths is None else int(self.lengths[i])
                noise[i, :m] = torch.randn(m, dim, generator=g, device=f0.device)
            rand_ini[:, 0] = 0
            return rand_ini, noise

        def forward(self, f0):
            """f0 [B, N, 1] at 24 kHz -> (sines [B, N, 9], uv [B, N, 1], None)."""
            fn = f0 * torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
            rad = fn / self.sampling_rate
            rad = rad - torch.floor(rad)
            uv = self._f02uv(f0)
            rand_ini, noise = self._draws(f0) if self.noise else (None, None)
            if rand_ini is not None:
                rad[:, 0, :] = rad[:, 0, :] + rand_ini
            rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / self.upsample_scale, mode="linear").transpose(1, 2)
            phase = torch.cumsum(rad, dim=1) * 2 * torch.pi  # [B, N / 300, 9]
            if self.lengths is not None:  # interpolation past a row's end reads its last frame, as in a batch of one
                for i, n in enumerate(self.lengths):
                    last = int(n) // int(self.upsample_scale)
                    phase[i, last:] = phase[i, last - 1]
            phase = F.interpolate(phase.transpose(1, 2) * self.upsample_scale, scale_factor=self.upsample_scale,
                                  mode="linear").transpose(1, 2)
            sines = torch.sin(phase) * self.sine_amp * uv
            if noise is not None:
                sines = sines + (uv * self.noise_std + (1 - uv) * self.sine_amp / 3) * noise
            return sines, uv, None

    return SeededSineGen


def build_model(state: dict):
    """{parameter name: float32 tensor} (kokoro_weights.dequantize) -> the kokoro network in eval mode, on CPU."""
    istftnet, modules, _ = kokoro_modules()
    from transformers import AlbertConfig

    net = torch.nn.Module()
    with warnings.catch_warnings():  # the library's weight_norm is deprecated; LSTM(dropout=0.2) has one layer
        warnings.simplefilter("ignore")
        net.bert = modules.CustomAlbert(AlbertConfig(vocab_size=N_TOKENS, **PLBERT))
        net.bert_encoder = torch.nn.Linear(PLBERT["hidden_size"], HIDDEN)
        net.predictor = modules.ProsodyPredictor(style_dim=STYLE_HALF, d_hid=HIDDEN, nlayers=N_LAYER, max_dur=MAX_DUR,
                                                 dropout=DROPOUT)
        net.text_encoder = modules.TextEncoder(channels=HIDDEN, kernel_size=TEXT_KERNEL, depth=N_LAYER, n_symbols=N_TOKENS)
        net.decoder = istftnet.Decoder(dim_in=HIDDEN, style_dim=STYLE_HALF, dim_out=N_MELS, **ISTFTNET)
        for m in net.modules():  # the file holds folded weights: drop the weight-norm reparametrization
            if hasattr(m, "weight_g"):
                torch.nn.utils.remove_weight_norm(m)
    gen = net.decoder.generator
    sine = gen.m_source.l_sin_gen
    cls = make_sine_gen(type(sine))
    seeded = cls.__new__(cls)  # same attributes (rates, amplitudes), the seeded forward
    seeded.__dict__.update(sine.__dict__)
    gen.m_source.l_sin_gen = seeded
    gen.stft = OnnxStft(state["decoder.generator.stft.inverse_basis"], state["decoder.generator.stft.window_sum"])
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(_IDENTITY_NORM) and not k.startswith(_UNUSED)
               and "position_ids" not in k and "token_type_ids" not in k]
    extra = [k for k in state if k not in own and not k.startswith("decoder.generator.stft.")]
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or bad:
        raise ValueError(f"the kokoro weights do not fit the kokoro package's model: missing {missing[:5]}, "
                         f"unexpected {extra[:5]}, wrong shape {bad[:5]} ({len(missing)}/{len(extra)}/{len(bad)})")
    for k, v in own.items():
        if k.endswith(_IDENTITY_NORM):
            state.setdefault(k, torch.ones_like(v) if k.endswith("weight") else torch.zeros_like(v))
    net.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return net.eval()


def load_weights(path: str | Path) -> dict:
    """The int8 safetensors file -> {parameter name: float32 tensor}."""
    from safetensors.torch import load_file

    from .kokoro_weights import dequantize

    return dequantize(load_file(str(path)))


class KokoroTorch:
    """(ids [1, n + 2] int64, style [1, 256], speed, seed) -> audio [T] float32 at 24 kHz, like KokoroOnnx."""

    def __init__(self, weights: str | Path | dict, device: str = "cpu", noise: bool = False) -> None:
        state = load_weights(weights) if not isinstance(weights, dict) else dict(weights)
        self.device = torch.device(device)
        self.net = build_model(state).to(self.device)
        self.net.decoder.generator.m_source.l_sin_gen.noise = noise
        self.lengths = kokoro_batch.install_masks(self.net)  # frame lengths of the running batch (None: a batch of one)
        self.noise = noise
        self._kmodel = kokoro_modules()[2].KModel

    @property
    def sine_gen(self):
        return self.net.decoder.generator.m_source.l_sin_gen

    def reference(self, ids, style, speed: float = 1.0, seed: int = 0):
        """The library's own batch-1 forward (KModel.forward_with_tokens) -> (audio [T], durations [n + 2])."""
        ids_t = torch.as_tensor(np.asarray(ids), dtype=torch.long, device=self.device).reshape(1, -1)
        style_t = torch.as_tensor(np.asarray(style), dtype=torch.float32, device=self.device).reshape(1, -1)
        self.sine_gen.seeds, self.sine_gen.lengths = [seed], None
        self.net.device = self.device
        audio, dur = self._kmodel.forward_with_tokens(self.net, ids_t, style_t, float(speed))
        return audio.reshape(-1), dur.reshape(-1)

    def __call__(self, ids, style, speed: float = 1.0, seed: int = 0) -> np.ndarray:
        return self.batch([ids], [style], [speed], [seed])[0]

    def batch(self, ids: list, styles: list, speeds: list[float], seeds: list[int]) -> list[np.ndarray]:
        """Several utterances in one padded batch (kokoro_batch.forward) -> one float32 array each."""
        return [a.float().cpu().numpy() for a in kokoro_batch.forward(self, ids, styles, speeds, seeds)["audio"]]
