"""Voices on the Hub, against a local stand-in of the Hub API (tests/hub_standin.py): the round trip keeps the
tensors, the metadata and the card; a voice for another model, a corrupt file, a pickle posing as a voice,
a missing repo are refused in plain words, and nothing is executed. The app's /voice_from_hub loads one.
"""
from __future__ import annotations

import pickle

import pytest
import torch

import hub_standin
from test_app import check_wav, expect_error, served  # noqa: F401  (fixture)
from lina.voice import Voice, VoiceError
from lina.voice_hub import CARD_FILENAME, SOURCE_CLIPS_KEY, VOICE_FILENAME
from test_voice import CFG

CONSENT = "Ava recorded these clips herself and agreed to share this voice."
CLIPS = [{"name": "ava_1.wav", "seconds": 4.25}, {"name": "ava_2.wav", "seconds": 6.5}]


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The stand-in, with huggingface_hub pointed at it (online, an empty cache) for this test only."""
    from huggingface_hub import constants
    standin, server = hub_standin.start()
    monkeypatch.setattr(constants, "ENDPOINT", standin.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", standin.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_TOKEN", "hf_standin")
    yield standin
    server.shutdown()


def _voice(model_id="tiny-test"):
    g = torch.Generator().manual_seed(0)
    return Voice(torch.randn(4, 2, 2, 16, generator=g), torch.randn(4, 2, 2, 32, generator=g), scale=0.05,
                 name="Ava", description="Warm and calm.", style="calm", model_id=model_id,
                 extra={SOURCE_CLIPS_KEY: CLIPS})


def test_round_trip_keeps_the_voice_and_writes_its_card(hub):
    voice = _voice()
    url = voice.push_to_hub("alice/ava", consent=CONSENT)
    assert url.startswith(hub.url + "/alice/ava/commit/")
    assert sorted(hub.repos["alice/ava"]) == [CARD_FILENAME, VOICE_FILENAME]
    back = Voice.from_hub("alice/ava", model=CFG)
    assert torch.equal(back.k, voice.k) and torch.equal(back.v, voice.v)
    assert (back.scale, back.name, back.style, back.model_id, back.extra) == (0.05, "Ava", "calm", "tiny-test",
                                                                               voice.extra)
    card = hub.repos["alice/ava"][CARD_FILENAME].decode()
    assert 'lina_model_id: "tiny-test"' in card and CONSENT in card
    assert "2 clip(s), 10.8 s in all" in card and "ava_1.wav: 4.2 s" in card
    voice.push_to_hub("alice/ava", consent=CONSENT)  # again, into the existing repo: fine


def test_sharing_needs_a_consent_statement(hub):
    with pytest.raises(VoiceError, match="consent statement is required"):
        _voice().push_to_hub("alice/ava", consent=" ")
    assert "alice/ava" not in hub.repos


def test_a_voice_for_another_model_is_refused_in_plain_words(hub):
    _voice(model_id="another-model").push_to_hub("bob/other", consent=CONSENT)
    with pytest.raises(VoiceError) as caught:
        Voice.from_hub("bob/other", model=CFG)
    assert str(caught.value) == ("The voice in 'bob/other' cannot speak with the loaded model: voice was tuned for "
                                 "model 'another-model', the loaded model is 'tiny-test'.")


class _Payload:
    """Writes a marker file if it is ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("content", ["garbage", "pickle", "truncated"])
def test_a_corrupt_file_is_refused_and_nothing_runs(hub, tmp_path, content):
    marker = tmp_path / "executed"
    good = tmp_path / "good.safetensors"
    _voice().save(good)
    data = {"garbage": b"\x00\xff not a voice at all" * 50,
            "pickle": pickle.dumps(_Payload(marker)),
            "truncated": good.read_bytes()[:-100]}[content]
    hub.put("eve/bad", VOICE_FILENAME, data)
    with pytest.raises(VoiceError, match="This is not a voice file"):
        Voice.from_hub("eve/bad", model=CFG)
    assert not marker.exists()


@pytest.mark.parametrize("repo_id, message", [
    ("nobody/nothing", "There is no voice repository 'nobody/nothing'"),
    ("not a repo id!", "is not a Hub repository id"),
    ("", "Please give the Hub repository of the voice"),
])
def test_missing_or_malformed_repos_are_refused(hub, repo_id, message):
    with pytest.raises(VoiceError, match=message):
        Voice.from_hub(repo_id)


def test_a_repo_without_a_voice_file(hub):
    hub.put("carol/notes", CARD_FILENAME, b"# just a card\n")
    with pytest.raises(VoiceError, match="has no voice.safetensors"):
        Voice.from_hub("carol/notes")


def test_the_app_loads_a_voice_from_the_hub_and_speaks_with_it(hub, served):
    from gradio_client import handle_file

    client = served["client"]
    tts = served["tts"]
    voice = Voice.load(next(served["voices"].glob("*.safetensors")))
    voice.check(tts.model.cfg)
    voice.push_to_hub("alice/app-voice", consent=CONSENT)
    path, status = client.predict(repo_id="alice/app-voice", api_name="/voice_from_hub")
    assert "from the Hub repo alice/app-voice" in status
    wav, info = client.predict(text="Hello there.", preset="", voice_file=handle_file(path), api_name="/speak")
    check_wav(wav)
    _voice(model_id="another-model").push_to_hub("bob/other", consent=CONSENT)
    text = expect_error(client, "cannot speak with the loaded model", repo_id="bob/other", api_name="/voice_from_hub")
    assert "VoiceError" not in text


def test_the_readme_snippet_runs_as_written(hub):
    from test_app import REPO_ROOT, _SNIPPETS, run_snippet
    ns = run_snippet(_SNIPPETS["hub"], "unused", REPO_ROOT)
    assert ns["voice"].model_id and "your-name/ava-neutral" in hub.repos
