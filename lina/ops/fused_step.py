"""The decoding step with fewer, larger ops: the PyTorch CPU path of :meth:`lina.model.LinaModel.step`
(the C step of :mod:`lina.ops.native` reads the same packed weights; this runs where that is not built).

At batch 1 a step is dispatch-bound: the reference path (the modules' own ``step`` methods) runs ~800
small PyTorch ops from Python. This one computes the same function with ~40 ops per GLA block:

- one matmul for everything that reads a block's normed input (q, k, v, output gate, gate down
  projection), with the weights concatenated and stored transposed (``x @ W``, which MKL runs
  ~2x faster than ``x @ W.T`` for one row);
- the three short convolutions as one multiply-add over the concatenated channels;
- the recurrent state updated with one new tensor (decay, then an in-place rank-1 add);
- residual additions fused into the output projections (``addmm``);
- the cross-attention's scale and text mask folded into one ``baddbmm`` per attention.

:func:`step_flat` is plain tensor code over flat lists, so it also runs as TorchScript (the
interpreter dispatches each op ~2x cheaper than Python); :func:`model_step` uses the scripted version
when scripting works and the Python function otherwise, with the same results.

No weight is copied: :func:`pack_model` lays the model's matrices out as views of a few transposed
buffers, which the step reads directly. The recurrent state is still passed in and returned in the
:class:`~lina.state.GLAState` layout. Outputs equal the reference within float rounding
(``tests/test_fast_step.py``).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lina.state import GLAState, LinaState

PER_BLOCK = 17  # tensors per GLA block in PackedModel.weights (see pack_block)
PER_STATE = 4   # conv_q, conv_k, conv_v, recurrent


class PackedModel(NamedTuple):
    """Weights in the order :func:`step_flat` reads them: the blocks (encoder, position net,
    decoder; :data:`PER_BLOCK` each), then embedding, cross-attention query and output head."""

    weights: list[Tensor]
    ints: list[int]        # n_encoder, n_decoder, key_dim, value_dim, heads, ffn hidden, PER_BLOCK
    floats: list[float]    # layer-norm eps
    views: list[Tensor]    # the parameters it reads (the matrices as views of its buffers) ...
    pointers: list[int]    # ... and where their data is: the packing is valid while it stays there
    cache: dict            # what other back ends derive from this packing (lina.ops.native)


def _share(params: list, views: list[Tensor]) -> Tensor:
    """One buffer ``[in, sum(out)]`` holding the matrices ``params`` (``[out_i, in]``, or depthwise
    kernels ``[out_i, 1, W]``) side by side, transposed; each parameter becomes a view into it.

    The parameters keep their shapes, values and names; only their strides change (a transposed
    view, never contiguous, so a saved state dict never shares storage). In-place writes to them,
    through ``.data`` too, are thus seen by the fused step without any copy to refresh.
    """
    flat = [p.detach().flatten(1) for p in params]
    with torch.inference_mode(params[0].is_inference()):
        buffer = torch.cat(flat).t().contiguous()
        start = 0
        for p, f in zip(params, flat):
            p.data = buffer[:, start:start + f.shape[0]].t().view(p.shape)
            start += f.shape[0]
    views += params
    return buffer


def pack_block(block, views: list[Tensor]) -> list[Tensor]:
    """:data:`PER_BLOCK` tensors: parameters as they are, matrices via :func:`_share`, constants.

    The output RMSNorm is ``o * rsqrt(mean(o^2) + eps) * w`` with ``o = scale * o'``; as
    ``o' * (rsqrt(sum(o'^2) + Dv * eps / scale^2) * sqrt(Dv)) * w`` it needs no scaling of ``o'``.
    Scalars are 0-dim tensors: a Python number in an op costs a conversion per call.
    """
    m = block.mixer
    dv = m.out_norm.shape[0]
    w_in = _share([m.q_proj.weight, m.k_proj.weight, m.v_proj.weight, m.g_proj.weight, m.gate_down.weight], views)
    conv = _share([m.q_conv.weight, m.k_conv.weight, m.v_conv.weight], views).t()  # [2*dk + dv, W]
    const = lambda v: m.out_norm.new_tensor(v)
    return [block.norm1.weight, block.norm1.bias, w_in, conv, _share([m.gate_up.weight], views), m.gate_up.bias,
            m.out_norm, _share([m.o_proj.weight], views), block.norm2.weight, block.norm2.bias,
            _share([block.ffn.proj_in.weight], views), block.ffn.proj_in.bias,
            _share([block.ffn.proj_out.weight], views), block.ffn.proj_out.bias, const(m.gate_normalizer),
            const(dv * m.norm_eps / m.scale ** 2), const(math.sqrt(dv))]


@torch.no_grad()
def pack_model(model) -> PackedModel | None:
    """Arranges ``model``'s matrices for the fused step (see :func:`_share`): no copy is kept.

    None (the reference step then runs) for a model the fused step does not cover."""
    ca = model.cross_attention
    blocks = [*model.encoder, ca.pos_net, *model.decoder]
    m = blocks[0].mixer
    norms = [n for b in blocks for n in (b.norm1, b.norm2)] + [ca.ln_q]
    if any(n.eps != norms[0].eps for n in norms):
        return None  # one layer-norm eps is all the step takes
    views: list[Tensor] = []
    weights = [w for b in blocks for w in pack_block(b, views)]
    weights += [model.audio_embed.weight, _share([ca.q.weight], views), ca.q.bias, ca.ln_q.weight, ca.ln_q.bias,
                _share([model.head.weight], views)]
    ints = [len(model.encoder), len(model.decoder), m.q_proj.out_features, m.v_proj.out_features, m.n_heads,
            blocks[0].ffn.proj_out.in_features, PER_BLOCK]
    views += [w for w in weights if isinstance(w, torch.nn.Parameter)]  # read directly: watched too
    return PackedModel(weights, ints, [float(norms[0].eps)], views, pointers(views), {})


def pointers(views: list[Tensor]) -> list[int]:
    return [t.data_ptr() for t in views]


def block_step(x: Tensor, cq: Tensor, ck: Tensor, cv: Tensor, rec: Tensor, w: list[Tensor], i: int,
               ints: list[int], floats: list[float]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:meth:`lina.layers.GLABlock.step` with block ``i``'s packed weights ``w[i*PER_BLOCK:]``.

    ``x: [B, d]`` and the layer's state -> ``(y, conv_q, conv_k, conv_v, recurrent)``."""
    dk, dv, heads, hidden = ints[2], ints[3], ints[4], ints[5]
    o0 = i * ints[6]
    b, d = x.shape[0], x.shape[1]
    c = dk + dk + dv
    proj = torch.mm(F.layer_norm(x, [d], w[o0], w[o0 + 1], floats[0]), w[o0 + 2])  # [B, c + dv + r]
    # Short convolutions of q, k, v at once: window = the last W-1 inputs, then this one.
    window = torch.cat((torch.cat((cq, ck, cv), 1), proj[:, :c].unsqueeze(2)), 2)
    qkv = F.silu((window * w[o0 + 3]).sum(-1), inplace=True)  # [B, c]
    q = qkv[:, :dk].reshape(b, heads, 1, dk // heads)
    k = qkv[:, dk:c - dv].reshape(b, heads, dk // heads, 1)
    v = qkv[:, c - dv:].reshape(b, heads, 1, dv // heads)
    decay = F.logsigmoid(torch.addmm(w[o0 + 5], proj[:, c + dv:], w[o0 + 4])).div_(w[o0 + 14]).exp_()
    # GLA recurrence (float32 state): S = diag(exp(g)) S + k^T v;  o = (scale q) S, then RMSNorm per
    # head with the scale and the mean's 1/Dv folded into its eps (pack_block). New tensors are
    # updated in place: fewer allocations.
    s = (rec * decay.reshape(b, heads, dk // heads, 1)).addcmul_(k, v)
    o = torch.matmul(q, s)  # [B, H, 1, Dv]
    o.mul_((o * o).sum(-1, keepdim=True).add_(w[o0 + 15]).rsqrt_().mul_(w[o0 + 16])).mul_(w[o0 + 6])
    o.mul_(F.silu(proj[:, c:c + dv]).reshape(b, heads, 1, dv // heads))
    x = torch.addmm(x, o.reshape(b, dv), w[o0 + 7])
    ab = torch.addmm(w[o0 + 11], F.layer_norm(x, [d], w[o0 + 8], w[o0 + 9], floats[0]), w[o0 + 10])
    x = torch.addmm(w[o0 + 13], F.silu(ab[:, :hidden]).mul_(ab[:, hidden:]), w[o0 + 12]).add_(x)
    return x, window[:, :dk, 1:], window[:, dk:c - dv, 1:], window[:, c - dv:, 1:], s


def step_flat(token: Tensor, w: list[Tensor], ints: list[int], floats: list[float], states: list[Tensor],
              keys: Tensor, values: Tensor, positions: Tensor, bias: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
    """The whole step over flat lists: ``states`` holds :data:`PER_STATE` tensors per block in the
    order of ``w``. Returns ``(logits [B, V], new states, alignment [B, 2, Tx])``."""
    n_enc, n_dec = ints[0], ints[1]
    g = (n_enc + 1 + n_dec) * ints[6]  # the global weights after the blocks
    x = w[g].index_select(0, token)
    out: list[Tensor] = []
    for i in range(n_enc):
        x, cq, ck, cv, s = block_step(x, states[4 * i], states[4 * i + 1], states[4 * i + 2], states[4 * i + 3],
                                      w, i, ints, floats)
        out += [cq, ck, cv, s]
    # Blind cross-attention: audio query -> text keys, reading position embeddings; the position
    # net's output -> positions, reading the text values.
    b, d = x.shape[0], x.shape[1]
    alpha = 1.0 / math.sqrt(d)
    positions = positions.expand(b, -1, -1)
    query = F.layer_norm(torch.addmm(w[g + 2], x, w[g + 1]), [d], w[g + 3], w[g + 4], floats[0])
    att1 = torch.baddbmm(bias, query.unsqueeze(1), keys.transpose(1, 2), alpha=alpha).softmax(-1)
    p = 4 * n_enc
    query, cq, ck, cv, s = block_step(torch.bmm(att1, positions).squeeze(1), states[p], states[p + 1],
                                      states[p + 2], states[p + 3], w, n_enc, ints, floats)
    out += [cq, ck, cv, s]
    att2 = torch.baddbmm(bias, query.unsqueeze(1), positions.transpose(1, 2), alpha=alpha).softmax(-1)
    x = x + torch.bmm(att2, values).squeeze(1)
    for i in range(n_enc + 1, n_enc + 1 + n_dec):
        x, cq, ck, cv, s = block_step(x, states[4 * i], states[4 * i + 1], states[4 * i + 2], states[4 * i + 3],
                                      w, i, ints, floats)
        out += [cq, ck, cv, s]
    return torch.mm(x, w[g + 5]), out, torch.cat((att1, att2), 1)


@functools.lru_cache(maxsize=1)
def scripted_step():
    """:func:`step_flat` compiled by TorchScript, or None where scripting fails (then Python runs it)."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(step_flat)
    except Exception:  # noqa: BLE001 - no TorchScript (or a version that rejects the code): eager path
        return None


def score_bias(valid: Tensor, dtype: torch.dtype) -> Tensor:
    """``valid [B, Tx]`` -> additive attention mask ``[B, 1, Tx]``: 0, or the most negative finite value."""
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    return bias.masked_fill_(~valid, -torch.finfo(dtype).max)[:, None]


def flat_state(state: LinaState) -> list[Tensor]:
    return [t for s in (*state.encoder, state.pos_net, *state.decoder)
            for t in (s.conv_q, s.conv_k, s.conv_v, s.recurrent)]


def lina_state(flat: list[Tensor], n_enc: int) -> LinaState:
    layers = [GLAState(*flat[i:i + PER_STATE]) for i in range(0, len(flat), PER_STATE)]
    return LinaState(layers[:n_enc], layers[n_enc + 1:], layers[n_enc])


def model_step(p: PackedModel, ctx, token: Tensor, state: LinaState,
               script: bool = True) -> tuple[Tensor, LinaState, Tensor]:
    """:meth:`lina.model.LinaModel.step` -> ``(logits [B, V], state, alignment [B, 2, Tx])``.

    ``script``: the TorchScript build of the step when available (False: the Python function)."""
    fn = (scripted_step() if script else None) or step_flat
    bias = ctx.score_bias if ctx.score_bias is not None else score_bias(ctx.valid, ctx.keys.dtype)
    logits, flat, alignment = fn(token, p.weights, p.ints, p.floats, flat_state(state), ctx.keys, ctx.values,
                                 ctx.positions, bias)
    return logits, lina_state(flat, p.ints[0]), alignment
