"""What `lab.bench.report` reads and how it writes a cell: the result files, merged throughput rows,
rates, ratios, statuses of rows that have no number, markdown tables."""
from __future__ import annotations

import json
from pathlib import Path

NAMES = ("throughput", "throughput1", "throughput2", "latency", "latency_fla", "codec_gpu", "cpu_embedded")
GLA_ORDER = ("gla_eager", "gla_graph", "gla_graph_fla", "gla_graph_compile", "gla_graph_compile_fla")
NM = "not measured"


def load(results: Path) -> dict[str, dict]:
    """``{stem: document}`` of the known result files in ``results`` (unreadable ones are reported, skipped)."""
    found = {}
    for path in sorted(results.glob("*.json")):
        if path.stem in NAMES or path.stem.startswith("check_"):
            try:
                found[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                print(f"skipped {path.name}: {error}")
    return found


def merge_throughput(found: dict) -> dict | None:
    """One throughput document from throughput{,1,2}.json: rows keyed by (batch, tokens), sorted."""
    docs = [found[k] for k in ("throughput", "throughput1", "throughput2") if k in found]
    if not docs:
        return None
    batches, lengths, meta = {}, {}, {}
    for doc in docs:
        meta.update({k: v for k, v in doc.items() if k not in ("batches", "lengths")})
        batches.update({(e["batch"], e["tokens"]): e for e in doc.get("batches", [])})
        lengths.update({(e["batch"], e["tokens"]): e for e in doc.get("lengths", [])})
    meta["smoke"] = any(d.get("smoke") for d in docs)
    return {**meta, "batches": [batches[k] for k in sorted(batches)], "lengths": [lengths[k] for k in sorted(lengths)]}


# ---- cells -------------------------------------------------------------------------------------------
def gla_variants(entries: list[dict]) -> list[str]:
    names = {k for e in entries for k, v in e.items() if k.startswith("gla_") and isinstance(v, dict)}
    return [v for v in GLA_ORDER if v in names] + sorted(names - set(GLA_ORDER))


def rate(r: dict | None) -> float | None:
    return r["tokens_per_s"] if isinstance(r, dict) and "tokens_per_s" in r else None


def best_gla(entry: dict) -> str | None:
    rates = {k: rate(v) for k, v in entry.items() if k.startswith("gla_") and rate(v) is not None}
    return max(rates, key=rates.get) if rates else None


def ratio(entry: dict) -> float | None:
    best, sa = best_gla(entry), rate(entry.get("sa_eager"))
    return entry[best]["tokens_per_s"] / sa if best and sa else None


def num(x, fmt: str = ",.0f", missing: str = "-") -> str:
    return missing if x is None else format(x, fmt)


def status(r: dict | None) -> str:
    """A cell for a measurement that has no number: why."""
    if not isinstance(r, dict):
        return NM
    for key in ("error", "skipped"):
        if key in r:
            return f"{'failed' if key == 'error' else 'skipped'}: {str(r[key])[:60]}"
    return "-"


def rate_cell(r: dict | None) -> str:
    return num(rate(r)) if rate(r) is not None else status(r)


def peak(r: dict | None) -> float | None:
    return r.get("peak_mib") if isinstance(r, dict) else None


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def dtype_name(d) -> str:
    return str(d).replace("torch.", "")


def smoke_note(doc: dict | None) -> str:
    return " (smoke run: tiny model, not a measurement)" if doc and doc.get("smoke") else ""
