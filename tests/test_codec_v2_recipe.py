"""Codec v2 recipe on the TINY config: multi-band STFT discriminator, phases, frozen codes, exact resume,
held-out evaluation inside training and the curve."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_codec_training import _one_thread  # noqa: F401 - autouse fixture: one thread for tiny convolutions
from test_codec_training import _voices as training_voices

from lab.training.codec.configs import TINY, TrainConfig, phase_config
from lab.training.codec.curve import curve_table, lineage_rows, plot_curve
from lab.training.codec.discriminators import Discriminators
from lab.training.codec.ema_codebook import EMAConfig
from lab.training.codec.eval_hook import EVAL_LOG, HeldoutEval, read_eval_log
from lab.training.codec.freeze import CODES_JSON, codes_id, read_codes_id
from lab.training.codec.runs import export, freeze_run, join_parts, open_run
from lab.training.codec.stft_discriminator import BandSTFTDiscriminator, MultiBandSTFTDiscriminator
from lab.training.codec.train import Trainer, train
from lina.codec.codec import WEIGHTS_FILE, Codec

CPU = torch.device("cpu")
SEGMENT = 320 * 24
# The GAN phase's settings with only the (light) multi-band discriminator, so CPU steps stay fast.
GAN_LIGHT = {"discriminators": ("mbstft",), "batch_size": 2, "warmup_steps": 1, "learning_rate": 2e-3}
MEL_LIGHT = {"batch_size": 2, "warmup_steps": 1, "learning_rate": 2e-3}


def _voices(batch: int, seed: int, samples: int = SEGMENT) -> torch.Tensor:
    """test_codec_training's tones, never quieter than half of full amplitude: `[batch, samples]`."""
    return training_voices(batch, seed, samples, min_amplitude=0.5)


def _batches(start: int = 0):
    return (_voices(2, seed) for seed in range(start, 10_000))


def _mel_trainer(steps: int, run) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer.create(TINY, phase_config("mel", **MEL_LIGHT), CPU)
    trainer.ema.config = EMAConfig(init_batches=2)
    return train(trainer, _batches(), run, max_seconds=120, max_steps=steps, log=lambda _: None)


# --- multi-band complex STFT discriminator -------------------------------------------------------

def test_multiband_stft_shapes_and_gradients():
    torch.manual_seed(0)
    disc = MultiBandSTFTDiscriminator(windows=(512, 256), channels=4)
    wav = (0.3 * torch.randn(2, 6000)).requires_grad_()
    outputs = disc(wav)
    assert len(outputs) == 2
    for (logits, features), window in zip(outputs, (512, 256)):
        frames = 1 + 6000 // (window // 4)
        assert logits.shape[:3] == (2, 1, frames) and torch.isfinite(logits).all()
        assert len(features) == 5 * 5  # 5 bands x (first + 3 strided + last layer)
        assert all(f.shape[0] == 2 and f.shape[2] == frames for f in features)
    sum(logits.mean() for logits, _ in outputs).backward()
    assert wav.grad is not None and float(wav.grad.abs().sum()) > 0
    # It sees phase: the same magnitudes with other phases give other logits.
    spec = torch.stft(wav.detach(), 512, 128, window=torch.hann_window(512), return_complex=True)
    rephased = torch.istft(spec * 1j, 512, 128, window=torch.hann_window(512), length=6000)
    assert not torch.allclose(disc(wav.detach())[0][0], disc(rephased)[0][0], atol=1e-4)


def test_band_discriminator_rejects_empty_bands():
    with pytest.raises(ValueError, match="empty band"):
        BandSTFTDiscriminator(16)


def test_discriminator_families_by_name():
    assert Discriminators(names=())(torch.zeros(1, 3200)) == []
    only = Discriminators(names=("mbstft",))
    assert only.names == ("mbstft",) and all(k.startswith("mbstft.") for k in only.state_dict())
    assert len(only(torch.zeros(1, 3200))) == 3
    assert Discriminators(names=("mbstft", "mpd", "mrd")).names == ("mpd", "mrd", "mbstft")  # fixed order
    with pytest.raises(ValueError, match="unknown discriminator"):
        Discriminators(names=("msd",))


# --- schedule and phases ---------------------------------------------------------------------------

def test_constant_schedule_stays_flat_after_warmup():
    trainer = Trainer.create(TINY, TrainConfig(lr_schedule="constant", warmup_steps=10, learning_rate=1e-3), CPU)
    rates = []
    for step in (0, 9, 10, 10_000, 10**7):
        trainer.step = step
        rates.append(trainer.learning_rate())
    assert rates == pytest.approx([1e-4, 1e-3, 1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


def test_mel_phase_has_no_discriminator_and_trains_the_encoder(tmp_path):
    trainer = _mel_trainer(6, tmp_path / "run")
    assert trainer.opt_d is None and trainer.discriminators.names == ()
    stats = trainer.train_step(_voices(2, 123))
    assert "d_loss" not in stats and "adv" not in stats and stats["usage"] > 0
    assert Trainer.load(tmp_path / "run", CPU).opt_d is None


# --- exact resume -------------------------------------------------------------------------------

def _states_equal(a: Trainer, b: Trainer) -> None:
    assert a.step == b.step
    for (name, x), y in zip(a.codec.state_dict().items(), b.codec.state_dict().values()):
        assert torch.equal(x, y), name
    for (name, x), y in zip(a.discriminators.state_dict().items(), b.discriminators.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("phase", ["mel", "gan"])
def test_a_run_resumed_midway_ends_where_an_uninterrupted_one_does(tmp_path, phase):
    def fresh(run):
        if phase == "mel":
            torch.manual_seed(0)
            trainer = Trainer.create(TINY, phase_config("mel", **MEL_LIGHT), CPU)
            trainer.ema.config = EMAConfig(init_batches=2)
            return trainer
        return open_run(run, CPU, phase="gan", init=frozen, overrides=GAN_LIGHT, log=lambda _: None)

    if phase == "gan":
        frozen = tmp_path / "frozen"
        freeze_run(_mel_trainer(3, tmp_path / "mel"), frozen)
    straight = train(fresh(tmp_path / "a"), _batches(), tmp_path / "a", 120, max_steps=6, log=lambda _: None)
    first = train(fresh(tmp_path / "b"), _batches(), tmp_path / "b", 120, max_steps=3, log=lambda _: None)
    del first
    resumed = open_run(tmp_path / "b", CPU, log=lambda _: None)  # from last.pt, whatever else is asked
    assert resumed.step == 3 and resumed.seconds > 0  # the time spent so far is kept
    resumed = train(resumed, _batches(3), tmp_path / "b", 120, max_steps=3, log=lambda _: None)
    _states_equal(straight, resumed)


# --- frozen codes -----------------------------------------------------------------------------------

def test_freeze_then_decoder_gan_keeps_the_codes(tmp_path):
    source = _mel_trainer(4, tmp_path / "mel")
    ident = freeze_run(source, tmp_path / "frozen", split_mib=1)
    assert not (tmp_path / "frozen" / WEIGHTS_FILE).exists()  # parts only, as the device tool returns them
    trainer = open_run(tmp_path / "gan", CPU, phase="gan", init=tmp_path / "frozen", overrides=GAN_LIGHT,
                       log=lambda _: None)
    assert (tmp_path / "frozen" / WEIGHTS_FILE).exists()  # joined
    frozen_codec = Codec.from_pretrained(tmp_path / "frozen")
    assert codes_id(frozen_codec) == ident == read_codes_id(tmp_path / "frozen") == trainer.config.codes_id
    assert trainer.config.base_step == 4 and not trainer.config.train_encoder
    wav = _voices(3, 77)
    before = frozen_codec.encode(wav)
    decoder = {n: p.clone() for n, p in trainer.codec.named_parameters() if n.startswith(("backbone.", "head."))}
    train(trainer, _batches(500), tmp_path / "gan", 120, max_steps=3, log=lambda _: None)
    assert any(not torch.equal(p, decoder[n]) for n, p in trainer.codec.named_parameters() if n in decoder)
    assert codes_id(trainer.codec) == ident
    assert torch.equal(trainer.codec.eval().encode(wav), before)
    # Exports with a float16 decoder keep the encoder + codebook in float32: the same codes, the same id,
    # so a later decoder-only run can continue from one.
    assert export(trainer, tmp_path / "dec16") == ident
    dec16 = Codec.from_pretrained(tmp_path / "dec16")
    assert codes_id(dec16) == ident and torch.equal(dec16.encode(wav), before)
    recorded = json.loads((tmp_path / "dec16" / "training.json").read_text())
    assert recorded["total_step"] == 7 and recorded["total_minutes"] > 0 and trainer.seconds > 0
    again = open_run(tmp_path / "gan2", CPU, phase="gan", init=tmp_path / "dec16", overrides=GAN_LIGHT, log=lambda _: None)
    assert again.config.codes_id == ident and again.config.base_step == 7
    assert again.config.base_seconds == pytest.approx(source.seconds + trainer.seconds, abs=0.2)
    # A decoder-only run refuses a folder whose weights do not give the id it records ...
    codes_json = tmp_path / "dec16" / CODES_JSON
    codes_json.write_text(json.dumps({**json.loads(codes_json.read_text()), "codes_id": "0" * 16}))
    with pytest.raises(SystemExit, match="codes id it records"):
        open_run(tmp_path / "bad", CPU, phase="gan", init=tmp_path / "dec16", overrides=GAN_LIGHT, log=lambda _: None)
    # ... and refuses to save once the frozen part moved.
    with torch.no_grad():
        next(trainer.codec.encoder.parameters()).add_(1e-3)
    with pytest.raises(RuntimeError, match="frozen encoder or codebook changed"):
        trainer.save(tmp_path / "gan")


def test_join_parts_restores_the_bytes(tmp_path):
    from lab.training.codec.runs import split

    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 5)
    (tmp_path / WEIGHTS_FILE).write_bytes(data)
    split(tmp_path / WEIGHTS_FILE, 1)
    assert len(list(tmp_path.glob("*.part*"))) == 4 and not (tmp_path / WEIGHTS_FILE).exists()
    join_parts(tmp_path)
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == data


# --- evaluation inside training, the curve ----------------------------------------------------------

def test_eval_hook_writes_rows_and_the_curve_draws_them(tmp_path):
    clips = {f"c{i}": _voices(1, 900 + i, 36_000)[0].numpy() for i in range(2)}
    evaluator = HeldoutEval(clips, every=2, run=tmp_path / "mel")
    torch.manual_seed(0)
    trainer = Trainer.create(TINY, phase_config("mel", **MEL_LIGHT), CPU)
    trainer.ema.config = EMAConfig(init_batches=2)
    train(trainer, _batches(), tmp_path / "mel", 120, max_steps=5, log=lambda _: None, evaluator=evaluator)
    rows = read_eval_log(tmp_path / "mel")
    assert [r["step"] for r in rows] == [2, 4, 5]  # every 2 steps, and the last step
    for row in rows:
        assert row["clips"] == 2 and row["fingerprint"] == evaluator.fingerprint and -1 <= row["stoi"] <= 1
        assert 0 <= row["voicing_ref"] <= 1 and row["mel_l1"] > 0 and len(row["codes_id"]) == 16
        assert row["train_seconds"] > 0
    # A warm-started continuation is scored at its start, on the lineage's step axis.
    freeze_run(trainer, tmp_path / "frozen")
    gan = open_run(tmp_path / "gan", CPU, phase="gan", init=tmp_path / "frozen", overrides=GAN_LIGHT, log=lambda _: None)
    train(gan, _batches(50), tmp_path / "gan", 120, max_steps=2, log=lambda _: None,
          evaluator=HeldoutEval(clips, every=2, run=tmp_path / "gan"))
    gan_rows = read_eval_log(tmp_path / "gan" / EVAL_LOG)
    assert [(r["step"], r["total_step"]) for r in gan_rows] == [(0, 5), (2, 7)]
    assert gan_rows[0]["stoi"] == pytest.approx(rows[-1]["stoi"], abs=1e-6)  # the same codec, scored again
    curve, left_out = lineage_rows([tmp_path / "mel", tmp_path / "gan"])
    assert [r["total_step"] for r in curve] == [2, 4, 5, 7] and left_out == 0
    plot_curve(curve, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert curve_table(curve).count("\n") == 1 + 4
    assert (tmp_path / "frozen" / CODES_JSON).exists()
