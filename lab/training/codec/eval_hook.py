"""Held-out evaluation inside codec training: the fixed clips every N steps, one row per evaluation.

`RUN/eval.jsonl` gets `{"step", "total_step", "train_seconds" (the lineage's training time), "pesq_wb", "stoi", "mel_l1", "snr_db", "voicing",
"voicing_ref", "usage", "clips", "fingerprint", "codes_id", "eval_seconds"}` per evaluation; `total_step`
(base_step + step) places runs that continue one another on one curve (lab.training.codec.curve).
The codec is scored as inference sees it: eval mode, float32, `Codec.encode` / `Codec.decode`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from lab.training.codec.evaluate import evaluate_clips
from lab.training.codec.freeze import codes_id
from lab.training.codec.heldout import clips_fingerprint

EVAL_LOG = "eval.jsonl"


class HeldoutEval:
    """Scores a trainer's codec on `clips` when its step is a multiple of `every` (and on demand)."""

    def __init__(self, clips: dict[str, np.ndarray], every: int, run: Path):
        if every < 1:
            raise ValueError(f"evaluate every >= 1 steps, got {every}")
        self.clips, self.every, self.path = clips, every, Path(run) / EVAL_LOG
        self.fingerprint = clips_fingerprint(clips)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def logged_steps(self) -> set[int]:
        if not self.path.exists():
            return set()
        return {json.loads(line)["step"] for line in self.path.read_text().splitlines() if line.strip()}

    def __call__(self, trainer) -> dict:
        """Evaluate now, append the row, return it."""
        start, codec = time.time(), trainer.codec
        was_training = codec.training
        dtype = next(codec.parameters()).dtype
        codec.eval().float()
        try:
            with torch.inference_mode():
                report = evaluate_clips(codec, self.clips)
        finally:
            codec.to(dtype).train(was_training)
        row = {"step": trainer.step, "total_step": trainer.config.base_step + trainer.step,
               "train_seconds": round(trainer.config.base_seconds + trainer.seconds, 2), **report["mean"],
               "fingerprint": self.fingerprint, "codes_id": codes_id(codec),
               "eval_seconds": round(time.time() - start, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        return row


def read_eval_log(path: Path) -> list[dict]:
    """Rows of an `eval.jsonl` (a run folder or the file itself)."""
    path = Path(path)
    path = path / EVAL_LOG if path.is_dir() else path
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
