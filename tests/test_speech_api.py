"""The OpenAI-style speech API (`lina_app.openai_api`) through the official `openai` client, against the
app launched in this process (the embedded lina-mini, the shipped voices): every response format decodes
to the same audio length, a streamed response lands in a file, errors have OpenAI's shape, outputs of the
API and of the page carry the watermark, and the API cannot get around the app's concurrency cap.
"""
from __future__ import annotations

import io
import os

for _key, _value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                     "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
    os.environ.setdefault(_key, _value)

import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

openai = pytest.importorskip("openai", reason="the openai client is a test dependency (requirements-dev.txt)")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import app  # noqa: E402
from lina.watermark import detect_watermark  # noqa: E402
from lina_app import gate  # noqa: E402
from lina_app.engine import Engine  # noqa: E402
from lina_app.model_choice import EMBEDDED_MODEL_DIR, load_model  # noqa: E402
from lina_app.settings import DEFAULT_VOICES_DIR, MAX_TEXT_CHARS  # noqa: E402

RATE = 24_000
TEXT = "Good morning. Here is the news."
VOICE = "ava_neutral"
# Lossy codecs may pad or trim a few ms at the ends (encoder delay): the length stays within this.
LOSSY_LENGTH_TOLERANCE_SECONDS = 0.08
SPEED = 1.5
SPEED_LENGTH_TOLERANCE = 0.01   # lina.speed cuts to exactly S / speed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not (EMBEDDED_MODEL_DIR / "config.json").is_file():
        pytest.skip("the embedded model is not in this checkout")
    loaded = load_model("embedded")
    demo = app.build_demo(loaded, DEFAULT_VOICES_DIR)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            **app.launch_options(DEFAULT_VOICES_DIR, demo.speech_api))
    client = openai.OpenAI(base_url=url + "v1", api_key="not-needed", max_retries=0)
    yield {"url": url, "client": client, "formats": {}, "loaded": loaded, "api": demo.speech_api}
    demo.close()


def _speak(server, fmt: str, **extra) -> bytes:
    response = server["client"].audio.speech.create(model="lina", voice=VOICE, input=TEXT, response_format=fmt,
                                                    **extra)
    return response.content


def _decode(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    return audio


def test_every_format_decodes_to_the_same_audio_length(server):
    """wav, flac, mp3 and opus are the same synthesis encoded; pcm (streamed as generated) has its length."""
    pcm = _decode(_speak(server, "pcm"), "pcm")
    assert len(pcm) > RATE  # "Good morning. Here is the news." is longer than a second
    wav_bytes = _speak(server, "wav")
    assert wav_bytes[:4] == b"RIFF"
    wav = _decode(wav_bytes, "wav")
    # pcm is streamed as generated: the same tokens (same seed), the streaming codec decoder's samples
    assert len(wav) == len(pcm) and np.corrcoef(wav, pcm)[0, 1] > 0.95
    for fmt, magic in (("flac", b"fLaC"), ("mp3", None), ("opus", b"OggS")):
        data = _speak(server, fmt)
        if magic:
            assert data[:4] == magic
        decoded = _decode(data, fmt)
        assert abs(len(decoded) - len(pcm)) / RATE <= LOSSY_LENGTH_TOLERANCE_SECONDS, (fmt, len(decoded), len(pcm))
    server["formats"]["wav"] = wav


def test_streamed_response_written_to_a_file_with_speed(server, tmp_path):
    target = tmp_path / "streamed.mp3"
    with server["client"].audio.speech.with_streaming_response.create(
            model="tts-1", voice=VOICE, input=TEXT, response_format="mp3", speed=SPEED) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        response.stream_to_file(target)
    audio, rate = soundfile.read(target, dtype="float32")
    normal = len(_decode(_speak(server, "pcm"), "pcm"))
    assert abs(len(audio) * SPEED / normal - 1) < SPEED_LENGTH_TOLERANCE
    assert detect_watermark(audio, rate).present   # marked again after the stretch
    # pcm at speed 1 is sent as it is generated: several pieces, the first before the end.
    with server["client"].audio.speech.with_streaming_response.create(
            model="tts-1", voice=VOICE, input=TEXT, response_format="pcm") as response:
        pieces = [piece for piece in response.iter_bytes() if piece]
    assert len(pieces) > 1 and sum(map(len, pieces)) == 2 * normal


def test_models_and_voices_listing(server):
    models = server["client"].models.list()
    assert len(models.data) == 1 and models.data[0].id and models.data[0].object == "model"
    voices = httpx.get(server["url"] + "v1/audio/voices").json()
    ids = {v["id"] for v in voices["data"]}
    assert VOICE in ids and len(ids) >= 40


@pytest.mark.parametrize("overrides, status, param, words", [
    ({"voice": "nobody"}, 400, "voice", "is not a voice of this server"),
    ({"voice": "nobody", "response_format": "pcm"}, 400, "voice", "is not a voice of this server"),  # streamed
    ({"response_format": "aac"}, 400, "response_format", "Supported: wav, flac, mp3, opus, pcm"),
    ({"input": "a" * (MAX_TEXT_CHARS + 1)}, 400, "input", f"the limit is {MAX_TEXT_CHARS}"),
    ({"input": "   "}, 400, "input", "empty"),
    ({"speed": 9}, 400, "speed", "between 0.7 and 1.5"),
    ({"model": "gpt-9"}, 404, "model", "does not exist here"),
])
def test_errors_have_openais_shape_and_plain_words(server, overrides, status, param, words):
    args = dict(model="tts-1", voice=VOICE, input="Hello.", response_format="wav") | overrides
    with pytest.raises(openai.APIStatusError) as caught:
        server["client"].audio.speech.create(**args)
    error = caught.value
    assert error.status_code == status
    body = error.body  # the client hands over the "error" object
    assert set(body) == {"message", "type", "param", "code"} and body["type"] == "invalid_request_error"
    assert body["param"] == param and words in body["message"], body
    assert "Traceback" not in body["message"] and "Error:" not in body["message"]


def test_a_body_that_is_not_json_is_refused_plainly(server):
    reply = httpx.post(server["url"] + "v1/audio/speech", content=b"{not json")
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith("The request body must be a JSON object")


def test_api_and_page_outputs_carry_the_watermark_and_examples_do_not(server):
    from gradio_client import Client, handle_file

    wav = server["formats"].get("wav")
    if wav is None:
        wav = _decode(_speak(server, "wav"), "wav")
    assert detect_watermark(wav, RATE).present
    page = Client(server["url"], verbose=False)
    page_wav, _ = page.predict(text=TEXT, preset=VOICE, voice_file=None, top_k=100, temperature=1.0, seed=0,
                               api_name="/speak")
    reply = httpx.post(server["url"] + "detect", content=Path(page_wav).read_bytes()).json()
    assert reply["watermarked"] and reply["score"] > 0.9
    # A clone: its reference clip's clean-up is on the info line (the report card), and its audio is marked.
    clip = REPO_ROOT / "assets" / "examples" / "joe_clone.flac"
    wavs, info, _ = page.predict(text="Hello there.", prompt_audio=handle_file(clip),
                                 transcript=clip.with_suffix(".txt").read_text(), candidates=1, api_name="/clone")
    assert "🧹 Reference clean-up:" in info and "LUFS" in info, info
    assert detect_watermark(str(wavs[0])).present
    for clip in sorted((REPO_ROOT / "assets" / "examples").glob("*.flac"))[:3]:
        reply = httpx.post(server["url"] + "detect", files={"file": clip.open("rb")}).json()
        assert not reply["watermarked"] and reply["score"] < 0.5, (clip.name, reply)
    # The page's preset samples (shipped files of the model's speech) are served as marked copies.
    _, sample = server["api"].handlers.preset_details(VOICE)
    assert detect_watermark(sample).present
    assert not detect_watermark(str(DEFAULT_VOICES_DIR / f"{VOICE}.flac")).present
    junk = httpx.post(server["url"] + "detect", content=b"junk").json()
    assert junk["error"]["message"].startswith("Unreadable audio file")


def test_no_way_around_the_concurrency_cap(monkeypatch):
    """Callers from anywhere (page, API) share one gate: at most its slots run, a full queue says busy."""
    shared = gate.Gate(slots=2, max_waiting=3)
    monkeypatch.setattr(gate, "synthesis", shared)
    engine = Engine(tts=None)   # no model: the GPU call below is replaced
    monkeypatch.setattr(engine, "_synthesize", lambda *args: time.sleep(0.2))
    outcomes: list[str] = []

    def call():
        try:
            engine.synthesize("x", None, 1, 1.0, 0)
            outcomes.append("done")
        except gate.Busy as busy:
            outcomes.append(str(busy))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.peak_running == 2
    assert outcomes.count("done") == 5   # 2 running + 3 waiting; the other 3 are told the server is busy
    assert all(o == "done" or o.startswith("The server is busy") for o in outcomes)


def test_the_server_without_the_page(server):
    """`python -m lina_app.serve`'s app (uvicorn in a thread here): the same routes, marked audio."""
    import uvicorn

    from lina_app.serve import build_app

    port = free_port()
    alone = uvicorn.Server(uvicorn.Config(build_app(server["api"]), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=alone.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not alone.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        data = client.audio.speech.create(model="lina", voice=VOICE, input="Hello there.", response_format="flac")
        audio = _decode(data.content, "flac")
        assert len(audio) > RATE // 2 and detect_watermark(audio, RATE).present
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 404   # no page here
    finally:
        alone.should_exit = True
        thread.join(10)
