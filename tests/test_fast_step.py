"""The fused CPU decoding step (lina.ops.fused_step) against the modules' reference step, on tiny models."""
import copy
import pickle

import pytest
import torch

from lina.config import LinaConfig
from lina.constants import EOS_ID
from lina.backends import Fused, Reference
from lina.model import LinaModel
from lina.ops import fused_step
from lina.ops.fused_step import model_step, scripted_step
from lina.state import GLAState

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64,
                 gate_low_rank=4, max_text_len=64, pos_kernel=5)
TOL = {"atol": 2e-5, "rtol": 1e-4}



@pytest.fixture()
def model():
    torch.manual_seed(0)
    return LinaModel(CFG).eval()


def _ctx(model, *lengths):
    text = torch.randint(3, CFG.n_text_vocab, (len(lengths), max(lengths)))
    return model.encode_text(text, torch.tensor(lengths))


def _voiced_state(model, batch):
    initial = [torch.randn(batch, CFG.n_heads, CFG.head_k_dim, CFG.head_v_dim) * 0.3
               for _ in range(CFG.n_tunable_layers)]
    return model.init_state(batch, initial)


def _close_states(a, b):
    for x, y in zip(a.tunable + [a.pos_net], b.tunable + [b.pos_net]):
        for f in ("conv_q", "conv_k", "conv_v", "recurrent"):
            torch.testing.assert_close(getattr(x, f), getattr(y, f), **TOL)


def _run(step, model, ctx, state, tokens):
    outs = []
    for t in range(tokens.shape[1]):
        out = step(ctx, tokens[:, t], state)
        state = out.state
        outs.append(out)
    return outs


@pytest.mark.parametrize("script", [True, False])
def test_fused_step_equals_reference(model, script):
    """Batch of 3 texts of different lengths, a voice state, 12 steps: logits, alignment and state."""
    torch.manual_seed(1)
    tokens = torch.randint(3, CFG.n_audio_vocab, (3, 12))
    with torch.inference_mode():
        ctx = _ctx(model, 7, 3, 11)
        state = _voiced_state(model, 3)
        ref = _run(model.step, model, ctx, state, tokens)
        packed = Fused(model).packed()
        fast = _run(lambda c, t, s: _as_output(model_step(packed, c, t, s, script=script)),
                    model, ctx, state, tokens)
    for r, f in zip(ref, fast):
        torch.testing.assert_close(f.logits, r.logits, **TOL)
        torch.testing.assert_close(f.alignment, r.alignment, **TOL)
        _close_states(f.state, r.state)


def _as_output(result):
    from lina.model import ModelOutput
    return ModelOutput(*result)


def test_step_dispatch_and_greedy_tokens(model):
    """The fused back end's step on CPU without autograd; greedy decoding gives the same tokens."""
    backend = Fused(model)
    with torch.inference_mode():
        ctx = _ctx(model, 9)
        tokens = {}
        for name, step in (("fast", backend.step), ("ref", model.step)):
            state, token, seq = model.init_state(1), torch.tensor([1]), []
            for _ in range(30):
                out = step(ctx, token, state)
                state, token = out.state, out.logits.argmax(-1)
                seq.append(int(token))
            tokens[name] = seq
        assert backend.packed() is not None
    assert tokens["fast"] == tokens["ref"]


def test_state_is_not_modified_in_place(model):
    with torch.inference_mode():
        ctx = _ctx(model, 5)
        state = _voiced_state(model, 1)
        before = copy.deepcopy(state)
        Fused(model).step(ctx, torch.tensor([4]), state)
    _close_states(state, before)
    assert all(torch.equal(a.recurrent, b.recurrent) for a, b in zip(state.tunable, before.tunable))


def test_packed_weights_follow_parameter_changes(model):
    token = torch.tensor([5])
    backend = Fused(model)

    def check(m):
        torch.testing.assert_close(backend.step(ctx, token, m.init_state(1)).logits,
                                   m.step(ctx, token, m.init_state(1)).logits, **TOL)

    with torch.no_grad():
        ctx = _ctx(model, 6)
        check(model)
        model.decoder[0].mixer.q_proj.weight.mul_(1.5)       # in place
        model.head.weight.data[EOS_ID] = 3.0                    # through .data (no version counter)
        model.encoder[1].mixer.k_conv.weight.data.add_(0.1)
        check(model)
        model.decoder[1].ffn.proj_in.weight.data = torch.randn(2 * (CFG.ffn_dim), CFG.d_model)  # replaced
        check(model)
        other = LinaModel(CFG).eval()
        model.load_state_dict(other.state_dict(), assign=True)  # new parameter objects: seen at a new context
        ctx = _ctx(model, 6)
        check(model)
        torch.testing.assert_close(backend.step(ctx, token, model.init_state(1)).logits,
                                   other.step(ctx, token, other.init_state(1)).logits, **TOL)
    assert set(pickle.loads(pickle.dumps(model)).__dict__) == set(LinaModel(CFG).__dict__)  # a plain module


def test_packing_keeps_the_state_dict(model, tmp_path):
    """Same keys, shapes and values; saving with safetensors still works (no shared storage)."""
    from safetensors.torch import load_file, save_file
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        Fused(model).step(_ctx(model, 5), torch.tensor([4]), model.init_state(1))
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert not model.head.weight.is_contiguous()            # a view of the packed buffer
    save_file({k: v.contiguous() for k, v in after.items()}, str(tmp_path / "m.safetensors"))
    assert all(torch.equal(t, before[k]) for k, t in load_file(str(tmp_path / "m.safetensors")).items())
    state = copy.deepcopy(model).state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())


def test_autograd_after_packing(model):
    """Packed under inference mode, the parameters stay ordinary tensors: autograd still works."""
    with torch.inference_mode():
        Fused(model).step(_ctx(model, 5), torch.tensor([4]), model.init_state(1))
    assert not model.head.weight.is_inference()
    ctx = _ctx(model, 5)
    model(ctx, torch.tensor([[1, 4, 5]]), model.init_state(1)).logits.sum().backward()
    assert model.decoder[0].mixer.q_proj.weight.grad is not None


def test_other_dtypes_and_autograd_use_the_reference(model):
    token = torch.tensor([5])
    backend = Fused(model)
    with torch.enable_grad():
        ctx = _ctx(model, 6)
        out = backend.step(ctx, token, model.init_state(1))
        assert out.logits.requires_grad                      # reference path: gradients flow
    double = copy.deepcopy(model).double()
    assert Fused.applies(double) is not None                 # not float32: `choose` refuses it
    model.decoder[1].norm2.eps = 1e-3                       # a layout the fused step does not take
    backend = Fused(model)
    with torch.inference_mode():
        ctx, state = _ctx(model, 6), model.init_state(1)
        torch.testing.assert_close(backend.step(ctx, token, state).logits,
                                   model.step(ctx, token, state).logits, atol=0, rtol=0)
    assert backend.packed() is None


def test_missing_score_bias(model):
    with torch.inference_mode():
        ctx = _ctx(model, 4, 8)
        bare = type(ctx)(ctx.keys, ctx.values, ctx.positions, ctx.valid)   # built without the bias
        state = model.init_state(2)
        a = Fused(model).step(ctx, torch.tensor([3, 4]), state)
        b = Fused(model).step(bare, torch.tensor([3, 4]), state)
        torch.testing.assert_close(a.logits, b.logits, **TOL)


def test_scripting_available():
    """TorchScript compiles the step here (the eager function is the fallback elsewhere)."""
    assert scripted_step() is not None
    assert fused_step.PER_STATE == len(GLAState.__dataclass_fields__)


def test_model_built_in_inference_mode():
    """Inference tensors keep no version counter: the packing is keyed by their storage instead."""
    with torch.inference_mode():
        torch.manual_seed(0)
        model = LinaModel(CFG).eval()
        ctx, token = _ctx(model, 6), torch.tensor([5])
        fast = Fused(model).step(ctx, token, model.init_state(1)).logits
        torch.testing.assert_close(fast, model.step(ctx, token, model.init_state(1)).logits, **TOL)


def test_bos_prefill_as_a_step():
    """A fast back end's BOS prefill is one step (`lina.generate.prefill` with its step): same logits,
    alignment and state as the sequence path of the plain module."""
    model = LinaModel(CFG).eval()
    ctx = _ctx(model, 7, 4)
    state = _voiced_state(model, 2)
    from lina.generate import prefill
    with torch.inference_mode():
        fast = prefill(model, ctx, state, None, Fused(model).step)
        full = prefill(model, ctx, state, None)
    assert fast[0].shape == full[0].shape and fast[2].shape == full[2].shape
    torch.testing.assert_close(fast[0], full[0], **TOL)
    torch.testing.assert_close(fast[2], full[2], **TOL)
    _close_states(fast[1], full[1])


@pytest.mark.parametrize("name", ["fused", "native"])
def test_cpu_backends_give_the_reference_tokens(name):
    """Greedy generation through each CPU back end equals the reference's tokens (a batch of 3 rows
    with per-row floors, a voiced state, and a prompt)."""
    from lina.backends import choose
    from lina.generate import GenerationConfig, generate
    from lina.sampling import SamplingConfig
    torch.manual_seed(3)
    model = LinaModel(CFG).eval()
    backend = choose(model, name)
    cfg = GenerationConfig(SamplingConfig(top_k=1), max_tokens=40, min_tokens=(3, 0, 9))
    with torch.inference_mode():
        ctx = _ctx(model, 7, 3, 11)
        prompt = torch.randint(0, CFG.n_codebook, (3, 5))
        state = _voiced_state(model, 3)
        for p in (None, prompt):
            ref = generate(model, ctx, state, cfg, p, Reference(model))
            out = generate(model, ctx, state, cfg, p, backend)
            assert [c.tolist() for c in out.codes] == [c.tolist() for c in ref.codes]
            assert out.steps == ref.steps and torch.equal(out.finished, ref.finished)
