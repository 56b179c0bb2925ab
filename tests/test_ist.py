"""Initial-State Tuning from a start voice, with an anchor penalty towards it (styles as offsets
from the speaker's neutral voice), on a tiny random model."""
import math

import numpy as np
import pytest
import torch

from lina.config import LinaConfig
from lina.constants import SAMPLE_RATE
from lina.ist import (
    Clip,
    TuningConfig,
    anchor_penalty,
    clip_loss,
    tune_voice,
    voice_distance,
)
from lina.model import LinaModel
from lina.tts import LinaTTS
from lina.voice import Voice, VoiceError

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64)
L, H, DK, DV = CFG.n_tunable_layers, CFG.n_heads, CFG.head_k_dim, CFG.head_v_dim


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LinaModel(CFG).eval()


@pytest.fixture(scope="module")
def clips():
    g = torch.Generator().manual_seed(1)
    return [Clip(torch.randint(0, CFG.n_codebook, (12 + 3 * i,), generator=g),
                 torch.cat([torch.tensor([1]), torch.randint(3, 40, (6 + i,), generator=g), torch.tensor([2])]))
            for i in range(4)]


def _voice(rank=1, scale=0.3, seed=2, **kw):
    g = torch.Generator().manual_seed(seed)
    return Voice(torch.randn(L, rank, H, DK, generator=g), torch.randn(L, rank, H, DV, generator=g), scale, **kw)


@pytest.mark.parametrize("anchor_weight", [0.0, 5.0])
def test_first_loss_is_the_clip_loss_of_the_start_voice(model, clips, anchor_weight):
    start = _voice(scale=0.3)  # another scale than the tuning's: the state is kept, v rescaled
    cfg = TuningConfig(steps=1, batch_size=len(clips), anchor_weight=anchor_weight)
    voice, losses = tune_voice(model, clips, cfg, start=start)
    with torch.no_grad():
        want = clip_loss(model, clips, start.initial_states(len(clips))).item()
        zero_state = clip_loss(model, clips, None).item()
    assert losses[0] == pytest.approx(want, abs=1e-5)  # the reported loss is the clip loss alone
    assert abs(want - zero_state) > 1e-3               # (the start voice matters here)
    assert voice.scale == cfg.scale and voice.rank == 1 and 0 < voice_distance(voice, start) < 1
    assert torch.equal(start.k, _voice(scale=0.3).k)   # the start voice is left as it was


def test_anchor_penalty_is_zero_at_the_start_and_grows_away_from_it():
    start = _voice()
    s0 = torch.stack(start.initial_states(1))[:, 0]
    assert anchor_penalty(s0, s0).item() == 0 and voice_distance(start, start) == 0
    g = torch.Generator().manual_seed(3)
    direction = torch.randn(s0.shape, generator=g)
    distances = [anchor_penalty(s0 + eps * direction, s0).item() for eps in (0.01, 0.1, 1.0)]
    assert 0 < distances[0] < distances[1] < distances[2]
    moved = Voice(start.k, start.v * 2, start.scale)  # every layer's state doubled: relative distance 1
    assert voice_distance(moved, start) == pytest.approx(1.0)
    assert voice_distance(Voice(start.k, start.v * 4, start.scale / 2), start) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero"):
        anchor_penalty(s0, torch.cat([s0[:1], torch.zeros_like(s0[1:])]))


def test_anchor_has_no_pull_on_the_first_step(model, clips):
    """At the start state the penalty and its gradient are zero: one step moves alike with any weight."""
    start = _voice()
    free, _ = tune_voice(model, clips, TuningConfig(steps=1, batch_size=2), start=start)
    anchored, _ = tune_voice(model, clips, TuningConfig(steps=1, batch_size=2, anchor_weight=1e6), start=start)
    assert torch.allclose(free.k, anchored.k) and torch.allclose(free.v, anchored.v)
    assert voice_distance(free, start) > 0


def test_a_heavy_anchor_keeps_the_voice_near_its_start(model, clips):
    start = _voice()
    distance = {}
    for weight in (0.0, 1e4):
        cfg = TuningConfig(steps=25, batch_size=2, learning_rate=0.05, anchor_weight=weight)
        voice, losses = tune_voice(model, clips, cfg, start=start)
        distance[weight] = voice_distance(voice, start)
        assert len(losses) == 25 and all(math.isfinite(x) for x in losses)
    print(f"relative squared distance to the start: free {distance[0.0]:.4f}, anchored {distance[1e4]:.2e}")
    assert distance[0.0] > 0.01 and distance[1e4] < 1e-3 and distance[1e4] < distance[0.0] / 100
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_start_and_anchor_errors(model, clips):
    with pytest.raises(ValueError, match="start voice"):
        tune_voice(model, clips, TuningConfig(steps=1, anchor_weight=1.0))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="invalid tuning settings"):
            TuningConfig(anchor_weight=bad)
    with pytest.raises(ValueError, match="rank 2.*rank is 1"):
        tune_voice(model, clips, TuningConfig(steps=1), start=_voice(rank=2))
    tune_voice(model, clips, TuningConfig(steps=1, rank=2), start=_voice(rank=2))  # equal ranks: fine
    wrong = Voice(torch.randn(L, 1, H, DK + 1), torch.randn(L, 1, H, DV))
    with pytest.raises(VoiceError, match="layers, heads"):
        tune_voice(model, clips, TuningConfig(steps=1), start=wrong)
    with pytest.raises(VoiceError, match="tuned for model"):
        tune_voice(LinaModel(LinaConfig(**{**CFG.__dict__, "model_id": "this-one"})).eval(), clips,
                   TuningConfig(steps=1), start=_voice(model_id="another-one"))
    zero = Voice(torch.zeros(L, 1, H, DK), torch.zeros(L, 1, H, DV))
    with pytest.raises(ValueError, match="zero"):
        tune_voice(model, clips, TuningConfig(steps=1, anchor_weight=1.0), start=zero)
    tune_voice(model, clips, TuningConfig(steps=1), start=zero)  # no anchor: a zero start is a start like any


def test_tts_passes_names_through():
    """`LinaTTS.tune_voice` reads the clips and hands the voice's labels to `tune_voice` (starting from
    another voice is `lina.ist.tune_voice`'s, tested above)."""
    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    clip = ((SAMPLE_RATE, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)), "a tone")
    voice, losses = tts.tune_voice([clip], steps=2, style="happy", name="Tone", description="a test tone")
    assert len(losses) == 2 and all(np.isfinite(losses)) and voice.model_id == tts.model_id
    assert (voice.style, voice.name, voice.description) == ("happy", "Tone", "a test tone")


def test_max_frames_tunes_on_each_clips_start(model, clips):
    """A clip longer than max_frames is read up to it, without its EOS; shorter clips are unchanged. The
    loss is the teacher-forced loss of the truncated rows (the naive reference: clips cut by hand)."""
    from lina.ist import collate
    from lina.constants import BOS_ID, EOS_ID

    cut = 14
    _, _, audio, audio_len = collate(clips, torch.device("cpu"), max_frames=cut)
    for row, n, clip in zip(audio, audio_len.tolist(), clips):
        if len(clip.codes) > cut:
            assert n == 1 + cut and row[0] == BOS_ID and EOS_ID not in row[:n].tolist()
        else:
            assert n == len(clip.codes) + 2 and row[n - 1] == EOS_ID
    long_clip = [c for c in clips if len(c.codes) > cut][:1]
    torch.manual_seed(3)
    state = [torch.randn(1, H, DK, DV) * 0.1 for _ in range(L)]
    with torch.no_grad():
        cropped = clip_loss(model, long_clip, state, max_frames=cut)
        # Reference: the same row built by hand (BOS + first `cut` codes), scored by the model directly.
        from lina.model import teacher_forcing_loss

        clip = long_clip[0]
        row = torch.cat([torch.tensor([BOS_ID]), clip.codes[:cut].long() + 3])[None]
        text = clip.text.long()[None]
        ctx = model.encode_text(text, torch.tensor([text.shape[1]]))
        out = model(ctx, row[:, :-1], model.init_state(1, state))
        reference = teacher_forcing_loss(out.logits, row[:, 1:], torch.tensor([row.shape[1]]))
        whole = clip_loss(model, long_clip, state)
    assert float(cropped) == pytest.approx(float(reference), rel=1e-5) and float(cropped) != float(whole)
    with pytest.raises(ValueError):
        TuningConfig(max_frames=-1)


def test_stopping_early_keeps_the_lowest_loss_state(model, clips):
    """on_step returning True stops the run; the voice is the state its lowest loss was measured at, i.e.
    the final state of a run of exactly that many steps (the reference: same seed, same batches)."""
    cfg = TuningConfig(steps=50, batch_size=2, learning_rate=0.05, seed=4)
    voice, losses = tune_voice(model, clips, cfg, on_step=lambda step, loss: step == 5)
    assert len(losses) == 6
    best = int(np.argmin(losses))
    if best == 0:
        pytest.skip("the first state was the best: nothing to compare with a shorter run")
    reference, _ = tune_voice(model, clips, TuningConfig(steps=best, batch_size=2, learning_rate=0.05, seed=4))
    torch.testing.assert_close(voice.k, reference.k)
    torch.testing.assert_close(voice.v, reference.v)
    # Without a stop, the last state is returned as before.
    full, full_losses = tune_voice(model, clips, TuningConfig(steps=6, batch_size=2, learning_rate=0.05, seed=4))
    assert full_losses == losses and (best == 5 or not torch.equal(full.k, voice.k))
