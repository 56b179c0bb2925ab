"""How close the PyTorch back end (kokoro_torch) is to the ONNX one (engines_kokoro), on the same inputs.

The two differ in one known way: the ONNX file quantizes activations to uint8 on the fly, the PyTorch model
keeps them float. Through ALBERT's 12 passes of one shared layer that rounding moves the predicted durations
by a frame here and there, so the audio of a free run cannot be compared sample by sample. Measured:
- `free`: both run end to end: tokens whose duration differs, total frames, and Whisper transcripts;
- `forced`: the PyTorch model is given the ONNX durations, so both render the same frames: F0 and N curves
  (relative L1) and the audio's log-mel L1, with two scales: the PyTorch model with its noise draws on
  (as trained), two seeds apart, and the two halves of one utterance.

    python -m lab.training.corpus.kokoro_check --weights .kokoro_carry/kokoro_v1_int8.safetensors
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .engines_kokoro import KOKORO_RATE, KokoroRecipe, kokoro_inputs, model_bytes

MEL_BANDS, MEL_FFT, MEL_HOP = 80, 1024, 256
LOG_FLOOR = 1e-5
# ONNX tensors read besides the audio: rounded durations, and the F0 / N curves before the decoder.
ONNX_TAPS = {"durations": "/encoder/Clip_output_0", "f0": "/encoder/F0_proj/Conv_output_0", "n": "/encoder/N_proj/Conv_output_0"}
SENTENCES = ("The quick brown fox jumps over the lazy dog.", "Hello there, how are you doing today?",
             "Please call Stella and ask her to bring these things with her from the store.",
             "It was the best of times, it was the worst of times.")


def log_mel(audio: np.ndarray, sr: int = KOKORO_RATE) -> np.ndarray:
    """[T] -> [80, frames] log10 mel power."""
    import librosa

    mel = librosa.feature.melspectrogram(y=np.asarray(audio, np.float32), sr=sr, n_fft=MEL_FFT, hop_length=MEL_HOP,
                                         n_mels=MEL_BANDS)
    return np.log10(np.maximum(mel, LOG_FLOOR))


def mel_l1(a: np.ndarray, b: np.ndarray, sr: int = KOKORO_RATE) -> float:
    """Mean |log-mel difference| over the common frames."""
    ma, mb = log_mel(a, sr), log_mel(b, sr)
    n = min(ma.shape[1], mb.shape[1])
    return float(np.abs(ma[:, :n] - mb[:, :n]).mean())


def rel_l1(a, b) -> float:
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    return float(np.abs(a - b).mean() / max(np.abs(b).mean(), 1e-12))


class OnnxTapped:
    """The ONNX session with the `ONNX_TAPS` tensors as extra outputs."""

    def __init__(self) -> None:
        import onnx
        import onnxruntime

        model = onnx.load_from_string(model_bytes())
        for name in ONNX_TAPS.values():
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, ids, style, speed) -> dict[str, np.ndarray]:
        feeds = {"tokens": np.asarray(ids, np.int64).reshape(1, -1), "style": np.asarray(style, np.float32).reshape(1, -1),
                 "speed": np.array([speed], np.float32)}
        out = self.session.run(None, feeds)
        return {"audio": out[0].reshape(-1), **{k: v.reshape(-1) for k, v in zip(ONNX_TAPS, out[1:])}}


def compare(kt, onnx: OnnxTapped, text: str, recipe: KokoroRecipe, asr: bool = False) -> dict:
    """One sentence through both back ends -> the numbers of the module docstring."""
    from .kokoro_batch import forward

    ids, style, speed = kokoro_inputs(text, recipe)
    ref = onnx(ids, style, speed)
    free = forward(kt, [ids], [style], [speed], [0])
    dur_t, dur_o = free["durations"][0].numpy(), ref["durations"].astype(np.int64)
    forced = forward(kt, [ids], [style], [speed], [0], durations=[dur_o])
    audio_t, audio_f = free["audio"][0].float().cpu().numpy(), forced["audio"][0].float().cpu().numpy()
    noise_was, kt.sine_gen.noise = kt.sine_gen.noise, True  # the PyTorch model's own draws: two seeds, same frames
    seeded = forward(kt, [ids] * 2, [style] * 2, [speed] * 2, [1, 2], durations=[dur_o] * 2)["audio"]
    kt.sine_gen.noise = noise_was
    half = len(ref["audio"]) // 2
    row = {"text": text, "voice": recipe.pack, "tokens": int(ids.shape[1]), "seconds": round(len(ref["audio"]) / KOKORO_RATE, 3),
           "durations_differ": int((dur_t != dur_o).sum()), "max_duration_diff": int(np.abs(dur_t - dur_o).max()),
           "frames_torch": int(dur_t.sum()), "frames_onnx": int(dur_o.sum()),
           "forced_f0_rel_l1": rel_l1(forced["f0"][0], ref["f0"]), "forced_n_rel_l1": rel_l1(forced["n"][0], ref["n"]),
           "forced_mel_l1": mel_l1(audio_f, ref["audio"]), "free_mel_l1": mel_l1(audio_t, ref["audio"]),
           "scale_mel_l1_halves": mel_l1(ref["audio"][:half], ref["audio"][half: 2 * half]),
           "scale_mel_l1_noise_seeds": mel_l1(seeded[0].float().cpu().numpy(), seeded[1].float().cpu().numpy()),
           "rms_ratio": float(np.sqrt(np.mean(audio_f ** 2) / max(np.mean(ref["audio"] ** 2), 1e-12)))}
    if asr:
        from lab.eval.asr import transcribe

        row["asr_onnx"], row["asr_torch"] = transcribe(ref["audio"], KOKORO_RATE), transcribe(audio_t, KOKORO_RATE)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Compare kokoro_torch with the ONNX engine on a few sentences")
    ap.add_argument("--weights", type=Path, default=Path(".kokoro_carry/kokoro_v1_int8.safetensors"))
    ap.add_argument("--voices", nargs="+", default=["jf_gongitsune", "jm_kumo"])
    ap.add_argument("--asr", action="store_true", help="also transcribe both with Whisper tiny.en (lab.eval.asr)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    from .kokoro_torch import KokoroTorch

    torch.set_num_threads(args.threads)
    kt, onnx = KokoroTorch(args.weights), OnnxTapped()
    rows = [compare(kt, onnx, text, KokoroRecipe(v), asr=args.asr) for v in args.voices for text in SENTENCES]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
