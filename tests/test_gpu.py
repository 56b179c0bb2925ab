"""CUDA only (run through the device tool: `pytest -m gpu tests/test_gpu.py`): fla kernels vs PyTorch GLA."""
import pytest
import torch
import torch.nn.functional as F

from lina.config import LinaConfig
from lina.model import LinaModel
from lina.ops import gla_chunked, gla_recurrent, gla_step
from lina.ops.dispatch import fla_available, fla_kernels, gla_sequence, gla_single_step

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
REL_TOL = 2e-3  # tf32 matmuls inside chunk_gla: ~1e-3 relative to an fp64 reference


def _rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.fixture(autouse=True)
def _needs_fla():
    if not fla_available():
        pytest.skip("flash-linear-attention is not installed")


@pytest.mark.parametrize("with_state", [False, True])
def test_sequence_fla_vs_reference(with_state):
    g = torch.Generator(device="cuda").manual_seed(0)
    b, t, h, dk, dv = 2, 200, 4, 64, 128
    q, k = (torch.randn(b, t, h, dk, device="cuda", generator=g) for _ in range(2))
    v = torch.randn(b, t, h, dv, device="cuda", generator=g)
    gate = F.logsigmoid(torch.randn(b, t, h, dk, device="cuda", generator=g)) / 16
    s0 = torch.randn(b, h, dk, dv, device="cuda", generator=g) if with_state else None
    ref_o, ref_s = gla_recurrent(q.double(), k.double(), v.double(), gate.double(),
                                 None if s0 is None else s0.double(), dk ** -0.5)
    o, s = gla_sequence(q, k, v, gate, s0, dk ** -0.5, use_fla=True)
    assert _rel(o, ref_o) < REL_TOL and _rel(s, ref_s) < REL_TOL
    o2, s2 = gla_chunked(q, k, v, gate, s0, dk ** -0.5)
    assert _rel(o2, ref_o) < REL_TOL and _rel(s2, ref_s) < REL_TOL


def test_step_fla_vs_torch():
    g = torch.Generator(device="cuda").manual_seed(1)
    q, k, gate = (torch.randn(3, 4, 64, device="cuda", generator=g) for _ in range(3))
    gate = F.logsigmoid(gate) / 16
    v = torch.randn(3, 4, 128, device="cuda", generator=g)
    s = torch.randn(3, 4, 64, 128, device="cuda", generator=g)
    o1, s1 = gla_single_step(q, k, v, gate, s, 0.125, use_fla=True)
    o2, s2 = gla_step(q, k, v, gate, s, 0.125)
    assert _rel(o1, o2) < 1e-5 and _rel(s1, s2) < 1e-5


def test_model_logits_fla_vs_torch():
    torch.manual_seed(0)
    cfg = LinaConfig(d_model=256, n_layer=2, n_heads=4, text_layers=2, text_heads=4)
    model = LinaModel(cfg).cuda().eval()
    text = torch.randint(3, 256, (2, 40), device="cuda")
    audio = torch.randint(3, cfg.n_audio_vocab, (2, 150), device="cuda")
    with torch.no_grad():
        ctx = model.encode_text(text, torch.tensor([40, 25], device="cuda"))
        with fla_kernels(sequences=True):
            fla = model(ctx, audio, model.init_state(2)).logits
        with fla_kernels(sequences=False):
            ref = model(ctx, audio, model.init_state(2)).logits
    assert _rel(fla, ref) < REL_TOL


def test_cuda_graph_decoder_matches_eager_greedy():
    import itertools

    from lina.cuda_graphs import GraphDecoder
    from lina.generate import decode
    from lina.sampling import SamplingConfig

    torch.manual_seed(0)
    cfg = LinaConfig(d_model=128, n_layer=2, n_heads=2, text_layers=1, text_heads=2)
    model = LinaModel(cfg).cuda().eval()
    text = torch.randint(3, 256, (3, 30), device="cuda")
    lengths = torch.tensor([30, 22, 9], device="cuda")
    greedy = SamplingConfig(top_k=1)
    prompt = torch.randint(0, cfg.n_codebook, (3, 12), device="cuda")
    with torch.inference_mode():
        ctx = model.encode_text(text, lengths)
        eager = torch.stack([s.tokens for s in itertools.islice(
            decode(model, ctx, model.init_state(3), prompt, greedy), 150)], dim=1)
        dec = GraphDecoder(model, ctx, model.init_state(3), prompt, greedy, block=64)
        graphed = torch.cat([dec.run(50), dec.run(100)], dim=1)  # crosses block boundaries
        compiled = GraphDecoder(model, ctx, model.init_state(3), prompt, greedy, block=64, compile_step=True)
        fused = compiled.run(150)
    assert torch.equal(graphed, eager)
    # Fused kernels round differently; greedy paths of a random model may part after a near tie.
    assert (fused[:, :20] == eager[:, :20]).float().mean() > 0.9


def test_cuda_graph_sampling_is_top_k():
    from lina.cuda_graphs import gumbel_top_k
    from lina.sampling import SamplingConfig

    logits = torch.randn(4096, 50, device="cuda")
    logits[:, :2] = 100.0  # suppressed ids
    noise = -torch.log(-torch.log(torch.rand(4096, 5, device="cuda")))
    suppress = torch.zeros(50, dtype=torch.bool, device="cuda")
    suppress[:2] = True
    picks = gumbel_top_k(logits.masked_fill(suppress, float("-inf")), noise, SamplingConfig(top_k=5))
    allowed = logits.masked_fill(suppress, float("-inf")).topk(5, dim=-1).indices
    assert (picks[:, None] == allowed).any(-1).all()


# ---- decode back ends (lina.backends) on CUDA ------------------------------------------------------------
def _backend_case(dtype=torch.float32):
    torch.manual_seed(0)
    cfg = LinaConfig(d_model=128, n_layer=2, n_heads=2, text_layers=1, text_heads=2)
    model = LinaModel(cfg).cuda().eval()
    text = torch.randint(3, 256, (3, 30), device="cuda")
    lengths = torch.tensor([30, 22, 9], device="cuda")
    prompt = torch.randint(0, cfg.n_codebook, (3, 12), device="cuda")
    return model, text, lengths, prompt


@pytest.mark.parametrize("name", ["cuda-graph", "cuda-graph-compiled", "cuda-graph-fla"])
def test_cuda_backends_give_the_reference_greedy_tokens(name):
    """Greedy generation (per-row floors, with and without a prompt) through each CUDA back end against
    the reference loop on the same float32 weights: the plain graph gives exactly its tokens; fused
    kernels (compiled, fla) round differently, so a random model's greedy paths may part after a near tie."""
    from lina.backends import BACKENDS, Reference
    from lina.generate import GenerationConfig, generate
    from lina.sampling import SamplingConfig

    model, text, lengths, prompt = _backend_case()
    backend = BACKENDS[name](model, torch.float32)
    cfg = GenerationConfig(SamplingConfig(top_k=1), max_tokens=120, min_tokens=(5, 0, 40))
    with torch.inference_mode():
        ctx = model.encode_text(text, lengths)
        for p in (None, prompt):
            ref = generate(model, ctx, model.init_state(3), cfg, p, backend=Reference(model))
            out = generate(model, ctx, model.init_state(3), cfg, p, backend=backend, check_every=16)
            for a, b in zip(out.codes, ref.codes):
                if name == "cuda-graph":
                    assert torch.equal(a, b)
                else:
                    n = min(20, len(b))
                    assert len(a) >= min(n, 1) and (a[:n] == b[:n]).float().mean() > 0.9
            if name == "cuda-graph":
                assert torch.equal(out.finished, ref.finished)
                torch.testing.assert_close(out.alignment, ref.alignment[:, :, :out.alignment.shape[2]])


def test_bf16_decoding_copy_logits_within_tolerance():
    """The CUDA back ends decode with a bfloat16 copy (float32 state): over 64 teacher-forced steps of
    random weights of the released size, logits stay within BF16_LOGIT_TOLERANCE of float32, relative
    to each row's logit spread."""
    from lab.bench.common import released_size
    from lina.backends.cuda import BF16_LOGIT_TOLERANCE, decoding_copy

    torch.manual_seed(0)
    model = LinaModel(released_size()).cuda().eval()
    half = decoding_copy(model)
    text = torch.randint(3, model.cfg.n_text_vocab, (2, 80), device="cuda")
    tokens = torch.randint(3, model.cfg.n_audio_vocab, (2, 64), device="cuda")
    worst = 0.0
    with torch.inference_mode():
        lengths = torch.tensor([80, 50], device="cuda")
        ctx, ctx16 = model.encode_text(text, lengths), half.encode_text(text, lengths)
        s, s16 = model.init_state(2), half.init_state(2)
        for t in range(tokens.shape[1]):
            a, b = model.step(ctx, tokens[:, t], s), half.step(ctx16, tokens[:, t], s16)
            s, s16 = a.state, b.state
            spread = (a.logits.amax(-1) - a.logits.amin(-1))[:, None]
            worst = max(worst, float(((b.logits.float() - a.logits).abs() / spread).max()))
            assert all(x.recurrent.dtype == torch.float32 for x in s16.tunable)
    print(f"bf16 logits: worst |diff| / spread = {worst:.4f}")
    assert worst < BF16_LOGIT_TOLERANCE


def test_tts_on_cuda_through_its_backend():
    """`LinaTTS` on CUDA picks a graph back end; synthesize (mixed voices), clone and stream run through
    it, and greedy synthesis gives the tokens of the reference back end on the same bfloat16 copy."""
    from lina.backends import Reference
    from lina.tts import LinaTTS
    from lina.voice import Voice

    tts = LinaTTS.from_pretrained("tiny-random", device="cuda")
    assert tts.backend.name.startswith("cuda-graph") and tts.backend.model.dtype == torch.bfloat16
    c = tts.model.cfg
    voice = Voice(torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_k_dim),
                  torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_v_dim), model_id=tts.model_id)
    text = "Hello there. A second sentence."
    out = tts.synthesize(text, [voice, None], candidates=2, top_k=1, max_seconds=3)
    ref_tts = LinaTTS.from_pretrained("tiny-random", device="cuda", backend=Reference(tts.backend.model))
    ref = ref_tts.synthesize(text, [voice, None], candidates=2, top_k=1, max_seconds=3)
    assert out.tokens == ref.tokens and all(len(a) == len(b) for a, b in zip(out.audio, ref.audio))
    rate = 24_000
    tone = (0.3 * torch.sin(torch.arange(2 * rate) / rate * 2 * 3.14159 * 220)).numpy()
    assert len(tts.clone("Say this.", (rate, tone), "a tone", max_seconds=2).audio[0]) > 0
    assert sum(len(x) for x in tts.stream("Streamed words.")) > 0
