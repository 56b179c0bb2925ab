"""Codec training pieces: EMA codebook, a tiny codec's training steps, resume, encode."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from lab.training.codec.configs import TINY, TrainConfig
from lab.training.codec.ema_codebook import EMACodebook, EMAConfig
from lab.training.codec.encode import encode_corpus
from lab.training.codec.train import Trainer, train
from lina.codec.codec import Codec
from lina.codec.config import QuantizerConfig
from lina.codec.quantizer import Codebook

SEGMENT = 320 * 24


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions are slower with more threads on a shared CPU
    yield
    torch.set_num_threads(threads)


def _voices(batch: int, seed: int, samples: int = SEGMENT, min_amplitude: float = 0.0) -> torch.Tensor:
    """Harmonic tones with random pitch and amplitude (at least `min_amplitude` of full): `[batch, samples]`."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 24_000
    f0 = 100 + 200 * torch.rand(batch, 1, generator=g)
    wav = sum(torch.sin(2 * torch.pi * k * f0 * t) / k for k in range(1, 6))
    return 0.3 * wav * (min_amplitude + (1 - min_amplitude) * torch.rand(batch, 1, generator=g))


def test_ema_codebook_starts_from_kmeans_and_restarts_dead_entries():
    torch.manual_seed(0)
    book = Codebook(QuantizerConfig(bins=16, dim=4))
    ema = EMACodebook(book, EMAConfig(init_batches=2, dead_threshold=0.5)).train()
    clusters = torch.randn(4, 4) * 10
    def batch():
        ids = torch.randint(4, (2, 50))
        return (clusters[ids] + 0.01 * torch.randn(2, 50, 4)).transpose(1, 2)  # [B, D, T]
    latent = batch()
    out, codes, commit = ema(latent)
    assert torch.equal(out, latent) and (codes == -1).all() and float(commit) == 0.0  # pooling, not yet quantizing
    ema(batch())
    assert bool(ema.initialized)
    # After k-means every one of the 4 true clusters has an entry within noise distance.
    distance = torch.cdist(clusters, book.codebook.data).min(dim=1).values
    assert float(distance.max()) < 0.5
    _, codes, commit = ema(batch())
    assert codes.shape == (2, 50) and float(commit) < 1e-2
    # Two of the four clusters vanish from the data: their entries' counts decay below the threshold
    # (0.99^300 x their count < 0.5) and are re-seeded on current latents, near the two that remain.
    for _ in range(300):
        ids = torch.randint(2, (2, 50))
        ema((clusters[ids] + 0.01 * torch.randn(2, 50, 4)).transpose(1, 2))
    assert int(ema.restarts) > 0
    distance = torch.cdist(book.codebook.data, clusters[:2]).min(dim=1).values
    assert float(distance.max()) < 0.5


def test_straight_through_gradient_reaches_the_encoder():
    book = Codebook(QuantizerConfig(bins=8, dim=3))
    ema = EMACodebook(book, EMAConfig(init_batches=1)).train()
    ema(torch.randn(1, 3, 40))
    latent = torch.randn(1, 3, 40, requires_grad=True)
    quantized, _, commit = ema(latent)
    (quantized.sum() + commit).backward()
    assert latent.grad is not None and float(latent.grad.abs().sum()) > 0


def test_tiny_codec_training_lowers_the_mel_loss_and_resumes(tmp_path):
    config = TrainConfig(batch_size=4, warmup_steps=1, total_steps=40, gan_start_step=20, learning_rate=2e-3)
    trainer = Trainer.create(TINY, config, torch.device("cpu"))
    trainer.ema.config = EMAConfig(init_batches=2)
    batches = (_voices(4, seed) for seed in range(10_000))
    first = trainer.train_step(next(batches))["mel"]
    train(trainer, batches, tmp_path / "run", max_seconds=120, max_steps=24, log_every=8, log=lambda _: None)
    last = trainer.train_step(_voices(4, 0))
    assert last["mel"] < 0.8 * first
    assert "d_loss" in last  # the discriminators joined at gan_start_step
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [8, 16, 24]

    trainer.save(tmp_path / "run")
    resumed = Trainer.load(tmp_path / "run", torch.device("cpu"))
    assert resumed.step == trainer.step
    for (name, a), b in zip(trainer.codec.state_dict().items(), resumed.codec.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(trainer.ema.cluster_size, resumed.ema.cluster_size)
    wav = _voices(4, 99)
    torch.manual_seed(5)
    a = trainer.train_step(wav)
    torch.manual_seed(5)
    b = resumed.train_step(wav)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_encode_corpus_writes_codes_that_the_codec_decodes(tmp_path):
    trainer = Trainer.create(TINY, TrainConfig(), torch.device("cpu"))
    trainer.ema.config = EMAConfig(init_batches=1)
    trainer.ema(trainer.codec.encoder(_voices(2, 1).unsqueeze(1)))  # k-means start
    codec = trainer.codec.eval()
    codec.save_pretrained(tmp_path / "codec")
    codec = Codec.from_pretrained(tmp_path / "codec")
    rows = []
    for i, seconds in enumerate((0.5, 1.23, 0.8)):
        row = {"id": f"r{i}", "speaker": "spk", "split": "train", "text": "hello"}
        path = tmp_path / "audio" / "wav" / "spk" / f"r{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), _voices(1, i, int(seconds * 24_000))[0].numpy(), 24_000, subtype="FLOAT")
        rows.append(row)
    rows.append({"id": "missing", "speaker": "spk", "split": "train", "text": "x"})
    summary = encode_corpus(codec, {"train": rows}, [tmp_path / "audio"], tmp_path / "codes", log=lambda _: None)
    assert summary["train"]["rows"] == 3 and summary["train"]["missing"] == 1
    flat = np.load(tmp_path / "codes" / "train.codes.npy")
    with gzip.open(tmp_path / "codes" / "train.jsonl.gz", "rt") as handle:
        done = [json.loads(line) for line in handle]
    assert [r["frames"] for r in done] == [38, 93, 60]  # ceil(samples / 320)
    assert done[1]["offset"] == 38 and len(flat) == 38 + 93 + 60
    # Batched (padded) encoding gives each row the codes it gets alone, except near its padded end.
    alone = codec.encode(torch.from_numpy(sf.read(str(tmp_path / "audio/wav/spk/r0.wav"), dtype="float32")[0])[None])
    assert np.mean(alone[0].numpy()[:-4] == flat[:34]) > 0.9
    assert Codec.from_pretrained(tmp_path / "codes" / "codec").quantizer.bins == TINY.quantizer.bins


def test_decoder_only_warm_start_keeps_the_codes_and_trains_the_decoder(tmp_path):
    source = Trainer.create(TINY, TrainConfig(), torch.device("cpu"))
    source.ema.config = EMAConfig(init_batches=1)
    source.ema(source.codec.encoder(_voices(4, 1).unsqueeze(1)))  # k-means start
    source.codec.eval().save_pretrained(tmp_path / "codec")
    exported = Codec.from_pretrained(tmp_path / "codec")
    config = TrainConfig(batch_size=4, warmup_steps=1, gan_start_step=0, learning_rate=2e-3, train_encoder=False)
    trainer = Trainer.warm_start(exported, config, torch.device("cpu"))
    frozen = {n: p.clone() for n, p in trainer.codec.named_parameters() if n.startswith(("encoder.", "quantizer."))}
    decoder = {n: p.clone() for n, p in trainer.codec.named_parameters() if n.startswith(("backbone.", "head."))}
    wav = _voices(4, 7)
    codes_before = exported.encode(wav)
    first = trainer.train_step(wav)
    for _ in range(5):
        stats = trainer.train_step(wav)
    assert stats["restarts"] == 0 and "d_loss" in stats and stats["mel"] < first["mel"]
    for name, value in trainer.codec.named_parameters():
        if name in frozen:
            assert torch.equal(value, frozen[name]), name  # no gradient step, no EMA move, no restart
    assert any(not torch.equal(p, decoder[n]) for n, p in trainer.codec.named_parameters() if n in decoder)
    assert torch.equal(trainer.codec.eval().encode(wav), codes_before)


def test_merge_codes_concatenates_splits_and_moves_offsets(tmp_path):
    from lab.training.codec.encode import merge_codes

    def folder(name: str, rows: dict[str, list[int]]) -> None:
        path = tmp_path / name
        path.mkdir()
        flat, offset = [], 0
        with gzip.open(path / "train.jsonl.gz", "wt") as handle:
            for rid, codes in rows.items():
                handle.write(json.dumps({"id": rid, "offset": offset, "frames": len(codes)}) + "\n")
                flat += codes
                offset += len(codes)
        np.save(path / "train.codes.npy", np.array(flat, dtype=np.uint16))

    folder("a", {"a0": [1, 2, 3], "a1": [4]})
    folder("b", {"b0": [5, 6]})
    summary = merge_codes([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert summary["train"] == {"rows": 3, "frames": 6}
    flat = np.load(tmp_path / "m" / "train.codes.npy")
    with gzip.open(tmp_path / "m" / "train.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert [flat[r["offset"]: r["offset"] + r["frames"]].tolist() for r in rows] == [[1, 2, 3], [4], [5, 6]]
    with pytest.raises(ValueError, match="already"):
        merge_codes([tmp_path / "a", tmp_path / "a"], tmp_path / "m2")
    assert summary["codes_id"] is None  # neither records its codec
    for name in ("a", "b"):
        (tmp_path / name / "codec").mkdir()
        (tmp_path / name / "codec" / "codes.json").write_text(json.dumps({"codes_id": "174d643f448e2a0d"}))
    assert merge_codes([tmp_path / "a", tmp_path / "b"], tmp_path / "m3")["codes_id"] == "174d643f448e2a0d"
    assert (tmp_path / "m3" / "codec" / "codes.json").exists()  # the first source's codec folder
    (tmp_path / "b" / "codec" / "codes.json").write_text(json.dumps({"codes_id": "0123456789abcdef"}))
    with pytest.raises(ValueError, match="different codecs"):
        merge_codes([tmp_path / "a", tmp_path / "b"], tmp_path / "m4")
    assert not (tmp_path / "m4").exists()  # refused before writing anything
