"""Two apps built in one process each speak with their own model: an app's model is held by its handlers and
their engine, not set in a module for every app (building the second app used to switch the first one's model).
"""
from __future__ import annotations


import app_env  # noqa: F401 (first: the test environment before gradio is imported; `import app` works)


import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("gradio", reason="gradio is not installed (pip install -r requirements.txt)")

import app  # noqa: E402
from lina.audio import to_int16  # noqa: E402
from lina.pretrained import tiny_random  # noqa: E402
from lina.tts import LinaTTS  # noqa: E402
from lina_app.model_choice import LoadedModel  # noqa: E402

TEXT = "Good morning."
TOP_K, TEMPERATURE, SEED = 50, 1.0, 7
# The second model is the tiny one with every weight (language model and codec) nudged: another model, as fast.
OTHER_SEED = 1
NUDGE = 0.3


def other_model() -> LinaTTS:
    bundle = tiny_random()
    noise = torch.Generator().manual_seed(OTHER_SEED)
    with torch.no_grad():  # before LinaTTS: its decoding backend may work on a copy of the weights
        for weight in [*bundle.model.parameters(), *bundle.codec.parameters()]:
            weight.add_(NUDGE * torch.randn(weight.shape, generator=noise).to(weight))
    return LinaTTS(bundle)


def spoken_by(tts: LinaTTS) -> np.ndarray:
    """The 16-bit samples `tts` itself says for TEXT (no voice), as the app writes them."""
    result = tts.synthesize(TEXT, None, top_k=TOP_K, temperature=TEMPERATURE, seed=SEED)
    return to_int16(result.audio[0])


def test_two_apps_in_one_process_each_speak_with_their_own_model():
    models = [LinaTTS.from_pretrained("tiny-random"), other_model()]
    demos = [app.build_demo(LoadedModel(tts, "tiny-random", ""), None) for tts in models]  # the second built last
    expected = [spoken_by(tts) for tts in models]
    assert not np.array_equal(expected[0], expected[1]), "the two models say the same: the test would prove nothing"
    for demo, own, mine, theirs in zip(demos, models, expected, expected[::-1]):
        assert demo.engine.tts is own and demo.speech_api.handlers.engine is demo.engine
        wav, info = demo.speech_api.handlers.speak(TEXT, top_k=TOP_K, temperature=TEMPERATURE, seed=SEED)
        heard, rate = soundfile.read(wav, dtype="int16")
        assert rate == own.sample_rate and "No voice" in info
        assert np.array_equal(heard, mine) and not np.array_equal(heard, theirs)
