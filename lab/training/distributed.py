"""Several processes of one training run (``torchrun --nproc-per-node N``): who am I, and what we share.

A trainer calls :func:`init` once. Launched by torchrun (``WORLD_SIZE`` in the environment) it joins
the process group (NCCL when the process has a GPU, gloo on CPU); launched plainly it does nothing and
every helper below is the single-process identity, so a plain run behaves as it did before.

Conventions the trainers share:
- the *global* batch is a setting of the run (stored in its checkpoint); the world size only decides
  how it is split, so a run may continue on another number of processes with the same numbers;
- rank 0 writes the checkpoint and the log; the others wait at :func:`barrier` where it matters;
- per-step decisions that depend on a clock (stop for the time budget, a signal) are agreed with
  :func:`any_true`, or one rank would wait forever in the next all-reduce.
"""
from __future__ import annotations

import os
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist

# Joining the group lives in the library (lina.batch uses it too); the trainers import it from here.
from lina.process_group import GROUP_TIMEOUT, MULTICAST_OFF, World, init, launched, multicast_off  # noqa: F401

T = TypeVar("T")


def current() -> World:
    """The world of an initialized group, else the single process."""
    if not dist.is_available() or not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def barrier() -> None:
    if current().active:
        dist.barrier()


def _device_of_group() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (float64; the identity in one process)."""
    if not current().active:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device_of_group())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_true(flag: bool) -> bool:
    """True on every rank when it is true on any (stop decisions taken from a clock or a signal)."""
    return all_sum([1.0 if flag else 0.0])[0] > 0


def shard(items: Sequence[T], world: World) -> list[T]:
    """This rank's share of ``items``: every ``size``-th item from ``rank`` (disjoint, covering all).

    Every rank must pass the same sequence (built from the same seed and position)."""
    return list(items[world.rank:: world.size])


def split_evenly(items: Sequence[T], world: World) -> list[T]:
    """This rank's share of ``items`` when its length must divide by the world size (a global batch of
    ``k`` micro-batches: ``k / size`` each, so every rank makes the same number of backward passes)."""
    if len(items) % world.size:
        raise ValueError(f"{len(items)} micro-batches per step do not divide among {world.size} processes; "
                         f"choose a multiple of {world.size}")
    return shard(items, world)


def finish() -> None:
    """Leaves the process group (end of a launched run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (a small picklable object: a tokenizer's JSON, a decision)."""
    if not current().active:
        return value
    box = [value if current().is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(params) -> None:
    """Replaces each gradient of ``params`` by its mean over the ranks (one all-reduce per dtype).

    For trainers whose step DistributedDataParallel cannot hook (the codec's GAN step runs the
    discriminators several times per backward and the generator loss reaches their weights): called
    after ``backward``, before clipping, it gives every rank the gradient of the global batch mean."""
    if not current().active:
        return
    world = current().size
    grads = [p.grad for p in params if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world
        for g, part in zip(group, flat.split([g.numel() for g in group])):
            g.copy_(part.view_as(g))


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """``[n, ...]`` on each rank -> ``[size * n, ...]``, rank 0's rows first (``rows`` itself alone).

    Every rank must pass the same shape. State updated from a batch's statistics (an EMA codebook)
    then sees the global batch on every rank, in the order one process would have it."""
    world = current()
    if not world.active:
        return rows
    parts = [torch.empty_like(rows) for _ in range(world.size)]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)
