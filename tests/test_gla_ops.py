"""The chunked GLA form and the step against the naive recurrence (fp64)."""
import pytest
import torch
import torch.nn.functional as F

from lina.ops import gla_chunked, gla_recurrent, gla_step


def _inputs(b=2, t=45, h=3, dk=8, dv=16, strong_gates=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(b, t, h, dk, generator=g), torch.randn(b, t, h, dk, generator=g)
    v = torch.randn(b, t, h, dv, generator=g)
    raw = torch.randn(b, t, h, dk, generator=g) * (40 if strong_gates else 2)
    gate = F.logsigmoid(raw) / (1 if strong_gates else 16)
    s0 = torch.randn(b, h, dk, dv, generator=g)
    return q, k, v, gate, s0


def _reference(q, k, v, g, s0):
    """fp64 recurrence, written out independently of the code under test."""
    q, k, v, g = (x.double() for x in (q, k, v, g))
    s = s0.double().clone()
    outs = []
    for t in range(q.shape[1]):
        s = s * g[:, t].exp()[..., None] + k[:, t][..., None] * v[:, t][..., None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * q.shape[-1] ** -0.5, s))
    return torch.stack(outs, 1), s


@pytest.mark.parametrize("strong_gates", [False, True])
@pytest.mark.parametrize("length", [1, 16, 45])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_matches_recurrence(strong_gates, length, with_state):
    q, k, v, g, s0 = _inputs(t=length, strong_gates=strong_gates)
    s0 = s0 if with_state else torch.zeros_like(s0)
    ref_o, ref_s = _reference(q, k, v, g, s0)
    o, s = gla_chunked(q, k, v, g, s0 if with_state else None)
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o.double(), ref_o, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s.double(), ref_s, atol=1e-4, rtol=1e-4)
    o2, s2 = gla_recurrent(q, k, v, g, s0 if with_state else None)
    torch.testing.assert_close(o2.double(), ref_o, atol=1e-4, rtol=1e-4)


def test_split_sequence_carries_state():
    q, k, v, g, s0 = _inputs(t=40)
    o_full, s_full = gla_chunked(q, k, v, g, s0)
    o_a, s_a = gla_chunked(q[:, :23], k[:, :23], v[:, :23], g[:, :23], s0)
    o_b, s_b = gla_chunked(q[:, 23:], k[:, 23:], v[:, 23:], g[:, 23:], s_a)
    torch.testing.assert_close(torch.cat([o_a, o_b], 1), o_full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_b, s_full, atol=1e-5, rtol=1e-5)


def test_step_matches_sequence():
    q, k, v, g, s0 = _inputs(t=5)
    o_seq, s_seq = gla_chunked(q, k, v, g, s0)
    s = s0
    for t in range(5):
        o, s = gla_step(q[:, t], k[:, t], v[:, t], g[:, t], s, q.shape[-1] ** -0.5)
        torch.testing.assert_close(o, o_seq[:, t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s, s_seq, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 16, 64])
@pytest.mark.parametrize("strong_gates", [False, True])
def test_chunk_sizes_match_recurrence(chunk_size, strong_gates):
    q, k, v, g, s0 = _inputs(t=45, strong_gates=strong_gates)
    ref_o, ref_s = _reference(q, k, v, g, s0)
    o, s = gla_chunked(q, k, v, g, s0, chunk_size=chunk_size)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    torch.testing.assert_close(o.double(), ref_o, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s.double(), ref_s, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("strong_gates", [False, True])
def test_chunked_gradients_match_recurrence(strong_gates):
    """The backward of the chunked form (what voice tuning runs on CPU) against the recurrence's, fp64."""
    inputs = [x.double() for x in _inputs(t=21, strong_gates=strong_gates)]

    def grads(fn):
        xs = [x.clone().requires_grad_() for x in inputs]
        o, s = fn(*xs)
        (o.sin().sum() + (s * s).sum()).backward()
        return [x.grad for x in xs]

    want = grads(lambda q, k, v, g, s0: gla_recurrent(q, k, v, g, s0))
    got = grads(lambda q, k, v, g, s0: gla_chunked(q, k, v, g, s0, chunk_size=8))
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-7)
