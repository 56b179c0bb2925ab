"""Batched Kokoro rendering (lina.training.corpus.kokoro_render): how pieces are cut into GPU batches."""
import numpy as np

from lina.training.corpus.kokoro_render import batches


def test_batches_cover_every_piece_once_in_length_order_within_budget():
    lengths = np.random.default_rng(0).integers(5, 300, size=500)
    out = batches(lengths, budget=2_000, max_batch=16)
    flat = np.concatenate(out)
    assert sorted(flat.tolist()) == list(range(500))
    assert np.all(np.diff(lengths[flat]) >= 0)  # similar lengths share a batch: little padding
    for b in out:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * lengths[b].max() <= 2_000


def test_a_piece_over_the_budget_gets_a_batch_of_its_own():
    out = batches(np.array([10, 5_000, 20]), budget=1_000)
    assert [b.tolist() for b in out] == [[0, 2], [1]]
