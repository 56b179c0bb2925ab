"""The C decoding step (lina.ops.native) against the modules' reference step, on tiny models."""
import pytest
import torch

from lina.config import LinaConfig
from lina.constants import EOS_ID
from lina.int8_weights import dequantize_state, quantize_state
from lina.backends import Native
from lina.model import LinaModel, ModelOutput
from lina.ops import native

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64,
                 gate_low_rank=4, max_text_len=64, pos_kernel=5)
TOL = {"atol": 2e-5, "rtol": 1e-4}


@pytest.fixture(scope="module")
def lib():
    lib = native.load(wait=True)
    if lib is None:
        pytest.skip("no C compiler here: the fused step runs instead")
    return lib


def _backend(model) -> Native:
    """The model's native back end (one per model, as `LinaTTS` holds one)."""
    return model.__dict__.setdefault("_test_backend", Native(model))


def _packed(model):
    return _backend(model).packed()


def _model(int8: bool = False) -> LinaModel:
    torch.manual_seed(0)
    model = LinaModel(CFG).eval()
    if int8:  # like the embedded model: every matrix int8 codes times per-row fp16 scales, exactly
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2 and "embed" not in name:
                    p.copy_(dequantize_state(quantize_state({"w": p.detach().repeat(1, 128)}))["w"][:, :p.shape[1]])
    return model


def _ctx(model, *lengths, training_positions=False):
    text = torch.randint(3, CFG.n_text_vocab, (len(lengths), max(lengths)))
    return model.encode_text(text, torch.tensor(lengths), training_positions=training_positions)


def _state(model, batch):
    initial = [torch.randn(batch, CFG.n_heads, CFG.head_k_dim, CFG.head_v_dim) * 0.3
               for _ in range(CFG.n_tunable_layers)]
    return model.init_state(batch, initial)


def _compare(lib, model, ctx, state, tokens):
    ref_state = state
    for t in range(tokens.shape[1]):
        out = native.model_step(lib, _packed(model), ctx, tokens[:, t], state)
        assert out is not None
        fast, ref = ModelOutput(*out), model.step(ctx, tokens[:, t], ref_state)
        torch.testing.assert_close(fast.logits, ref.logits, **TOL)
        torch.testing.assert_close(fast.alignment, ref.alignment, **TOL)
        for a, b in zip(fast.state.tunable + [fast.state.pos_net], ref.state.tunable + [ref.state.pos_net]):
            for f in ("conv_q", "conv_k", "conv_v", "recurrent"):
                torch.testing.assert_close(getattr(a, f), getattr(b, f), **TOL)
        state, ref_state = fast.state, ref.state


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("training_positions", [False, True])
def test_native_step_equals_reference(lib, int8, training_positions):
    """Batch of 3 texts of different lengths, a voice state, 10 steps; float32 or int8-form matrices."""
    model = _model(int8)
    torch.manual_seed(1)
    tokens = torch.randint(3, CFG.n_audio_vocab, (3, 10))
    with torch.inference_mode():
        ctx = _ctx(model, 7, 3, 11, training_positions=training_positions)
        _compare(lib, model, ctx, _state(model, 3), tokens)
        n_int8 = len(_packed(model).cache["native"].int8)
    assert n_int8 == (len(native.matrix_slots(_packed(model))) if int8 else 0)


def test_backend_step_uses_native(lib):
    model = _model(int8=True)
    with torch.inference_mode():
        ctx = _ctx(model, 6)
        _backend(model).step(ctx, torch.tensor([4]), model.init_state(1))
    assert _packed(model).cache["native"].int8


def test_int8_forms_follow_weight_changes(lib):
    """Writes through .data are seen at the next text context, in-place updates at the next step."""
    model = _model(int8=True)
    token = torch.tensor([5])

    def check(ctx):
        torch.testing.assert_close(_backend(model).step(ctx, token, model.init_state(1)).logits,
                                   model.step(ctx, token, model.init_state(1)).logits, **TOL)

    with torch.no_grad():
        ctx = _ctx(model, 6)
        check(ctx)
        model.head.weight.data[EOS_ID] = 0.0                            # int8 still (a zero row)
        check(_ctx(model, 6))
        model.head.weight.data[EOS_ID] = 1e3 * model.head.weight.data[7]  # no longer int8: float32
        ctx = _ctx(model, 6)
        check(ctx)
        assert len(_packed(model).cache["native"].int8) == len(native.matrix_slots(_packed(model))) - 1
        model.decoder[0].mixer.v_proj.weight.mul_(2.0)                  # in place, same context
        check(ctx)


def test_bad_inputs(lib):
    model = _model()
    with torch.inference_mode():
        ctx = _ctx(model, 5)
        with pytest.raises(IndexError):
            native.model_step(lib, _packed(model), ctx, torch.tensor([CFG.n_audio_vocab]), model.init_state(1))
        state = model.init_state(1)
        state.encoder[0].recurrent = state.encoder[0].recurrent.double()  # not float32: not taken
        assert native.model_step(lib, _packed(model), ctx, torch.tensor([3]), state) is None
        assert native.model_step(lib, _packed(model), ctx, torch.tensor([3, 4]), model.init_state(1)) is None
        rows = native.MAX_BATCH + 1                                        # batches past it: the fused step
        big = _ctx(model, *[5] * rows)
        assert native.model_step(lib, _packed(model), big, torch.full((rows,), 3), model.init_state(rows)) is None
