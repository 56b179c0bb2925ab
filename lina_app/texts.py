"""The words of the page: header, model banner, About / model card, consent note, help lines."""
from __future__ import annotations

from lina.pretrained import RELEASED_LICENSE
from lina_app.model_choice import LoadedModel, display_name
from lina_app.settings import MAX_TEXT_CHARS

TITLE = "Lina-Speech"
PAPER_URL = "https://arxiv.org/abs/2410.23320"
PAPER_TITLE = "Gated Linear Attention and Initial-State Tuning for Multi-Sample Prompting TTS"
CODE_URL = "https://github.com/theodorblackbird/lina-speech"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"

CONSENT = ("**Consent.** Only clone or build voices of people who agreed to it — your own voice, or a "
           "speaker who gave you permission. Do not use this Space to impersonate anyone, to deceive, or "
           "to produce content the speaker would not endorse.")

CLONE_HELP = ("Upload or record **3 to 10 seconds** of clear speech, and type **exactly what is said in it** "
              "(the transcript is required: the model continues the clip, so it must know its words). "
              f"Then type the text to speak (up to {MAX_TEXT_CHARS} characters; long text is split into "
              "sentences, all generated as one batch). Several candidates are generated in the same batch.")

TUNE_HELP = ("Initial-State Tuning learns a small voice file (the starting state of each layer; the model "
             "itself stays frozen) from **any number of clips**. Give each clip its transcript: either "
             "upload `clip.wav` with `clip.txt` (paired by name), or write **one line per clip** in the box, "
             "in upload order. The result is a `.safetensors` voice file: download it, and upload it later "
             "(here or in *Expressive voices*) to speak again without retuning.")

PRESETS_HELP = ("Pick a preset voice from `voices/`, or upload a voice file (`.safetensors`) built in the "
                "previous tab. *Stream* plays the first sentence while the rest is still being generated.")

NO_PRESETS = ("**No preset voices yet.** The `voices/` folder holds none: build a voice in "
              "*Build a voice from several clips* and upload its file here, or add `*.safetensors` voices "
              "(with an optional sample `name.wav` beside each) to `voices/`; see `voices/README.md`.")


def banner(loaded: LoadedModel) -> str:
    """Top-of-page line: which model speaks, loudly flagged when it is the random test model."""
    tts = loaded.tts
    line = f"**Model:** {tts.name} — licence {tts.license} — {loaded.notice}."
    if loaded.is_test_model:
        return ("## ⚠️ TEST MODEL — random weights, the audio is NOISE\n"
                "This instance runs the tiny random-weight model that lets the app and its tests run "
                "without the real weights. Every output is noise, not speech.\n\n" + line)
    return line


def about(loaded: LoadedModel) -> str:
    """The model card shown in the About tab."""
    tts = loaded.tts
    test_warning = ("\n> ⚠️ **This is the tiny random-weight TEST model: it produces noise.** Start the Space "
                    "with `LINA_MODEL=released` on a machine with a GPU and Hub access for real speech.\n"
                    if loaded.is_test_model else "")
    return f"""## About this Space
{test_warning}
| Model card | |
|---|---|
| Loaded model | **{tts.name}** (`{display_name(loaded.source)}`, id `{tts.model_id}`) |
| How it was chosen | {loaded.notice} |
| Description | {tts.description or "—"} |
| Licence of the loaded weights | {tts.license} |
| Device | `{tts.device}` |
| Output | {tts.sample_rate} Hz, 16-bit mono WAV |

**Lina-Speech** is a codec language model built on **gated linear attention (GLA)**: its recurrent
state has a fixed size, so long text and many sentences can be generated together in one batch. Voices
are cloned either by **prompt continuation** (a clip and its transcript are a prefix the model
continues) or by **Initial-State Tuning (IST)**, which learns the starting state of the recurrence
from several clips while the model stays frozen.

- Paper: [{PAPER_TITLE}]({PAPER_URL}) (arXiv 2410.23320).
- Original code: [{CODE_URL}]({CODE_URL}).
- The released Lina-Speech weights are licensed **{RELEASED_LICENSE}** ([licence]({LICENSE_URL})): attribution,
  **non-commercial** use only, share alike. Audio made with them inherits these terms.
- Audio codec: WavTokenizer (75 tokens per second at 24 kHz).

{CONSENT}
"""
