"""The decoding step with ``inplace=True`` (what GraphDecoder captures) against the out-of-place reference:
the same outputs and states, with the recurrent matrices updated in the input tensors."""
import pytest
import torch

from lina.config import LinaConfig
from lina.cuda_graphs import _state_tensors, store_state
from lina.model import LinaModel
from lina.ops import gla_step
from lina.ops.dispatch import gla_single_step
from lina.ops.gla import gla_step_inplace

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64,
                 gate_low_rank=4, max_text_len=64, pos_kernel=5)


def _gla_inputs(b=3, h=2, dk=8, dv=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(b, h, dk, generator=g), torch.randn(b, h, dk, generator=g)
    v = torch.randn(b, h, dv, generator=g)
    gate = torch.nn.functional.logsigmoid(torch.randn(b, h, dk, generator=g)) / 16
    s = torch.randn(b, h, dk, dv, generator=g)
    return [x.to(dtype) for x in (q, k, v, gate)] + [s]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gla_step_inplace_is_gla_step_bit_for_bit(dtype):
    q, k, v, g, s = _gla_inputs(dtype=dtype)
    o_ref, s_ref = gla_step(q, k, v, g, s, 0.3)
    s_in = s.clone()
    o = gla_step_inplace(q, k, v, g, s_in, 0.3)
    assert torch.equal(o, o_ref) and torch.equal(s_in, s_ref) and o.dtype == dtype


def test_single_step_inplace_only_without_autograd():
    q, k, v, g, s = _gla_inputs()
    with torch.inference_mode():
        s_in = s.clone()
        _, new = gla_single_step(q, k, v, g, s_in, 0.3, inplace=True)
        assert new is s_in and not torch.equal(s_in, s)
    s_grad = s.clone().requires_grad_()
    _, new = gla_single_step(q, k, v, g, s_grad, 0.3, inplace=True)  # autograd: a new tensor, input kept
    assert new is not s_grad and torch.equal(s_grad.detach(), s)
    _, new = gla_single_step(q, k, v, g, s, 0.3)  # default: never in place
    assert new is not s


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_model_step_inplace_matches_reference(dtype):
    torch.manual_seed(0)
    model = LinaModel(CFG).to(dtype).eval()
    text = torch.randint(3, CFG.n_text_vocab, (3, 11))
    with torch.inference_mode():
        ctx = model.encode_text(text, torch.tensor([11, 7, 3]))
        ref_state = model.init_state(3)
        live = model.init_state(3)
        for t in range(6):
            token = torch.randint(3, CFG.n_audio_vocab, (3,))
            ref = model.step(ctx, token, ref_state)
            out = model.step(ctx, token, live, inplace=True)
            recurrent = [s.recurrent for s in live.encoder + live.decoder + [live.pos_net]]
            assert all(a is b for a, b in zip(recurrent, [s.recurrent for s in out.state.encoder + out.state.decoder
                                                          + [out.state.pos_net]]))
            assert torch.equal(out.logits, ref.logits) and torch.equal(out.alignment, ref.alignment)
            for a, b in zip(_state_tensors(out.state), _state_tensors(ref.state)):
                assert torch.equal(a, b)
            ref_state, live = ref.state, out.state


def test_store_state_copies_only_what_is_new():
    torch.manual_seed(0)
    model = LinaModel(CFG).to(torch.bfloat16).eval()
    text = torch.randint(3, CFG.n_text_vocab, (2, 9))
    with torch.inference_mode():
        ctx = model.encode_text(text, torch.tensor([9, 4]))
        static = model.init_state(2)
        ref = model.step(ctx, torch.tensor([5, 6]), model.init_state(2))
        out = model.step(ctx, torch.tensor([5, 6]), static, inplace=True)
        store_state(static, out.state)
        for a, b in zip(_state_tensors(static), _state_tensors(ref.state)):
            assert torch.equal(a, b)
        # a view of exactly the same elements (torch.compile's return for a mutated input) is not copied
        view = static.pos_net.recurrent.view(static.pos_net.recurrent.shape)
        from lina.cuda_graphs import _same
        assert _same(static.pos_net.recurrent, view)
        assert not _same(static.pos_net.recurrent, view.clone())
