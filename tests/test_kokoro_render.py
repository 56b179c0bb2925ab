"""Batched Kokoro rendering (lab.training.corpus.kokoro_render): how pieces are cut into GPU batches."""
import numpy as np

from lab.training.corpus.kokoro_render import batches, row_chunks


def test_batches_cover_every_piece_once_in_length_order_within_budget():
    lengths = np.random.default_rng(0).integers(5, 300, size=500)
    out = batches(lengths, budget=2_000, max_batch=16)
    flat = np.concatenate(out)
    assert sorted(flat.tolist()) == list(range(500))
    assert np.all(np.diff(lengths[flat]) >= 0)  # similar lengths share a batch: little padding
    for b in out:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * lengths[b].max() <= 2_000


def test_row_chunks_hold_whole_rows_in_order():
    piece_row = np.array([0, 0, 1, 2, 2, 2, 4, 5, 5, 7])  # row numbers of pieces (rows 3 and 6 have none)
    chunks = row_chunks(piece_row, rows_per_chunk=2)
    assert np.concatenate(chunks).tolist() == list(range(len(piece_row)))
    assert [sorted(set(piece_row[c].tolist())) for c in chunks] == [[0, 1], [2, 4], [5, 7]]
    assert len(row_chunks(piece_row, rows_per_chunk=100)) == 1


def test_a_piece_over_the_budget_gets_a_batch_of_its_own():
    out = batches(np.array([10, 5_000, 20]), budget=1_000)
    assert [b.tolist() for b in out] == [[0, 2], [1]]


def test_render_codes_encodes_rows_in_one_pass_resumes_and_finalizes(tmp_path):
    """espeak rows -> codes without WAV files: the same codes as encoding the rendered audio alone,
    a second call skips what the shards hold, `finalize` writes the encode layout."""
    import gzip
    import json

    import torch
    from test_corpus import needs

    from lab.training.corpus import generate, manifest, render_codes, speakers
    from lina.codec.codec import Codec

    needs("espeak")
    rows = []
    for i, text in enumerate(("a short sentence to read.", "and a second one, somewhat longer than the first.")):
        spk = speakers.by_id(speakers.inventory(0))["espeak-en-us-m1"]
        uid = f"espeak-en-us-m1_neutral_t{i}"
        rows.append({"id": uid, "speaker": spk.id, "engine": "espeak", "split": ["train", "validation"][i],
                     "spk": spk.to_dict(), "style": "neutral", "text": text, "seed": manifest.utterance_seed(0, uid),
                     "duration": 0.0})
    manifest.write_jsonl(tmp_path / "rows.jsonl", rows)
    codec_dir = "assets/lina-mini/codec"
    first = render_codes.run([tmp_path / "rows.jsonl"], tmp_path / "codes", codec_dir, device="cpu", jobs=1,
                             log=lambda _: None)
    assert first["rows_this_call"] == 2 and first["rows_done"] == 2
    again = render_codes.run([tmp_path / "rows.jsonl"], tmp_path / "codes", codec_dir, device="cpu", jobs=1,
                             log=lambda _: None)
    assert again["rows_this_call"] == 0 and again["rows_skipped_before"] == 2
    summary = render_codes.finalize([tmp_path / "rows.jsonl"], tmp_path / "codes", codec_dir)
    assert summary["train"]["rows"] == 1 and summary["validation"]["rows"] == 1
    with gzip.open(tmp_path / "codes" / "train.jsonl.gz", "rt") as f:
        (done,) = [json.loads(line) for line in f]
    codec = Codec.from_pretrained(codec_dir)
    audio = generate.render_row(rows[0])
    alone = codec.encode(torch.from_numpy(audio)[None])[0].numpy()
    flat = np.load(tmp_path / "codes" / "train.codes.npy")
    assert done["frames"] == len(alone) == len(flat) and "spk" not in done
    assert np.mean(alone == flat) > 0.95
