"""Screen candidate speakers before they enter the corpus: can Whisper understand them?

Each candidate reads `SCREEN_SENTENCES` (dedup's three probes and one more, none of them a corpus
sentence), rendered exactly as the corpus renders a row. Whisper tiny.en (`lab.eval.asr`) transcribes
every clip; a candidate is kept when its word error rate over the four is at most `MAX_WER`, and, when
DNSMOS is asked for, its mean overall score is at least `MIN_DNSMOS`. The same pass embeds the three
probes with resemblyzer into the dedup cache, so the de-duplication that follows (`dedup.run_dedup_v2`)
renders nothing again for these speakers. Results are appended to `<out>.partial.jsonl` as they come,
so an interrupted screen resumes.

Rendering and scoring can run on two machines: `render_clips_to` writes the clips as 16 kHz FLAC (what
Whisper and resemblyzer read) on a host with many cores, and `run_screen(clip_dir=...)` scores them here.
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

from .dedup import PROBES, _recipe_key
from .generate import SAMPLE_RATE, render_row
from .manifest import utterance_seed
from .speakers import Speaker

SCREEN_SENTENCES = (*PROBES, "my brother painted the small wooden boat bright yellow before the summer festival.")
# Kept when at most 4 of the ~50 words are wrong: espeak-ng's formant voice reads at 8.4 % and Piper joe
# at 1.8 % (Whisper tiny.en, 30 unseen sentences); a neural voice worse than espeak-ng adds accent, not data.
MAX_WER = 0.08
# DNSMOS overall (when measured): espeak-ng scores 2.75, flite 2.62, Piper 3.34, the Kokoro packs 3.0-3.45.
# A Kokoro voice is kept when it is no worse than the least clean engine the corpus already has (flite).
MIN_DNSMOS = 2.6
CLIP_RATE = 16000  # clips carried between machines: Whisper's and resemblyzer's rate


def _screen_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from lab.eval import asr

    asr.MAX_THREADS = 1  # one process per core


def _cpu() -> float:
    return time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime


def render_clips(spk: dict, seed: int = 0) -> tuple[list[np.ndarray], float]:
    """The candidate reading `SCREEN_SENTENCES` (24 kHz rows, as the corpus renders them) and the CPU seconds."""
    clips, cpu = [], 0.0
    for i, text in enumerate(SCREEN_SENTENCES):
        uid = f"{spk['id']}_probe{i}"  # the first three are dedup's probe rows, sample for sample
        c0 = _cpu()
        clips.append(render_row({"id": uid, "spk": spk, "style": "neutral", "text": text, "seed": utterance_seed(seed, uid)}))
        cpu += _cpu() - c0
    return clips, cpu


def _clip_path(clip_dir: Path, sid: str, i: int) -> Path:
    return clip_dir / f"{sid}_{i}.flac"


def _render_to(spk: dict, seed: int, clip_dir: str) -> dict:
    import soundfile as sf
    import soxr

    clips, cpu = render_clips(spk, seed)
    for i, audio in enumerate(clips):
        sf.write(str(_clip_path(Path(clip_dir), spk["id"], i)), soxr.resample(audio, SAMPLE_RATE, CLIP_RATE), CLIP_RATE,
                 subtype="PCM_16")
    return {"id": spk["id"], "audio_s": round(sum(len(a) for a in clips) / SAMPLE_RATE, 3), "render_cpu_s": round(cpu, 3)}


def render_clips_to(speakers: list[Speaker], clip_dir: Path, *, seed: int = 0, jobs: int = 1, log=print) -> dict:
    """Render every candidate's clips into `clip_dir` (16 kHz FLAC) and `clip_dir/render.json` (timings)."""
    clip_dir.mkdir(parents=True, exist_ok=True)
    start, timings = time.time(), {}
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_screen_init) as pool:
        futures = {pool.submit(_render_to, s.to_dict(), seed, str(clip_dir)): s.id for s in speakers}
        for i, fut in enumerate(cf.as_completed(futures)):
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001
                r = {"id": futures[fut], "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            timings[r["id"]] = r
            if (i + 1) % 20 == 0:
                log(f"rendered {i + 1}/{len(speakers)} in {time.time() - start:.0f} s")
    audio = sum(r.get("audio_s", 0.0) for r in timings.values())
    cpu = sum(r.get("render_cpu_s", 0.0) for r in timings.values())
    report = {"seed": seed, "jobs": jobs, "wall_s": round(time.time() - start, 1), "audio_s": round(audio, 1),
              "cpu_s": round(cpu, 1), "audio_s_per_cpu_s": round(audio / cpu, 3) if cpu else None,
              "speakers": timings}
    (clip_dir / "render.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report


def screen_one(spk: dict, seed: int = 0, dnsmos: bool = False, clip_dir: str | None = None) -> dict:
    """Render (or read from `clip_dir` when its clips are there), transcribe and embed one candidate:
    {wer, transcripts, embedding, audio_s, render_cpu_s[, dnsmos]}."""
    import soundfile as sf
    import soxr
    import torch
    from resemblyzer import preprocess_wav

    from lab.eval.asr import transcribe
    from lab.eval.scoring import wer

    from .dedup import _encoder

    torch.set_num_threads(1)
    out = {"id": spk["id"]}
    if clip_dir is not None and all(_clip_path(Path(clip_dir), spk["id"], i).exists() for i in range(len(SCREEN_SENTENCES))):
        clips = [sf.read(str(_clip_path(Path(clip_dir), spk["id"], i)), dtype="float32")[0] for i in range(len(SCREEN_SENTENCES))]
        rate = CLIP_RATE
    else:
        clips, cpu = render_clips(spk, seed)
        rate = SAMPLE_RATE
        out |= {"audio_s": round(sum(len(a) for a in clips) / rate, 3), "render_cpu_s": round(cpu, 3)}
    hyps = [transcribe(a, rate) for a in clips]
    wavs = [preprocess_wav(soxr.resample(a, rate, CLIP_RATE) if rate != CLIP_RATE else a, source_sr=CLIP_RATE)
            for a in clips[: len(PROBES)]]
    emb = np.mean([_encoder().embed_utterance(w) for w in wavs], axis=0)
    out |= {"wer": round(wer(list(SCREEN_SENTENCES), hyps), 4), "transcripts": hyps,
            "embedding": (emb / np.linalg.norm(emb)).astype(np.float32).tolist()}
    if dnsmos:
        from lab.eval.quality import dnsmos as score

        scores = [score(a, rate) for a in clips]
        out["dnsmos"] = round(float(np.mean([s["ovrl"] for s in scores if s])), 3) if any(scores) else None
    return out


def _speed(results: list[dict]) -> float | None:
    cpu = sum(r.get("render_cpu_s", 0.0) for r in results)
    return round(sum(r.get("audio_s", 0.0) for r in results) / cpu, 3) if cpu else None


def passes(result: dict) -> bool:
    ok = result.get("error") is None and result["wer"] <= MAX_WER
    return ok and (result.get("dnsmos") is None or result["dnsmos"] >= MIN_DNSMOS)


def _save_embeddings(cache: Path, speakers: dict[str, Speaker], results: list[dict], seed: int) -> None:
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        data = np.load(cache)
        known = dict(zip(data["keys"].tolist(), data["vectors"]))
    for r in results:
        if "embedding" in r:
            known[_recipe_key(speakers[r["id"]], seed)] = np.asarray(r["embedding"], np.float32)
    np.savez(cache, keys=np.array(list(known)), vectors=np.array(list(known.values()), dtype=np.float32))


def run_screen(speakers: list[Speaker], out: Path, *, seed: int = 0, jobs: int = 1, dnsmos: bool = False,
               cache: Path | None = None, clip_dir: Path | None = None, log=print) -> dict:
    """Screen `speakers` (resumable); write `out` (JSON: per-speaker scores, kept, dropped, speed).
    `clip_dir`: score the clips `render_clips_to` wrote there (its render.json gives the timings)."""
    partial = out.with_suffix(".partial.jsonl")
    done: dict[str, dict] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            r = json.loads(line)
            done[r["id"]] = r
    todo = [s for s in speakers if s.id not in done]
    log(f"{len(done)} screened before, {len(todo)} to screen")
    start = time.time()
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_screen_init) as pool, \
                partial.open("a") as f:
            futures = {pool.submit(screen_one, s.to_dict(), seed, dnsmos, str(clip_dir) if clip_dir else None): s.id
                       for s in todo}
            for i, fut in enumerate(cf.as_completed(futures)):
                try:
                    r = fut.result()
                except Exception as exc:  # noqa: BLE001 (a candidate that cannot render is dropped, with why)
                    r = {"id": futures[fut], "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                done[r["id"]] = r
                f.write(json.dumps(r) + "\n")
                f.flush()
                if (i + 1) % 10 == 0:
                    log(f"screened {i + 1}/{len(todo)} in {time.time() - start:.0f} s")
    results = [done[s.id] for s in speakers if s.id in done]
    speed = {"here": _speed([r for r in results if "render_cpu_s" in r])}
    if clip_dir is not None and (clip_dir / "render.json").exists():
        timing = json.loads((clip_dir / "render.json").read_text())
        elsewhere = [{**timing["speakers"][r["id"]], **r} for r in results
                     if "render_cpu_s" not in r and r["id"] in timing["speakers"]]
        speed["elsewhere"] = {"processes": timing["jobs"], "audio_s_per_cpu_s": _speed(elsewhere),
                              "audio_s_per_wall_s": round(timing["audio_s"] / timing["wall_s"], 2)}
        results = [{**timing["speakers"].get(r["id"], {}), **r} for r in results]
    if cache is not None:
        _save_embeddings(cache, {s.id: s for s in speakers}, results, seed)
    report = {
        "seed": seed, "max_wer": MAX_WER, "min_dnsmos": MIN_DNSMOS if dnsmos else None,
        "sentences": list(SCREEN_SENTENCES), "asr": "whisper tiny.en (lab.eval.asr)",
        "candidates": len(speakers), "kept": [r["id"] for r in results if passes(r)],
        "dropped": {r["id"]: {k: r[k] for k in ("wer", "dnsmos", "error", "transcripts") if k in r}
                    for r in results if not passes(r)},
        "scores": {r["id"]: {k: r[k] for k in ("wer", "dnsmos") if k in r} for r in results if "error" not in r},
        "wer_all": round(float(np.mean([r["wer"] for r in results if "wer" in r])), 4) if results else None,
        "render_audio_s_per_cpu_s": speed,
    }
    out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report
