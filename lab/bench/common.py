"""What every benchmark shares: where results go, incremental writing, devices, fla switches, sizes."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import torch

from lina.ist import Clip


def require_cuda_unless_dry(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stops with a usage error when ``args.device`` is CUDA but none is here (a dry run needs none)."""
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        parser.error("CUDA is not available here; use --smoke or --device cpu")


def dry_run_plan(args: argparse.Namespace, keys: tuple[str, ...]) -> dict:
    """What a run with ``args`` would measure (``keys`` of ``args``), printed and returned."""
    plan = {k: getattr(args, k) for k in keys}
    print("dry run, would measure:", plan, flush=True)
    return plan


def random_clips(count: int, frames: int, text_len: int, n_codebook: int, n_text_vocab: int,
                 seed: int = 0, vary: bool = False) -> list[Clip]:
    """``count`` IST clips of random codec ids ``[frames]`` and text ids ``[text_len]`` (never the special
    ids below 3). ``vary``: lengths differ a little from clip to clip, as real clips do."""
    g = torch.Generator().manual_seed(seed)
    return [Clip(torch.randint(0, n_codebook, (frames - (10 * (i % 3) if vary else 0),), generator=g),
                 torch.randint(3, n_text_vocab, (text_len - (2 * (i % 2) if vary else 0),), generator=g))
            for i in range(count)]


def write_result(name: str, result: dict) -> Path:
    """Writes ``result`` as ``$OUT/<name>.json`` (``OUT`` defaults to ./out) and returns the path.

    The file is replaced atomically, so a run killed while writing leaves the previous version."""
    out = Path(os.environ.get("OUT", "out"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    os.replace(tmp, path)
    return path


class Results:
    """A result document rewritten to ``$OUT/<name>.json`` after every row, so that a run killed by
    a time limit keeps what it measured; ``log`` prints progress lines with the elapsed time, flushed."""

    def __init__(self, name: str, **meta):
        self.name, self.t0 = name, time.perf_counter()
        self.data = {"complete": False, **meta}
        self.save()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, *parts) -> None:
        print(f"[{self.elapsed():6.1f} s]", *parts, flush=True)

    def save(self) -> Path:
        self.data["elapsed_s"] = round(self.elapsed(), 1)
        return write_result(self.name, self.data)

    def add(self, key: str, row: dict) -> dict:
        self.data.setdefault(key, []).append(row)
        self.save()
        return row

    def done(self) -> Path:
        self.data["complete"] = True
        return self.save()


# ---- devices ---------------------------------------------------------------------------------------
def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device | str) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if torch.device(device).type == "cuda" else None


def free_memory(device: torch.device | str) -> None:
    import gc
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def timed(fn, device: torch.device | str) -> tuple[float, float | None]:
    """``(seconds, peak MiB)`` of ``fn()`` with device synchronisation; the peak counts what is resident."""
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start, peak_mib(device)


def allow_many_recompiles(limit: int = 64) -> None:
    """A benchmark compiles ``LinaModel.step`` for several batch sizes, dtypes and kernel choices in
    one process; past dynamo's default limit (8 per code object) it would silently run eagerly."""
    import torch._dynamo as dynamo
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo.config, name):
            setattr(dynamo.config, name, max(limit, getattr(dynamo.config, name)))


# ---- sizes -----------------------------------------------------------------------------------------
def released_size():
    """Random weights of the released size (d_model 1024, 6+6 GLA layers, 4099-way head)."""
    from lina.config import LinaConfig
    return LinaConfig(model_id="random-released-size")


def tiny_size():
    """A few-hundred-thousand-parameter model of the same structure, for the CPU smoke runs."""
    from lina.config import LinaConfig
    return LinaConfig(d_model=64, n_layer=1, n_heads=2, text_layers=1, text_heads=2, model_id="tiny-random")


# ---- fla ---------------------------------------------------------------------------------------------
def _chunk_in_torch(q, k, v, g, scale=None, initial_state=None, output_final_state=True):
    """fla's ``chunk_gla`` signature, computed by the PyTorch chunked form (as without fla)."""
    from lina.ops.gla import gla_chunked
    init = None if initial_state is None else initial_state.to(q.dtype)
    return gla_chunked(q, k, v, g, init, scale)


def fla_installed() -> bool:
    """Whether fla imports (only tried where CUDA is: it needs Triton and a GPU)."""
    if not torch.cuda.is_available():
        return False
    from lina.ops import dispatch
    return (_ORIGINAL_FLA_OPS[0] if _ORIGINAL_FLA_OPS else dispatch._fla_ops)() is not None


_ORIGINAL_FLA_OPS: list = []


def set_fla(mode: str) -> None:
    """Which of fla's kernels ``lina.ops.dispatch`` may use in this process:

    * ``all``: fla's chunked (sequence) and fused-recurrent (step) kernels, as the library does;
    * ``step``: the step kernel only, sequences (prefills, tuning) in PyTorch: fla's chunked kernels
      compile and autotune for minutes per dtype and shape on first use, which a decoding benchmark
      would otherwise pay in every fresh process for a prefill it does not time;
    * ``none``: PyTorch everywhere, whatever ``use_fla`` says.
    """
    from lina.ops import dispatch
    if not _ORIGINAL_FLA_OPS:
        _ORIGINAL_FLA_OPS.append(dispatch._fla_ops)
    original = _ORIGINAL_FLA_OPS[0]
    if mode == "all":
        dispatch._fla_ops = original
    elif mode == "none":
        dispatch._fla_ops = lambda: None
    elif mode == "step":
        def step_only():
            ops = original()
            return None if ops is None else (_chunk_in_torch, ops[1])
        dispatch._fla_ops = step_only
    else:
        raise ValueError(f"fla mode {mode!r}: all, step or none")


@contextlib.contextmanager
def fla_mode(mode: str):
    """``set_fla(mode)`` for a block; the previous choice afterwards."""
    from lina.ops import dispatch
    before = dispatch._fla_ops
    set_fla(mode)
    try:
        yield
    finally:
        dispatch._fla_ops = before
