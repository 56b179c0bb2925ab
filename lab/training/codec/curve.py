"""The held-out curve of a codec lineage: PESQ-wb and STOI against log training steps, for the model card.

Reads the `eval.jsonl` of one or more runs (lab.training.codec.eval_hook), in lineage order, and
plots every row at its `total_step`, with codec v2's targets as dashed lines: whoever continues the
lineage sees whether the recipe is heading for them. Rows of another clip set (fingerprint) than the
first run's are left out and counted: scores on other clips do not belong on one curve.
"""
from __future__ import annotations

from pathlib import Path

from lab.training.codec.eval_hook import read_eval_log

TARGET_PESQ_WB = 2.3
TARGET_STOI = 0.90
PESQ_AXIS_TOP = 3.5  # PESQ-wb runs 1.0-4.64
STOI_AXIS_BOTTOM = 0.5


def lineage_rows(runs: list[Path]) -> tuple[list[dict], int]:
    """Rows of all runs sorted by total_step (one per total_step, the later run's winning), and how many
    rows were left out for another fingerprint."""
    rows, fingerprint, left_out = {}, None, 0
    for run in runs:
        for row in read_eval_log(Path(run)):
            fingerprint = fingerprint or row.get("fingerprint")
            if row.get("fingerprint") != fingerprint:
                left_out += 1
                continue
            rows[row["total_step"]] = {**row, "run": str(run)}
    return [rows[k] for k in sorted(rows)], left_out


def plot_curve(rows: list[dict], out: Path, title: str = "codec held-out curve") -> None:
    """PNG: PESQ-wb (left axis) and STOI (right axis) against total steps (log axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [max(1, r["total_step"]) for r in rows]
    fig, left = plt.subplots(figsize=(7, 4), dpi=120)
    right = left.twinx()
    left.plot(steps, [r["pesq_wb"] for r in rows], "o-", color="tab:blue", label="PESQ-wb")
    right.plot(steps, [r["stoi"] for r in rows], "s-", color="tab:orange", label="STOI")
    left.axhline(TARGET_PESQ_WB, color="tab:blue", linestyle="--", linewidth=1)
    right.axhline(TARGET_STOI, color="tab:orange", linestyle="--", linewidth=1)
    # Run boundaries: where the lineage moved to the next run (e.g. mel phase -> frozen-codes GAN).
    for before, after in zip(rows, rows[1:]):
        if before["run"] != after["run"]:
            left.axvline(max(1, after["total_step"]), color="grey", linestyle=":", linewidth=1)
    # Fixed ranges, so curves of different runs read alike and the two target lines do not coincide.
    pesq_values = [r["pesq_wb"] for r in rows if r.get("pesq_wb") is not None]
    left.set_ylim(1.0, max(PESQ_AXIS_TOP, *pesq_values))
    right.set_ylim(min(STOI_AXIS_BOTTOM, *[r["stoi"] for r in rows]), 1.0)
    left.set_xscale("log")
    left.set_xlabel("training steps (all runs of the lineage)")
    left.set_ylabel("PESQ-wb (target 2.3, dashed)", color="tab:blue")
    right.set_ylabel("STOI (target 0.90, dashed)", color="tab:orange")
    left.set_title(title)
    left.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def curve_table(rows: list[dict]) -> str:
    """Markdown table of the curve's rows."""
    lines = ["| total steps | train min | PESQ-wb | STOI | log-mel L1 | voicing (source) | usage | codes id |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pesq = "n/a" if r.get("pesq_wb") is None else f"{r['pesq_wb']:.2f}"
        voicing = ("n/a" if r.get("voicing") is None
                   else f"{100 * r['voicing']:.0f} % ({100 * r['voicing_ref']:.0f} %)")
        minutes = "n/a" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f}"
        lines.append(f"| {r['total_step']} | {minutes} | {pesq} | {r['stoi']:.3f} | {r['mel_l1']:.3f} | {voicing} | "
                     f"{r['usage']:.2f} | {r.get('codes_id', '')} |")
    return "\n".join(lines)
