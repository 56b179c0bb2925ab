"""Drop near-duplicate speakers: resemblyzer speaker embeddings, cosine > 0.85 means the same voice.

Each candidate speaker reads a few fixed probe sentences (neutral); its embedding is the normalized mean
of the utterance embeddings. Speakers are visited base voices first, then by id; a speaker is kept when
its cosine to every kept speaker is at most the threshold. The result (kept, dropped with the speaker
it duplicates and the cosine) is a JSON file that `build` applies (`--drop FILE`; the committed file
for seed 0 is applied by default). resemblyzer is optional: without it, `dedup` says so and stops.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
from pathlib import Path

import numpy as np

from .generate import SAMPLE_RATE, _worker_init, render_row
from .manifest import utterance_seed
from .speakers import Speaker

THRESHOLD = 0.85
PROBES = (
    "the old lighthouse keeper climbed the stairs every evening to light the lamp.",
    "she asked whether the train to the coast would leave on time tomorrow morning.",
    "a warm breeze carried the smell of bread from the bakery across the square.",
)
COMMITTED = Path(__file__).with_name("dedup_seed{seed}.json")
COMMITTED_V2 = Path(__file__).with_name("dedup_v2_seed{seed}.json")
SCREEN_V2 = Path(__file__).with_name("screen_kokoro_seed{seed}.json")


class DedupUnavailable(RuntimeError):
    pass


def resemblyzer_encoder():
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise DedupUnavailable(
            "resemblyzer is not installed, so speakers cannot be de-duplicated here "
            "(pip install --no-deps resemblyzer==0.1.4 webrtcvad-wheels librosa; see scripts/corpus_setup.sh)"
        ) from exc
    return VoiceEncoder(device="cpu", verbose=False)


def _probe_audio(spk: dict, seed: int) -> list[np.ndarray]:
    rows = [{"id": f"{spk['id']}_probe{i}", "spk": spk, "style": "neutral", "text": text,
             "seed": utterance_seed(seed, f"{spk['id']}_probe{i}")} for i, text in enumerate(PROBES)]
    return [render_row(r) for r in rows]


def _probe_embedding(spk: dict, seed: int) -> np.ndarray:
    """Render the probes and embed them in the worker (resemblyzer's LSTM is small: one thread each)."""
    import soxr
    import torch
    from resemblyzer import preprocess_wav

    torch.set_num_threads(1)
    encoder = _encoder()
    wavs = [preprocess_wav(soxr.resample(w, SAMPLE_RATE, 16000), source_sr=16000) for w in _probe_audio(spk, seed)]
    emb = np.mean([encoder.embed_utterance(w) for w in wavs], axis=0)
    return emb / np.linalg.norm(emb)


_ENCODER = None


def _encoder():
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = resemblyzer_encoder()
    return _ENCODER


def _recipe_key(spk: Speaker, seed: int) -> str:
    text = json.dumps([spk.to_dict(), PROBES, seed], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def embed_speakers(speakers: list[Speaker], seed: int = 0, jobs: int = 1, cache: Path | None = None,
                   log=print) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(speaker id -> unit-norm embedding, speaker id -> error for those that failed to render); probes
    are rendered and embedded over `jobs` processes. `cache` (.npz): unchanged recipes are reused."""
    keys = {s.id: _recipe_key(s, seed) for s in speakers}
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        data = np.load(cache)
        known = dict(zip(data["keys"].tolist(), data["vectors"]))
    out = {s.id: known[keys[s.id]] for s in speakers if keys[s.id] in known}
    todo = [s for s in speakers if s.id not in out]
    log(f"{len(out)} embeddings cached, {len(todo)} to compute")
    failed: dict[str, str] = {}
    if todo:
        resemblyzer_encoder()  # fails early, with the reason, when resemblyzer is missing
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(_probe_embedding, s.to_dict(), seed): s.id for s in todo}
            for i, fut in enumerate(cf.as_completed(futures)):
                try:
                    out[futures[fut]] = fut.result()
                except Exception as exc:  # noqa: BLE001 (a speaker that cannot render is dropped, with why)
                    failed[futures[fut]] = f"{type(exc).__name__}: {str(exc)[:300]}"
                    log(f"{futures[fut]}: {failed[futures[fut]]}")
                if (i + 1) % 50 == 0:
                    log(f"embedded {i + 1}/{len(todo)} speakers")
    if cache is not None:
        known.update({keys[k]: v for k, v in out.items()})
        np.savez(cache, keys=np.array(list(known)), vectors=np.array(list(known.values()), dtype=np.float32))
    return out, failed


def select(speakers: list[Speaker], embeddings: dict[str, np.ndarray], threshold: float = THRESHOLD) -> dict:
    """Greedy: base voices first (they anchor their families), then derived ones in inventory order."""
    order = [s for s in speakers if not s.derived] + [s for s in speakers if s.derived]
    kept: list[str] = []
    dropped: dict[str, dict] = {}
    for s in order:
        e = embeddings[s.id]
        sims = [(float(e @ embeddings[k]), k) for k in kept]
        best = max(sims, default=(-1.0, None))
        if best[0] > threshold:
            dropped[s.id] = {"duplicates": best[1], "cosine": round(best[0], 4)}
        else:
            kept.append(s.id)
    return {"threshold": threshold, "kept": kept, "dropped": dropped}


def run_dedup(speakers: list[Speaker], out: Path, seed: int = 0, jobs: int = 1, log=print) -> dict:
    embeddings, failed = embed_speakers(speakers, seed, jobs, cache=out.with_suffix(".embeddings.npz"), log=log)
    result = select([s for s in speakers if s.id in embeddings], embeddings)
    result["dropped"].update({k: {"error": v} for k, v in failed.items()})
    ids = [s.id for s in speakers if s.id in embeddings]
    sims = np.array([[float(embeddings[a] @ embeddings[b]) for b in ids] for a in ids])
    result["seed"] = seed
    result["per_engine"] = {e: {"candidates": sum(s.engine == e for s in speakers),
                                "errors": sum(s.engine == e and s.id in failed for s in speakers),
                                "kept": sum(s.engine == e and s.id in result["kept"] for s in speakers)}
                            for e in sorted({s.engine for s in speakers})}
    off = sims[~np.eye(len(ids), dtype=bool)]
    result["cosine_stats"] = {"mean": round(float(off.mean()), 4), "p95": round(float(np.percentile(off, 95)), 4),
                              "max": round(float(off.max()), 4)}
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def load_dropped(path: Path) -> set[str]:
    return set(json.loads(path.read_text())["dropped"])


# ------------------------------------------------------------------------------------------------ v2
def v2_cache(seed: int = 0) -> Path:
    """Embeddings of the v2 dedup (the screen writes the Kokoro ones): beside the result, not committed."""
    return Path(str(COMMITTED_V2).format(seed=seed)).with_suffix(".embeddings.npz")


def run_dedup_v2(candidates: list[Speaker], out: Path, seed: int = 0, jobs: int = 1, log=print) -> dict:
    """De-duplicate v2's speakers across engines: v1's kept speakers (its committed result) and the
    Kokoro candidates that passed the WER screen (`screen`), with the same rule. Every candidate of
    `candidates` ends in `kept` or `dropped`, the dropped ones with the stage that dropped them."""
    v1 = json.loads(Path(str(COMMITTED).format(seed=seed)).read_text())
    screen = json.loads(Path(str(SCREEN_V2).format(seed=seed)).read_text())
    passed = set(screen["kept"])
    pool = [s for s in candidates if s.id in v1["kept"] or (s.engine == "kokoro" and s.id in passed)]
    embeddings, failed = embed_speakers(pool, seed, jobs, cache=v2_cache(seed), log=log)
    result = select([s for s in pool if s.id in embeddings], embeddings)
    result["dropped"].update({k: {"error": v} for k, v in failed.items()})
    for s in candidates:
        if s.id in v1["dropped"]:
            result["dropped"][s.id] = {**v1["dropped"][s.id], "stage": "v1 dedup"}
        elif s.engine == "kokoro" and s.id not in passed:
            result["dropped"][s.id] = {"stage": "wer screen", "wer": screen["dropped"].get(s.id, {}).get("wer")}
    result["seed"] = seed
    result["per_engine"] = {e: {"candidates": sum(s.engine == e for s in candidates),
                                "screened_or_v1_kept": sum(s.engine == e for s in pool),
                                "kept": sum(s.engine == e and s.id in result["kept"] for s in candidates)}
                            for e in sorted({s.engine for s in candidates})}
    ids = [s.id for s in pool if s.id in embeddings]
    sims = np.array([[float(embeddings[a] @ embeddings[b]) for b in ids] for a in ids])
    off = sims[~np.eye(len(ids), dtype=bool)]
    result["cosine_stats"] = {"mean": round(float(off.mean()), 4), "p95": round(float(np.percentile(off, 95)), 4),
                              "max": round(float(off.max()), 4)}
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result
