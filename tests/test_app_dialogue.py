"""`/dialogue` and `/speak`'s pauses, pronunciations and speed through the API (tiny random model, the
session's app of tests/test_app.py): one file whose lines match the table, subtitles that parse back to
the words JSON, the marks echoed in the info line, plain refusals."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_app import check_wav, client, expect_error, served  # noqa: F401  isort: skip  (first: skips without gradio)
from gradio_client import handle_file  # isort: skip

from lina.subtitles import parse_srt, parse_vtt

SCRIPT = "Ava: Good morning, everyone.\nLeo: Morning! Who made the coffee?\nMia: I did, an hour ago."


def test_dialogue_gives_one_file_a_table_and_subtitles(client):
    wav, table, info, subtitles, words = client.predict(script=SCRIPT, voices="Leo = none", gap=0.5,
                                                        api_name="/dialogue")
    seconds = check_wav(wav)
    rows = table["data"]
    assert [r[0] for r in rows] == ["Ava", "Leo", "Mia"] and rows[0][1] == 0.0
    assert rows[-1][2] == pytest.approx(seconds, abs=0.02)
    for before, after in zip(rows, rows[1:]):
        assert after[1] - before[2] == pytest.approx(0.5, abs=0.02)
    assert "3 lines, 3 sentences in one batch" in info and "speed-up over line by line" in info, info
    assert "Leo: the untuned model" in info and "Ava: Demo (calm)" in info, info
    assert [w["word"] for w in words] == SCRIPT.replace("Ava: ", "").replace("Leo: ", "").replace("Mia: ", "").split()
    srt, vtt = sorted(subtitles, key=lambda p: Path(p).suffix)  # .srt, .vtt
    for cues in (parse_srt(Path(srt).read_text()), parse_vtt(Path(vtt).read_text())):
        assert " ".join(c.text for c in cues).split() == [w["word"] for w in words]
        assert [c.speaker for c in cues][0] == "Ava" and cues[-1].speaker == "Mia"


def test_dialogue_refusals_are_sentences(client):
    expect_error(client, "names no speaker", script="Just text.", api_name="/dialogue")
    expect_error(client, "never speaks in the script", script=SCRIPT, voices="Zed = none", api_name="/dialogue")
    expect_error(client, "neither a preset", script=SCRIPT, voices="Ava = nobody_here", api_name="/dialogue")
    expect_error(client, "upload the clip", script=SCRIPT, voices="Mia = clip", api_name="/dialogue")
    expect_error(client, "glossary line 1", script=SCRIPT, glossary="no equals sign", api_name="/dialogue")


def test_dialogue_takes_an_uploaded_voice_file(client, served):
    _, _, info, _, _ = client.predict(script=SCRIPT, voices="Mia = demo", line_by_line=False,
                                      voice_files=[handle_file(str(served["voices"] / "demo.safetensors"))],
                                      api_name="/dialogue")
    assert "Mia: demo.safetensors" in info and "speed-up" not in info, info


def test_speak_echoes_pauses_glossary_and_speed(client):
    wav, info = client.predict(text="Hello there, my friend. [pause 0.7]", preset="", top_k=1,
                               glossary="friend = frend", speed=1.25, api_name="/speak")
    assert "pauses: 1 pause (0.7 s)" in info and "glossary: friend → frend" in info and "speed 1.25x" in info, info
    assert "left out" not in info  # the mark is not a character the model failed to read
    expect_error(client, "pause mark", text="Hi [pause soon] there.", preset="", api_name="/speak")
    expect_error(client, "maximum value 1.5", text="Hi there.", preset="", speed=3, api_name="/speak")  # Gradio's check


def test_a_clip_becomes_a_speaker(client, served):
    _, table, info, _, words = client.predict(script="Ava: Hello there.\nMia: Hi, I am the clip.", voices="Mia = clip",
                                              clip=handle_file(str(served["inputs"] / "clip1.wav")),
                                              transcript="Words spoken in clip one.", line_by_line=False,
                                              api_name="/dialogue")
    assert "Mia: the clip (tuned into a voice)" in info and [r[0] for r in table["data"]] == ["Ava", "Mia"], info
    assert [w["word"] for w in words][-3:] == ["am", "the", "clip."]


def test_stream_takes_the_glossary_too(client):
    _, info = client.predict(text="Hello my friend. [pause 0.3] Bye.", preset="", glossary="friend = frend",
                             api_name="/speak_stream")
    assert "glossary: friend → frend" in info and "streamed" in info, info
