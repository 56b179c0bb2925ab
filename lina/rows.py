"""Row budgets of a request and how rows' audio is joined: one sentence is one row of a generation batch.

Shared by `lina.request` (every request's rows: synthesize, clone, stream, dialogues, bulk synthesis) and the
joins of `lina.tts` and `lina.dialogue`, so that each of them budgets, ends and joins sentences the same way.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lina.constants import FRAME_RATE, SAMPLE_RATE

MAX_ROW_SECONDS = 40.0        # hard cap of one generated sentence (runaway guard)
MIN_ROW_SECONDS = 2.0         # budget every sentence gets, however short
SECONDS_PER_CHAR = 0.2        # ~2.5x a normal speaking rate of 12-15 characters per second
# No EOS before this much audio per character: 40 characters/s is ~3x the fastest usual speech (12-15/s;
# the training corpus' engines read at 18-20/s), so no real reading is cut, but a row cannot end at once.
MIN_SECONDS_PER_CHAR = 0.025
MAX_SENTENCES = 64            # one request's batch of sentences x candidates stays bounded
PAUSE_SECONDS = 0.25          # silence between the sentences of a paragraph


def row_seconds(sentence: str, cap: float = MAX_ROW_SECONDS) -> float:
    """Longest audio one sentence may generate: its length budget, within ``cap`` (runaway guard)."""
    return min(cap, MAX_ROW_SECONDS, MIN_ROW_SECONDS + SECONDS_PER_CHAR * len(sentence))


def min_row_tokens(sentence: str, max_tokens: int) -> int:
    """Tokens one sentence generates before EOS may be sampled (below ``max_tokens``, so EOS stays possible)."""
    return max(0, min(max_tokens - 1, int(MIN_SECONDS_PER_CHAR * len(sentence) * FRAME_RATE)))


def join_rows(waves: Sequence[np.ndarray], pauses: Sequence[float], lead: float = 0.0,
              rate: int = SAMPLE_RATE) -> tuple[np.ndarray, list[float]]:
    """Rows' audio ``[S_i]`` joined in order with ``pauses[i]`` seconds of silence after row ``i`` and
    ``lead`` before the first -> ``(audio [S], start second of each row)``."""
    parts, starts, at = [np.zeros(int(round(lead * rate)), dtype=np.float32)], [], int(round(lead * rate))
    for wav, pause in zip(waves, pauses):
        starts.append(at / rate)
        gap = np.zeros(int(round(pause * rate)), dtype=np.float32)
        parts += [np.asarray(wav, dtype=np.float32), gap]
        at += len(wav) + len(gap)
    return np.concatenate(parts), starts
