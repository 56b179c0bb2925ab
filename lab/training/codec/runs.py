"""Runs that continue one another: open a run (resume, or start from an exported codec), export, freeze.

A run folder holds `last.pt` (lab.training.codec.train). A new run may start from an exported codec
folder (`--init`): its weights, and `base_step` / `base_seconds` = the steps and training seconds behind
that export (its training.json's base + own), so the held-out curve of the lineage is one line and
the model card can say how many GPU minutes the codec took. Exports are cut into parts of
at most `split_mib` MiB (the device tool returns files up to 16 MiB); `join_parts` puts them back,
and `open_run` joins an init folder's parts itself.

Export folder: config.json + codec.safetensors (or .partNN), training.json ({step, total_step, config}),
codes.json ({codes_id, ...}; lab.training.codec.freeze).
"""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import torch

from lab.training.codec.configs import CONFIGS, TrainConfig, phase_config
from lab.training.codec.freeze import codes_id, read_codes_id, write_codes_json
from lab.training.codec.train import CHECKPOINT, Trainer
from lina.codec.codec import WEIGHTS_FILE, Codec

TRAINING_JSON = "training.json"
PART_GLOB = WEIGHTS_FILE + ".part*"


def join_parts(folder: Path) -> None:
    """Join `codec.safetensors.partNN` files into `codec.safetensors` (no-op if it exists or has no parts)."""
    folder = Path(folder)
    parts = sorted(folder.glob(PART_GLOB))
    if (folder / WEIGHTS_FILE).exists() or not parts:
        return
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    with tmp.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    tmp.replace(folder / WEIGHTS_FILE)


def lineage(folder: Path) -> tuple[int, float]:
    """Training steps and seconds behind an exported codec ((0, 0) when it records none, e.g. v1)."""
    path = Path(folder) / TRAINING_JSON
    if not path.exists():
        return 0, 0.0
    data = json.loads(path.read_text())
    return (int(data.get("base_step", 0)) + int(data.get("step", 0)),
            float(data.get("base_seconds", 0.0)) + float(data.get("seconds", 0.0)))


def open_run(run: Path, device: torch.device, *, config: str = "mini", phase: str | None = None,
             init: Path | None = None, decoder_only: bool = False, overrides: dict | None = None,
             log=print) -> Trainer:
    """Resume `run` if it has a checkpoint (its saved settings win); else start it as asked."""
    run = Path(run)
    if (run / CHECKPOINT).exists():
        trainer = Trainer.load(run, device)
        log(f"resumed {run} at step {trainer.step} (total {trainer.config.base_step + trainer.step})")
        return trainer
    overrides = dict(overrides or {})
    settings = phase_config(phase, **overrides) if phase else TrainConfig(**overrides)
    if decoder_only:
        settings = replace(settings, train_encoder=False)
    if init is None:
        if not settings.train_encoder:
            raise SystemExit("a decoder-only run needs --init: a decoder can only learn codes that already exist")
        return Trainer.create(CONFIGS[config], settings, device)
    join_parts(Path(init))
    codec = Codec.from_pretrained(init).float()
    recorded = read_codes_id(init)
    if not settings.train_encoder and recorded is not None and recorded != codes_id(codec):
        raise SystemExit(f"{init}: its weights do not give the codes id it records ({recorded}): the encoder or "
                         "codebook was changed or cast after export; start a decoder-only run from an untouched export")
    steps, seconds = lineage(Path(init))
    trainer = Trainer.warm_start(codec, replace(settings, base_step=steps, base_seconds=seconds), device)
    log(f"new run {run} from {init} at total step {trainer.config.base_step} "
        f"(train_encoder={trainer.config.train_encoder}, discriminators={trainer.config.discriminators})")
    return trainer


def export(trainer: Trainer, out: Path, dtype: torch.dtype = torch.float16, split_mib: int = 0, **info) -> str:
    """Write the trainer's codec with training.json and codes.json; returns the codes id.

    Only the decoder (backbone + head) is cast to `dtype`: the encoder and the codebook stay float32, so
    every export encodes exactly as the trained codec does and keeps its codes id (a float16 encoder
    would move some latents across codebook boundaries). MINI: 48 MB with a float16 decoder.
    """
    out = Path(out)
    codec = trainer.codec.float().eval()
    ident = write_codes_json(codec, _fresh(out), step=trainer.step,
                             total_step=trainer.config.base_step + trainer.step, decoder_dtype=str(dtype), **info)
    saved = copy.deepcopy(codec)  # a copy: the trainer's float32 weights stay exact
    saved.backbone.to(dtype)
    saved.head.to(dtype)
    saved.save_pretrained(out)
    (out / TRAINING_JSON).write_text(json.dumps({
        "step": trainer.step, "total_step": trainer.config.base_step + trainer.step, "seconds": round(trainer.seconds, 1),
        "total_minutes": round((trainer.config.base_seconds + trainer.seconds) / 60, 2), **trainer.config.to_dict()},
        indent=1) + "\n")
    if split_mib:
        split(out / WEIGHTS_FILE, split_mib)
    return ident


def freeze_run(trainer: Trainer, out: Path, split_mib: int = 0, dtype: torch.dtype = torch.float16) -> str:
    """The export whose encoder + codebook make the LM's codes and start every later decoder-only run."""
    return export(trainer, out, dtype, split_mib, frozen=True)


def split(path: Path, split_mib: int) -> None:
    """Cut `path` into `path.partNN` of `split_mib` MiB (cat joins them) and remove it."""
    data, size = path.read_bytes(), split_mib << 20
    for i in range(0, len(data), size):
        path.with_name(f"{path.name}.part{i // size:02d}").write_bytes(data[i:i + size])
    path.unlink()


def _fresh(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(PART_GLOB):  # parts of an earlier export would be joined with the new ones
        stale.unlink()
    return out
