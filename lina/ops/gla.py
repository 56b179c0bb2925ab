"""Gated linear attention in pure PyTorch: the CPU path and the reference for the CUDA kernels.

Recurrence per head, with per-key-channel decay ``g_t = log a_t <= 0``::

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t          S: [Dk, Dv]
    o_t = (scale * q_t) S_t

All functions take ``q, k, g: [B, T, H, Dk]``, ``v: [B, T, H, Dv]``, an optional initial state
``[B, H, Dk, Dv]`` and return ``(o [B, T, H, Dv], final_state [B, H, Dk, Dv])``. The state is
always float32 (float64 for float64 inputs, for references), as fla keeps it, so long sequences do
not drift in half precision.
"""
from __future__ import annotations

import torch
from torch import Tensor

# exp(b_t - b_s) inside a chunk is formed explicitly: [C, C, Dk] per head, while the scan over chunks
# touches a [Dk, Dv] state per chunk. 8 balances the two for Dk = 64, Dv = 128 (lina-mini): on a 2-core
# CPU it halves a training step's GLA time against 16 (`python -m lab.bench.ist_cpu`).
DEFAULT_CHUNK = 8


def _acc(x: Tensor) -> torch.dtype:
    """Accumulation dtype: float32, or float64 when the inputs are float64."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _zero_state(q: Tensor, v: Tensor) -> Tensor:
    b, _, h, dk = q.shape
    return q.new_zeros(b, h, dk, v.shape[-1], dtype=_acc(q))


def gla_step(q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """One time step. ``q, k, g: [B, H, Dk]``, ``v: [B, H, Dv]``, ``state: [B, H, Dk, Dv]``.

    Returns ``(o [B, H, Dv], new_state)``.
    """
    acc = _acc(q)
    state = state.to(acc) * g.to(acc).exp().unsqueeze(-1) + k.to(acc).unsqueeze(-1) * v.to(acc).unsqueeze(-2)
    o = torch.einsum("bhk,bhkv->bhv", q.to(acc) * scale, state)
    return o.to(v.dtype), state


def gla_step_inplace(q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor, scale: float) -> Tensor:
    """:func:`gla_step` writing the new state into ``state`` (float32; float64 for float64 inputs) and
    returning ``o [B, H, Dv]``; no autograd. The same operations in the same order as :func:`gla_step`,
    so the same numbers bit for bit, without a second state-sized result for a caller to copy back
    (a CUDA graph's static buffer stays the state). Eagerly: decay in place, add the ``k^T v`` product,
    read for ``o``; under torch.compile the update fuses into one read-modify-write of ``state``.
    """
    acc = state.dtype
    state.mul_(g.to(acc).exp().unsqueeze(-1)).add_(k.to(acc).unsqueeze(-1) * v.to(acc).unsqueeze(-2))
    o = torch.einsum("bhk,bhkv->bhv", q.to(acc) * scale, state)
    return o.to(v.dtype)


def gla_recurrent(q: Tensor, k: Tensor, v: Tensor, g: Tensor, initial_state: Tensor | None = None,
                  scale: float | None = None) -> tuple[Tensor, Tensor]:
    """Naive token-by-token recurrence: slow, obviously right; the reference of the tests."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    state = _zero_state(q, v) if initial_state is None else initial_state.to(_acc(q))
    outs = []
    for t in range(q.shape[1]):
        o, state = gla_step(q[:, t], k[:, t], v[:, t], g[:, t], state, scale)
        outs.append(o)
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(v.shape)
    return o, state


def gla_chunked(q: Tensor, k: Tensor, v: Tensor, g: Tensor, initial_state: Tensor | None = None,
                scale: float | None = None, chunk_size: int = DEFAULT_CHUNK) -> tuple[Tensor, Tensor]:
    """Exact chunked parallel form (same numbers as the recurrence up to float rounding).

    Inside a chunk the decay between positions s <= t is ``exp(b_t - b_s)`` with ``b`` the cumulative
    log-gate; it is formed directly (never as ``exp(b_t) * exp(-b_s)``), so every exponent is <= 0 and
    nothing overflows however strong the gates. Chunks are then chained by a short scan over states.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    out_dtype = v.dtype
    bsz, seq_len, heads, dk = q.shape
    dv = v.shape[-1]
    acc = _acc(q)
    state = _zero_state(q, v) if initial_state is None else initial_state.to(acc)
    if seq_len == 0:
        return v.new_zeros(v.shape), state
    c = chunk_size
    n = -(-seq_len // c)
    pad = n * c - seq_len

    def chunks(x: Tensor) -> Tensor:  # [B, T, H, D] -> [B, H, N, C, D] (zero gates on padding: no decay)
        x = torch.nn.functional.pad(x.to(acc), (0, 0, 0, 0, 0, pad))
        return x.view(bsz, n, c, heads, -1).permute(0, 3, 1, 2, 4)

    qc, kc, vc, gc = chunks(q) * scale, chunks(k), chunks(v), chunks(g)
    b = gc.cumsum(dim=3)  # [B, H, N, C, Dk]
    causal = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    # decay[t, s] = exp(b_t - b_s) for s <= t, else 0   -> [B, H, N, C, C, Dk]
    diff = (b.unsqueeze(4) - b.unsqueeze(3)).masked_fill(~causal[..., None], float("-inf"))
    # scores[t, s] = sum_d q_t[d] decay[t, s, d] k_s[d]: one batched matrix-vector product per t
    # (cheaper, forward and backward, than a three-operand einsum or a product and a sum).
    scores = ((diff.exp() * kc.unsqueeze(3)) @ qc.unsqueeze(-1)).squeeze(-1)  # [B, H, N, C, C]
    o_intra = scores @ vc  # [B, H, N, C, Dv]

    # Contribution of each chunk to the state at its end, and each chunk's total decay.
    b_last = b[..., -1:, :]  # [B, H, N, 1, Dk]
    k_to_end = kc * (b_last - b).exp()
    chunk_kv = k_to_end.transpose(-1, -2) @ vc  # [B, H, N, Dk, Dv]
    chunk_decay = b_last.transpose(-1, -2).exp()  # [B, H, N, Dk, 1]
    q_decayed = qc * b.exp()  # [B, H, N, C, Dk]

    # N = T / C sequential steps of a [Dk, Dv] update. Each chunk reads its start state right away,
    # so the states are never stacked ([B, H, N, Dk, Dv]); unbind (not indexing) keeps the backward
    # from allocating a full-size zero gradient per chunk.
    outs = []
    for qd, dec, kv in zip(q_decayed.unbind(2), chunk_decay.unbind(2), chunk_kv.unbind(2)):
        outs.append(qd @ state)
        state = torch.addcmul(kv, state, dec)
    o_inter = torch.stack(outs, dim=2)  # [B, H, N, C, Dv]

    o = (o_intra + o_inter).permute(0, 2, 3, 1, 4).reshape(bsz, n * c, heads, dv)[:, :seq_len]
    return o.to(out_dtype), state
