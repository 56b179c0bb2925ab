"""A tiny codec run on fixed batches, for tests/test_distributed_training.py (not a test module).

``python tests/distributed_codec_worker.py RUN STEPS`` trains (or resumes) RUN for STEPS steps on the
global batches ``_voices(GLOBAL_BATCH, seed=step)``; under torchrun each rank takes its contiguous
block of rows, so the ranks together see exactly the batch one process sees.
"""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import torch
from test_codec_training import _voices

from lab.training import distributed
from lab.training.codec.configs import TINY, TrainConfig
from lab.training.codec.ema_codebook import EMAConfig
from lab.training.codec.train import CHECKPOINT, Trainer, train

GLOBAL_BATCH = 4
SAMPLES = 320 * 8  # 0.1 s segments and one discriminator family (MRD): 0.7 s a GAN step on one CPU thread
# GAN from step 2: both optimizers' gradient averaging is exercised; k-means after 2 pooled batches.
CONFIG = TrainConfig(batch_size=GLOBAL_BATCH, warmup_steps=1, total_steps=40, gan_start_step=2, learning_rate=2e-3,
                     discriminators=("mrd",))
EMA = EMAConfig(init_batches=2)


def fresh() -> Trainer:
    """The run's step-0 state (Trainer.create seeds itself)."""
    return Trainer.create(TINY, CONFIG, torch.device("cpu"))


def main(run: Path, steps: int) -> Trainer:
    torch.set_num_threads(1)
    world, device = distributed.init("cpu")
    trainer = Trainer.load(run, device) if (run / CHECKPOINT).exists() else Trainer.create(TINY, CONFIG, device)
    trainer.ema.config = EMA
    rows = len(distributed.split_evenly(range(GLOBAL_BATCH), world))

    def batches():
        for _ in itertools.count():  # drawn when the step asks, from the step it is at
            yield _voices(GLOBAL_BATCH, seed=trainer.step, samples=SAMPLES)[world.rank * rows:(world.rank + 1) * rows]

    return train(trainer, batches(), run, max_seconds=math.inf, max_steps=steps, log_every=1, log=lambda _: None)


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]), int(sys.argv[2]))
    finally:
        distributed.finish()
