"""Kokoro in PyTorch on the GPU host: pack what travels (here), then render and time it (there).

The int8 weights (91 MB) do not fit one device call with the repository (35 MB of a 64 MiB limit), so `pack`
gzips them (63 MB) and cuts them into pieces, one folder per call; lab/scripts/gpu_kokoro_bench.sh stashes each
folder on the held machine and `run` joins them (checked by SHA-256). The bench's sentences are
phonemized here (espeak-ng is not on the GPU host) and saved with their style vectors, plus the CPU audio
of the first few, so `run` also reports how far CUDA's audio is from this machine's.

    python -m lab.training.corpus.kokoro_gpu_bench pack --weights .kokoro_carry/kokoro_v1_int8.safetensors
    python -m lab.training.corpus.kokoro_gpu_bench run --stash /data/kokoro --out $OUT     # on the GPU host
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import time
import wave
from pathlib import Path

import numpy as np

PIECES = 3
N_SENTENCES = 100
N_CPU_REFERENCE = 3  # sentences rendered here on CPU, compared with the GPU's audio
BATCHES = (1, 16, 64)
WARMUP = 2
SENTENCE_WORDS = (6, 28)
FALLBACK = ("The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
            "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
            "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
            "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
            "Four hours of steady work faced us.", "A large size in stockings is hard to sell.")


def bench_sentences(n: int = N_SENTENCES) -> list[str]:
    """n distinct sentences of 6-28 words from the corpus's WordNet texts, or Harvard sentences when absent."""
    try:
        from .texts import READERS, clean

        out = []
        for raw in READERS["wordnet"]():
            for s in clean(raw):
                if SENTENCE_WORDS[0] <= len(s.split()) <= SENTENCE_WORDS[1] and s not in out:
                    out.append(s)
            if len(out) >= n:
                return out[:n]
    except (OSError, KeyError, StopIteration):
        pass
    return [FALLBACK[i % len(FALLBACK)] for i in range(n)]


def pack(weights: Path, out: Path, pieces: int = PIECES, n: int = N_SENTENCES) -> dict:
    """Write out/p1..pN (gzip pieces of the weights; p1 also the bench inputs and CPU reference audio)."""
    from . import engines_kokoro as ek
    from .kokoro_torch import KokoroTorch

    blob = weights.read_bytes()
    packed = gzip.compress(blob, compresslevel=6)
    size = -(-len(packed) // pieces)
    manifest = {"weights": weights.name, "sha256": hashlib.sha256(blob).hexdigest(), "pieces": pieces}
    for k in range(pieces):
        folder = out / f"p{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"weights.gz.{k + 1}").write_bytes(packed[k * size: (k + 1) * size])
        (folder / "manifest.json").write_text(json.dumps(manifest))
    packs = list(ek.PACKS)
    rows = [ek.kokoro_inputs(s, ek.KokoroRecipe(packs[i % len(packs)])) for i, s in enumerate(bench_sentences(n))]
    kt = KokoroTorch(weights, "cpu")
    cpu = kt.batch([r[0] for r in rows[:N_CPU_REFERENCE]], [r[1] for r in rows[:N_CPU_REFERENCE]],
                   [r[2] for r in rows[:N_CPU_REFERENCE]], [0] * N_CPU_REFERENCE)
    arrays = {f"ids_{i}": r[0] for i, r in enumerate(rows)}
    arrays.update({f"style_{i}": r[1] for i, r in enumerate(rows)})
    arrays.update({f"cpu_{i}": a for i, a in enumerate(cpu)})
    np.savez_compressed(out / "p1" / "bench_inputs.npz", speeds=np.array([r[2] for r in rows], np.float32), **arrays)
    return {"pieces": [sorted(str(p) for p in (out / f"p{k + 1}").iterdir()) for k in range(pieces)],
            "bytes_per_piece": size, "sha256": manifest["sha256"]}


def join(stash: Path) -> Path:
    """The stashed pieces -> the weights file (verified); raises a plain sentence when a piece is missing."""
    manifest = json.loads((stash / "manifest.json").read_text())
    parts = [stash / f"weights.gz.{k + 1}" for k in range(manifest["pieces"])]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise SystemExit(f"missing weight pieces {missing}: stash every .kokoro_carry/pK folder first (one call each)")
    blob = gzip.decompress(b"".join(p.read_bytes() for p in parts))
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise SystemExit("the joined kokoro weights fail their SHA-256: re-stash the pieces of one `pack` run")
    target = stash / manifest["weights"]
    target.write_bytes(blob)
    return target


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr), w.writeframes(pcm.tobytes())


def _versus(gpu: np.ndarray, cpu: np.ndarray, mel_l1) -> dict:
    n = min(len(gpu), len(cpu))
    row = {"samples": [len(gpu), len(cpu)], "max_abs": round(float(np.abs(gpu[:n] - cpu[:n]).max()), 4),
           "rms_ratio": round(float(np.sqrt(np.mean(gpu ** 2) / max(np.mean(cpu ** 2), 1e-12))), 4)}
    if mel_l1 is not None:
        row["mel_l1"] = round(mel_l1(gpu, cpu), 4)
    return row


def run(stash: Path, out: Path, batches=BATCHES, tf32: bool = True, device: str = "cuda", limit: int = 0) -> dict:
    """Render every bench sentence (or the first `limit`) at each batch size in float32, then the largest batch
    again with TF32 matmuls/convolutions when `tf32`; print and return the speeds."""
    import torch

    from .kokoro_torch import KOKORO_RATE, KokoroTorch

    try:  # librosa is not in the GPU host's image: then only the level and peak differences are reported
        import librosa  # noqa: F401

        from .kokoro_check import mel_l1
    except ImportError:
        mel_l1 = None

    data = np.load(stash / "bench_inputs.npz")
    n = min(len(data["speeds"]), limit or len(data["speeds"]))
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    ids = [data[f"ids_{i}"] for i in range(n)]
    styles = [data[f"style_{i}"] for i in range(n)]
    speeds = [float(s) for s in data["speeds"]]
    t0 = time.time()
    kt = KokoroTorch(join(stash), device)
    report = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__, "sentences": n,
              "load_s": round(time.time() - t0, 2), "runs": []}
    order = sorted(range(n), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    configs = [(bs, False) for bs in batches] + ([(max(batches), True)] if tf32 and cuda else [])
    for bs, use_tf32 in configs:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = use_tf32
        chunks = [order[k: k + bs] for k in range(0, n, bs)]
        for c in chunks[:WARMUP]:
            kt.batch([ids[i] for i in c], [styles[i] for i in c], [speeds[i] for i in c], list(c))
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.time()
        audio = {}
        for c in chunks:
            for i, a in zip(c, kt.batch([ids[i] for i in c], [styles[i] for i in c], [speeds[i] for i in c], list(c))):
                audio[i] = a
        sync()
        wall = time.time() - t
        seconds = sum(len(a) for a in audio.values()) / KOKORO_RATE
        row = {"batch": bs, "tf32": use_tf32, "audio_s": round(seconds, 1), "wall_s": round(wall, 2), "audio_s_per_s": round(seconds / wall, 1),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if cuda else None,
               "vs_cpu": [_versus(audio[i], data[f"cpu_{i}"], mel_l1) for i in range(N_CPU_REFERENCE)]}
        report["runs"].append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(N_CPU_REFERENCE):
        _write_wav(out / f"kokoro_gpu_{i}.wav", audio[i], KOKORO_RATE)
    (out / "kokoro_gpu_bench.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="here: weights -> gzip pieces + bench inputs under --out")
    p.add_argument("--weights", type=Path, default=Path(".kokoro_carry/kokoro_v1_int8.safetensors"))
    p.add_argument("--out", type=Path, default=Path(".kokoro_carry"))
    p.add_argument("--pieces", type=int, default=PIECES)
    p.add_argument("--sentences", type=int, default=N_SENTENCES)
    r = sub.add_parser("run", help="GPU host: join the stashed pieces, render, time")
    r.add_argument("--stash", type=Path, default=Path("/data/kokoro"))
    r.add_argument("--out", type=Path, default=Path("out"))
    r.add_argument("--batches", default=",".join(map(str, BATCHES)))
    r.add_argument("--no-tf32", dest="tf32", action="store_false", help="skip the TF32 run of the largest batch")
    r.add_argument("--device", default="cuda")
    r.add_argument("--limit", type=int, default=0, help="only the first N sentences (a dry run on CPU)")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        print(json.dumps(pack(args.weights, args.out, args.pieces, args.sentences), indent=1))
    else:
        run(args.stash, args.out, [int(b) for b in args.batches.split(",")], args.tf32, args.device, args.limit)


if __name__ == "__main__":
    main()
