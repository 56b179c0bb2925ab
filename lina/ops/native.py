"""The decoding step as one C call (``native_step.c``): the fastest CPU path of ``LinaModel.step``.

After the fused step (``fused_step.py``) a step still runs ~400 PyTorch ops, each a few microseconds
of dispatch on top of the arithmetic. The C version does the same computation over the same packed
weights in one call: every matrix is streamed once per step, everything between the products runs
in place. The source is compiled on first use with the system C compiler (``cc -O3 -march=native``,
about a second, in the background) into a per-user cache, keyed by source, compiler flags and CPU;
until then, where there is no compiler, or if anything fails, :func:`load` returns None and the fused
step runs instead.
Every shape, dtype and layout is checked here before a call (the C code trusts its arguments).

At batch 1 the step is then bound by reading the weights (~33 MB for lina-mini in float32). A matrix
whose values are exactly int8 codes times one scale per output column -- the embedded model, shipped
that way (``lina.int8_weights``) -- is also kept as those codes (a quarter of the bytes), and the C
code computes ``scale[n] * sum_i x[i] * code[i, n]``: the same number up to float rounding. The
codes are derived copies, so they are checked against the weights: through the parameters' version
counters at every step (in-place updates), and value by value at the first step of each text
context (which also sees writes through ``.data``); a matrix that no longer matches is re-derived,
or read in float32 when it is no longer int8.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from lina.ops.fused_step import PER_BLOCK, PackedModel
from lina.state import GLAState, LinaState

SOURCE = Path(__file__).with_name("native_step.c")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=c99"]
# Rows up to which the C step beats the fused one: its matrix loops stream the weights once, which
# wins at batch 1 (memory-bound) but do not block for reuse the way MKL's do (measured: 3.7 vs 6.8 ms
# at 1 row, 10.6 vs 13.5 at 4, 20 vs 18 at 8 on lina-mini).
MAX_BATCH = 4
_P, _I64 = ctypes.c_void_p, ctypes.c_int64
F32 = torch.float32


def _cpu_signature() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = ""
    return platform.machine() + flags


def _cache_dir() -> Path:
    for base in (Path.home() / ".cache", Path(tempfile.gettempdir())):
        folder = base / "lina-native"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise OSError("no writable cache folder")


@functools.lru_cache(maxsize=1)
def _library() -> Path | None:
    """Where the compiled library for this source, these flags and this CPU lives (or None)."""
    try:
        key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_signature().encode())
        return _cache_dir() / f"lina_step_{key.hexdigest()[:16]}.so"
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _build() -> ctypes.CDLL | None:
    """Compiles (unless cached) and loads the library; None where it cannot be built or loaded."""
    try:
        compiler = shutil.which("cc") or shutil.which("gcc")
        library = _library()
        if compiler is None or library is None or platform.system() != "Linux":
            return None
        if not library.exists():
            partial = library.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            subprocess.run([compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"], check=True,
                           capture_output=True, timeout=120)
            os.replace(partial, library)  # atomic: concurrent builders never see half a file
        lib = ctypes.CDLL(str(library))
        lib.lina_step.restype = ctypes.c_int
        lib.lina_step.argtypes = [_P, ctypes.c_float, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P]
        lib.lina_check_int8.restype = ctypes.c_int
        lib.lina_check_int8.argtypes = [_P, _P, _P, _I64, _I64]
        return lib
    except Exception:  # noqa: BLE001 - no compiler, a failed build, a foreign platform: use the fused step
        return None


_builder: list[threading.Thread | None] = []  # the build thread (None: the library was on disk)
_builder_lock = threading.Lock()


def load(wait: bool = False) -> ctypes.CDLL | None:
    """The compiled library, or None (no compiler, a failed build, or not built yet).

    A library built before (cached on disk) loads at once. Otherwise the first call starts the build
    (about a second) in a background thread and, unless ``wait``, returns None at once: the first
    steps run the fused PyTorch step instead of blocking on the compiler.
    """
    with _builder_lock:
        if not _builder:
            library = _library()
            cached = library is not None and library.exists()
            _builder.append(None if cached else threading.Thread(target=_build, name="lina-native"))
            if not cached:
                _builder[0].start()
    thread = _builder[0]
    if thread is None or wait or not thread.is_alive():
        if thread is not None:
            thread.join()
        return _build()
    return None


def _pointers(tensors: list[Tensor]) -> ctypes.Array:
    return (_P * len(tensors))(*[t.data_ptr() for t in tensors])


@functools.lru_cache(maxsize=64)
def _int64s(values: tuple[int, ...]) -> ctypes.Array:
    """A C array of ``values`` (cached: a step passes the same dims and strides every time; read only)."""
    return (_I64 * len(values))(*values)


def matrix_slots(packed: PackedModel) -> list[int]:
    """Indices in ``packed.weights`` of the ``[in, out]`` matrices (what may be read as int8)."""
    n_blocks = packed.ints[0] + 1 + packed.ints[1]
    g = n_blocks * PER_BLOCK
    return [i * PER_BLOCK + j for i in range(n_blocks) for j in (2, 4, 7, 10, 12)] + [g + 1, g + 5]


def int8_form(weight: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(codes int8 [in, out], scale [out])`` with ``codes * scale == weight`` exactly, or None."""
    scale = weight.abs().amax(0) / 127
    codes = torch.where(scale > 0, weight / torch.where(scale > 0, scale, 1.0), 0.0).round_()
    if not bool((codes.abs() <= 127).all()) or not torch.equal(codes * scale, weight):
        return None
    return codes.to(torch.int8).contiguous(), scale.contiguous()


def _versions(tensors: list[Tensor]) -> list[int] | None:
    try:
        return [t._version for t in tensors]
    except RuntimeError:  # inference tensors keep no version counter: the per-context check remains
        return None


@dataclass
class Native:
    """What the C step reads for one packing: pointers, and the int8 forms with their checks."""

    weights: ctypes.Array
    scales: ctypes.Array
    int8: dict[int, tuple[Tensor, Tensor]]      # slot -> (codes, scale), kept alive here
    versions: list[int] | None                  # of packed.views when the int8 forms were derived
    window: int                                 # short-convolution width W
    d: int                                      # model width
    checked: weakref.WeakValueDictionary = field(default_factory=weakref.WeakValueDictionary)


def _shapes(packed: PackedModel) -> list[tuple[int, ...]]:
    """The shape the C code assumes for each packed weight (PackedModel order)."""
    n_enc, n_dec, dk, dv, heads, hid = packed.ints[:6]
    w = packed.weights
    (v, d), (r, width) = w[-6].shape, (w[4].shape[0], w[3].shape[-1])
    block = [(d,), (d,), (d, 2 * dk + 2 * dv + r), (2 * dk + dv, width), (r, dk), (dk,), (dv // heads,), (dv, d),
             (d,), (d,), (d, 2 * hid), (2 * hid,), (hid, d), (d,), (), (), ()]
    return block * (n_enc + 1 + n_dec) + [(v, d), (d, d), (d,), (d,), (d,), (d, v)]


def _derive(packed: PackedModel) -> Native | None:
    """Pointers to the packed weights (int8 codes where a matrix has that form), or None if a weight
    is not float32 on the CPU in the shape and layout the C code reads (contiguous; the conv kernels
    as the transposed view of a contiguous [W, c] buffer)."""
    n_blocks = packed.ints[0] + 1 + packed.ints[1]
    if len(packed.weights) != n_blocks * PER_BLOCK + 6:
        return None
    for i, (w, shape) in enumerate(zip(packed.weights, _shapes(packed))):
        conv = i < n_blocks * PER_BLOCK and i % PER_BLOCK == 3
        layout = w.t().is_contiguous() and w.t().data_ptr() == w.data_ptr() if conv else w.is_contiguous()
        if w.dtype != torch.float32 or w.device.type != "cpu" or not layout or tuple(w.shape) != shape:
            return None
    versions = _versions(packed.views)
    int8 = {i: form for i in matrix_slots(packed) if (form := int8_form(packed.weights[i])) is not None}
    pointers = [int8[i][0] if i in int8 else w for i, w in enumerate(packed.weights)]
    scales = (_P * len(pointers))(*[int8[i][1].data_ptr() if i in int8 else None for i in range(len(pointers))])
    return Native(_pointers(pointers), scales, int8, versions, packed.weights[3].shape[-1], packed.weights[-6].shape[1])


def _current(lib: ctypes.CDLL, packed: PackedModel, ctx) -> Native | None:
    """The packing's :class:`Native`, re-derived when its int8 forms may no longer match."""
    native = packed.cache.get("native", False)
    if native is False:
        native = packed.cache["native"] = _derive(packed)
    if native is None or not native.int8:
        return native
    if native.versions is not None and _versions(packed.views) != native.versions:
        native = packed.cache["native"] = _derive(packed)
    if native.checked.get(id(ctx)) is not ctx:
        for i, (codes, scale) in native.int8.items():
            weight = packed.weights[i]
            if not lib.lina_check_int8(weight.data_ptr(), codes.data_ptr(), scale.data_ptr(), *weight.shape):
                native = packed.cache["native"] = _derive(packed)
                break
        native.checked[id(ctx)] = ctx
    return native


def model_step(lib: ctypes.CDLL, p: PackedModel, ctx, token: Tensor,
               state: LinaState) -> tuple[Tensor, LinaState, Tensor] | None:
    """:meth:`lina.model.LinaModel.step` in C -> ``(logits, state, alignment)``, or None when an input
    is not one the C code takes (then the caller runs the fused step)."""
    native = _current(lib, p, ctx)
    n_enc, n_dec, dk, dv, heads, hidden = p.ints[:6]
    layers = [*state.encoder, state.pos_net, *state.decoder]
    keys, values, positions, bias = ctx.keys, ctx.values, ctx.positions, ctx.score_bias
    if (native is None or bias is None or token.dtype is not torch.long or token.dim() != 1 or not token.is_cpu
            or len(layers) != n_enc + 1 + n_dec or keys.dim() != 3 or positions.dim() != 3
            or keys.shape[2] != native.d or not 0 < token.shape[0] <= MAX_BATCH or keys.shape[1] == 0):
        return None
    b, (_, tx, d), window = token.shape[0], keys.shape, native.window
    convs = [t for s in layers for t in (s.conv_q, s.conv_k, s.conv_v)]
    recurrent = [s.recurrent for s in layers]
    conv_shapes = [(b, dk, window - 1), (b, dk, window - 1), (b, dv, window - 1)] * len(layers)
    if (any(t.dtype is not F32 or not t.is_cpu for t in (*convs, *recurrent, keys, values, positions, bias))
            or [t.shape for t in convs] != conv_shapes
            or any(t.shape != (b, heads, dk // heads, dv // heads) for t in recurrent)
            or keys.shape != values.shape or keys.shape[0] != b or positions.shape[0] not in (1, b)
            or positions.shape[1:] != keys.shape[1:] or bias.shape != (b, 1, tx) or not bias.is_contiguous()):
        return None
    recurrent = [t if t.is_contiguous() else t.contiguous() for t in recurrent]
    token = token.contiguous()
    n, c = len(layers), 2 * dk + dv
    windows = torch.empty(n, b, c, window)
    rec = torch.empty(n, b, heads, dk // heads, dv // heads)
    logits = torch.empty(b, p.weights[-1].shape[1])
    alignment = torch.empty(b, 2, tx)
    dims = (b, d, dk, dv, heads, hidden, p.weights[4].shape[0], window, n_enc, n_dec, tx, logits.shape[1],
            positions.shape[0])
    states_in = [t.data_ptr() for i, r in enumerate(recurrent) for t in (*convs[3 * i:3 * i + 3], r)]
    status = lib.lina_step(_int64s(dims), p.floats[0], native.weights, native.scales, token.data_ptr(),
                           (_P * len(states_in))(*states_in), _int64s(tuple(x for t in convs for x in t.stride())),
                           windows.data_ptr(), rec.data_ptr(), keys.data_ptr(), values.data_ptr(),
                           positions.data_ptr(), _int64s((*keys.stride(), *values.stride(), *positions.stride())),
                           bias.data_ptr(), logits.data_ptr(), alignment.data_ptr())
    if status == 1:
        raise IndexError(f"token ids out of range [0, {logits.shape[1]}): {token.tolist()}")
    if status != 0:
        raise MemoryError("native step: out of memory")
    q, k, v = windows[:, :, :, 1:].split((dk, dk, dv), dim=2)
    new = [GLAState(*t) for t in zip(q.unbind(0), k.unbind(0), v.unbind(0), rec.unbind(0))]
    return logits, LinaState(new[:n_enc], new[n_enc + 1:], new[n_enc]), alignment
