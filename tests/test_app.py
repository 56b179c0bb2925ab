"""The Space through its API: the app launched in-process on 127.0.0.1 with the tiny random model,
every endpoint called with `gradio_client` (the README snippets: tests/test_readme.py), every bad input
answered with its `gr.Error` message while the app keeps serving.

The model is the tiny random-weight one: outputs are noise, so the checks are on the plumbing
(real 24 kHz 16-bit WAV files of plausible length, messages), not on speech quality.
"""
from __future__ import annotations

import contextlib
import os
import re

from app_env import REPO_ROOT  # noqa: I001 (first: sets the environment before gradio is imported)

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

gradio_client = pytest.importorskip("gradio_client", reason="gradio is not installed (pip install -r requirements.txt)")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

# `app.py` sits at the repository root, which plain `pytest` (unlike `python -m pytest`) leaves off sys.path.

import app  # noqa: E402
from lina.tts import LinaTTS  # noqa: E402
from lina.voice import Voice  # noqa: E402
from lina_app.events import TuningDone, TuningStep  # noqa: E402
from lina_app.model_choice import LoadedModel, hub_reachable, load_model  # noqa: E402
from lina_app.settings import (MAX_CLONE_CLIP_SECONDS, MAX_TEXT_CHARS, MAX_TRANSCRIPT_CHARS,  # noqa: E402
                               MAX_TUNING_CLIP_SECONDS, MAX_TUNING_CLIPS, MAX_UPLOAD_SECONDS)

SAMPLE_RATE = 24_000
MIN_AUDIO_SECONDS = 0.1
MAX_AUDIO_SECONDS = 120.0
SPEECHLIKE_SECONDS = 2.5
TUNING_STEPS_FOR_FIXTURES = 1
LONG_TUNING_STEPS = 60       # long enough on any machine of ours for a short request to overtake it
README_URL = "http://127.0.0.1:7860/"

# ---- the README snippets, one per endpoint, read from README.md and run verbatim (only the URL is replaced)
def _readme_snippets() -> dict[str, str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return dict(re.findall(r"<!-- snippet:(\w+) -->\s*```python\n(.*?)```", text, re.S))


_SNIPPETS = _readme_snippets()
SNIPPET_CLONE = _SNIPPETS["clone"]
SNIPPET_TUNE_VOICE = _SNIPPETS["tune_voice"]
SNIPPET_SPEAK = _SNIPPETS["speak"]
SNIPPET_VOICES = _SNIPPETS["voices"]
SNIPPET_TRANSCRIBE = _SNIPPETS["transcribe"]
SNIPPET_MCP = _SNIPPETS["mcp"]


def run_snippet(snippet: str, url: str, folder: Path) -> dict:
    """Executes a README snippet as written, in `folder` (where its input files are), against `url`."""
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(snippet.replace(README_URL, url), "<readme snippet>", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    return namespace


# ---- inputs ------------------------------------------------------------------------------------
def speechlike(seconds: float = SPEECHLIKE_SECONDS, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """A voiced-sounding signal (harmonics under a syllable-rate envelope): enough for the checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * voiced * envelope + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def write_inputs(folder: Path) -> Path:
    """Every upload the tests and the snippets use, good and bad, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    soundfile.write(folder / "me.wav", speechlike(), SAMPLE_RATE)
    soundfile.write(folder / "clip1.wav", speechlike(seed=1), SAMPLE_RATE)
    soundfile.write(folder / "clip2.wav", speechlike(3.0, seed=2), SAMPLE_RATE)
    (folder / "clip2.txt").write_text("Words spoken in clip two.\n")
    stereo = np.stack([speechlike(rate=44_100), speechlike(rate=44_100, seed=3)], axis=1)
    soundfile.write(folder / "stereo_44k.wav", stereo, 44_100, subtype="PCM_24")
    soundfile.write(folder / "odd_rate_11025.wav", speechlike(rate=11_025), 11_025, subtype="PCM_16")
    soundfile.write(folder / "silent.wav", np.zeros(2 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    soundfile.write(folder / "too_short.wav", speechlike(0.2), SAMPLE_RATE)
    soundfile.write(folder / "too_long.wav", speechlike(20.0), SAMPLE_RATE)
    soundfile.write(folder / "way_too_long.wav", speechlike(70.0), 8_000)  # 210 s: 70 s of samples at 24 kHz read at 8 kHz
    soundfile.write(folder / "too_long_to_tune.wav", speechlike(MAX_TUNING_CLIP_SECONDS + 3, rate=8_000), 8_000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    (folder / "notes.txt").write_text("this is not audio at all\n")
    (folder / "not_audio.wav").write_text("this is not audio either\n")
    return folder


def make_voices(folder: Path, tts: LinaTTS, clip: np.ndarray) -> Path:
    """A presets folder: a voice tuned from the tiny model (with a sample beside it), and a foreign one.

    One tuning step is enough for a voice file of the right kind; the clip itself serves as its sample.
    """
    folder.mkdir(parents=True, exist_ok=True)
    voice, _ = tts.tune_voice([((SAMPLE_RATE, clip), "a demo voice for the tests")], steps=TUNING_STEPS_FOR_FIXTURES,
                              name="Demo", style="calm", description="tuned from a synthetic clip for the tests")
    voice.save(folder / "demo.safetensors")
    soundfile.write(folder / "demo.wav", clip, SAMPLE_RATE, subtype="PCM_16")
    Voice(voice.k, voice.v, name="Other", model_id="someone/other-model").save(folder / "other_model.safetensors")
    return folder


def bad_voices(folder: Path, tts: LinaTTS) -> dict[str, Path]:
    """Voice files the app must refuse with a clear message."""
    cfg = tts.model.cfg
    wrong = Voice(torch.randn(cfg.n_tunable_layers + 1, 1, cfg.n_heads + 1, cfg.head_k_dim * 2),
                  torch.randn(cfg.n_tunable_layers + 1, 1, cfg.n_heads + 1, cfg.head_v_dim * 2), name="wrong dims")
    files = {"wrong_shape": folder / "wrong_shape.safetensors", "other_model": folder / "other.safetensors",
             "not_safetensors": folder / "fake.safetensors", "text_file": folder / "voice.txt"}
    wrong.save(files["wrong_shape"])
    like = Voice(torch.randn(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_k_dim),
                 torch.randn(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_v_dim), model_id="someone/other-model")
    like.save(files["other_model"])
    files["not_safetensors"].write_bytes(b"this is no safetensors file" * 10)
    files["text_file"].write_text("not a voice\n")
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


APP_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "LINA_ASR_MODEL": "none"}


@contextlib.contextmanager
def app_process(args: list[str], log_path: Path, timeout: float, poll: float = 0.25, env: dict | None = None):
    """-> (proc, url): `python3 app.py ARGS --host 127.0.0.1 --port P` from the repository root, in its own
    process (output in `log_path`, `env` over APP_ENV), once its page answers; stopped (then killed) on exit."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py"), *args, "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=REPO_ROOT, env=os.environ | APP_ENV | (env or {}), stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert proc.poll() is None, "the app exited at start-up:\n" + log_path.read_text()[-3000:]
            try:
                urllib.request.urlopen(url + "config", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start:\n" + log_path.read_text()[-3000:]
                time.sleep(poll)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_app(voices_dir: Path):
    """-> (demo, url): the app of `app.py` with the tiny model, served in this process."""
    demo = app.build_demo(load_model("tiny-random"), voices_dir)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **app.launch_options(voices_dir))
    return demo, url


def check_wav(path, min_seconds: float = MIN_AUDIO_SECONDS) -> float:
    """A real 24 kHz 16-bit PCM WAV of plausible length; returns its duration."""
    info = soundfile.info(str(path))
    assert info.format == "WAV" and info.subtype == "PCM_16", (info.format, info.subtype)
    assert info.samplerate == SAMPLE_RATE and info.channels == 1
    assert min_seconds < info.duration < MAX_AUDIO_SECONDS, info.duration
    audio, _ = soundfile.read(str(path), dtype="int16")
    assert np.abs(audio).max() > 0, "all-zero audio"
    return info.duration


# ---- fixtures ----------------------------------------------------------------------------------
_SITE: dict = {}


def shared_site(tmp_path_factory, config) -> dict:
    """One app for the whole session, shared with tests/test_browser.py (it imports this module)."""
    if not _SITE:
        root = tmp_path_factory.mktemp("app")
        inputs = write_inputs(root / "inputs")
        tts = LinaTTS.from_pretrained("tiny-random")
        voices = make_voices(root / "voices", tts, speechlike(seed=5))
        bad = bad_voices(inputs, tts)
        demo, url = launch_app(voices)
        config.add_cleanup(demo.close)
        config.add_cleanup(_SITE.clear)
        _SITE.update(url=url, inputs=inputs, voices=voices, bad=bad, tts=tts, client=Client(url, verbose=False),
                     engine=demo.engine)
    return _SITE


@pytest.fixture(scope="session")
def served(tmp_path_factory, pytestconfig) -> dict:
    return shared_site(tmp_path_factory, pytestconfig)


@pytest.fixture
def client(served) -> Client:
    return served["client"]


def expect_error(client: Client, message: str, **kwargs) -> str:
    with pytest.raises(AppError) as caught:
        client.predict(**kwargs)
    text = str(caught.value)
    assert message.lower() in text.lower(), text
    assert "Traceback" not in text and 'File "' not in text
    return text


# The README snippets run against `python3 app.py` with the shipped voices: tests/test_readme.py.


# ---- more of each endpoint ---------------------------------------------------------------------
def test_speak_with_a_preset(client):
    wav, info = client.predict(text="Good morning. Here is the news.", preset="demo", api_name="/speak")
    check_wav(wav)
    assert "Preset: Demo (calm)" in info


def test_dropped_characters_are_reported_in_the_info_line(client):
    wav, info = client.predict(text="Party time! 🎉😀 Bring snacks.", preset="demo", api_name="/speak")
    check_wav(wav)
    assert "left out, the model cannot read them: 🎉 😀" in info, info


def test_speak_without_any_voice(client):
    wav, info = client.predict(text="No voice given.", preset="", voice_file=None, api_name="/speak")
    check_wav(wav)
    assert "untuned model" in info


@pytest.mark.parametrize("clip", ["stereo_44k.wav", "odd_rate_11025.wav"])
def test_clone_accepts_stereo_and_odd_sample_rates(served, client, clip):
    wavs, info, _ = client.predict(text="It still works.", prompt_audio=handle_file(served["inputs"] / clip),
                                   transcript="A stereo or odd rate clip.", candidates=1, api_name="/clone")
    assert len(wavs) == 1
    check_wav(wavs[0])


def test_long_text_is_one_batch(served, client):
    text = "This is the first sentence. Here comes the second. The third one ends it."
    count = len(served["tts"].sentences(text))
    assert count >= 3
    wav, info = client.predict(text=text, preset="demo", api_name="/speak")
    assert f"{count} sentences in one batch" in info
    check_wav(wav, min_seconds=(count - 1) * 0.25)  # at least the pauses between the sentences


def test_tune_voice_pairs_clip_txt_files_by_name(served, client):
    inputs = served["inputs"]
    voice_file, preview, losses, status = client.predict(
        clips=[handle_file(inputs / "clip2.wav"), handle_file(inputs / "clip2.txt")], transcripts="", steps=3,
        api_name="/tune_voice")
    check_wav(preview)
    assert "tuned from 1 clip(s) in 3 steps" in status and Voice.load(voice_file).rank == 1


def test_stream_endpoint_yields_audio_then_the_info_of_speak(client):
    """Streaming says /speak's words (same seed: the same audio length) and reports its info at the end."""
    text = "Streaming starts early. The second sentence follows."
    job = client.submit(text=text, preset="demo", seed=3, api_name="/speak_stream")
    pieces = list(job)
    assert len(pieces) >= 2, "no streamed audio"
    info = job.outputs()[-1][1]
    _, spoken = client.predict(text=text, preset="demo", seed=3, api_name="/speak")
    assert "streamed" in info and "2 sentences in one batch" in info, info
    length = re.compile(r"1 candidate, [\d.]+ s of audio")
    assert length.search(info).group(0) == length.search(spoken).group(0), (info, spoken)


def test_streaming_says_the_words_of_speaking_on_the_embedded_model():
    """Same preset, text and seed: the streamed audio is /speak's (same tokens; the streaming codec decoder
    approximates the audio), sentence after sentence, in the app's pieces of about a second."""
    from lina_app.model_choice import EMBEDDED_MODEL_DIR
    from lina_app.settings import STREAM_CHUNK_SECONDS

    if not (EMBEDDED_MODEL_DIR / "config.json").is_file():
        pytest.skip("the embedded model is not in this checkout")
    tts = LinaTTS.from_pretrained(str(EMBEDDED_MODEL_DIR))
    voice = Voice.load(app.DEFAULT_VOICES_DIR / "ava_neutral.safetensors")
    text = "Good morning. Here is the news."
    spoken = tts.synthesize(text, voice, seed=5)
    stream = tts.stream(text, voice, top_k=100, temperature=1.0, seed=5, piece_seconds=STREAM_CHUNK_SECONDS)
    pieces = list(stream)
    streamed = np.concatenate(pieces)
    assert stream.result.tokens == spoken.tokens and stream.result.text == spoken.text
    assert len(streamed) == len(spoken.audio[0]) and np.array_equal(stream.result.audio[0], streamed)
    assert all(len(p) >= STREAM_CHUNK_SECONDS * SAMPLE_RATE for p in pieces[1:-1])
    assert np.corrcoef(streamed, spoken.audio[0])[0, 1] > 0.95


# ---- bad input: clear messages, the app keeps serving ------------------------------------------
def clone_kwargs(served, clip="me.wav", **overrides):
    kwargs = dict(text="Hello there.", prompt_audio=handle_file(served["inputs"] / clip),
                  transcript="The words of the clip.", candidates=1, api_name="/clone")
    return kwargs | overrides


@pytest.mark.parametrize("text, message", [
    ("", "Please enter the text to speak"),
    ("   \n\t ", "Please enter the text to speak"),
    ("a" * (MAX_TEXT_CHARS + 1), f"the limit is {MAX_TEXT_CHARS}"),
    ("###", "Nothing speakable"),
])
def test_bad_text(served, client, text, message):
    expect_error(client, message, **clone_kwargs(served, text=text))
    expect_error(client, message, text=text, preset="demo", api_name="/speak")


@pytest.mark.parametrize("transcript", ["", "   "])
def test_missing_transcript(served, client, transcript):
    expect_error(client, "transcript of the clip is required", **clone_kwargs(served, transcript=transcript))


def test_missing_clip(client):
    expect_error(client, "Please upload or record a clip", text="Hello.", prompt_audio=None,
                 transcript="Words.", api_name="/clone")


@pytest.mark.parametrize("clip, message", [
    ("silent.wav", "The audio is silent"),
    ("too_short.wav", "less than 0.5 s of sound"),
    ("too_long.wav", f"use at most {MAX_CLONE_CLIP_SECONDS:g} s"),
    ("way_too_long.wav", f"The audio is 210.0 s long; the limit is {MAX_UPLOAD_SECONDS:g} s"),
    ("corrupt.wav", "Unreadable audio file"),
    ("not_audio.wav", "Unreadable audio file"),
    ("notes.txt", "Unreadable audio file"),
])
def test_bad_clips(served, client, clip, message):
    expect_error(client, message, **clone_kwargs(served, clip=clip))


@pytest.mark.parametrize("kind, message", [
    ("wrong_shape", "voice is for a model with (layers, heads, Dk, Dv)"),
    ("other_model", "voice was tuned for model 'someone/other-model'"),
    ("not_safetensors", "This is not a voice file: voice files are the .safetensors files"),
    ("text_file", "Invalid file type"),
])
def test_bad_voice_files(served, client, kind, message):
    expect_error(client, message, text="Hello.", preset="", voice_file=handle_file(served["bad"][kind]),
                 api_name="/speak")


def test_unknown_and_foreign_presets(client):
    expect_error(client, "Unknown preset voice 'nobody'. Available: demo", text="Hi.", preset="nobody",
                 api_name="/speak")
    expect_error(client, "cannot be used with this model", text="Hi.", preset="other_model", api_name="/speak")


@pytest.mark.parametrize("field, value, message", [  # Gradio's own bounds check of sliders and numbers
    ("top_k", 0, "Value 0 is less than minimum value 1"),
    ("temperature", 9.0, "Value 9.0 is greater than maximum value 2.0"),
    ("seed", -1, "Value -1 is less than minimum value 0"),
    ("candidates", 9, "Value 9 is greater than maximum value 4"),
])
def test_out_of_range_settings(served, client, field, value, message):
    expect_error(client, message, **clone_kwargs(served, **{field: value}))


@pytest.mark.parametrize("files, transcripts, message", [
    ([], "", "Please upload at least one audio clip"),
    (["clip1.wav"], "", "Transcripts are missing for 1 clip(s) (clip1.wav)"),
    (["clip1.wav", "me.wav"], "only one line", "2 clip(s) need a transcript from the box"),
    (["clip1.wav", "notes.txt"], "words", "No audio clip matches the transcript file(s) notes.txt"),
    (["silent.wav"], "words", "Clip 1 (silent.wav): The audio is silent"),
    (["clip1.wav", "corrupt.wav"], "one\ntwo", "Clip 2 (corrupt.wav): Unreadable audio file"),
])
def test_bad_tuning_input(served, client, files, transcripts, message):
    expect_error(client, message, clips=[handle_file(served["inputs"] / f) for f in files],
                 transcripts=transcripts, steps=2, api_name="/tune_voice")


def test_bad_tuning_settings(served, client):
    expect_error(client, "Value 0 is less than minimum value 1", clips=[handle_file(served["inputs"] / "clip1.wav")],
                 transcripts="words", steps=0, api_name="/tune_voice")


def page_labels(url: str) -> list[str]:
    import httpx

    config = httpx.get(url + "config", timeout=30).json()
    return [str(c.get("props", {}).get("label")) for c in config["components"]]


def test_the_page_states_the_limits_the_checks_enforce(served, client):
    """Each limit is one constant: the label says it, and a request just past it is refused naming it."""
    labels = " | ".join(page_labels(served["url"]))
    assert f"at most {MAX_CLONE_CLIP_SECONDS:g} s" in labels
    assert f"up to {MAX_TRANSCRIPT_CHARS} characters" in labels
    assert f"Clips: up to {MAX_TUNING_CLIPS}, each at most {MAX_TUNING_CLIP_SECONDS:g} s" in labels
    assert f"up to {MAX_TEXT_CHARS} characters" in labels
    inputs = served["inputs"]
    expect_error(client, f"the limit is {MAX_TRANSCRIPT_CHARS}", **clone_kwargs(served, transcript="a" * (MAX_TRANSCRIPT_CHARS + 1)))
    expect_error(client, f"the limit is {MAX_TRANSCRIPT_CHARS}", clips=[handle_file(inputs / "clip1.wav")],
                 transcripts="a" * (MAX_TRANSCRIPT_CHARS + 1), steps=1, api_name="/tune_voice")
    expect_error(client, f"the limit is {MAX_TUNING_CLIP_SECONDS:g} s per clip",
                 clips=[handle_file(inputs / "too_long_to_tune.wav")], transcripts="words", steps=1,
                 api_name="/tune_voice")
    expect_error(client, f"{MAX_TUNING_CLIPS + 1} clips uploaded; the limit is {MAX_TUNING_CLIPS}",
                 clips=[handle_file(inputs / "clip1.wav")] * (MAX_TUNING_CLIPS + 1), transcripts="words",
                 steps=1, api_name="/tune_voice")


def test_refusals_log_one_line_and_no_trace(served, client, capfd, caplog):
    """Validation errors (ours and Gradio's own range check) are routine: one log line each, no trace."""
    import logging

    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="lina_app"):
        expect_error(client, "Nothing speakable", text="###", preset="demo", api_name="/speak")
        expect_error(client, "Value 0 is less than minimum value 1", **clone_kwargs(served, top_k=0))
        expect_error(client, "Unreadable audio file", **clone_kwargs(served, clip="corrupt.wav"))
    server_output = capfd.readouterr()
    assert "Traceback" not in server_output.err + server_output.out
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused: ")]
    assert any("Nothing speakable" in m for m in refused), refused
    assert any("less than minimum value 1" in m for m in refused), refused
    assert any("Unreadable audio file" in m for m in refused), refused
    assert all("\n" not in m for m in refused)


def test_unexpected_errors_stay_generic(served, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(served["engine"], "synthesize", broken)
    text = expect_error(client, "Something went wrong on our side", text="Hello.", preset="demo", api_name="/speak")
    assert "secret internal detail" not in text


def test_a_tuning_job_does_not_block_short_requests(served, client):
    """Tuning has its own concurrency group: a short /speak is answered while a tuning job runs."""
    tuning = client.submit(clips=[handle_file(served["inputs"] / "clip1.wav")], transcripts="Words of clip one.",
                           steps=LONG_TUNING_STEPS, api_name="/tune_voice")
    deadline = time.monotonic() + 60
    while tuning.status().code.name not in ("PROCESSING", "ITERATING", "FINISHED") and time.monotonic() < deadline:
        time.sleep(0.1)
    wav, _ = client.predict(text="Quick one.", preset="demo", api_name="/speak")
    still_tuning = not tuning.done()
    tuning.cancel()  # closing the handler's generator stops the tuning thread at its next step
    check_wav(wav)
    assert still_tuning, "the short request waited for the tuning job"


def test_app_keeps_serving_after_errors(served, client):
    expect_error(client, "Nothing speakable", text="###", preset="demo", api_name="/speak")
    wav, _ = client.predict(text="Still here.", preset="demo", api_name="/speak")
    check_wav(wav)


# ---- the page and the model choice -------------------------------------------------------------
def test_page_labels_the_test_model_and_carries_the_model_card(served):
    import httpx

    config = httpx.get(served["url"] + "config", timeout=30).json()
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
    assert "TEST MODEL" in texts and "NOISE" in texts
    assert "CC BY-NC-SA 4.0" in texts and "2410.23320" in texts and "Consent" in texts
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert f"Transcript of the clip (required, up to {MAX_TRANSCRIPT_CHARS} characters)" in labels
    names = {d.get("api_name") for d in config["dependencies"] if d.get("api_visibility", "public") == "public"}
    assert {"clone", "tune_voice", "speak", "speak_stream", "voices"} <= names


def test_model_choice_offline_serves_the_embedded_model(monkeypatch, tmp_path):
    from lina_app import model_choice

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedded = str(model_choice.EMBEDDED_MODEL_DIR)
    loaded = load_model("auto")
    assert loaded.source == embedded and not loaded.is_test_model and "chosen automatically" in loaded.notice
    # The banner says what the embedded model is good for, and how to get the released one.
    from lina_app.presets import default_preset, list_presets
    from lina_app.texts import banner

    text = banner(loaded)
    assert "synthetic voices" in text and "real voices clone poorly" in text and "LINA_MODEL=released" in text
    # The shipped presets open on a neutral voice.
    first = default_preset(list_presets(app.DEFAULT_VOICES_DIR, loaded.tts.model.cfg))
    assert first is not None and first.style == "neutral" and first.id == "ava_neutral"
    loaded = load_model(str(tmp_path / "no-such-model"))
    assert loaded.source == embedded and "could not load" in loaded.notice and "fell back" in loaded.notice


def test_model_choice_offline_without_embedded_model_falls_back_to_the_tiny_model(monkeypatch, tmp_path):
    from lina_app import model_choice

    monkeypatch.setattr(model_choice, "EMBEDDED_MODEL_DIR", tmp_path / "not-shipped")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
    loaded = load_model("auto")
    assert loaded.source == "tiny-random" and loaded.is_test_model and "chosen automatically" in loaded.notice
    loaded = load_model(str(tmp_path / "no-such-model"))
    assert loaded.source == "tiny-random" and "could not load" in loaded.notice and "fell back" in loaded.notice


def test_released_model_unreachable_falls_back_with_a_notice(monkeypatch):
    from lina_app import model_choice

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model("released")
    assert loaded.source == str(model_choice.EMBEDDED_MODEL_DIR) and "could not load `released`: the Hub is not reachable" in loaded.notice


def test_automatic_choice(monkeypatch, tmp_path):
    from lina_app import model_choice

    monkeypatch.setattr(model_choice, "gpu_present", lambda: True)
    monkeypatch.setattr(model_choice, "hub_reachable", lambda timeout=0: True)
    assert model_choice.automatic_choice()[0] == "released"
    monkeypatch.setattr(model_choice, "hub_reachable", lambda timeout=0: False)
    monkeypatch.setattr(model_choice, "EMBEDDED_MODEL_DIR", tmp_path / "not-shipped")
    name, why = model_choice.automatic_choice()
    assert name == "tiny-random" and "the Hub is not reachable" in why
    # Once the embedded model is shipped, it is the offline default (and what "embedded" loads).
    embedded = tmp_path / "lina-mini"
    LinaTTS.from_pretrained("tiny-random").save_pretrained(str(embedded))
    monkeypatch.setattr(model_choice, "EMBEDDED_MODEL_DIR", embedded)
    assert model_choice.automatic_choice()[0] == str(embedded)
    loaded = load_model("embedded")
    assert loaded.source == str(embedded) and loaded.notice == "requested: the embedded model"


def test_model_choice_env_and_flag(monkeypatch):
    from lina_app.model_choice import requested_model

    monkeypatch.setenv("LINA_MODEL", "tiny-random")
    assert requested_model(None) == "tiny-random"
    assert requested_model("released") == "released"
    monkeypatch.delenv("LINA_MODEL")
    assert requested_model(None) == "auto"
    assert isinstance(load_model("tiny-random"), LoadedModel)


def test_shipped_examples_are_within_the_limits_and_transcribed():
    """The example clips ship with their words, inside the limits the page states."""
    from lina.audio import load_audio
    from lina_app.examples import clone_examples, preset_examples, tune_examples
    from lina_app.settings import BEST_CLONE_CLIP_SECONDS

    (clip, transcript, text), *_ = clone_examples()
    seconds = len(load_audio(clip)) / SAMPLE_RATE
    assert BEST_CLONE_CLIP_SECONDS[0] <= seconds <= BEST_CLONE_CLIP_SECONDS[1], seconds
    assert transcript.startswith("Every morning") and text
    [(clips, lines, steps, name)] = tune_examples()
    assert len(clips) == len(lines.splitlines()) == 4 and steps >= 1 and name
    assert all(len(load_audio(c)) / SAMPLE_RATE <= MAX_TUNING_CLIP_SECONDS for c in clips)
    assert [row[1] for row in preset_examples([])] == [""] * 4


def test_alignment_image_has_a_readable_strip_per_sentence(tmp_path):
    """Every sentence gets its strip (titled, both axes labelled), in more columns past a dozen; the image
    is mostly light with dark marks (the former map drew near-black)."""
    import matplotlib.image

    from lina_app.plots import STRIPS_PER_COLUMN, alignment_figure, alignment_png

    rng = np.random.default_rng(0)
    diagonal = [np.eye(12)[np.minimum(np.arange(40) // 3, 11)] * 0.6 + 0.4 * rng.random((40, 12)) / 12
                for _ in range(3)]
    fig = alignment_figure(diagonal, ["One two three.", "Four five.", "Six seven eight nine."])
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 3
    assert all(ax.get_xlabel() == "audio time (s)" and ax.get_ylabel() == "text token" for ax in shown)
    assert shown[1].get_title(loc="left") == "sentence 2: Four five."
    pixels = matplotlib.image.imread(alignment_png(diagonal, tmp_path / "a.png"))[..., :3].mean(axis=-1)
    assert pixels.mean() > 0.6 and (pixels < 0.3).mean() > 0.005, (pixels.mean(), (pixels < 0.3).mean())
    many = alignment_figure(diagonal * 7)
    assert len([ax for ax in many.axes if ax.get_visible()]) == 21 > STRIPS_PER_COLUMN


def test_stop_keeps_the_best_voice_so_far(served):
    """request_stop(key) ends that tuning at its next step with a voice (not a cancel); other keys are untouched."""
    engine = served["engine"]
    events = engine.tune([(str(served["inputs"] / "clip1.wav"), "Words of clip one.")], 500, 1, 0.05, 0, "s", "",
                         1, 0.0, key="visitor-a")
    first = next(events)
    assert isinstance(first, TuningStep) and first.step == 0 and np.isfinite(first.loss)
    assert not engine.request_stop("someone-else") and engine.request_stop("visitor-a")
    rest = list(events)
    assert isinstance(rest[-1], TuningDone) and all(isinstance(e, TuningStep) for e in rest[:-1])
    voice, losses = rest[-1].voice, rest[-1].losses
    assert isinstance(voice, Voice) and len(losses) < 500
    assert not engine.request_stop("visitor-a")  # gone once the tuning ended
