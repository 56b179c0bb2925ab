"""The released checkpoints' numbers, reproduced: ../shared/reference (original code, random weights)."""
import itertools

import pytest
import torch
from safetensors.torch import load_file

from lina.checkpoint import load_into, load_released_checkpoint
from lina.generate import decode, prefill
from lina.model import LinaModel, teacher_forcing_loss
from lina.sampling import SamplingConfig
from lina.voice import Voice

LAYOUTS = ["lina_cli", "lina_pickled"]
ATOL = RTOL = 1e-4
GREEDY = SamplingConfig(top_k=1, suppress=())  # the fixtures record raw argmax ids


@pytest.fixture(scope="module", params=LAYOUTS)
def released(request, reference_dir):
    name = request.param
    cfg, sd = load_released_checkpoint(reference_dir / f"{name}.ckpt")
    model = LinaModel(cfg).eval()
    load_into(model, sd)
    expected = load_file(reference_dir / f"{name}_expected.safetensors")
    voice = Voice.load(reference_dir / f"{name}_voice_rank1.safetensors")
    return name, model, expected, voice


def test_config_read_from_checkpoint(released, reference_dir):
    import json
    name, model, _, _ = released
    meta = json.loads((reference_dir / f"{name}_meta.json").read_text())
    assert model.cfg.n_layer == meta["n_layer"]
    assert model.cfg.n_codebook == 4096 and model.cfg.n_audio_vocab == 4099


def _teacher_forced(model, e, initial=None):
    ctx = model.encode_text(e["tf_text"], e["tf_text_len"], training_positions=True)
    audio = e["tf_audio_in"][..., 0]
    with torch.no_grad():
        out = model(ctx, audio[:, :-1], model.init_state(2, initial))
    return out.logits, audio


def test_teacher_forcing_logits_and_loss(released):
    _, model, e, _ = released
    logits, audio = _teacher_forced(model, e)
    for i, n in enumerate((e["tf_audio_len"] - 1).tolist()):
        torch.testing.assert_close(logits[i, :n], e["tf_logits"][i, :n, 0], atol=ATOL, rtol=RTOL)
    loss = teacher_forcing_loss(logits, audio[:, 1:], e["tf_audio_len"])
    torch.testing.assert_close(loss, e["tf_loss"][0], atol=ATOL, rtol=RTOL)


def _greedy(model, text, steps, initial=None, prompt=None):
    text = text[None]
    ctx = model.encode_text(text, torch.tensor([text.shape[1]]))
    with torch.no_grad():
        gen = decode(model, ctx, model.init_state(1, initial), prompt, GREEDY)
        return torch.stack([s.tokens for s in itertools.islice(gen, steps)], dim=1)[0]


def test_greedy_generation_48_steps(released):
    _, model, e, _ = released
    assert torch.equal(_greedy(model, e["gen_text"], 48), e["gen_tokens"])


def test_prompt_continuation_with_parallel_prefill(released):
    _, model, e, _ = released
    p = e["prompt_codes"].shape[1]
    continuation = _greedy(model, e["prompt_text"], e["prompt_gen_tokens"].shape[0] - p, prompt=e["prompt_codes"])
    assert torch.equal(continuation, e["prompt_gen_tokens"][p:])
    # What the model predicted while reading the prompt (the original fed it token by token).
    text = e["prompt_text"][None]
    ctx = model.encode_text(text, torch.tensor([text.shape[1]]))
    with torch.no_grad():
        logits, _, _ = prefill(model, ctx, model.init_state(1), e["prompt_codes"])
    assert torch.equal(logits[0, :p].argmax(-1), e["prompt_gen_tokens"][:p])


def test_ist_initial_states(released):
    _, model, e, voice = released
    voice.check(model.cfg)
    states = voice.initial_states(1)
    assert len(states) == model.cfg.n_tunable_layers
    for i, s in enumerate(states):
        torch.testing.assert_close(s, e[f"ist_state_{i}"], atol=1e-6, rtol=1e-6)


def test_ist_teacher_forcing_and_generation(released):
    _, model, e, voice = released
    logits, _ = _teacher_forced(model, e, voice.initial_states(2))
    for i, n in enumerate((e["tf_audio_len"] - 1).tolist()):
        torch.testing.assert_close(logits[i, :n], e["ist_tf_logits"][i, :n, 0], atol=ATOL, rtol=RTOL)
    assert torch.equal(_greedy(model, e["gen_text"], 48, voice.initial_states(1)), e["ist_gen_tokens"])


def test_step_by_step_equals_parallel(released):
    """Feeding tokens one GLA step at a time gives the sequence forward's logits."""
    _, model, e, voice = released
    text = e["tf_text"][1:]
    ctx = model.encode_text(text, e["tf_text_len"][1:])
    audio = e["tf_audio_in"][1:, :20, 0]
    with torch.no_grad():
        full = model(ctx, audio, model.init_state(1, voice.initial_states(1))).logits
        state, steps = model.init_state(1, voice.initial_states(1)), []
        for t in range(audio.shape[1]):
            out = model.step(ctx, audio[:, t], state)
            state = out.state
            steps.append(out.logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=ATOL, rtol=RTOL)
