"""Training under torchrun: two gloo processes on CPU give the numbers of one process with the same
global batch, and a run moves between process counts through its checkpoint.

Each torchrun launch starts two Python processes (imports included: ~10 s on two shared cores), so the
tests launch as few as they can and check several things per launch.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_lm_training import TINY_SETTINGS, fake_codes_dir, one_thread  # noqa: F401  (autouse fixture)

from lab.training import distributed
from lab.training.lm import checkpoint
from lab.training.lm.train import LOG_NAME, RunOptions, train

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = 2
# One process accumulates the gradients of both micro-batches, DDP averages two ranks' gradients:
# the same sums in another order, so the numbers agree to float32 rounding, not bit for bit.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5
LAUNCH_TIMEOUT_S = 300
# The codec's float32 runs agree less closely, and measurably why: weights whose true gradient is zero
# (biases before a norm layer) get rounding noise of ~1e-9 as gradient, which Adam (eps 1e-8) turns into
# steps of about +-lr, so those elements of two correct runs differ by ~lr (measured: 275 of 178,656
# codec weights by > 1e-3). Measured after 5 steps: mel / loss / commit within 5e-5 relative, the GAN
# terms within 3e-4; weight distance / weight movement 0.032 (codec) and 0.012 (discriminators), where
# the same 5 steps on other batches give 0.58 and 0.78; the EMA table within 3e-5.
CODEC_LOSS_RTOL = {"loss": 1e-4, "mel": 1e-4, "commit": 2e-4, "d_loss": 2e-3, "adv": 2e-3, "fm": 2e-3}
CODEC_WEIGHT_RATIO = 0.1
CODEC_TABLE_ATOL = 2e-4


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc-per-node 2 --standalone ARGS`` from the repo root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # a launcher's own variables must not leak into the child
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={PROCESSES}", "--standalone", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def log_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / LOG_NAME).read_text().splitlines()]


def by_step(log: list[dict], key: str) -> dict[int, float]:
    return {e["step"]: e[key] for e in log if key in e}


def assert_same_weights(a: Path, b: Path) -> float:
    """Largest absolute difference between the two runs' weights (asserted under WEIGHT_ATOL)."""
    wa, wb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst < WEIGHT_ATOL, worst
    return worst


def test_helpers_are_the_identity_in_one_process(monkeypatch):
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    world, device = distributed.init("cpu")
    assert (world.rank, world.size, world.is_main, world.active) == (0, 1, True, False) and device.type == "cpu"
    assert distributed.all_sum([1.5, 2]) == [1.5, 2.0] and distributed.any_true(True) and not distributed.any_true(False)
    assert distributed.from_main("x") == "x"
    for key, value in distributed.MULTICAST_OFF.items():
        assert os.environ[key] == value
    items = list(range(10))
    shares = [distributed.shard(items, distributed.World(r, 3)) for r in range(3)]
    assert sorted(sum(shares, [])) == items and shares[0] == [0, 3, 6, 9]
    assert distributed.split_evenly(items, distributed.World(1, 2)) == [1, 3, 5, 7, 9]
    with pytest.raises(ValueError, match="multiple of 3"):
        distributed.split_evenly(items, distributed.World(0, 3))


def lm_args(codes: Path, run: Path, stop_at: int) -> list[str]:
    s = TINY_SETTINGS
    return ["-m", "lab.training.lm", "train", "--codes", str(codes), "--run-dir", str(run), "--config", s["config"],
            "--steps", str(s["steps"]), "--lr", str(s["lr"]), "--warmup", str(s["warmup"]),
            "--batch-frames", str(s["batch_frames"]), "--max-frames", str(s["max_frames"]), "--seed", str(s["seed"]),
            "--stop-at", str(stop_at), "--log-every", "1", "--val-every", "2", "--device", "cpu"]


def test_lm_two_processes_equal_one_and_move_between_counts(tmp_path):
    """2 processes to step 2, 1 process to step 4, 2 processes to step 6 == 1 process for 6 steps,
    with 2 batches per step (each process takes 1 per step)."""
    codes = fake_codes_dir(mkdir(tmp_path / "codes"), n_train=120, n_eval=8)
    settings = {**TINY_SETTINGS, "batches_per_step": PROCESSES}
    options = RunOptions(log_every=1, val_every=2, device="cpu")
    single, mixed = tmp_path / "single", tmp_path / "mixed"
    train(codes, single, settings, options)

    torchrun(*lm_args(codes, mixed, stop_at=2))
    log = log_of(mixed)
    start = log[0]["start"]
    assert start["settings"]["batches_per_step"] == PROCESSES  # the default under torchrun: one batch each
    assert start["global_batch"]["processes"] == PROCESSES and start["global_batch"]["batches_per_process"] == 1
    assert checkpoint.load(mixed)["step"] == 2 and checkpoint.load(mixed)["data"]["batch"] == 2 * PROCESSES
    train(codes, mixed, {}, RunOptions(log_every=1, val_every=2, device="cpu", stop_at=4))  # one process
    torchrun(*lm_args(codes, mixed, stop_at=6))

    ref, got = log_of(single), log_of(mixed)
    launches = [e["launch"]["global_batch"]["processes"] for e in got if "launch" in e]
    assert launches == [1, PROCESSES]
    for key in ("loss", "val_loss"):
        want, have = by_step(ref, key), by_step(got, key)
        assert want.keys() == have.keys() and len(want) >= 3, (want, have)
        for step in want:
            assert have[step] == pytest.approx(want[step], rel=LOSS_RTOL), (key, step)
    assert by_step(ref, "loss")[6] < by_step(ref, "loss")[1]  # it trained
    assert checkpoint.load(mixed)["data"] == checkpoint.load(single)["data"]
    assert_same_weights(single, mixed)


def test_lm_process_count_must_divide_the_global_batch(tmp_path):
    codes = fake_codes_dir(mkdir(tmp_path / "codes"), n_train=60, n_eval=4)
    run = tmp_path / "run"
    train(codes, run, {**TINY_SETTINGS, "batches_per_step": 3}, RunOptions(val_every=0, device="cpu", stop_at=1))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={PROCESSES}", "--standalone",
           *lm_args(codes, run, stop_at=2)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert done.returncode != 0 and "multiple of 2" in done.stderr
    assert checkpoint.load(run)["step"] == 1  # untouched


def test_codec_gan_two_processes_equal_one_and_resume_in_one(tmp_path):
    """Tiny codec, global batch 4, GAN from step 2: 2 processes (2 rows each) to step 3, then 1 process
    to step 5 == 1 process for 5 steps (the k-means start and the EMA table included)."""
    from distributed_codec_worker import fresh
    from distributed_codec_worker import main as codec_steps

    single, mixed = tmp_path / "single", tmp_path / "mixed"
    ref = codec_steps(single, 5)
    torchrun(str(Path(__file__).with_name("distributed_codec_worker.py")), str(mixed), "3")
    assert torch.load(mixed / "last.pt", weights_only=True)["step"] == 3
    got = codec_steps(mixed, 2)
    assert got.step == ref.step == 5 and bool(got.ema.initialized)
    want, have = ({e["step"]: e for e in log_of(r)} for r in (single, mixed))
    assert want.keys() == have.keys() == set(range(1, 6)) and "d_loss" in want[5]
    for step in want:
        for key, rtol in CODEC_LOSS_RTOL.items():
            if key in want[step]:
                assert have[step][key] == pytest.approx(want[step][key], rel=rtol, abs=1e-9), (key, step)
    start = fresh()
    for name in ("codec", "discriminators"):
        assert weight_distance(getattr(ref, name), getattr(got, name), getattr(start, name)) < CODEC_WEIGHT_RATIO, name
    assert float((ref.ema.table - got.ema.table).abs().max()) < CODEC_TABLE_ATOL


def weight_distance(a: torch.nn.Module, b: torch.nn.Module, start: torch.nn.Module) -> float:
    """``|a - b| / |a - start|`` over the floating-point weights (L2): how far apart two runs ended,
    as a fraction of how far training moved them."""
    sa, sb, s0 = a.state_dict(), b.state_dict(), start.state_dict()
    keys = [k for k in sa if sa[k].is_floating_point() and not torch.equal(sa[k], s0[k])]
    diff = torch.cat([(sa[k].double() - sb[k].double()).flatten() for k in keys])
    moved = torch.cat([(sa[k].double() - s0[k].double()).flatten() for k in keys])
    return float(diff.norm() / moved.norm())
