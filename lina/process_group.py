"""Joining torchrun's process group, for the library's own multi-process work (`lina.batch`) and the lab's
trainers (`lab.training.distributed` builds on this): who am I, with the GPU hosts' environment set first.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# The GPU hosts' documented environment: NVLink multicast (NVLS) off. Set before the process group
# (and NCCL) starts, in every process we launch; a value the caller set wins.
MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
# A rank waiting on another (rank 0 saving, validating) must not time out on a slow disk.
GROUP_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local_rank`` on its host."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when several processes train together (collectives are real)."""
        return self.size > 1


def launched() -> bool:
    """True when torchrun (or another launcher setting its variables) started this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def multicast_off() -> None:
    for key, value in MULTICAST_OFF.items():
        os.environ.setdefault(key, value)


def init(device: str | None = None) -> tuple[World, torch.device]:
    """Joins the process group when launched by torchrun; returns ``(world, device)``.

    ``device``: ``"cpu"`` forces gloo on CPU; ``None`` or ``"cuda"`` takes this rank's GPU when there is
    one. Safe to call twice (the second call reuses the group)."""
    multicast_off()
    if not launched():
        return World(), torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    use_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
        dev = torch.device("cuda", world.local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=GROUP_TIMEOUT)
    return world, dev
