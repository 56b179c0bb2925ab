"""Render manifest rows to audio: 24 kHz mono float32, deterministic from the row alone.

One row -> engine (speaker's voice, tempo, style's native prosody) -> Praat "Change gender" when the
speaker or style moves pitch/formants (seeded, so repeatable) -> the derived speaker's peaking filters
-> WORLD unvoiced resynthesis for whisper
-> style tilt/drive -> 24 kHz (soxr) -> silences trimmed to `EDGE_SILENCE_S` -> loudness normalized.
`render_manifest` runs rows over worker processes, writes `wav/<speaker>/<id>.wav` atomically, resumes
(files already there are kept), can stop at a time limit and take one shard of the rows, and writes the
manifest with measured durations next to the audio.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import resource
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from . import engines
from .manifest import EDGE_SILENCE_S, SPLITS, read_jsonl, stable_hash, write_jsonl
from .styles import apply_effects, espeak_prosody, style, whisper

SAMPLE_RATE = 24000
TARGET_RMS_DB = -23.0  # level of active speech (frames within 40 dB of the loudest)
PEAK_LIMIT = 0.97
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 60.0, 500.0


def _synthesize(row: dict) -> tuple[np.ndarray, int]:
    spk, st = row["spk"], style(row["style"])
    tempo = spk.get("tempo", 1.0) * st.tempo
    engine = spk["engine"]
    if engine == "espeak":
        prosody = espeak_prosody(row["style"])
        prosody.pop("rate", None)  # tempo is passed as words per minute below
        return engines.espeak(row["text"], spk["voice"], variant=spk.get("variant"), variant_file=spk.get("variant_file"),
                              speed=round(175 * tempo), prosody=prosody)
    if engine == "flite":
        return engines.flite(row["text"], spk["voice"], stretch=1 / tempo, f0_mean=spk.get("f0_hz"), f0_std=spk.get("f0_std_hz"))
    if engine == "festival":
        return engines.festival(row["text"], spk["voice"], stretch=1 / tempo)
    if engine == "piper":
        return engines.piper_engine().synth(row["text"], seed=row["seed"], length_scale=1 / tempo,
                                            noise_scale=spk.get("noise_scale", 0.667), noise_w=spk.get("noise_w", 0.8))
    if engine == "kokoro":
        from .engines_kokoro import KokoroRecipe, kokoro_engine

        return kokoro_engine().synth(row["text"], KokoroRecipe.from_spk(spk, tempo), seed=row["seed"])
    raise ValueError(f"unknown engine {engine!r}")


def change_voice(audio: np.ndarray, sr: int, *, pitch: float, f0_range: float, formant: float, seed: int) -> np.ndarray:
    """Praat "Change gender": formants x `formant`, median F0 x `pitch`, F0 excursions x `f0_range`."""
    import parselmouth
    from parselmouth.praat import call, run

    sound = parselmouth.Sound(audio.astype(np.float64), sr)
    f0 = call(sound.to_pitch(pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ), "Get quantile", 0, 0, 0.5, "Hertz")
    if not np.isfinite(f0):
        return audio  # nothing voiced
    run(f"random_initializeWithSeedUnsafelyButPredictably ({seed})")  # Praat's resampling/PSOLA draw noise
    try:
        out = call(sound, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, formant, f0 * pitch, f0_range, 1.0)
    except parselmouth.PraatError:  # a pitch track Praat cannot resynthesize (seen on short, barely voiced rows)
        return audio
    return out.values[0].astype(np.float32)


def peaking_eq(audio: np.ndarray, sr: int, bands: list) -> np.ndarray:
    """Cascade of peaking filters (RBJ biquads), each (centre Hz, gain dB, Q)."""
    from scipy import signal

    sos = []
    for freq, gain_db, q in bands:
        a, w = 10 ** (gain_db / 40), 2 * np.pi * min(freq, 0.45 * sr) / sr
        alpha = np.sin(w) / (2 * q)
        b0, b1, b2, a0, a1, a2 = 1 + alpha * a, -2 * np.cos(w), 1 - alpha * a, 1 + alpha / a, -2 * np.cos(w), 1 - alpha / a
        sos.append([b0 / a0, b1 / a0, b2 / a0, 1.0, a1 / a0, a2 / a0])
    return signal.sosfilt(np.array(sos), audio.astype(np.float64)).astype(np.float32) if sos else audio


def _active_frames(audio: np.ndarray, sr: int, frame_s: float = 0.01) -> tuple[np.ndarray, int]:
    hop = max(1, int(sr * frame_s))
    n = len(audio) // hop
    frames = audio[: n * hop].reshape(n, hop) if n else audio.reshape(1, -1)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return db > max(db.max() - 40.0, -70.0), hop


def finish(audio: np.ndarray, sr: int, style_name: str) -> np.ndarray:
    """Resample to 24 kHz, trim silences, normalize loudness (+ the style's level), limit peaks."""
    audio = soxr.resample(audio.astype(np.float32), sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    active, hop = _active_frames(audio, SAMPLE_RATE)
    if active.any():
        pad = int(EDGE_SILENCE_S * SAMPLE_RATE)
        first, last = int(np.argmax(active)), len(active) - int(np.argmax(active[::-1]))
        speech = audio[first * hop : last * hop]
        rms = np.sqrt(np.mean(speech[: len(speech) // hop * hop].reshape(-1, hop)[active[first:last]].astype(np.float64) ** 2))
        audio = audio[max(0, first * hop - pad) : min(len(audio), last * hop + pad)]
        audio = audio * (10 ** ((TARGET_RMS_DB + style(style_name).gain_db) / 20) / max(rms, 1e-9))
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > PEAK_LIMIT:
        audio = audio * (PEAK_LIMIT / peak)
    return audio.astype(np.float32)


def render_row(row: dict) -> np.ndarray:
    """The row's audio at 24 kHz, float32 mono; the same row always gives the same samples."""
    audio, sr = _synthesize(row)
    return post_process(audio, sr, row)


def post_process(audio: np.ndarray, sr: int, row: dict) -> np.ndarray:
    """An engine's raw audio of `row` -> the corpus audio (voice change, filters, style, 24 kHz, level).

    Split from `render_row` so that audio synthesized elsewhere (Kokoro batched on a GPU) gets the same
    treatment as the rows rendered one by one."""
    spk, st = row["spk"], style(row["style"])
    native_style = spk["engine"] == "espeak"  # SSML carried the style's pitch and range
    pitch = spk.get("pitch", 1.0) * (1.0 if native_style else st.f0)
    f0_range = 1.0 if native_style else st.f0_range
    formant = spk.get("formant", 1.0)
    if (pitch, f0_range, formant) != (1.0, 1.0, 1.0) and not st.whisper:
        audio = change_voice(audio, sr, pitch=pitch, f0_range=f0_range, formant=formant, seed=row["seed"])
    elif st.whisper and formant != 1.0:
        audio = change_voice(audio, sr, pitch=1.0, f0_range=1.0, formant=formant, seed=row["seed"])
    if spk.get("eq"):
        audio = peaking_eq(audio, sr, spk["eq"])
    if st.whisper:
        audio = whisper(audio, sr)
    audio = apply_effects(audio, sr, row["style"])
    return finish(audio, sr, row["style"])


# ------------------------------------------------------------------------------------------------ batch
def audio_path(out: Path, row: dict) -> Path:
    return out / "wav" / row["speaker"] / f"{row['id']}.wav"


def _worker_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def _render_one(row: dict, out: str) -> tuple[str, float, float, str | None]:
    """(id, duration, CPU seconds incl. child processes, error)."""
    path = audio_path(Path(out), row)
    if path.exists():
        try:
            return row["id"], sf.info(str(path)).duration, 0.0, None
        except RuntimeError:
            path.unlink()
    cpu0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    try:
        audio = render_row(row)
    except Exception as exc:  # noqa: BLE001 (one bad row must not stop a 30-hour render)
        return row["id"], 0.0, 0.0, f"{type(exc).__name__}: {exc}"
    cpu = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
    sf.write(str(tmp), audio, SAMPLE_RATE, subtype="FLOAT")
    tmp.replace(path)
    return row["id"], len(audio) / SAMPLE_RATE, cpu, None


def in_shard(row: dict, shard: tuple[int, int]) -> bool:
    index, count = shard
    return count <= 1 or stable_hash("shard", row["id"]) % count == index


def render_manifest(manifests: list[Path], out: Path, *, jobs: int = 1, shard: tuple[int, int] = (0, 1),
                    max_seconds: float | None = None, limit: int | None = None, log=print) -> dict:
    """Render the rows of `manifests` into `out`; returns counts, hours and CPU time per engine."""
    rows = [r for m in manifests for r in read_jsonl(m) if in_shard(r, shard)][:limit]
    # Expensive engines first, so a time-limited run leaves the fast ones (espeak) for the end.
    order = sorted(rows, key=lambda r: ({"piper": 0, "kokoro": 0, "festival": 1, "flite": 2}.get(r["engine"], 3), r["id"]))
    start, results, errors = time.time(), {}, {}
    cpu: dict[str, list[float]] = {}
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_worker_init) as pool:
        pending = set()
        queue = iter(order)
        while True:
            while len(pending) < 4 * max(1, jobs) and (max_seconds is None or time.time() - start < max_seconds):
                row = next(queue, None)
                if row is None:
                    break
                pending.add(pool.submit(_render_one, row, str(out)))
            if not pending:
                break
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                uid, duration, seconds, err = fut.result()
                if err:
                    errors[uid] = err
                    continue
                results[uid] = duration
                engine = uid.split("-", 1)[0]
                if seconds:
                    c = cpu.setdefault(engine, [0.0, 0.0])
                    c[0] += duration
                    c[1] += seconds
            if len(results) % 500 < len(done):
                log(f"{len(results)}/{len(rows)} rendered, {len(errors)} errors, {time.time() - start:.0f} s")
    by_split = {s: [dict(r, duration=round(results[r["id"]], 3), audio=str(audio_path(Path("."), r)))
                    for r in rows if r["id"] in results and r["split"] == s] for s in SPLITS}
    suffix = "" if shard[1] <= 1 else f".shard{shard[0]}of{shard[1]}"
    for split, done_rows in by_split.items():
        if done_rows:
            write_jsonl(out / f"{split}{suffix}.jsonl", done_rows)
    report = {"rows": len(rows), "rendered": len(results), "remaining": len(rows) - len(results) - len(errors),
              "errors": len(errors), "hours": round(sum(results.values()) / 3600, 3), "wall_s": round(time.time() - start, 1),
              "speed_audio_s_per_cpu_s": {e: round(a / c, 2) for e, (a, c) in cpu.items() if c}}
    if errors:
        (out / f"errors{suffix}.json").write_text(json.dumps(errors, indent=1, sort_keys=True))
    return report
