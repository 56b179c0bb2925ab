"""The training loop: next-token cross-entropy on codes, resumable to the step.

A run is a folder: ``last.pt`` (see checkpoint) and ``log.jsonl`` (one JSON object a line: the start
line ``{"start": ...}``, train lines ``{"step", "loss", "lr", "tokens_per_s", "elapsed", "epoch"}`` and
validation lines ``{"step", "val_loss", "elapsed"}``). Running the same command again continues where the
last one stopped, with the same data order and optimizer state: two calls of k steps give the same
losses as one call of 2k steps.

Several processes (``torchrun --nproc-per-node N -m lab.training.lm train ...``): one optimizer step
is ``batches_per_step`` batches of the global schedule (the global batch, a setting of the run), split
evenly among the processes (DistributedDataParallel averages their gradients), so the numbers do not
depend on N: a run continues on another number of processes (one process accumulates the gradients
of all the batches). ``lr`` is the rate of that global step: keeping the global batch keeps the rate;
changing ``batches_per_step`` is a new run (choose its ``lr`` yourself; nothing is scaled behind your
back). Rank 0 writes the log and the checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lab.training import distributed
from lab.training.codec.freeze import read_codes_id
from lab.training.lm import checkpoint
from lab.training.lm.codes_folder import read_manifest
from lab.training.lm.configs import preset
from lab.training.lm.data import (
    Batch,
    CodesSplit,
    DataPosition,
    EpochLoader,
    plan_batches,
)
from lab.training.lm.optim import lr_at, make_optimizer, set_lr
from lab.training.lm.tokenizer import VOCAB_SIZE, make_tokenizer
from lina.config import LinaConfig
from lina.model import LinaModel, count_parameters, teacher_forcing_loss
from lina.ops.dispatch import fla_kernels
from lina.text_frontend import tokenizer_from_str

LOG_NAME = "log.jsonl"
GRAD_CLIP = 1.0
# The budget check keeps this much slack beyond the measured step, validation and save times
# (a fraction of short budgets, so that a test's few seconds still train).
SAFETY_SECONDS = 5.0
SAFETY_FRACTION = 0.1
STEP_TIME_MARGIN = 2.0  # assume the next step may take twice the slowest recent one
# The first validation and the first step of a process compile and autotune fla's Triton kernels
# (minutes on a fresh GPU host, then ~0.1 s): their times say nothing about the next ones, so the
# stopping rule leaves them out (it once stopped a 660 s run after one step).


@dataclass(frozen=True)
class TrainSettings:
    """What defines a run; stored in the checkpoint and checked on resume (only ``steps`` may change)."""

    config: str = "mini"          # preset name (configs.PRESETS)
    steps: int = 20_000           # length of the learning-rate schedule
    lr: float = 1e-3
    warmup: int = 500
    batch_frames: int = 60_000    # padded audio tokens per batch
    max_frames: int = 1_500       # longer utterances (20 s) are skipped
    pair_fraction: float = 0.0    # extra train rows of two sentences back to back (data.pair_rows)
    styled_repeat: int = 1        # each non-neutral train row this many times (data.repeat_styled)
    seed: int = 0
    vocab_size: int = VOCAB_SIZE  # BPE only
    text_frontend: str = "bpe"    # "bpe" or "phonemes" (LinaConfig.text_frontend; docs/text_frontend.md)
    batches_per_step: int = 1     # the global batch: batches of the schedule per optimizer step (a multiple
                                  # of the process count; a fresh run under torchrun defaults to that count)


@dataclass(frozen=True)
class RunOptions:
    """Per-invocation options: they never change the numbers, only when this call stops and reports."""

    max_seconds: float = math.inf  # wall-clock budget of this call, saving included
    stop_at: int | None = None     # stop after this step (default: settings.steps)
    val_every: int = 500
    val_batches: int = 0           # 0: the whole validation split
    log_every: int = 10
    checkpoint_seconds: float = 300.0
    device: str | None = None      # default: cuda when available
    initial_validation: bool = True  # a step-0 baseline (on a fresh GPU host it also pays a compile)


LR_RULE = "lr per optimizer step of the global batch; unchanged by the process count"


def _log(run: Path, entry: dict) -> None:
    if not distributed.current().is_main:
        return
    with open(run / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def batch_loss(model: LinaModel, batch: Batch, use_fla: bool) -> torch.Tensor:
    """Mean next-token cross-entropy of ``batch`` (as `lina.ist.clip_loss`).

    Each row's text positions are those it has alone, as at inference: with positions over the padded
    width, rows saw position embeddings past their text's end that generation never shows, and lina-mini
    v2's alignment stalled before the end of the text."""
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if batch.audio.is_cuda else nullcontext()
    with amp:
        ctx = model.encode_text(batch.text, batch.text_len)
        with fla_kernels(sequences=use_fla):
            out = model(ctx, batch.audio[:, :-1], model.init_state(batch.audio.shape[0]))
    return teacher_forcing_loss(out.logits, batch.audio[:, 1:], batch.audio_len)


class _BatchLoss(nn.Module):
    """`batch_loss` as a module's forward, what DistributedDataParallel wraps (it hooks ``forward``)."""

    def __init__(self, model: LinaModel, use_fla: bool):
        super().__init__()
        self.model, self.use_fla = model, use_fla

    def forward(self, text, text_len, audio, audio_len) -> torch.Tensor:
        return batch_loss(self.model, Batch(text, text_len, audio, audio_len), self.use_fla)


@torch.no_grad()
def validate(model: LinaModel, split: CodesSplit, batch_frames: int, max_batches: int, use_fla: bool) -> float:
    """Token-weighted mean loss over the validation split (every ``k``-th batch when capped); under
    several processes each takes its share of the batches and the sums are added up."""
    batches = plan_batches(split.frames, batch_frames, seed=0, epoch=0, shuffle=False)
    if max_batches and len(batches) > max_batches:
        batches = batches[:: math.ceil(len(batches) / max_batches)]
    batches = distributed.shard(batches, distributed.current())
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for indices in batches:
        batch = split.collate(indices).to(model.device)
        total += batch_loss(model, batch, use_fla).item() * batch.targets
        count += batch.targets
    model.train(was_training)
    total, count = distributed.all_sum([total, count])
    return total / count if count else math.nan  # no token: no loss (a 0.0 here once read as a perfect model)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_settings(given: dict, stored: dict | None) -> TrainSettings:
    """A fresh run: ``given`` over the defaults. A continued run: the stored settings, where ``given`` may
    only change ``steps`` (to extend the schedule); any other difference is an error."""
    if stored is None:
        return TrainSettings(**given)
    defaults = dataclasses.asdict(TrainSettings())
    stored = {**defaults, **stored}  # a run stored before a setting existed ran with its default
    diff = {k: (stored[k], v) for k, v in given.items() if k != "steps" and stored[k] != v}
    if diff:
        raise ValueError(f"the run was started with other settings (stored, given): {diff}")
    return TrainSettings(**{**stored, **given})


class _StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its step, saves and returns."""

    def __init__(self) -> None:
        self.set = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass

    def _handle(self, *_) -> None:
        self.set = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def train(codes: str | Path, run: str | Path, given: dict, options: RunOptions = RunOptions(),
          resume_from: str | Path | None = None) -> dict:
    """Trains (or continues) the run in ``run`` on the codes in ``codes``; returns the last log values.

    ``given``: `TrainSettings` fields set by the caller (see :func:`resolve_settings`).
    ``resume_from``: a checkpoint elsewhere (``last.pt``, a run or a shard folder) to continue from
    instead of ``run/last.pt``.
    """
    t_call = time.monotonic()
    deadline = t_call + options.max_seconds
    world, device = distributed.init(options.device)
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    source = resume_from or (run / checkpoint.CHECKPOINT_NAME if (run / checkpoint.CHECKPOINT_NAME).exists() else None)
    distributed.barrier()  # every rank decides fresh/continue from the same folder state
    ckpt = checkpoint.load(source) if source else None
    carried_log = Path(resume_from) / LOG_NAME if resume_from else None
    if world.is_main and carried_log and carried_log.is_file() and not (run / LOG_NAME).exists():
        shutil.copyfile(carried_log, run / LOG_NAME)  # a shard folder carries the log of its run
    if ckpt and any(k not in ckpt for k in checkpoint.RESUME_ONLY):
        raise ValueError(f"{source} holds weights only (shard --weights-only): export it, or resume from a full one")
    if not ckpt and world.active:
        given = {"batches_per_step": world.size, **given}
    settings = resolve_settings(given, ckpt["settings"] if ckpt else None)
    if ckpt:
        cfg = LinaConfig.from_dict(ckpt["config"])
        tokenizer = tokenizer_from_str(cfg.text_frontend, ckpt["tokenizer"])
    else:
        cfg = dataclasses.replace(preset(settings.config), text_frontend=settings.text_frontend)
        # Rank 0 builds the tokenizer (it may write a cache beside the codes); the others read its JSON.
        made = None
        if world.is_main:
            texts = [row["text"] for row in read_manifest(codes, "train")]
            made = make_tokenizer(settings.text_frontend, texts, settings.vocab_size, codes).to_str()
        tokenizer = tokenizer_from_str(settings.text_frontend, distributed.from_main(made))
        if tokenizer.vocab_size > cfg.n_text_vocab:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids, the model {cfg.n_text_vocab}")
        torch.manual_seed(settings.seed)  # the initial weights depend on the seed only
    codes_id = read_codes_id(Path(codes) / "codec")  # which codec made the codes (None: not recorded)
    if ckpt and ckpt.get("codes_id") and codes_id and ckpt["codes_id"] != codes_id:
        raise ValueError(f"{source} learned the codes of codec {ckpt['codes_id']}, but {codes} holds the codes of "
                         f"codec {codes_id}: continue it on its own codes, or start a new run")
    micro_batches = len(distributed.split_evenly(range(settings.batches_per_step), world))
    use_fla = device.type == "cuda"
    model = LinaModel(cfg).to(device).train()
    optimizer = make_optimizer(model, settings.lr)
    step, elapsed_before, position, timing = 0, 0.0, DataPosition(), {"val_s": 0.0, "save_s": 0.0}
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"])
        step, elapsed_before = ckpt["step"], ckpt["elapsed"]
        position, timing = DataPosition(**ckpt["data"]), ckpt["timing"]
    train_split = CodesSplit(codes, "train", tokenizer, settings.max_frames, cfg.n_codebook, cfg.max_text_len,
                             settings.pair_fraction, settings.seed, settings.styled_repeat)
    val_split = CodesSplit(codes, "validation", tokenizer, settings.max_frames, cfg.n_codebook, cfg.max_text_len)
    loader = EpochLoader(train_split, settings.batch_frames, settings.seed, position)
    step_loss = _BatchLoss(model, use_fla)
    if world.active:  # the weights are equal on every rank already; DDP only averages the gradients
        step_loss = DistributedDataParallel(step_loss, device_ids=[device.index] if device.type == "cuda" else None)

    def elapsed() -> float:
        """Wall-clock seconds of this run over all its calls (loading and saving included)."""
        return elapsed_before + time.monotonic() - t_call

    def snapshot() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "data": dataclasses.asdict(loader.position), "rng": _rng_state(), "elapsed": elapsed(),
                "timing": timing, "tokenizer": tokenizer.to_str(), "config": cfg.to_dict(),
                "settings": dataclasses.asdict(settings), "codes_id": codes_id or (ckpt or {}).get("codes_id")}

    def save() -> None:
        if not world.is_main:
            return
        t = time.monotonic()
        checkpoint.save(snapshot(), run)
        timing["save_s"] = max(timing["save_s"], time.monotonic() - t)

    validations = {"count": 0}

    if not len(val_split):  # e.g. a render stopped before any validation row: say so, log no fake loss
        print(f"{codes}: the validation split has no usable rows; this run logs no validation loss", file=sys.stderr)

    def run_validation() -> float:
        if not len(val_split):
            return math.nan
        t = time.monotonic()
        val = validate(model, val_split, settings.batch_frames, options.val_batches, use_fla)
        validations["count"] += 1
        if validations["count"] > 1:  # see STEP_TIME_MARGIN's note
            timing["val_s"] = max(timing["val_s"], time.monotonic() - t)
        _log(run, {"step": step, "val_loss": val, "elapsed": elapsed()})
        return val

    global_batch = {"batches_per_step": settings.batches_per_step, "processes": world.size,
                    "batches_per_process": micro_batches,
                    "padded_tokens_per_step": settings.batches_per_step * settings.batch_frames, "lr_rule": LR_RULE}
    if not ckpt:
        _log(run, {"start": {"settings": dataclasses.asdict(settings), "config": cfg.to_dict(),
                             "params": count_parameters(model), "train_utterances": len(train_split),
                             "validation_utterances": len(val_split),
                             "skipped": train_split.skipped, "tokenizer_vocab": tokenizer.vocab_size,
                             "global_batch": global_batch}})
    elif world.active or settings.batches_per_step > 1:
        _log(run, {"launch": {"step": step, "global_batch": global_batch}})
    if not ckpt:
        if options.initial_validation:
            run_validation()  # step-0 baseline
        save()
    stop_at = min(options.stop_at or settings.steps, settings.steps)
    stop = _StopFlag()
    last_save, slowest_step, val_loss, first_step = time.monotonic(), 0.0, math.nan, step
    window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
    lr = lr_at(step, settings.lr, settings.warmup, settings.steps)
    try:
        while step < stop_at:
            reserve = timing["val_s"] + timing["save_s"] + min(SAFETY_SECONDS, SAFETY_FRACTION * options.max_seconds)
            out_of_time = time.monotonic() + STEP_TIME_MARGIN * slowest_step + reserve > deadline
            if distributed.any_true(out_of_time or stop.set):  # all ranks stop at the same step
                break
            t = time.monotonic()
            mine = distributed.split_evenly([loader.next_indices() for _ in range(settings.batches_per_step)], world)
            lr = lr_at(step, settings.lr, settings.warmup, settings.steps)
            set_lr(optimizer, lr)
            optimizer.zero_grad(set_to_none=True)
            loss_sum, targets = 0.0, 0
            for j, indices in enumerate(mine):
                host_batch = train_split.collate(indices)
                batch = host_batch.to(device)
                # DDP averages over ranks when the last micro-batch's backward runs; before it, no_sync
                # keeps adding this rank's gradients locally.
                last = j == len(mine) - 1
                with nullcontext() if last or not world.active else step_loss.no_sync():
                    loss = step_loss(batch.text, batch.text_len, batch.audio, batch.audio_len)
                    (loss / len(mine)).backward()
                loss_sum += loss.item()  # also synchronizes CUDA, so the step time below is real
                targets += host_batch.targets
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            loss_sum, targets = distributed.all_sum([loss_sum, targets])
            value = loss_sum / settings.batches_per_step
            if not math.isfinite(value):
                raise FloatingPointError(f"loss {value} at step {step}; last.pt holds the last good state")
            step += 1
            seconds = time.monotonic() - t
            if step > first_step + 1:  # the process's first step compiles (see STEP_TIME_MARGIN's note)
                slowest_step = max(seconds, 0.5 * slowest_step)  # decays: one slow step is not held forever
            window = {"loss": window["loss"] + value, "steps": window["steps"] + 1,
                      "tokens": window["tokens"] + targets, "seconds": window["seconds"] + seconds}
            if window["steps"] >= options.log_every:
                _log_window(run, window, step, lr, elapsed(), loader.position.epoch)
                window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
            if options.val_every and step % options.val_every == 0:
                val_loss = run_validation()
            if time.monotonic() - last_save > options.checkpoint_seconds:
                save()
                last_save = time.monotonic()
        if window["steps"]:
            _log_window(run, window, step, lr, elapsed(), loader.position.epoch)
        validated = options.val_every and step % options.val_every == 0
        if step > first_step and not validated:  # every call ends with a validation (its cost is reserved)
            val_loss = run_validation()
        save()  # not in a `finally`: after an error, last.pt keeps the last good state
    finally:
        stop.restore()
    distributed.barrier()  # rank 0's last save is on disk when any rank returns
    return {"step": step, "elapsed": elapsed(), "val_loss": val_loss, "epoch": loader.position.epoch,
            "seconds_this_call": time.monotonic() - t_call}


def _log_window(run: Path, window: dict, step: int, lr: float, elapsed: float, epoch: int) -> None:
    _log(run, {"step": step, "loss": window["loss"] / window["steps"], "lr": lr,
               "tokens_per_s": window["tokens"] / max(window["seconds"], 1e-9), "elapsed": elapsed, "epoch": epoch})
