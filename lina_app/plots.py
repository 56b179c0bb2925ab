"""Plots: the cross-attention alignment (a PNG, via matplotlib) and the tuning loss curve (a table
for `gr.LinePlot`, cheap enough to refresh live during tuning)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lina.constants import FRAME_RATE

ALIGNMENT_WIDTH = 7.0            # inches: wide, like the audio it describes
STRIP_HEIGHT = 1.1               # inches per sentence
TITLE_HEIGHT = 0.5
STRIPS_PER_COLUMN = 12           # beyond this, sentences continue in another column (every one is shown)
ALIGNMENT_DPI = 100
ALIGNMENT_CMAP = "Blues"         # dark marks on white: readable where a dark map on dim values was near-black
TITLE_WORDS = 8


def alignment_figure(alignments: list[np.ndarray], sentences: list[str] | None = None):
    """One strip per sentence: audio time (x, seconds) against its text tokens (y). Each audio step is
    scaled to its own maximum, so the attended token stands out whatever the attention's spread.

    `alignments[i]`: `[T_i, Tx_i]` cross-attention of sentence i. Returns a matplotlib `Figure`.
    The title is drawn in the figure: the image component hides its own label, which would cover the plot.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib.figure import Figure  # the object API keeps threads from sharing pyplot state

    count = len(alignments)
    columns = -(-count // STRIPS_PER_COLUMN)
    rows = -(-count // columns)
    fig = Figure(figsize=(ALIGNMENT_WIDTH * columns, TITLE_HEIGHT + STRIP_HEIGHT * rows), dpi=ALIGNMENT_DPI,
                 layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.T.flat):  # down the first column, then the next
        if i >= count:
            ax.set_visible(False)
            continue
        weights = np.asarray(alignments[i], dtype=np.float64)
        steps, tokens = weights.shape
        scaled = weights / np.maximum(weights.max(axis=1, keepdims=True), 1e-12) if weights.size else weights
        ax.imshow(scaled.T, origin="lower", aspect="auto", interpolation="nearest", cmap=ALIGNMENT_CMAP,
                  vmin=0.0, vmax=1.0, extent=(0, steps / FRAME_RATE, -0.5, tokens - 0.5))
        words = (sentences[i] if sentences and i < len(sentences) else "").split()
        label = " ".join(words[:TITLE_WORDS]) + (" …" if len(words) > TITLE_WORDS else "")
        ax.set_title(f"sentence {i + 1}" + (f": {label}" if label else ""), fontsize=8, loc="left")
        ax.set_ylabel("text token", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("audio time (s)", fontsize=8)
    fig.suptitle("Cross-attention alignment: which text token each moment of audio reads", fontsize=10)
    return fig


def alignment_png(alignments: list[np.ndarray] | np.ndarray | None, path: str | Path,
                  sentences: list[str] | None = None) -> str | None:
    """`alignment_figure` written to `path` (PNG); None when there is nothing to draw. A lone `[T, Tx]`
    array is one sentence."""
    if alignments is None:
        return None
    if isinstance(alignments, np.ndarray):
        alignments = [alignments]
    alignments = [a for a in alignments if a is not None and a.size]
    if not alignments:
        return None
    alignment_figure(alignments, sentences).savefig(str(path))
    return str(path)


def loss_frame(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(1, len(losses) + 1), "loss": np.asarray(losses, dtype=float)})
