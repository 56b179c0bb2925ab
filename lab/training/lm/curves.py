"""Train and validation loss curves of a run (``log.jsonl``) as a PNG."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on the training hosts
import matplotlib.pyplot as plt

FIGSIZE = (8, 4.5)
DPI = 120


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(log: str | Path, out: str | Path, title: str = "") -> Path:
    """Loss against step: the logged train means as a line, validation as points and a line."""
    entries = read_log(log)
    train = [(e["step"], e["loss"]) for e in entries if "loss" in e]
    val = [(e["step"], e["val_loss"]) for e in entries if "val_loss" in e]
    start = next((e["start"] for e in entries if "start" in e), None)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    if train:
        ax.plot(*zip(*train), lw=1, label="train (mean over each logged window)")
    if val:
        ax.plot(*zip(*val), "o-", ms=3, label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per audio token)")
    if not title and start:
        title = f"{start['settings']['config']}: {start['params'] / 1e6:.1f}M parameters"
    if val:
        title += f"; last validation {val[-1][1]:.3f} at step {val[-1][0]}"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
