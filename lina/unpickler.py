"""Reads PyTorch zip checkpoints without executing any code from them.

``torch.load(weights_only=False)`` would import and call whatever the pickle names (a checkpoint from
a stranger could run anything). This reader resolves only plain containers and tensor storages; every
other class named in the file becomes an inert :class:`Foreign` record of its pickled state, so
hyper-parameters stored as module objects can still be read as data. Nothing is imported or called.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

MAX_PICKLE_BYTES = 256 * 2**20    # the object graph of a checkpoint is small; tensors live beside it
MAX_TOTAL_BYTES = 16 * 2**30      # refuses zip bombs and absurd headers before reading anything

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class CheckpointError(ValueError):
    """A checkpoint or voice file that cannot be read safely, or does not fit the model."""


class Foreign:
    """Inert stand-in for an object of a class we do not import. ``state`` holds what it pickled."""

    module: str = ""
    qualname: str = ""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Foreign({self.module}.{self.qualname})"

    @property
    def attributes(self) -> dict:
        """Plain attributes (for an ``nn.Module``: its ``__dict__`` without the underscored internals)."""
        st = self.state[1] if isinstance(self.state, tuple) and len(self.state) == 2 else self.state
        return {k: v for k, v in (st or {}).items() if not str(k).startswith("_")} if isinstance(st, dict) else {}

    @property
    def children(self) -> dict:
        """Sub-modules of a pickled ``nn.Module`` (its ``_modules``), else empty."""
        st = self.state if isinstance(self.state, dict) else {}
        return dict(st.get("_modules", {}) or {})


def _foreign_class(module: str, name: str) -> type:
    return type(name, (Foreign,), {"module": module, "qualname": name})


def _reconstruct(cls: type, base: type, state: Any) -> Any:
    """Stand-in for ``copyreg._reconstructor``: builds a record, never calls the class."""
    return cls() if isinstance(cls, type) and issubclass(cls, Foreign) else Foreign()


class _Storage:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise CheckpointError("malformed tensor record in checkpoint")
    try:
        return storage.as_strided(tuple(size), tuple(stride), int(offset))
    except RuntimeError as exc:  # out-of-range views of a storage
        raise CheckpointError(f"malformed tensor in checkpoint: {exc}") from None


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset, ("__builtin__", "frozenset"): frozenset,
    ("builtins", "slice"): slice, ("__builtin__", "slice"): slice,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("copyreg", "_reconstructor"): _reconstruct,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._root, self._storages = archive, root, {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        return _foreign_class(module, name)

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise CheckpointError(f"unsupported persistent record in checkpoint: {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if key not in self._storages:
            name = f"{self._root}/data/{key}"
            try:
                raw = self._archive.read(name)
            except KeyError:
                raise CheckpointError(f"checkpoint lacks tensor data {name}") from None
            itemsize = torch.empty(0, dtype=kind.dtype).element_size()
            if len(raw) != int(numel) * itemsize:
                raise CheckpointError(f"tensor data {name} has {len(raw)} bytes, expected {numel * itemsize}")
            self._storages[key] = (torch.frombuffer(bytearray(raw), dtype=kind.dtype) if raw
                                   else torch.empty(0, dtype=kind.dtype))
        return self._storages[key]


def restricted_load(path: str | Path) -> Any:
    """Loads a ``torch.save`` zip archive as plain data; raises :class:`CheckpointError` on anything else."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch zip checkpoint ({exc})") from None
    with archive:
        infos = archive.infolist()
        pickles = [i for i in infos if i.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES or pickles[0].file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: archive declares more data than any checkpoint should hold")
        root = pickles[0].filename[: -len("/data.pkl")]
        try:
            return _Unpickler(archive.read(pickles[0]), archive, root).load()
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any malformed pickle becomes one clear error
            raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
