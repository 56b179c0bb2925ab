"""What a request returns: :class:`Synthesis` (audio per candidate and its information) and :class:`Rows`
(every row of one batch, for callers that join rows themselves: dialogues, bulk synthesis)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lina.timestamps import WordTime


@dataclass
class Rows:
    """One batch of `LinaTTS.generate_rows`, per row: audio ``[S_i]``, codes ``[T_i]``, EOS within the
    budget, alignment ``[T_i, Tx_i]``, the normalized text spoken, word times from the row's start."""

    waves: list[np.ndarray]
    codes: list[torch.Tensor]
    finished: list[bool]
    alignments: list[np.ndarray]
    spoken: list[str]
    words: list[list[WordTime]]


@dataclass
class Synthesis:
    """Result of one request. ``audio[c]`` is candidate ``c``: float32 ``[S]`` at ``sample_rate``."""

    audio: list[np.ndarray]
    sample_rate: int
    text: list[str]               # the sentences actually spoken (after normalization)
    finished: list[bool]          # per candidate: every sentence ended with EOS (no runaway)
    tokens: int                   # audio tokens generated in the whole batch
    seconds: float                # wall time of generation and decoding
    alignment: np.ndarray | None  # [T, Tx] cross-attention of the first row (audio steps x text tokens)
    # [T_i, Tx_i] per sentence of the first candidate (each row's own steps and text tokens); None if not kept
    alignments: list[np.ndarray] | None = None
    words: list[list[WordTime]] | None = None     # per candidate: the written words and when they are heard
    spans: list[list[tuple[float, float]]] | None = None  # per candidate: (start, end) s of each sentence
    marks: str = ""               # the pause marks it obeyed, in words ("" without any)

    @property
    def duration(self) -> float:
        return sum(len(a) for a in self.audio) / self.sample_rate

    @property
    def real_time_factor(self) -> float:
        return self.seconds / max(self.duration, 1e-9)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)
