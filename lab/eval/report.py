"""Aggregation per case, threshold checks, ``results.json`` and ``results.md``.

``results.json`` keeps what is reproducible (``summary``, ``items``: same model, list, seed and
tools give the same numbers) apart from what is not (``timing``: wall times and real-time factors).
"""
from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lab.eval.asr import ASR_MODELS, DEFAULT_ASR
from lab.eval.runner import MODEL_CASES, ItemResult, RunResult
from lab.eval.speaker import SIMILARITY_LABEL

FORMAT, VERSION = "lina-eval-results", 1
UPPER_BOUNDS = ("reference", "codec")


@dataclass(frozen=True)
class Thresholds:
    """Limits applied to every model case (plain, prompt, ist, preset:*); None: not checked."""

    max_wer: float | None = None
    max_cer: float | None = None
    min_similarity: float | None = None
    min_dnsmos: float | None = None
    max_runaway: float | None = None
    max_empty: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())


_CHECKS = (  # threshold field, summary key, direction
    ("max_wer", "wer", "max"), ("max_cer", "cer", "max"), ("min_similarity", "similarity", "min"),
    ("min_dnsmos", "dnsmos", "min"), ("max_runaway", "runaway", "max"), ("max_empty", "empty", "max"),
)


def _mean(values) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(vals)) if vals else None


def _share(flags) -> float | None:
    vals = [bool(f) for f in flags if f is not None]
    return sum(vals) / len(vals) if vals else None


def summarize_case(items: list[ItemResult]) -> dict:
    """Corpus-level WER/CER (total edits / total words), means of the rest, shares of the flags."""
    from lab.eval.scoring import cer, wer

    scored = [i for i in items if i.transcript is not None]
    out = {
        "n": len(items),
        "wer": wer([i.text for i in scored], [i.transcript for i in scored]) if scored else None,
        "cer": cer([i.text for i in scored], [i.transcript for i in scored]) if scored else None,
        "similarity": _mean(i.similarity for i in items),
        "dnsmos": _mean((i.dnsmos or {}).get("ovrl") for i in items),
        "dnsmos_sig": _mean((i.dnsmos or {}).get("sig") for i in items),
        "dnsmos_bak": _mean((i.dnsmos or {}).get("bak") for i in items),
        "dnsmos_p808": _mean((i.dnsmos or {}).get("p808") for i in items),
        "runaway": _share(i.runaway for i in items),
        "empty": _share(i.silent for i in items),
        "seconds": float(sum(i.seconds for i in items)),
    }
    for key in ("pesq_wb", "stoi", "mcd"):
        out[key] = _mean((i.signal or {}).get(key) for i in items)
    return out


def summarize(result: RunResult) -> dict[str, dict]:
    cases = list(dict.fromkeys(i.case for i in result.items))
    return {c: summarize_case([i for i in result.items if i.case == c]) for c in cases}


def timing(result: RunResult) -> dict:
    per_case = {}
    for case in dict.fromkeys(i.case for i in result.items):
        timed = [i for i in result.items if i.case == case and i.compute_seconds is not None]
        if timed:
            compute = sum(i.compute_seconds for i in timed)
            per_case[case] = {"compute_seconds": round(compute, 3),
                              "rtf": round(compute / max(sum(i.seconds for i in timed), 1e-9), 4)}
    return per_case


def is_model_case(case: str) -> bool:
    return case.split(":")[0] in MODEL_CASES


def check(summary: dict[str, dict], limits: Thresholds) -> list[dict]:
    """One entry per (model case, set threshold): value, limit, ok. An unmeasured value fails."""
    checks = []
    for case, s in summary.items():
        if not is_model_case(case):
            continue
        for field_name, key, direction in _CHECKS:
            limit = getattr(limits, field_name)
            if limit is None:
                continue
            value = s.get(key)
            ok = value is not None and (value <= limit if direction == "max" else value >= limit)
            checks.append({"case": case, "metric": key, "value": value, "limit": limit,
                           "direction": direction, "ok": bool(ok)})
    return checks


def _round(x, nd: int = 4):
    if isinstance(x, float):
        return round(x, nd) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, nd) for v in x]
    return x


def build(result: RunResult, run_info: dict, limits: Thresholds = Thresholds(), total_seconds: float | None = None) -> dict:
    summary = summarize(result)
    checks = check(summary, limits)
    items = []
    for i in result.items:
        d = asdict(i)
        d["runaway"] = i.runaway
        for key in ("compute_seconds", "rtf"):
            d.pop(key)
        items.append(d)
    tuning = {spk: {k: v for k, v in t.items() if k != "seconds"} for spk, t in result.tuning.items()}
    return _round({
        "format": FORMAT, "version": VERSION,
        "run": {**run_info, "similarity_label": SIMILARITY_LABEL, "python": platform.python_version()},
        "summary": summary,
        "thresholds": {k: v for k, v in asdict(limits).items() if v is not None},
        "checks": checks,
        "passed": all(c["ok"] for c in checks),
        "tuning": tuning,
        "items": items,
        "notes": result.notes,
        "unavailable": result.unavailable,
        "timing": {"total_seconds": total_seconds, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "cases": timing(result),
                   "tuning_seconds": {spk: t.get("seconds") for spk, t in result.tuning.items()},
                   "items": {f"{i.case}/{i.utterance}": {"compute_seconds": i.compute_seconds, "rtf": i.rtf}
                             for i in result.items if i.compute_seconds is not None}},
    })


def _cell(x, fmt: str = "{:.3f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def markdown(report: dict) -> str:
    run, summary, t = report["run"], report["summary"], report["timing"]["cases"]
    lines = [f"# Evaluation: {run.get('model')} on {run.get('testlist')}", "",
             (f"Model `{run.get('model_id')}` ({run.get('model_description', '')}); test list "
              f"`{run.get('testlist')}`: {run.get('testlist_description', '')}; seed {run.get('seed')}; "
              f"{report['timing'].get('date')}."), "",
             "| case | n | WER | CER | speaker sim¹ | DNSMOS OVRL | runaway | empty | RTF | PESQ-wb | STOI | MCD dB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, s in summary.items():
        name = f"{case} (upper bound)" if case in UPPER_BOUNDS else case
        rtf = t.get(case, {}).get("rtf")
        lines.append("| " + " | ".join([
            name, str(s["n"]), _cell(s["wer"]), _cell(s["cer"]), _cell(s["similarity"]), _cell(s["dnsmos"], "{:.2f}"),
            _cell(s["runaway"], "{:.0%}"), _cell(s["empty"], "{:.0%}"), _cell(rtf, "{:.2f}"),
            _cell(s["pesq_wb"], "{:.2f}"), _cell(s["stoi"], "{:.3f}"), _cell(s["mcd"], "{:.2f}")]) + " |")
    lines += ["", (f"¹ {run['similarity_label']}: cosine to the mean embedding of the target speaker's "
                   "enrollment clips (plain TTS: the no-cloning baseline)."),
              (f"WER/CER: {run.get('asr_description', ASR_MODELS[DEFAULT_ASR].description)}, corpus level, "
               "normalized text (numbers as words, no punctuation). DNSMOS: P.835 overall (speechmos). Runaway: no EOS before the length cap. Empty: "
               "less than 0.2 s above -50 dBFS. RTF: wall time / audio duration on this machine (not "
               "reproducible). PESQ-wb, STOI, MCD: codec round-trip against the clip."), ""]
    if report["tuning"]:
        lines += ["IST: " + "; ".join(f"{spk}: {v['clips']} clips, {v['audio_seconds']} s, {v['steps']} steps, "
                                      f"loss {v['first_loss']} -> {v['last_loss']}"
                                      for spk, v in report["tuning"].items()), ""]
    if report["checks"]:
        lines += ["## Checks: " + ("PASSED" if report["passed"] else "FAILED"), "",
                  "| case | metric | value | limit | ok |", "|---|---|---|---|---|"]
        for c in report["checks"]:
            op = "<=" if c["direction"] == "max" else ">="
            lines.append(f"| {c['case']} | {c['metric']} | {_cell(c['value'])} | {op} {c['limit']} | "
                         f"{'yes' if c['ok'] else '**no**'} |")
        lines.append("")
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    lines += ["## Utterances", "", "| case | utterance | WER | sim | DNSMOS | flags | transcript |",
              "|---|---|---|---|---|---|---|"]
    for i in report["items"]:
        flags = " ".join(f for f, on in (("silent", i["silent"]), ("runaway", i["runaway"])) if on)
        transcript = (i["transcript"] or "").replace("|", "/")
        lines.append(f"| {i['case']} | {i['utterance']} | {_cell(i['wer'])} | {_cell(i['similarity'])} | "
                     f"{_cell((i['dnsmos'] or {}).get('ovrl'), '{:.2f}')} | {flags} | {transcript} |")
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "results.json", out / "results.md"
    js.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(markdown(report), encoding="utf-8")
    return js, md
