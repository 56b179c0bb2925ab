"""The README's API snippets, run as written against the app started by the README's own command.

`python3 app.py` in its own process, offline (so it serves the embedded model, as a fresh clone without
the Hub does) with the shipped `voices/` folder; only `--host`/`--port` are added, and the snippets'
URL is replaced by that port. The snippets run in a folder where `assets/` is the repository's, as
from the repository root, so what they write (`my-voice.safetensors`) stays out of the checkout.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

# First: test_app skips the whole module, with the reason, where gradio is not installed.
from test_app import (_SNIPPETS, SNIPPET_CLONE, SNIPPET_MCP, SNIPPET_SPEAK, SNIPPET_TRANSCRIBE, SNIPPET_TUNE_VOICE, SNIPPET_VOICES,  # isort: skip
                      app_process, check_wav, run_snippet)
from gradio_client import Client  # isort: skip

from lina.voice import Voice
from lina_app.settings import DEFAULT_VOICES_DIR, EMBEDDED_MODEL_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 180.0     # torch + gradio imports and the embedded model, on a busy 2-core machine
SHIPPED_VOICES = sorted(p.stem for p in DEFAULT_VOICES_DIR.glob("*.safetensors"))

if not (EMBEDDED_MODEL_DIR / "config.json").is_file():
    pytest.skip("the embedded model (assets/lina-mini) is not in this checkout", allow_module_level=True)


@pytest.fixture(scope="module")
def readme_app(tmp_path_factory):
    """-> (url, folder to run the snippets in): `python3 app.py` as the README says, its log beside."""
    root = tmp_path_factory.mktemp("readme")
    (root / "assets").symlink_to(REPO_ROOT / "assets")
    # `--mcp` as the README's MCP paragraph says (the other snippets do not mind it).
    # As a fresh install: the offline recognizer on (tests/test_app.py turns it off for its own app).
    with app_process(["--mcp"], root / "server.log", STARTUP_TIMEOUT, poll=0.5, env={"LINA_ASR_MODEL": "auto"}) as (_, url):
        yield url, root


def test_every_readme_snippet_runs_against_the_shipped_app(readme_app, capsys):
    url, folder = readme_app
    ns = run_snippet(SNIPPET_VOICES, url, folder)
    ids = [v["id"] for v in ns["voices"]]
    assert ids == SHIPPED_VOICES and all(v["compatible"] for v in ns["voices"])

    ns = run_snippet(SNIPPET_CLONE, url, folder)
    assert len(ns["wavs"]) == 2
    for wav in ns["wavs"]:
        check_wav(wav, min_seconds=0.5)
    assert "Model: lina-mini" in ns["info"] and "real-time factor" in ns["info"]
    assert Path(ns["alignment_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ns = run_snippet(SNIPPET_TRANSCRIBE, url, folder)
    assert ns["words"].startswith("Every morning I walk along the river"), ns["words"]

    ns = run_snippet(SNIPPET_MCP, url, folder)
    assert {"speak", "clone", "list_voices"} <= {tool.name for tool in ns["tools"].tools}
    assert not ns["result"].isError and "Preset: Ava" in ns["result"].content[0].text

    ns = run_snippet(SNIPPET_TUNE_VOICE, url, folder)
    check_wav(ns["preview_wav"], min_seconds=0.5)
    assert "tuned from 2 clip(s) in 20 steps" in ns["status"], ns["status"]
    voice = Voice.load(folder / "my-voice.safetensors")
    assert voice.name == "my voice" and voice.model_id.startswith("lina-mini")

    ns = run_snippet(SNIPPET_SPEAK, url, folder)  # a shipped preset, then the voice file just tuned
    check_wav(ns["wav"], min_seconds=0.5)
    assert "Voice file: my voice" in ns["info"]
    wav, info = Client(url, verbose=False).predict(text="Good morning. Here is the news.", preset="ava_neutral",
                                                   api_name="/speak")
    check_wav(wav, min_seconds=0.5)
    assert "Preset: Ava — neutral ·" in info, info
    assert "ava_neutral" in SNIPPET_SPEAK

    ns = run_snippet(_SNIPPETS["openai"], url, folder)   # the OpenAI client, streamed to a file
    assert soundfile.info(str(folder / "news.mp3")).duration > 0.5
    ns = run_snippet(_SNIPPETS["detect"], url, folder)
    assert "'watermarked': True" in capsys.readouterr().out

def test_dialogue_and_subtitle_snippets(readme_app):
    """The README's dialogue and subtitle examples, as written, against the shipped app and presets."""
    from lina.subtitles import parse_srt, parse_vtt
    from test_app import _SNIPPETS

    url, folder = readme_app
    ns = run_snippet(_SNIPPETS["dialogue"], url, folder)
    check_wav(ns["wav"], min_seconds=2.0)
    assert [row[0] for row in ns["lines"]["data"]] == ["Ava", "Leo", "Mia"]
    assert "3 lines, 4 sentences in one batch" in ns["info"] and "Mia: Zoe — happy" in ns["info"], ns["info"]
    ns = run_snippet(_SNIPPETS["subtitles"], url, folder)
    assert [w["word"] for w in ns["words"]] == "In 1990, Nguyen read 3 books. Then he wrote one!".split()
    assert "glossary: Nguyen → win" in ns["info"] and "speed 1.25x" in ns["info"], ns["info"]
    for cues in (parse_srt((folder / "speech.srt").read_text()), parse_vtt((folder / "speech.vtt").read_text())):
        assert " ".join(c.text for c in cues).split() == [w["word"] for w in ns["words"]]
