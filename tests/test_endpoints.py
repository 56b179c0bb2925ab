"""The endpoint table (lina_app/endpoints.py) is what the app serves: every entry is a named endpoint of the
built app with the entry's inputs, in order, under the handler's parameter names; the typed inputs' widgets
and checks agree; the GPU estimates read the model call's arguments by name.
"""
from __future__ import annotations

import inspect

import app_env  # noqa: F401 (first: the test environment before gradio is imported; `import app` works)

import pytest  # noqa: E402

pytest.importorskip("gradio", reason="gradio is not installed (pip install -r requirements.txt)")
import gradio as gr  # noqa: E402

import app  # noqa: E402
from lina_app.dialogue import DialogueHandlers  # noqa: E402
from lina_app.endpoints import ENDPOINTS, clone_seconds, dialogue_seconds  # noqa: E402
from lina_app.engine import Engine, by_name  # noqa: E402
from lina_app.fields import CANDIDATES, LEARNING_RATE, SEED, SPEED, STEPS, TOP_K, Number  # noqa: E402
from lina_app.handlers import Handlers  # noqa: E402
from lina_app.model_choice import load_model  # noqa: E402
from lina_app.settings import GPU_BASE_SECONDS, GPU_MAX_SECONDS, GPU_SECONDS_PER_CHAR  # noqa: E402

# What the page is told apart from the parameters: Gradio's own request and progress objects.
NOT_INPUTS = {"request", "progress"}
# The only input whose page default depends on the machine (fewer tuning steps on a CPU).
MACHINE_DEFAULTS = {STEPS.name}


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> dict:
    demo = app.build_demo(load_model("tiny-random"), tmp_path_factory.mktemp("voices"))
    return demo.get_api_info()["named_endpoints"]   # what gradio_client's view_api shows


def test_every_endpoint_is_served_with_its_declared_inputs(api):
    assert sorted(api) == sorted(f"/{name}" for name in ENDPOINTS)
    for name, endpoint in ENDPOINTS.items():
        parameters = api[f"/{name}"]["parameters"]
        assert [p["parameter_name"] for p in parameters] == endpoint.names, name
        for field, parameter in zip(endpoint.inputs, parameters):
            if isinstance(field, Number) and field.name not in MACHINE_DEFAULTS:
                assert parameter["parameter_default"] == field.default, (name, field.name)


def test_the_table_lists_each_handlers_parameters_in_order():
    for endpoint in ENDPOINTS.values():
        owner = DialogueHandlers if endpoint.api_name == "dialogue" else Handlers
        parameters = inspect.signature(getattr(owner, endpoint.handler)).parameters
        names = [n for n in parameters if n not in NOT_INPUTS and n != "self"]
        assert names == endpoint.names, endpoint.api_name
        for field in endpoint.inputs:
            if isinstance(field, Number):
                assert parameters[field.name].default == field.default, (endpoint.api_name, field.name)


def test_a_fields_widget_and_its_check_share_bounds_and_default():
    with gr.Blocks():
        slider, box = CANDIDATES.widget("c"), LEARNING_RATE.widget("lr")
        seed = SEED.widget("s")
    assert (slider.minimum, slider.maximum, slider.value) == (1, CANDIDATES.bounds[1], 1)
    assert (box.minimum, box.maximum, box.value) == (*LEARNING_RATE.bounds, LEARNING_RATE.default)
    assert seed.precision == 0 and seed.maximum is None  # the box states no upper bound; the check has one
    assert CANDIDATES.check("2") == 2 and isinstance(CANDIDATES.check(2.0), int)
    assert SPEED.check(1.25) == 1.25
    with pytest.raises(gr.Error, match="Number of candidates must be between 1 and"):
        CANDIDATES.check(CANDIDATES.bounds[1] + 1)
    with pytest.raises(gr.Error, match="Top-k must be a whole number"):
        TOP_K.check(2.5)
    with pytest.raises(gr.Error, match="Seed must be between 0 and"):
        SEED.check(SEED.bounds[1] + 1)


def test_gpu_estimates_read_the_calls_arguments_by_name():
    engine = Engine(tts=None)
    seconds = by_name(engine._clone, clone_seconds)
    text, transcript = "a" * 100, "b" * 60
    want = int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + GPU_SECONDS_PER_CHAR * 160 * 2))
    assert seconds(text, "clip.wav", transcript, 100, 1.0, 0, 2) == want
    assert seconds(text, "clip.wav", transcript, 100, 1.0, 0, candidates=2) == want
    assert seconds(text=text, prompt_audio="clip.wav", transcript=transcript, top_k=100, temperature=1.0, seed=0,
                   candidates=2) == want
    turns = [("Ava", "x" * 200), ("Leo", "y" * 200)]
    dialogue = by_name(engine._dialogue, dialogue_seconds)
    assert dialogue(turns, {}, 0.2, 100, 1.0, 0, None, True) == int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + 40))
    assert dialogue(turns, {}, 0.2, 100, 1.0, 0) == int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + 20))
    assert by_name(engine.warm_up, 480) == 480


def test_every_gpu_estimate_names_parameters_of_its_call():
    """A renamed model-call parameter must not silently fall back to an estimate's default."""
    marked = {name: getattr(Engine, name).gpu_duration for name in dir(Engine)
              if hasattr(getattr(Engine, name), "gpu_duration")}
    assert {"_clone", "_synthesize", "_stream", "_dialogue", "tune", "tune_preset", "warm_up"} <= set(marked)
    for name, duration in marked.items():
        if callable(duration):
            wanted = [p.name for p in inspect.signature(duration).parameters.values()
                      if p.kind is inspect.Parameter.KEYWORD_ONLY]
            assert set(wanted) <= set(inspect.signature(getattr(Engine, name)).parameters), name
