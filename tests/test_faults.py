"""Faults the Space must survive, on the app of tests/test_app.py (in-process, tiny random model):

* a visitor who leaves mid-generation (job cancelled, or connection closed) stops the generation:
  the app's engine's `activity` counts the stream (or the tuning) as "stopped", nothing stays running,
  and the next request is served promptly;
* a stream resumed on another worker thread (what a busy Gradio does) keeps working;
* a GPU out-of-memory error reaches that request as a clear message, the CUDA cache is emptied, and
  the next request works;
* released weights that cannot be downloaded fall back to the embedded model (or the tiny random
  one when none is shipped), and the page says so.
"""
from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

# First: test_app skips the whole module, with the reason, where gradio is not installed.
from test_app import check_wav, expect_error, shared_site  # isort: skip

from gradio_client import handle_file  # isort: skip

from lina.tts import LinaTTS
from lina_app import errors, model_choice
from lina_app.model_choice import load_model
from lina_app.texts import banner

# Eight sentences: about half a minute of generation for the tiny model, long enough to leave early.
LONG_TEXT = " ".join(f"This is sentence number {n} of a long text." for n in
                     ("one", "two", "three", "four", "five", "six", "seven", "eight"))
FIRST_CHUNK_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0       # a stream stops after the chunk it is generating (about a second of audio)
PROMPT_SECONDS = 20.0     # a short /speak alone takes ~2 s here; 20 s means no worker was left stuck
OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity)"


@pytest.fixture(scope="session")
def served(tmp_path_factory, pytestconfig) -> dict:
    """The app of tests/test_app.py (one per session, shared with it)."""
    return shared_site(tmp_path_factory, pytestconfig)


@pytest.fixture
def client(served):
    return served["client"]


@pytest.fixture
def activity(served):
    """What the shared app's engine is doing and how its work ended."""
    return served["engine"].activity


def wait_for(condition, timeout: float, what: str, activity) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {activity.snapshot()}"
        time.sleep(0.05)


def ended(activity, kind: str, outcome: str) -> int:
    return activity.snapshot()["ended"].get(f"{kind}:{outcome}", 0)


def speak_promptly(client) -> None:
    start = time.monotonic()
    wav, _ = client.predict(text="Right after.", preset="demo", api_name="/speak")
    check_wav(wav)
    assert time.monotonic() - start < PROMPT_SECONDS, "the next request waited: a worker is stuck"


# ---- (a) a visitor who leaves ------------------------------------------------------------------
def test_cancelled_stream_stops_generating(client, activity):
    stopped, finished = ended(activity, "stream", "stopped"), ended(activity, "stream", "finished")
    job = client.submit(text=LONG_TEXT, preset="demo", api_name="/speak_stream")
    wait_for(lambda: job.outputs() or job.done(), FIRST_CHUNK_TIMEOUT, "the first streamed chunk", activity)
    assert not job.done(), "the whole text was streamed before the test could leave"
    job.cancel()
    wait_for(lambda: ended(activity, "stream", "stopped") > stopped, STOP_TIMEOUT, "the stream to stop", activity)
    assert ended(activity, "stream", "finished") == finished
    assert not activity.snapshot()["running"]
    speak_promptly(client)


def test_closed_connection_stops_generating(served, client, activity):
    """As a browser tab that is closed: the event stream is dropped, no cancel is sent."""
    url = served["url"]
    config = httpx.get(url + "config", timeout=30).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "speak_stream")
    session = uuid.uuid4().hex[:10]
    stopped = ended(activity, "stream", "stopped")
    joined = httpx.post(url + "gradio_api/queue/join", timeout=30, json={
        "data": [LONG_TEXT, "demo", None, 100, 1.0, 0, ""], "fn_index": fn_index, "session_hash": session,
        "event_data": None, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session},
                      timeout=FIRST_CHUNK_TIMEOUT) as events:
        for line in events.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_generating":
                break  # the first chunk arrived: leave now
    wait_for(lambda: ended(activity, "stream", "stopped") > stopped, STOP_TIMEOUT, "the stream to stop", activity)
    assert not activity.snapshot()["running"]
    speak_promptly(client)


def test_cancelled_tuning_stops(served, client, activity):
    stopped = ended(activity, "tune", "stopped")
    job = client.submit(clips=[handle_file(served["inputs"] / "clip1.wav")], transcripts="Words of clip one.",
                        steps=1000, api_name="/tune_voice")
    wait_for(lambda: job.outputs() or job.done(), FIRST_CHUNK_TIMEOUT, "the first loss report", activity)
    assert not job.done()
    job.cancel()
    wait_for(lambda: ended(activity, "tune", "stopped") > stopped, STOP_TIMEOUT, "the tuning thread to stop", activity)
    assert not activity.snapshot()["running"]


def test_stream_resumed_on_other_threads(served):
    """Gradio runs each step of a generator on whichever worker thread is free (regression: lina's
    stream held torch.inference_mode, which is per thread, across its yields, and failed)."""
    chunks = served["engine"].stream("Two short sentences. Here is the second.", None, 100, 1.0, 0)
    pieces = []
    while True:
        with ThreadPoolExecutor(1) as fresh_thread:
            piece = fresh_thread.submit(next, chunks, None).result()
        if piece is None:
            break
        pieces.append(piece)
    assert len(pieces) >= 2 and not torch.is_inference_mode_enabled()


# ---- (b) GPU out of memory ---------------------------------------------------------------------
def fail_once(real, generator: bool = False):
    """`real`, except that its first call raises CUDA's OutOfMemoryError."""
    calls = []

    def plain(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError(OOM_TEXT)
        return real(*args, **kwargs)

    def streaming(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError(OOM_TEXT)
        yield from real(*args, **kwargs)

    return streaming if generator else plain


def oom_request(served, kind: str) -> dict:
    clip = handle_file(served["inputs"] / "me.wav")
    return {"speak": dict(text="Hello.", preset="demo", api_name="/speak"),
            "clone": dict(text="Hello.", prompt_audio=clip, transcript="The words of the clip.", candidates=1,
                          api_name="/clone"),
            "speak_stream": dict(text="Hello.", preset="demo", api_name="/speak_stream"),
            "tune_voice": dict(clips=[clip], transcripts="The words of the clip.", steps=1,
                               api_name="/tune_voice")}[kind]


@pytest.mark.parametrize("kind", ["speak", "clone", "speak_stream", "tune_voice"])
def test_out_of_memory_once(served, client, activity, monkeypatch, kind):
    engine = served["engine"]
    if kind == "tune_voice":  # raised in the tuning thread, handed to the handler through the engine
        monkeypatch.setattr(engine.tts, "tune_voice", fail_once(engine.tts.tune_voice))
    else:
        name = {"speak": "synthesize", "clone": "clone", "speak_stream": "stream"}[kind]
        monkeypatch.setattr(engine, name, fail_once(getattr(engine, name), generator=kind == "speak_stream"))
    emptied = []
    with monkeypatch.context() as gpu:  # as on a GPU machine, for the failing request only
        gpu.setattr(torch.cuda, "is_available", lambda: True)
        gpu.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
        text = expect_error(client, "ran out of memory", **oom_request(served, kind))
    assert text.strip().endswith(errors.OUT_OF_MEMORY) and "Something went wrong" not in text
    assert "2.00 GiB" not in text, "the raw CUDA message leaked to the visitor"
    assert emptied == [1], "the CUDA cache was not emptied after the error"
    assert not activity.snapshot()["running"]
    result = client.predict(**oom_request(served, kind))
    assert result, f"the request after the out-of-memory error failed: {result!r}"


def test_out_of_memory_message_forms():
    assert errors.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    assert errors.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not errors.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not errors.is_out_of_memory(MemoryError())  # host memory: a server problem, logged with a reference
    assert errors.to_gr_error(torch.cuda.OutOfMemoryError(OOM_TEXT)).message == errors.OUT_OF_MEMORY


# ---- (c) the released weights cannot be downloaded ---------------------------------------------
def failing_download(monkeypatch):
    """The Hub answers its probe, but fetching the released weights fails half-way."""
    real = LinaTTS.from_pretrained

    def from_pretrained(name, *args, **kwargs):
        if name == "released":
            raise OSError("Connection reset by peer while downloading model.safetensors")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(model_choice, "gpu_present", lambda: True)
    monkeypatch.setattr(model_choice, "hub_reachable", lambda timeout=0: True)
    monkeypatch.setattr(model_choice.LinaTTS, "from_pretrained", from_pretrained)


@pytest.mark.parametrize("request_", ["released", "auto"])
def test_download_failure_falls_back_to_the_embedded_model(monkeypatch, tmp_path, request_):
    embedded = tmp_path / "lina-mini"
    LinaTTS.from_pretrained("tiny-random").save_pretrained(str(embedded))
    monkeypatch.setattr(model_choice, "EMBEDDED_MODEL_DIR", embedded)
    failing_download(monkeypatch)
    loaded = load_model(request_)
    assert loaded.source == str(embedded)
    assert "could not load `released` (OSError: Connection reset by peer" in loaded.notice
    assert f"fell back to `{embedded.parent.name}/lina-mini`" in loaded.notice
    assert loaded.notice in banner(loaded)  # the page's top line says it


def test_download_failure_without_embedded_model_falls_back_to_tiny(monkeypatch, tmp_path):
    monkeypatch.setattr(model_choice, "EMBEDDED_MODEL_DIR", tmp_path / "not-shipped")
    failing_download(monkeypatch)
    loaded = load_model("released")
    assert loaded.source == "tiny-random" and "fell back to `tiny-random`" in loaded.notice
    page_top = banner(loaded)
    assert "TEST MODEL" in page_top and "could not load `released` (OSError" in page_top
