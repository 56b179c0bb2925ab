"""The speed report: markdown tables (and a plot) from the JSON files the benches wrote.

    python -m lab.bench.report --results out [--out-md out/report.md] [--plot out/throughput.png]

Reads whichever of these exist in ``--results``: ``throughput.json``, ``throughput1.json``,
``throughput2.json`` (`lab.bench.throughput`; rows of later files replace equal (batch, tokens) rows of
earlier ones), ``latency.json``, ``latency_fla.json`` (`lab.bench.latency`), ``codec_gpu.json``
(`lab/bench/codec_speed.py`), ``cpu_embedded.json`` (`lab.bench.cpu_embedded`) and ``check_*.json`` (the
tiny-model GPU check of `lab/scripts/gpu_bench.sh check`). A missing file or row reads "not measured".
Tables: sources, throughput vs batch, length at batch 64, batch-1 latency, time to first audio,
prefill, IST, codec, the embedded model on the CPU, the GPU check, and the speed targets
(`lab.bench.report_targets`). The plot (`lab.bench.report_plot`): throughput vs batch, peak memory vs length.
Only the standard library and matplotlib: no torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lab.bench.floor import bandwidth_of, config_of, floor
from lab.bench.report_data import (
    NM,
    best_gla,
    dtype_name,
    gla_variants,
    load,
    merge_throughput,
    num,
    peak,
    rate,
    rate_cell,
    ratio,
    smoke_note,
    status,
    table,
)
from lab.bench.report_targets import targets_table

MODE_ORDER = ("eager", "graph", "compile")
BATCHES, LENGTHS, LENGTH_BATCH = (1, 4, 16, 64, 256), (500, 1500, 3000), 64


# ---- sections ----------------------------------------------------------------------------------------
def sources(found: dict) -> list[str]:
    rows = [[f"{k}.json", str(d.get("device", d.get("cpu", "-"))), dtype_name(d.get("dtype", "-")), str(d.get("smoke", False)),
             str(d.get("complete", "-")), num(d.get("elapsed_s"), ".0f")] for k, d in found.items()]
    return table(["file", "device", "dtype", "smoke", "complete", "elapsed s"], rows or [["none"] + [""] * 5])


def _floors(tp: dict, e: dict, bw: float, best: str | None) -> list[str]:
    """Floor tok/s (lab.bench.floor: bytes per step / bandwidth) and % of it reached, GLA (best) and SA."""
    cfg, dtype = config_of(tp), tp.get("dtype", "bfloat16")
    tt = tp.get("text_tokens", 120)
    cells = []
    for model, r in (("gla", e.get(best) if best else None), ("sa", e.get("sa_eager"))):
        f = floor(cfg, dtype, e["batch"], e["tokens"], model, bw, tt)["tokens_per_s"]
        got = rate(r)
        cells += [num(f), num(100 * got / f if got else None, ".0f")]
    return cells


FLOOR_HEAD = ["GLA floor tok/s", "best GLA % of floor", "SA floor tok/s", "SA % of floor"]


def throughput_batches(tp: dict, bw: float | None = None) -> list[str]:
    entries = tp["batches"]
    variants = gla_variants(entries)
    rows = []
    for e in entries:
        best = best_gla(e)
        rows.append([str(e["batch"]), str(e["tokens"])] + [rate_cell(e.get(v)) for v in variants]
                    + [rate_cell(e.get("sa_eager")), num(ratio(e), ".2f"), num(peak(e.get(best)) if best else None),
                       num(peak(e.get("sa_eager")))] + (_floors(tp, e, bw, best) if bw else []))
    width = len(variants) + 4 + (len(FLOOR_HEAD) if bw else 0)
    rows += [[str(b), NM] + [""] * width for b in BATCHES if b not in {e["batch"] for e in entries}]
    head = ["batch", "tokens"] + [f"{v} tok/s" for v in variants] + ["SA+KV tok/s", "best GLA / SA",
                                                                    "best GLA peak MiB", "SA peak MiB"]
    return table(head + (FLOOR_HEAD if bw else []), rows)


def throughput_lengths(tp: dict, bw: float | None = None) -> list[str]:
    entries, state = tp["lengths"], tp.get("gla_state_mib_per_row")
    rows = []
    for e in entries:
        best, sa, b = best_gla(e), e.get("sa_eager"), e["batch"]
        kv = sa.get("kv_mib_per_row") if isinstance(sa, dict) else None
        kv = e.get("sa_kv_mib_per_row", kv)  # older files keep it on the entry
        g_peak, s_peak = peak(e.get(best)) if best else None, peak(sa)
        rows.append([str(e["tokens"]), str(b), best or "-", rate_cell(e.get(best)) if best else status(None),
                     rate_cell(sa), num(ratio(e), ".2f"), num(g_peak), num(s_peak),
                     num(g_peak / b if g_peak else None, ".1f"), num(s_peak / b if s_peak else None, ".1f"),
                     num(state, ".1f"), num(kv, ".1f")] + (_floors(tp, e, bw, best) if bw else []))
    have = {(e["batch"], e["tokens"]) for e in entries}
    rows += [[str(n), str(LENGTH_BATCH), NM] + [""] * (9 + (len(FLOOR_HEAD) if bw else 0))
             for n in LENGTHS if (LENGTH_BATCH, n) not in have]
    head = ["tokens", "batch", "GLA decoder", "GLA tok/s", "SA+KV tok/s", "GLA / SA", "GLA peak MiB",
            "SA peak MiB", "GLA peak MiB/row", "SA peak MiB/row", "GLA state MiB/row", "SA KV MiB/row"] + (
                FLOOR_HEAD if bw else [])
    return table(head, rows) + ["", ("MiB/row = peak / batch (both models' weights included); state and KV: "
                                     "what one row keeps, growing with length only for SA.")]


def latency_rows(lat: dict) -> list[str]:
    steps = lat.get("steps", [])
    dtypes = list(dict.fromkeys(dtype_name(r["dtype"]) for r in steps))
    by = {(dtype_name(r["dtype"]), r["mode"]): r for r in steps}
    rows = []
    for d in dtypes:
        eager, previous = by.get((d, "eager"), {}).get("ms_per_token"), None
        modes = [m for m in MODE_ORDER if (d, m) in by] + [m for m in MODE_ORDER if (d, m) not in by]
        for m in modes:
            r = by.get((d, m))
            ms = r.get("ms_per_token") if r else None
            if ms is None:
                rows.append([d, m, status(r), "", "", "", "", ""])
                continue
            floor = r.get("floor_ms")
            rows.append([d, m, f"{ms:.2f}", num(r["tokens_per_s"]), num(eager / ms if eager else None, ".2f"),
                         num(previous / ms if previous else None, ".2f"), num(floor, ".3f"),
                         num(100 * floor / ms if floor else None, ".0f")])
            previous = ms
    bw = lat.get("bandwidth_gbs")
    return table(["dtype", "decoder", "ms/token", "tok/s", "x vs eager", "x vs previous step",
                  "floor ms (weights / bandwidth)", "floor % of step"], rows) + [
        "", (f"copy bandwidth {num(bw, '.0f')} GB/s; x vs previous step: each decoder against the row above "
             "(eager -> CUDA graph -> compiled step in the graph), same dtype.")]


def first_audio(lat: dict | None, cpu: dict | None) -> list[str]:
    rows = [[str(lat.get("device", "GPU")) + smoke_note(lat), dtype_name(r["dtype"]), r["mode"],
             num(1000 * r["first_audio_s"], ".0f") if "first_audio_s" in r else status(r)]
            for r in (lat or {}).get("steps", [])]
    for run in (cpu or {}).get("runs", []):
        ms = [r["first_audio_ms"] for r in run.get("rows", [])]
        if ms:
            rows.append([f"CPU {cpu.get('model_id', '')}, {run['threads']} thread(s)", "-", cpu.get("step", "-"),
                         f"{min(ms)}-{max(ms)}"])
    return table(["where", "dtype", "decoder", "first audio ms"], rows or [[NM, "", "", ""]])


def prefill(found: dict) -> list[str]:
    rows = []
    for key in ("latency", "latency_fla"):
        p = found.get(key, {}).get("prefill")
        if not p:
            continue
        if "error" in p:
            rows.append([key, status(p)] + [""] * 6)
            continue
        best = min(p["parallel_s"], p.get("parallel_fla_s", float("inf")))
        rows.append([key, str(p["prompt_tokens"]), dtype_name(p["dtype"]), num(1000 * p["parallel_s"], ".1f"),
                     num(1000 * p["parallel_fla_s"] if "parallel_fla_s" in p else None, ".1f"),
                     num(p.get("parallel_fla_first_call_s"), ".1f"), num(1000 * p["token_by_token_s"], ".0f"),
                     num(p["token_by_token_s"] / best, ".1f")])
    return table(["file", "prompt tokens", "dtype", "parallel ms", "parallel fla ms", "fla first call s",
                  "token by token ms", "x token by token / best parallel"], rows or [[NM] + [""] * 7])


def ist_rows(found: dict) -> list[list]:
    """``[file, row]`` of every IST row of latency{,_fla}.json."""
    return [[key, r] for key in ("latency", "latency_fla") for r in found.get(key, {}).get("ist", [])]


def ist(found: dict) -> list[str]:
    rows = []
    for key, r in ist_rows(found):
        if "total_s" not in r:
            rows.append([key, status(r)] + [""] * 8)
            continue
        rows.append([key, "fla" if r["use_fla"] else "torch", dtype_name(r["dtype"]), str(r["steps"]),
                     str(r["batch"]), str(r["clip_tokens"]), f"{r['total_s']:.2f}", f"{r['ms_per_step']:.0f}",
                     f"{r['ms_per_step'] / 10:.2f}" + ("" if r["steps"] == 100 else " (from ms/step)"),
                     f"{r['warmup_s']:.1f} ({r['warmup_steps']} steps)"])
    return table(["file", "backend", "dtype", "steps", "batch", "clip tokens", "total s", "ms/step",
                  "100 steps s", "warm-up s"], rows or [[NM] + [""] * 9])


def codec(doc: dict) -> list[str]:
    res = doc.get("results", [])
    batches = sorted({1, 64} | {r["batch"] for r in res if "audio_seconds_per_second" in r})
    rows = []
    for d in dict.fromkeys(r["dtype"] for r in res):
        cells = {r["batch"]: r for r in res if r["dtype"] == d and ("frames" in r or "error" in r)
                 and "streaming_step_ms" not in r}
        stream = next((r for r in res if r["dtype"] == d and "streaming_step_ms" in r), None)
        snr = next((r["snr_db"] for r in cells.values() if "snr_db" in r), None)
        rows.append([d] + [num(cells[b].get("audio_seconds_per_second"), ",.0f", status(cells[b])) if b in cells
                           else NM for b in batches]
                    + [num(stream["streaming_step_ms"] if stream else None, ".1f"), num(snr, ".1f")])
    head = ["dtype"] + [f"batch {b}: audio s per s" for b in batches] + ["streaming step ms", "SNR dB vs fp32"]
    return table(head, rows or [[NM] + [""] * (len(batches) + 2)]) + [
        "", f"{doc.get('device', '-')}, {num(doc.get('seconds_of_audio_per_row'), '.1f')} s of audio per row"]


def cpu_rows(cpu: dict) -> list[str]:
    rows = []
    for run in cpu.get("runs", []):
        r, s = run.get("rows", []), run.get("step_ms_min_median", {})

        def rng(key: str, r=r) -> str:
            return f"{min(x[key] for x in r)}-{max(x[key] for x in r)}" if r else "-"
        rows.append([str(run["threads"]), " / ".join(f"{k} {v[0]}" for k, v in s.items()), rng("rtf"),
                     rng("first_audio_ms"), rng("stream_rtf"), str(run.get("load_average", "-"))])
    return table(["threads", "step ms (min)", "RTF", "first audio ms", "stream RTF", "load"], rows or [[NM] + [""] * 5])


def check(found: dict) -> list[str]:
    rows = []
    for key in sorted(k for k in found if k.startswith("check_")):
        doc = found[key]
        for e in doc.get("batches", []) + doc.get("lengths", []):
            for name, r in e.items():
                if isinstance(r, dict):
                    rows.append([key, f"{name}, batch {e['batch']}, {e['tokens']} tokens",
                                 "ok" if rate(r) is not None else status(r)])
        for r in doc.get("steps", []):
            rows.append([key, f"decode {dtype_name(r['dtype'])} {r['mode']}", "ok" if "error" not in r else status(r)])
        for part, rs in (("prefill", doc.get("prefill_rows", [])), ("IST", doc.get("ist", []))):
            rows += [[key, part, status(r) if "error" in r else "ok"] for r in rs]
    return table(["file", "path", "status"], rows or [[NM, "", ""]])


def report(found: dict) -> str:
    tp, lat, cpu = merge_throughput(found), found.get("latency"), found.get("cpu_embedded")
    out = ["## Speed report (lab.bench.report)", ""] + sources(found)

    def section(title: str, doc, fn, missing: str) -> None:
        out.extend(["", f"### {title}" + smoke_note(doc if isinstance(doc, dict) else None), ""])
        out.extend(fn() if doc else [f"{NM} ({missing})"])
    if tp:
        meta = (f"{tp.get('device', '-')}, {dtype_name(tp.get('dtype', '-'))}, "
                f"GLA {num(tp.get('gla_parameters', 0) / 1e6, '.0f')} M params")
    bw, bw_from = bandwidth_of(found)
    note = ["", (f"Floor: bytes a step must move (lab.bench.floor: weights in the run's dtype, float32 GLA states "
                 f"read + written, conv windows, text context; SA: KV cache read at the mean position + append) / "
                 f"{bw / 1e12:.2f} TB/s ({bw_from}; rows from another GPU are held to the same bandwidth).")]
    section("Throughput vs batch" + (f" ({meta})" if tp else ""), tp and tp["batches"] and tp,
            lambda: throughput_batches(tp, bw) + note, "no batch rows in throughput{,1,2}.json")
    section("Length at batch 64", tp and tp["lengths"] and tp, lambda: throughput_lengths(tp, bw) + note,
            "no length rows in throughput{,1,2}.json")
    section("Batch-1 latency", lat and lat.get("steps") and lat, lambda: latency_rows(lat), "no latency.json steps")
    section("Time to first audio", lat or cpu, lambda: first_audio(lat, cpu), "no latency.json, cpu_embedded.json")
    with_prefill = [found[k] for k in ("latency", "latency_fla") if found.get(k, {}).get("prefill")]
    section("Prefill of a prompt: parallel vs token by token", with_prefill and with_prefill[0],
            lambda: prefill(found), "no prefill row in latency{,_fla}.json")
    section("IST (voice tuning), 100 steps", ist_rows(found) and (lat or found.get("latency_fla")),
            lambda: ist(found), "no IST rows")
    section("Codec decode speed", found.get("codec_gpu"), lambda: codec(found["codec_gpu"]), "no codec_gpu.json")
    section("Embedded model on the CPU", cpu, lambda: cpu_rows(cpu), "no cpu_embedded.json")
    section("GPU check (tiny model)", any(k.startswith("check_") for k in found), lambda: check(found),
            "no check_*.json")
    section("Targets", True, lambda: targets_table(tp, found, ist_rows(found)), "")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=Path("out"), help="folder of the JSON files (default out)")
    ap.add_argument("--out-md", type=Path, help="also write the markdown here")
    ap.add_argument("--plot", type=Path, help="write the two-panel PNG here (matplotlib)")
    args = ap.parse_args(argv)
    found = load(args.results)
    print(f"{args.results}: read {', '.join(f'{k}.json' for k in found) or 'nothing'}")
    text = report(found)
    if args.out_md:
        args.out_md.parent.mkdir(parents=True, exist_ok=True)
        args.out_md.write_text(text + "\n")
        print(f"written {args.out_md}")
    if args.plot:
        from lab.bench.report_plot import plot
        print(f"written {plot(merge_throughput(found), args.plot)}")
    print(text)
    return text


if __name__ == "__main__":
    main()
