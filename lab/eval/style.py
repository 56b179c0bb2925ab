"""Is a clip's speaking style recognizable? Prosodic features, a small classifier, confusion tables.

The six corpus styles (neutral, happy, sad, angry, whisper, calm; `lab.training.corpus.styles`) differ in
F0 level and range, tempo, loudness, spectral tilt, saturation and voicing. `clip_features` measures
those cues on any clip (Praat pitch through parselmouth, frame levels, an average spectrum, intensity
peaks as syllable nuclei, its modulation spectrum). Two classifiers (multinomial logistic regression on
standardized features) are trained on rendered corpus clips of the styled train speakers and stored in
`style_model.json` (`train` renders what is missing with the corpus package and reports held-out tables):

- ``absolute``: the clip's features (speaker-independent: works on any clip, but a low, flat voice
  is easily heard as "sad");
- ``relative``: the differences between the clip's features and those of *neutral* speech of the same
  speaker (another sentence), which removes most of the speaker. Needs that neutral reference.

    python -m lab.eval.style train --corpus data/corpus --audio data/style_corpus    # renders what is missing
    python -m lab.eval.style eval --presets OUT --out OUT/style.json                 # samples/ + presets.json
    python -m lab.eval.style eval --list clips.json --out style.json  # [{"wav", "style", "speaker"?, "text"?}]
"""
from __future__ import annotations

import argparse
import json
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from .audio import METRIC_RATE, frame_rms_db, read_wav, resample

STYLES = ("neutral", "happy", "sad", "angry", "whisper", "calm")  # order of the table rows/columns
FEATURE_VERSION = "style-features-v3"  # bump when a feature's definition changes (the JSON model records it)
FEATURES = ("f0_median_st", "f0_iqr_log2", "f0_range_log2", "f0_std_log2", "f0_velocity_log2", "voiced_fraction",
            "voiced_run_s", "voiced_runs_per_s", "level_std_db", "level_range_db", "crest_db", "centroid_oct",
            "tilt_db", "tilt_voiced_db", "hf_db", "flatness", "hnr_db", "nuclei_per_s", "mod_rate_hz", "pause_fraction")
# Measured and reported but not given to the classifiers: the absolute level separates the corpus styles
# perfectly (the renderer normalizes loudness, then adds the style's gain) but says nothing about a clip
# that was loudness-normalized afterwards, as voice-tuning clips and many outputs are.
DIAGNOSTICS = ("level_db",)
MODEL_PATH = Path(__file__).with_name("style_model.json")

FRAME_S, HOP_S = 0.025, 0.01
ACTIVE_RANGE_DB = 40.0      # active speech: frames within this of the loudest (as the corpus renderer trims)
SILENCE_FLOOR_DB = -70.0    # ... and above this absolute level
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 60.0, 600.0
ST_REF_HZ = 100.0           # semitones are measured from here
MIN_SPREAD_ST = 0.1         # F0 spreads (semitones, or semitones per second) are floored here before log2
TILT_SPLIT_HZ, HF_HZ = 1500.0, 4000.0  # the corpus styles' high shelf sits at 1.5 kHz; saturation adds > 4 kHz
NUCLEUS_PROMINENCE_DB = 3.0  # intensity peaks at least this prominent count as syllable nuclei
NUCLEUS_MIN_GAP_S = 0.08     # at most 12.5 syllables per second
SMOOTH_S = 0.05              # intensity smoothing before peak picking
MIN_VOICED_FRAMES = 3
SECOND_PASS_VOICED_SHARE = 0.25  # below this a clip is mostly unvoiced (whisper): no second pitch pass
MOD_FFT_N, MOD_FFT_FRAMES_MIN, MOD_BAND_HZ = 1024, 25, (1.0, 12.0)
REG_C = 1.0                  # inverse L2 strength of the logistic regression (C in 0.3-3 scored alike)
PARAM_DECIMALS = 6
Z_CLIP = 3.0  # standardized inputs are clipped: a linear model must not extrapolate from outliers (spurious F0 of a whisper)
REFERENCE_DRAWS = 4          # relative model: each train clip against this many single neutral references


# ------------------------------------------------------------------------------------------------ features
def _semitones(hz: np.ndarray) -> np.ndarray:
    return 12 * np.log2(hz / ST_REF_HZ)


def _log2(semitones: float) -> float:
    return float(np.log2(max(semitones, MIN_SPREAD_ST)))


def clip_features(audio, sr: int) -> dict[str, float]:
    """FEATURES (+ DIAGNOSTICS) of one clip; NaN where undefined (pitch of a whisper): the model imputes it."""
    import parselmouth
    from scipy.signal import find_peaks

    x = resample(audio, sr)
    db = frame_rms_db(x, METRIC_RATE, FRAME_S, HOP_S)
    f = dict.fromkeys(FEATURES + DIAGNOSTICS, float("nan"))
    if db.size < 3 or db.max() < SILENCE_FLOOR_DB:
        return f
    active = db > max(db.max() - ACTIVE_RANGE_DB, SILENCE_FLOOR_DB)
    first, last = int(np.argmax(active)), len(active) - int(np.argmax(active[::-1]))
    span_s = max((last - first) * HOP_S, HOP_S)
    level = 10 * np.log10((10 ** (db[active] / 10)).mean())
    f.update(level_db=float(level), level_std_db=float(db[active].std()),
             level_range_db=float(np.percentile(db[active], 95) - np.percentile(db[active], 10)),
             crest_db=float(20 * np.log10(np.abs(x).max() + 1e-10) - level),
             pause_fraction=float(1 - active[first:last].mean()))

    # Pitch (Praat autocorrelation). The voicing share comes from this fixed-range pass; F0 statistics of
    # clearly voiced clips from a second pass within [0.75 q25, 2 q75] of the first (Hirst's two-pass
    # method), as octave jumps would otherwise swamp the range of a single clip.
    sound = parselmouth.Sound(x.astype(np.float64), METRIC_RATE)

    def voicing(floor: float, ceiling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pitch = sound.to_pitch(time_step=HOP_S, pitch_floor=floor, pitch_ceiling=ceiling)
        hz = pitch.selected_array["frequency"]
        idx = np.clip(np.round((pitch.xs() - FRAME_S / 2) / HOP_S).astype(int), 0, len(active) - 1)
        return hz, idx, (hz > 0) & active[idx]

    hz, idx, voiced = voicing(PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    runs = np.sum(np.diff(np.concatenate([[0], voiced.astype(int)])) == 1)
    f.update(voiced_fraction=float(voiced.sum() / max(active[idx].sum(), 1)), voiced_runs_per_s=float(runs / span_s),
             voiced_run_s=float(voiced.sum() * HOP_S / max(runs, 1)))
    if f["voiced_fraction"] >= SECOND_PASS_VOICED_SHARE:
        q25, q75 = np.percentile(hz[voiced], [25, 75])
        hz, idx, voiced = voicing(max(PITCH_FLOOR_HZ / 2, 0.75 * q25), max(2.0 * q75, 1.5 * PITCH_FLOOR_HZ))
    if voiced.sum() >= MIN_VOICED_FRAMES:
        st = _semitones(hz[voiced])
        q10, q25, q50, q75, q90 = np.percentile(st, [10, 25, 50, 75, 90])
        # Spreads in log2: a style scales them (happy x1.5, sad x0.55), so the difference to a reference is a ratio.
        f.update(f0_median_st=float(q50), f0_std_log2=_log2(st.std()), f0_range_log2=_log2(q90 - q10),
                 f0_iqr_log2=_log2(q75 - q25))
        both = voiced[1:] & voiced[:-1]  # consecutive voiced frames: how fast the pitch moves
        if both.any():
            f["f0_velocity_log2"] = _log2(np.median(np.abs(np.diff(_semitones(np.where(hz > 0, hz, ST_REF_HZ))))[both]) / HOP_S)
        hnr = sound.to_harmonicity_cc(time_step=HOP_S, minimum_pitch=PITCH_FLOOR_HZ).values[0]
        hnr = hnr[hnr > -100]  # Praat marks unvoiced frames with -200 dB
        f["hnr_db"] = float(hnr.mean()) if hnr.size else float("nan")

    # Average power spectra (all active frames; voiced ones alone, less dependent on the words' fricatives).
    frame, hop = int(FRAME_S * METRIC_RATE), int(HOP_S * METRIC_RATE)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), frame)[::hop][: len(active)]
    spec = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(frame, 1 / METRIC_RATE)
    low, high = freqs < TILT_SPLIT_HZ, freqs >= TILT_SPLIT_HZ
    mean_spec = spec[active].mean(axis=0)
    f["centroid_oct"] = float(np.log2((freqs * mean_spec).sum() / mean_spec.sum() / ST_REF_HZ))
    f["tilt_db"] = float(10 * np.log10(mean_spec[high].sum() / mean_spec[low].sum()))
    f["hf_db"] = float(10 * np.log10(mean_spec[freqs >= HF_HZ].sum() / mean_spec.sum()))
    f["flatness"] = float(np.mean(np.exp(np.log(spec[active]).mean(axis=1)) / spec[active].mean(axis=1)))
    voiced_frames = np.zeros(len(active), bool)
    voiced_frames[idx[voiced]] = True
    if voiced_frames.sum() >= MIN_VOICED_FRAMES:
        vs = spec[voiced_frames].mean(axis=0)
        f["tilt_voiced_db"] = float(10 * np.log10(vs[high].sum() / vs[low].sum()))

    # Tempo: prominent peaks of the smoothed intensity (syllable nuclei) per second of speech, and the
    # centroid of the intensity envelope's modulation spectrum (syllable rhythm, 1-12 Hz).
    k = max(1, int(SMOOTH_S / HOP_S))
    smooth = np.convolve(db, np.ones(k) / k, mode="same")
    peaks, _ = find_peaks(smooth, prominence=NUCLEUS_PROMINENCE_DB, distance=max(1, int(NUCLEUS_MIN_GAP_S / HOP_S)))
    f["nuclei_per_s"] = float(active[peaks].sum() / span_s)
    env = np.sqrt(10 ** (db[first:last] / 10))
    if env.size >= 2 * MOD_FFT_FRAMES_MIN:
        mod = np.abs(np.fft.rfft((env - env.mean()) * np.hanning(env.size), n=MOD_FFT_N)) ** 2
        mf = np.fft.rfftfreq(MOD_FFT_N, HOP_S)
        band = (mf >= MOD_BAND_HZ[0]) & (mf <= MOD_BAND_HZ[1])
        f["mod_rate_hz"] = float((mf[band] * mod[band]).sum() / (mod[band].sum() + 1e-20))
    return f


def file_features(path: str | Path) -> dict[str, float]:
    return clip_features(*read_wav(path))


def as_vector(feats: dict[str, float]) -> np.ndarray:
    return np.array([feats[name] for name in FEATURES], dtype=np.float64)


def neutral_references(vecs: np.ndarray, speakers: list, styles: list, texts: list | None = None,
                       draw: int | None = None, n: int | None = None) -> np.ndarray:
    """For each of the first ``n`` clips (all by default; the others only serve as references): its speaker's
    neutral clips other than itself and with another text (where texts are known), averaged, or with
    ``draw`` the single one at position (i + draw) among them, as a preset gets one neutral sample. NaN
    where there is none: a clip is never its own reference (its differences would be a free "neutral")."""
    texts = texts if texts is not None else [None] * len(speakers)
    n = len(speakers) if n is None else n
    refs = np.full((n, vecs.shape[1]), np.nan)
    for i in range(n):
        mine = [j for j in range(len(speakers)) if speakers[i] is not None and speakers[j] == speakers[i] and j != i
                and styles[j] == "neutral" and (texts[i] is None or texts[j] != texts[i])]
        if mine and draw is not None:
            refs[i] = vecs[mine[(i + draw) % len(mine)]]
        elif mine:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (pitch of whispers) stay NaN
                refs[i] = np.nanmean(vecs[mine], axis=0)
    return refs


# ------------------------------------------------------------------------------------------------ model
class StyleModel:
    """Standardize, impute missing values with the training mean (0 after scaling), softmax over STYLES."""

    def __init__(self, params: dict):
        self.params = params
        self.mean, self.scale = np.array(params["mean"]), np.array(params["scale"])
        self.coef, self.intercept = np.array(params["coef"]), np.array(params["intercept"])
        self.classes = list(params["classes"])

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = np.clip(np.nan_to_num((np.atleast_2d(x) - self.mean) / self.scale, nan=0.0), -Z_CLIP, Z_CLIP)
        logits = z @ self.coef.T + self.intercept
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.proba(x).argmax(axis=1)]

    @classmethod
    def fit(cls, x: np.ndarray, y: list[str]) -> StyleModel:
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        mean, scale = np.nan_to_num(mean), np.where(scale > 1e-9, scale, 1.0)
        z = np.clip(np.nan_to_num((x - mean) / scale, nan=0.0), -Z_CLIP, Z_CLIP)
        lr = LogisticRegression(C=REG_C, max_iter=5000).fit(z, [STYLES.index(s) for s in y])
        r = lambda a: np.round(a, PARAM_DECIMALS).tolist()  # rounded: a compact JSON
        return cls({"mean": r(mean), "scale": r(scale), "coef": r(lr.coef_), "intercept": r(lr.intercept_),
                    "classes": [STYLES[int(c)] for c in lr.classes_]})


def load_models(path: str | Path = MODEL_PATH) -> dict[str, StyleModel]:
    data = json.loads(Path(path).read_text())
    if data["feature_version"] != FEATURE_VERSION or list(data["features"]) != list(FEATURES):
        raise ValueError(f"{path} holds {data['feature_version']} models; this code computes {FEATURE_VERSION}: retrain")
    return {name: StyleModel(p) for name, p in data["models"].items()}


# ------------------------------------------------------------------------------------------------ tables
def confusion(intended: list[str], predicted: list[str]) -> dict:
    """Counts per (intended, predicted) over all six STYLES (always 6x6, in STYLES order), accuracy, count."""
    labels = list(STYLES)
    matrix = [[sum(1 for i, p in zip(intended, predicted) if i == a and p == b) for b in labels] for a in labels]
    hits = sum(i == p for i, p in zip(intended, predicted))
    return {"labels": labels, "matrix": matrix, "n": len(intended), "accuracy": hits / max(len(intended), 1)}


def markdown_table(conf: dict, title: str = "") -> str:
    """Rows: intended style, columns: predicted; the last column is each row's recall."""
    labels, m = conf["labels"], conf["matrix"]
    lines = [(f"**{title}**: " if title else "") + f"accuracy {conf['accuracy']:.1%} of {conf['n']} clips", "",
             "| intended \\ predicted | " + " | ".join(labels) + " | recall |", "|---" * (len(labels) + 2) + "|"]
    for a, row in zip(labels, m):
        recall = f"{row[labels.index(a)] / sum(row):.0%}" if sum(row) else "-"
        lines.append(f"| {a} | " + " | ".join(str(v) for v in row) + f" | {recall} |")
    return "\n".join(lines)


def classify(items: list[dict], models: dict[str, StyleModel] | None = None, mode: str = "auto") -> dict:
    """items: {"wav", "style", "speaker"?, "text"?}. ``auto``: the relative model where the clip's speaker
    has another neutral clip among the items (averaged when several), the absolute one elsewhere."""
    models = models or load_models()
    feats = [file_features(it["wav"]) for it in items]
    vecs = np.stack([as_vector(f) for f in feats])
    refs = neutral_references(vecs, [it.get("speaker") for it in items], [it["style"] for it in items],
                              [it.get("text") for it in items])
    rows = []
    for it, f, vec, ref in zip(items, feats, vecs, refs):
        use = "absolute" if mode == "absolute" or (mode == "auto" and np.isnan(ref).all()) else "relative"
        model = models[use]
        probs = model.proba(vec if use == "absolute" else vec - ref)[0]
        rows.append({"id": it.get("id", Path(it["wav"]).stem), "wav": str(it["wav"]), "speaker": it.get("speaker"),
                     "intended": it["style"], "model": use, "predicted": model.classes[int(probs.argmax())],
                     "p": {c: round(float(p), 4) for c, p in zip(model.classes, probs)},
                     "features": {k: round(v, 4) for k, v in f.items() if np.isfinite(v)}})
    result = {"feature_version": FEATURE_VERSION, "mode": mode, "clips": rows,
              "overall": confusion([r["intended"] for r in rows], [r["predicted"] for r in rows])}
    for use in ("absolute", "relative"):
        picked = [r for r in rows if r["model"] == use]
        if picked and len(picked) < len(rows):
            result[use] = confusion([r["intended"] for r in picked], [r["predicted"] for r in picked])
    return result


def preset_items(folder: str | Path) -> list[dict]:
    """make_presets output (presets.json + samples/): one item per preset with a sample and a known style."""
    folder = Path(folder)
    return [{"wav": folder / p["sample"], "style": p["style"], "speaker": p.get("speaker"), "id": p["id"]}
            for p in json.loads((folder / "presets.json").read_text()) if p.get("sample") and p.get("style") in STYLES]


# ------------------------------------------------------------------------------------------------ training
def corpus_rows(corpus: Path, split: str, per_cell: int | None) -> list[dict]:
    """Rows of the styled speakers (rows in all six styles) of a split, the first ``per_cell`` ids of each
    (speaker, style): the same sentences in every style, as the corpus has them."""
    from lab.training.corpus.manifest import read_jsonl

    path = next(p for p in (corpus / f"{split}.jsonl", corpus / f"{split}.jsonl.gz") if p.exists())
    cells = defaultdict(list)
    for row in read_jsonl(path):
        cells[(row["speaker"], row["style"])].append(row)
    styled = {spk for spk, _ in cells if all((spk, s) in cells for s in STYLES)}
    return [r for (spk, _), rows in sorted(cells.items()) if spk in styled
            for r in sorted(rows, key=lambda r: r["id"])[:per_cell]]


def corpus_features(rows: list[dict], audio: Path, jobs: int) -> np.ndarray:
    """Renders missing clips into ``audio`` (corpus renderer), then features, cached in ``audio``/features.json."""
    from lab.training.corpus.generate import audio_path, render_manifest
    from lab.training.corpus.manifest import write_jsonl

    missing = [r for r in rows if not audio_path(audio, r).exists()]
    if missing:
        write_jsonl(audio / "style_missing.jsonl", missing)
        print(render_manifest([audio / "style_missing.jsonl"], audio, jobs=jobs), flush=True)
    cache_path = audio / "features.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    cache = cache if cache.get("version") == FEATURE_VERSION else {"version": FEATURE_VERSION}
    todo = [r for r in rows if r["id"] not in cache]
    for n, r in enumerate(todo, 1):
        cache[r["id"]] = file_features(audio_path(audio, r))
        if n % 200 == 0 or n == len(todo):  # saved as it goes: a long run can be resumed
            print(f"features {n}/{len(todo)}", flush=True)
            cache_path.write_text(json.dumps(cache))
    return np.stack([as_vector(cache[r["id"]]) for r in rows])


def _inputs(kind: str, vecs, rows, pool=None, draws=(0,)) -> tuple[np.ndarray, list[str]]:
    """Model inputs of ``rows``: features, or differences to single neutral references (from ``rows`` and
    the ``pool`` (vecs, rows) of other clips), one copy per draw."""
    if kind == "absolute":
        return vecs, [r["style"] for r in rows]
    every, all_rows = (vecs, rows) if pool is None else (np.concatenate([vecs, pool[0]]), rows + pool[1])
    keys = [[r[k] for r in all_rows] for k in ("speaker", "style", "sentence")]
    x = np.concatenate([vecs - neutral_references(every, *keys, draw=d, n=len(rows)) for d in draws])
    return x, [r["style"] for r in rows] * len(draws)


def train(corpus: Path, audio: Path, per_cell: int, out: Path, jobs: int = 2, heldout_per_cell: int | None = 30) -> dict:
    """Fits both models on train rows; held-out tables on validation, test (its styled speaker is unseen)
    and leave-one-speaker-out over the train speakers. Held-out clips get one neutral reference each."""
    data = {}
    for split in ("train", "validation", "test"):
        rows = corpus_rows(corpus, split, per_cell if split == "train" else heldout_per_cell)
        data[split] = (corpus_features(rows, audio, jobs), rows)
    vecs, rows = data["train"]
    draws = range(REFERENCE_DRAWS)
    models, report = {}, {}
    for kind in ("absolute", "relative"):
        models[kind] = StyleModel.fit(*_inputs(kind, vecs, rows, draws=draws))
        for split in ("validation", "test"):  # validation speakers are train speakers: their train clips may be references
            if data[split][1]:
                x, y = _inputs(kind, *data[split], pool=data["train"] if split == "validation" else None)
                report[f"{kind}/{split}"] = confusion(y, models[kind].predict(x))
        true, pred = [], []
        for held in sorted({r["speaker"] for r in rows}):  # the speaker-independent estimate
            fit = [i for i, r in enumerate(rows) if r["speaker"] != held]
            test = [i for i, r in enumerate(rows) if r["speaker"] == held]
            model = StyleModel.fit(*_inputs(kind, vecs[fit], [rows[i] for i in fit], draws=draws))
            x, y = _inputs(kind, vecs[test], [rows[i] for i in test])
            true, pred = true + y, pred + model.predict(x)
        report[f"{kind}/train-leave-one-speaker-out"] = confusion(true, pred)
    print("\n\n".join(markdown_table(c, k) for k, c in report.items()))
    speakers = {split: sorted({r["speaker"] for r in data[split][1]}) for split in data}
    out.write_text(json.dumps({
        "feature_version": FEATURE_VERSION, "features": list(FEATURES), "styles": list(STYLES),
        "trained_on": {"clips": len(rows), "per_cell": per_cell, "heldout_per_cell": heldout_per_cell, "speakers": speakers},
        "models": {k: m.params for k, m in models.items()},
        "heldout": {k: {"accuracy": round(c["accuracy"], 4), "n": c["n"], "labels": c["labels"], "matrix": c["matrix"]}
                    for k, c in report.items()}}, indent=1) + "\n")
    return report


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.eval.style", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="render corpus clips of the styled speakers, fit, write the model JSON")
    t.add_argument("--corpus", type=Path, default=Path("data/corpus"), help="folder of {train,validation,test}.jsonl[.gz]")
    t.add_argument("--audio", type=Path, default=Path("data/style_corpus"), help="where clips are rendered/cached")
    t.add_argument("--per-cell", type=int, default=24, help="train clips per (speaker, style)")
    t.add_argument("--heldout-per-cell", type=int, default=30, help="validation/test clips per (speaker, style)")
    t.add_argument("--model", type=Path, default=MODEL_PATH)
    t.add_argument("--jobs", type=int, default=2)
    e = sub.add_parser("eval", help="confusion table of intended vs recognized style")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--presets", type=Path, help="make_presets output folder (presets.json + samples/)")
    src.add_argument("--list", type=Path, help='JSON list of {"wav", "style", "speaker"?, "text"?}; wav paths relative to it')
    e.add_argument("--mode", choices=("auto", "absolute", "relative"), default="auto")
    e.add_argument("--model", type=Path, default=MODEL_PATH)
    e.add_argument("--out", type=Path, help="write the JSON result here")
    args = p.parse_args(argv)
    if args.cmd == "train":
        train(args.corpus, args.audio, args.per_cell, args.model, args.jobs, args.heldout_per_cell)
        return 0
    items = preset_items(args.presets) if args.presets else \
        [dict(it, wav=args.list.parent / it["wav"]) for it in json.loads(args.list.read_text())]
    result = classify(items, load_models(args.model), args.mode)
    parts = [markdown_table(result["overall"], f"style recognition ({args.mode})")]
    parts += [markdown_table(result[k], f"{k} model") for k in ("absolute", "relative") if k in result]
    parts.append("| clip | speaker | intended | predicted | p(intended) | model |\n|---|---|---|---|---|---|\n" + "\n".join(
        f"| {c['id']} | {c['speaker'] or '-'} | {c['intended']} | {c['predicted']} | {c['p'][c['intended']]:.2f} | {c['model']} |"
        for c in result["clips"]))
    print("\n\n".join(parts))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
