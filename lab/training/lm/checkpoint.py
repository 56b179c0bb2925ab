"""The resumable state of a run: ``RUNDIR/last.pt``, and the same content as a folder of files of at most
15 MiB each (safetensors shards + ``state.json``), which a size-limited copy (the GPU host's $OUT) can carry.

A checkpoint is a plain dict (``torch.load(weights_only=True)`` reads it)::

    model       state_dict (fp32 master weights)
    optimizer   AdamW state_dict
    step        optimizer steps done
    data        {"epoch", "batch"}: the data position (see data.DataPosition)
    rng         {"torch": ByteTensor, "cuda": [ByteTensor] or []}
    elapsed     training seconds over all invocations
    tokenizer   the run's tokenizer JSON
    config      LinaConfig dict
    settings    TrainSettings dict (hyper-parameters that must not change on resume)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT_NAME = "last.pt"
SHARD_STATE = "state.json"
SHARD_PATTERN = "tensors-{:05d}.safetensors"
MAX_SHARD_BYTES = 15 * 2**20  # under the 16 MiB a copied file may have
SEP = "/"                     # joins nested keys: "optimizer/state/3/exp_avg"
SPLIT_MARK = "#part"          # a tensor too big for one shard is cut along dim 0: "name#part0", ...
RESUME_ONLY = ("optimizer", "rng")  # what an export does not need


def save(ckpt: dict, run: str | Path) -> Path:
    """Atomically write ``run/last.pt`` (a crash mid-write leaves the previous one)."""
    path = Path(run) / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load(source: str | Path) -> dict:
    """A checkpoint from ``last.pt``, a run folder holding it, or a shard folder."""
    source = Path(source)
    if source.is_dir() and (source / SHARD_STATE).exists():
        return load_shards(source)
    path = source / CHECKPOINT_NAME if source.is_dir() else source
    return torch.load(path, map_location="cpu", weights_only=True)


def _flatten(tree, prefix: str, tensors: dict):
    """Tensors of ``tree`` into ``tensors`` under joined keys; returns the tree with tensors as markers."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(tree, dict):
        return {"__dict__": [[k, _flatten(v, f"{prefix}{SEP}{k}", tensors)] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        items = [_flatten(v, f"{prefix}{SEP}{i}", tensors) for i, v in enumerate(tree)]
        return {"__list__": items} if isinstance(tree, list) else {"__tuple__": items}
    return tree


def _unflatten(node, tensors: dict):
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__dict__" in node:  # keys keep their type (optimizer state is keyed by int)
            return {k: _unflatten(v, tensors) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [_unflatten(v, tensors) for v in node["__list__"]]
        if "__tuple__" in node:
            return tuple(_unflatten(v, tensors) for v in node["__tuple__"])
    return node


def _pieces(name: str, t: torch.Tensor, max_bytes: int) -> list[tuple[str, torch.Tensor]]:
    """``t`` itself, or its dim-0 slices of at most ``max_bytes`` each (named ``name#partK``)."""
    size = t.numel() * t.element_size()
    if size <= max_bytes or t.dim() == 0:
        return [(name, t)]
    rows = max(1, max_bytes // max(1, size // t.shape[0]))
    # clone: views of one tensor share storage, which safetensors refuses
    return [(f"{name}{SPLIT_MARK}{k}", chunk.clone()) for k, chunk in enumerate(t.split(rows))]


def weights_only(ckpt: dict, dtype: torch.dtype | None = None) -> dict:
    """``ckpt`` without the optimizer and RNG states (a third of the size; enough to export, not to
    resume), its weights cast to ``dtype`` when given (fp16 halves it again; export casts to fp16 anyway)."""
    lean = {k: v for k, v in ckpt.items() if k not in RESUME_ONLY}
    if dtype is not None:
        lean["model"] = {k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    return lean


def save_shards(ckpt: dict, folder: str | Path, max_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """``ckpt`` as ``folder/state.json`` + safetensors files of at most ``max_bytes`` (plus a small header)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(ckpt, "", tensors)
    # Budget per file: the header (names, shapes, offsets) takes a few kB of the 15 MiB.
    budget = max_bytes - 2**16
    files: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, t in tensors.items():
        for piece_name, piece in _pieces(name, t, budget):
            size = piece.numel() * piece.element_size()
            if files[-1] and used + size > budget:
                files.append({})
                used = 0
            files[-1][piece_name] = piece
            used += size
    paths = []
    for k, part in enumerate(files):
        paths.append(folder / SHARD_PATTERN.format(k))
        save_file(part, str(paths[-1]))
    parts = {name: [p for p, _ in _pieces(name, t, budget)] for name, t in tensors.items()}
    (folder / SHARD_STATE).write_text(json.dumps({"skeleton": skeleton, "parts": parts, "files": len(files)}))
    return paths + [folder / SHARD_STATE]


def load_shards(folder: str | Path) -> dict:
    """Inverse of :func:`save_shards`."""
    folder = Path(folder)
    meta = json.loads((folder / SHARD_STATE).read_text())
    pieces: dict[str, torch.Tensor] = {}
    for k in range(meta["files"]):
        pieces.update(load_file(str(folder / SHARD_PATTERN.format(k))))
    tensors = {name: pieces[p[0]] if len(p) == 1 and p[0] == name else torch.cat([pieces[x] for x in p])
               for name, p in meta["parts"].items()}
    return _unflatten(meta["skeleton"], tensors)
