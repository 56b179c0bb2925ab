"""The speed targets, met or missed, from the result documents `lab.bench.report` has read."""
from __future__ import annotations

from lab.bench.report_data import NM, best_gla, dtype_name, num, rate, ratio, table


def _status(value, ok: bool, smoke: bool) -> str:
    if value is None:
        return NM
    return ("met" if ok else "missed") + (" (smoke run)" if smoke else "")


def _entry(tp: dict | None, batch: int, tokens: int | None = None) -> dict | None:
    """The (batch, tokens) row of the batch or length table (any tokens if ``None``), the best one."""
    rows = [e for e in (tp or {}).get("batches", []) + (tp or {}).get("lengths", [])
            if e["batch"] == batch and (tokens is None or e["tokens"] == tokens) and best_gla(e)]
    return max(rows, key=lambda e: rate(e[best_gla(e)]), default=None)


def _batch1(tp: dict | None, found: dict) -> tuple[float | None, str, bool]:
    lat = found.get("latency") or {}
    cands = [(r["tokens_per_s"], f"latency.json {dtype_name(r['dtype'])} {r['mode']}", bool(lat.get("smoke")))
             for r in lat.get("steps", []) if "tokens_per_s" in r]
    e = _entry(tp, 1)
    if e:
        cands.append((rate(e[best_gla(e)]), f"throughput {best_gla(e)}, {e['tokens']} tokens", bool(tp.get("smoke"))))
    return max(cands, default=(None, "no latency.json steps or batch-1 throughput row", False))


def _ratio_row(tp: dict | None, tokens: int, want: float) -> list[str]:
    e = _entry(tp, 64, tokens)
    value = ratio(e) if e else None
    where = (f"{best_gla(e)} {num(rate(e[best_gla(e)]))} vs SA {num(rate(e.get('sa_eager')))} tok/s" if value
             else "no batch-64 row with GLA and SA")
    return [f"GLA >= {want:g}x SA at batch 64, {tokens} tokens", num(value, ".2f"),
            _status(value, value is not None and value >= want, bool(tp and tp.get("smoke"))), where]


def _cpu(found: dict) -> tuple[dict | None, list[dict]]:
    cpu = found.get("cpu_embedded")
    runs = (cpu or {}).get("runs", [])
    run = next((r for r in runs if r.get("threads") == 1), runs[0] if runs else None)
    return cpu, (run or {}).get("rows", [])


def targets_table(tp: dict | None, found: dict, ist_rows: list[list]) -> list[str]:
    rows = []
    value, where, smoke = _batch1(tp, found)
    rows.append(["batch 1 >= 1,500 tok/s", num(value), _status(value, value is not None and value >= 1500, smoke),
                 where])
    e = _entry(tp, 256)
    value = rate(e[best_gla(e)]) if e else None
    rows.append(["batch 256 >= 50,000 tok/s", num(value), _status(value, value is not None and value >= 50000,
                                                                   bool(tp and tp.get("smoke"))),
                 f"{best_gla(e)}, {e['tokens']} tokens" if e else "no batch-256 GLA row"])
    rows.append(_ratio_row(tp, 1500, 2))
    rows.append(_ratio_row(tp, 3000, 3))
    ist = [(r["ms_per_step"] / 10, key, r) for key, r in ist_rows if "ms_per_step" in r]
    s100, key, r = min(ist, key=lambda x: x[0], default=(None, "", {}))
    rows.append(["IST 100 steps <= 5 s", num(s100, ".2f"),
                 _status(s100, s100 is not None and s100 <= 5, bool(found.get(key, {}).get("smoke"))),
                 f"{key}: {'fla' if r['use_fla'] else 'torch'}, batch {r['batch']}, {r['clip_tokens']}-token clips"
                 + ("" if r["steps"] == 100 else f", from {r['steps']} step(s)") if r else "no IST row"])
    cpu, sentences = _cpu(found)
    smoke, what = bool(cpu and cpu.get("smoke")), f"{len(sentences)} sentence(s), worst, 1 thread or the first run"
    value = max((x["rtf"] for x in sentences), default=None)
    rows.append(["CPU real-time factor <= 0.5", num(value, ".3f"), _status(value, value is not None and value <= 0.5,
                                                                          smoke), what if sentences else "no cpu_embedded.json"])
    value = max((x["first_audio_ms"] / 1000 for x in sentences), default=None)
    rows.append(["CPU first audio <= 1.5 s", num(value, ".3f"), _status(value, value is not None and value <= 1.5,
                                                                      smoke), what if sentences else "no cpu_embedded.json"])
    return table(["target", "value", "status", "from"], rows)
