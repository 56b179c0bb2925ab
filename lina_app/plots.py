"""Plots: the cross-attention alignment (a PNG, via matplotlib) and the tuning loss curve (a table
for `gr.LinePlot`, cheap enough to refresh live during tuning)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lina.constants import FRAME_RATE

ALIGNMENT_FIGSIZE = (7.0, 2.6)   # inches: wide, like the audio it describes
ALIGNMENT_DPI = 100


def alignment_png(alignment: np.ndarray | None, path: str | Path) -> str | None:
    """Audio steps (x, seconds) against text tokens (y) of the first sentence's attention.

    The title is drawn in the figure: the image component hides its own label, which would cover the plot.
    """
    if alignment is None or alignment.size == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib.figure import Figure  # the object API keeps threads from sharing pyplot state

    fig = Figure(figsize=ALIGNMENT_FIGSIZE, dpi=ALIGNMENT_DPI, layout="constrained")
    ax = fig.add_subplot()
    steps, tokens = alignment.shape
    ax.imshow(alignment.T, origin="lower", aspect="auto", interpolation="nearest", cmap="magma",
              extent=(0, steps / FRAME_RATE, -0.5, tokens - 0.5))
    ax.set_xlabel("audio time (s)")
    ax.set_ylabel("text token")
    ax.set_title("Cross-attention alignment (first sentence)", fontsize=10)
    fig.savefig(str(path))
    return str(path)


def loss_frame(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(1, len(losses) + 1), "loss": np.asarray(losses, dtype=float)})
