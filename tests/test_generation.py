"""Batched generation, per-row EOS and limits, streaming, and Initial-State Tuning on tiny models."""
import itertools

import pytest
import torch

import lina.generate
from lina.config import LinaConfig
from lina.constants import EOS_ID, N_SPECIAL_TOKENS
from lina.generate import GenerationConfig, decode, generate, stream
from lina.ist import Clip, TuningConfig, clip_loss, tune_voice
from lina.model import LinaModel
from lina.logits import MinTokens, SuppressTokens, process
from lina.sampling import SamplingConfig, sample_top_k
from lina.voice import Voice

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LinaModel(CFG).eval()


def _texts(*rows):
    lengths = torch.tensor([len(r) for r in rows])
    padded = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        padded[i, : len(r)] = torch.tensor(r)
    return padded, lengths


ROWS = ([1, 5, 9, 12, 7, 2], [1, 20, 21, 2], [1, 8, 8, 30, 31, 32, 33, 34, 2])
GREEDY = SamplingConfig(top_k=1)


def test_padded_batch_equals_rows_alone(model):
    text, lengths = _texts(*ROWS)
    cfg = GenerationConfig(GREEDY, max_tokens=25)
    voice = Voice(torch.randn(4, 1, 2, 16), torch.randn(4, 1, 2, 32), scale=0.5)
    initial = [torch.cat([s, torch.zeros_like(s), s]) for s in voice.initial_states(1)]  # rows 0, 2 voiced
    batch = generate(model, model.encode_text(text, lengths), model.init_state(3, initial), cfg)
    for i, row in enumerate(ROWS):
        t, n = _texts(row)
        alone = generate(model, model.encode_text(t, n),
                         model.init_state(1, None if i == 1 else voice.initial_states(1)), cfg)
        assert torch.equal(batch.codes[i], alone.codes[0])
    assert not torch.equal(batch.codes[0][:10], generate(model, model.encode_text(*_texts(ROWS[0])),
                                                          model.init_state(1), cfg).codes[0][:10])


def test_same_seed_same_samples_and_batch_of_candidates(model):
    text, lengths = _texts(ROWS[0], ROWS[0], ROWS[0])
    cfg = GenerationConfig(SamplingConfig(top_k=50, temperature=1.0), max_tokens=30, seed=7)
    a = generate(model, model.encode_text(text, lengths), model.init_state(3), cfg)
    b = generate(model, model.encode_text(text, lengths), model.init_state(3), cfg)
    assert all(torch.equal(x, y) for x, y in zip(a.codes, b.codes))
    assert not torch.equal(a.codes[0], a.codes[1])  # candidates differ


def test_eos_per_row_and_limits(model):
    """A row whose EOS is forced stops; others run to max_tokens; codes are raw ids without EOS."""
    text, lengths = _texts(ROWS[0], ROWS[1])
    head = model.head.weight.data
    saved = head[EOS_ID].clone()
    try:
        head[EOS_ID] = 0  # EOS never wins ...
        cfg = GenerationConfig(GREEDY, max_tokens=12)
        out = generate(model, model.encode_text(text, lengths), model.init_state(2), cfg)
        assert out.finished.tolist() == [False, False] and [len(c) for c in out.codes] == [12, 12]
        assert all(((c >= 0) & (c < CFG.n_codebook)).all() for c in out.codes)
        head[EOS_ID] = 1e3 * head[N_SPECIAL_TOKENS + 5]  # ... or wins at once when that code would
        out = generate(model, model.encode_text(text, lengths), model.init_state(2), cfg)
        assert out.finished.all() and all(len(c) < 12 for c in out.codes)
    finally:
        head[EOS_ID] = saved


def eos_when_allowed(real):
    """A sampler that takes EOS whenever its logit is finite: every row would end at its first step."""
    def sample(logits, cfg, generator=None):
        return torch.where(torch.isfinite(logits[:, EOS_ID]), EOS_ID, real(logits, cfg, generator))
    return sample


def test_min_tokens_hold_eos_back_per_row(model, monkeypatch):
    """EOS cannot be sampled before a row's floor; at the floor it is (the sampler prefers it)."""
    monkeypatch.setattr(lina.generate, "sample_top_k", eos_when_allowed(sample_top_k))
    text, lengths = _texts(ROWS[0], ROWS[1], ROWS[2])
    ctx = model.encode_text(text, lengths)
    prompt = torch.randint(0, CFG.n_codebook, (1, 9))
    for sampling in (GREEDY, SamplingConfig(top_k=20)):
        cfg = GenerationConfig(sampling, max_tokens=20, min_tokens=(0, 3, 7))
        for p in (None, prompt):  # steps count after the prompt
            out = generate(model, ctx, model.init_state(3), cfg, p)
            assert out.finished.all() and [len(c) for c in out.codes] == [0, 3, 7]
            assert all(((c >= 0) & (c < CFG.n_codebook)).all() for c in out.codes)
            chunks = list(stream(model, ctx, model.init_state(3), cfg, p, chunk_tokens=4))
            assert [sum(len(c[i]) for c, _ in chunks) for i in range(3)] == [0, 3, 7]
    one = generate(model, ctx, model.init_state(3), GenerationConfig(GREEDY, max_tokens=20, min_tokens=5))
    assert [len(c) for c in one.codes] == [5, 5, 5]
    assert [len(c) for c in generate(model, ctx, model.init_state(3), GenerationConfig(GREEDY)).codes] == [0, 0, 0]


def test_eos_floor_only_in_the_rows_below_it():
    logits = torch.randn(3, 10)
    floor = MinTokens(torch.tensor([5, 2, 7]))
    for step in (4, torch.tensor(4)):  # eager loop (int) and CUDA graph (device tensor) counts
        blocked = floor.apply(logits, step, None)
        assert blocked[[0, 2], EOS_ID].eq(float("-inf")).all() and blocked[1, EOS_ID] == logits[1, EOS_ID]
        keep = torch.ones(10, dtype=torch.bool)
        keep[EOS_ID] = False
        assert torch.equal(blocked[:, keep], logits[:, keep])
    assert floor.apply(logits, 7, None) is logits  # past every floor: untouched, no copy
    suppressed = process([SuppressTokens([0, 1]), floor], logits.half(), 0, None)
    assert suppressed.dtype == torch.float32 and suppressed[:, :2].eq(float("-inf")).all()
    assert suppressed[:, EOS_ID].eq(float("-inf")).all() and torch.isfinite(suppressed[:, 3:]).all()


@pytest.mark.parametrize("floors", [12, (0, 12), (-1, 0)])
def test_min_tokens_must_leave_room_for_eos(floors):
    with pytest.raises(ValueError, match="min_tokens"):
        GenerationConfig(max_tokens=12, min_tokens=floors)


def test_min_tokens_rows_must_match_the_batch(model):
    text, lengths = _texts(ROWS[0], ROWS[1])
    with pytest.raises(ValueError, match="rows for a batch of 2"):
        generate(model, model.encode_text(text, lengths), model.init_state(2),
                 GenerationConfig(GREEDY, max_tokens=5, min_tokens=(1, 2, 3)))


def test_stream_yields_the_generated_codes(model):
    text, lengths = _texts(ROWS[2])
    cfg = GenerationConfig(SamplingConfig(top_k=20), max_tokens=33, seed=3)
    ctx = model.encode_text(text, lengths)
    whole = generate(model, ctx, model.init_state(1), cfg).codes[0]
    chunks = [c[0] for c, _ in stream(model, ctx, model.init_state(1), cfg, chunk_tokens=10)]
    assert [len(c) for c in chunks][:3] == [10, 10, 10] or sum(len(c) for c in chunks) < 33
    assert torch.equal(torch.cat(chunks), whole)


def test_prompt_codes_are_consumed_in_one_prefill(model):
    text, lengths = _texts(ROWS[0])
    ctx = model.encode_text(text, lengths)
    prompt = torch.randint(0, CFG.n_codebook, (1, 17))
    fed = list(itertools.islice(decode(model, ctx, model.init_state(1), prompt, GREEDY), 10))
    # the same continuation when the prompt is fed one step at a time
    state = model.init_state(1)
    out = model.step(ctx, torch.tensor([1]), state)
    for c in prompt[0]:
        out = model.step(ctx, c[None] + N_SPECIAL_TOKENS, out.state)
    tokens = []
    suppress = SuppressTokens(GREEDY.suppress)
    for _ in range(10):
        tok = sample_top_k(suppress.apply(out.logits, 0, None), GREEDY)
        tokens.append(tok)
        out = model.step(ctx, tok, out.state)
    assert torch.equal(torch.cat([s.tokens for s in fed]), torch.cat(tokens))


def _clips(model, voice, n, seed):
    g = torch.Generator().manual_seed(seed)
    clips = []
    for _ in range(n):
        text = torch.cat([torch.tensor([1]), torch.randint(3, 40, (8,), generator=g), torch.tensor([2])])
        ctx = model.encode_text(text[None], torch.tensor([len(text)]))
        with torch.no_grad():
            steps = decode(model, ctx, model.init_state(1, voice.initial_states(1)), None,
                           SamplingConfig(top_k=8, suppress=(0, 1, 2)), g)
            toks = torch.stack([s.tokens for s in itertools.islice(steps, 24)], 1)[0]
        clips.append(Clip(toks - N_SPECIAL_TOKENS, text))
    return clips


def test_tuned_voice_lowers_held_out_loss(model):
    """Clips made by a fixed random voice: the tuned state explains unseen clips of it better."""
    g = torch.Generator().manual_seed(5)
    true = Voice(torch.randn(4, 1, 2, 16, generator=g) * 3, torch.randn(4, 1, 2, 32, generator=g) * 3, scale=0.3)
    train, held = _clips(model, true, 48, 1), _clips(model, true, 16, 2)
    with torch.no_grad():
        base = clip_loss(model, held, None).item()
        oracle = clip_loss(model, held, true.initial_states(len(held))).item()
    voice, losses = tune_voice(model, train, TuningConfig(steps=40, batch_size=8, learning_rate=0.1, scale=0.3))
    with torch.no_grad():
        tuned = clip_loss(model, held, voice.initial_states(len(held))).item()
    print(f"held-out loss: no voice {base:.4f}, tuned {tuned:.4f}, true voice {oracle:.4f}")
    assert oracle < base - 0.02                    # the voice matters for these clips
    assert tuned < base - 0.3 * (base - oracle)    # tuning recovers a good part of it
    assert all(p.grad is None for p in model.parameters()) and all(p.requires_grad for p in model.parameters())
    assert voice.rank == 1 and len(losses) == 40
