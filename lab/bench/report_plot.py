"""The two-panel figure of `lab.bench.report`: throughput vs batch (log-log; each GLA decoder and the
self-attention baseline) and peak GPU memory vs tokens per row at the length table's batch (64)."""
from __future__ import annotations

from pathlib import Path

from lab.bench.report_data import best_gla, dtype_name, gla_variants, peak, rate

LABELS = {
    "gla_eager": "Lina GLA (eager)",
    "gla_graph": "Lina GLA (CUDA graph, torch step)",
    "gla_graph_fla": "Lina GLA (CUDA graph, fla step)",
    "gla_graph_compile": "Lina GLA (CUDA graph, compiled step)",
    "gla_graph_compile_fla": "Lina GLA (CUDA graph, compiled + fla step)",
    "sa_eager": "self-attention + KV cache (eager)",
}
MARKERS = "osDv^<>p"
COLORS = ("tab:blue", "tab:orange", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _batches(ax, tp: dict) -> None:
    entries = tp.get("batches", [])
    lines = 0
    for i, name in enumerate(gla_variants(entries) + ["sa_eager"]):
        color = "tab:green" if name == "sa_eager" else COLORS[i % len(COLORS)]
        points = sorted((e["batch"], rate(e.get(name))) for e in entries if rate(e.get(name)) is not None)
        if not points:
            continue
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], linestyle="-" if name != "gla_graph" else "--",
                label=LABELS.get(name, name), color=color)
        lines += 1
    if not lines:
        _empty(ax, "throughput vs batch: not measured")
        return
    tokens = sorted({e["tokens"] for e in entries})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel(f"tokens/s ({'/'.join(map(str, tokens))} tokens/row)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _lengths(ax, tp: dict) -> None:
    entries = tp.get("lengths", [])
    batch = 64 if any(e["batch"] == 64 for e in entries) else (entries[0]["batch"] if entries else None)
    rows = sorted((e for e in entries if e["batch"] == batch), key=lambda e: e["tokens"])
    gla = [(e["tokens"], peak(e.get(best_gla(e)))) for e in rows if best_gla(e)]
    sa = [(e["tokens"], peak(e.get("sa_eager"))) for e in rows]
    lines = 0
    for points, label, marker, color in ((gla, "Lina GLA (fastest decoder of the row)", "o", "tab:blue"),
                                         (sa, LABELS["sa_eager"], "^", "tab:green")):
        points = [(x, y) for x, y in points if y is not None]
        if points:
            ax.plot(*zip(*points), marker=marker, label=label, color=color)
            lines += 1
    if not lines:
        _empty(ax, "peak memory vs length: not measured" + (" (no peak on a CPU run)" if rows else ""))
        return
    ax.set_xlabel(f"tokens per row (batch {batch})")
    ax.set_ylabel("peak GPU memory (MiB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot(tp: dict | None, path: Path) -> Path:
    """Writes the figure of the merged throughput document ``tp`` (``None``: both panels say "not measured")."""
    import matplotlib
    matplotlib.use("Agg")  # files only
    from matplotlib.figure import Figure
    tp = tp or {}
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    _batches(left, tp)
    _lengths(right, tp)
    title = f"{tp.get('device', 'no throughput results')}, {dtype_name(tp.get('dtype', '-'))}"
    fig.suptitle(title + (", smoke run (tiny model)" if tp.get("smoke") else ", random weights of the released size"),
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), dpi=100)
    return path
