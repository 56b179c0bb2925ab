"""The words of the page: header, model banner, About / model card, consent note, help lines."""
from __future__ import annotations

from lina.pretrained import RELEASED, RELEASED_LICENSE, RELEASED_REPO
from lina_app.model_choice import LoadedModel, display_name
from lina_app.settings import (BEST_CLONE_CLIP_SECONDS, EMBEDDED_MODEL_DIR, MAX_CLONE_CLIP_SECONDS, MAX_TEXT_CHARS,
                               MAX_TRANSCRIPT_CHARS, MAX_TUNING_CLIP_SECONDS, MAX_TUNING_CLIPS, MAX_UPLOAD_SECONDS)

TITLE = "Lina-Speech"
PAPER_URL = "https://arxiv.org/abs/2410.23320"
PAPER_TITLE = "Gated Linear Attention and Initial-State Tuning for Multi-Sample Prompting TTS"
CODE_URL = "https://github.com/theodorblackbird/lina-speech"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"

CONSENT = ("**Consent.** Only clone or build voices of people who agreed to it — your own voice, or a "
           "speaker who gave you permission. Do not use this Space to impersonate anyone, to deceive, or "
           "to produce content the speaker would not endorse.")

CLONE_HELP = (f"Upload or record **{BEST_CLONE_CLIP_SECONDS[0]} to {BEST_CLONE_CLIP_SECONDS[1]} seconds** of clear "
              f"speech (at most {MAX_CLONE_CLIP_SECONDS:g} s once silence is trimmed; files up to "
              f"{MAX_UPLOAD_SECONDS:g} s are read), and type **exactly what is said in it** (the transcript is "
              f"required, up to {MAX_TRANSCRIPT_CHARS} characters: the model continues the clip, so it must know "
              f"its words). Then type the text to speak (up to {MAX_TEXT_CHARS} characters; long text is split "
              "into sentences, all generated as one batch). Several candidates are generated in the same batch.")

TUNE_HELP = ("Initial-State Tuning learns a small voice file (the starting state of each layer; the model "
             f"itself stays frozen) from **up to {MAX_TUNING_CLIPS} clips of at most {MAX_TUNING_CLIP_SECONDS:g} s "
             "each** (silence trimmed). Give each clip its transcript: either upload `clip.wav` with `clip.txt` "
             "(paired by name), or write **one line per clip** in the box, in upload order (up to "
             f"{MAX_TRANSCRIPT_CHARS} characters a line). The result is a `.safetensors` voice file: download it, "
             "and upload it later (here or in *Expressive voices*) to speak again without retuning.")

AUTO_TRANSCRIPT = (" **Left empty, the transcript is filled in by speech recognition (Whisper)** when the clip is "
                   "uploaded or the button pressed: check it and correct it if needed.")

PRESETS_HELP = ("Pick a preset voice from `voices/`, or upload a voice file (`.safetensors`) built in the "
                "previous tab. *Stream* plays the first sentence while the rest is still being generated.")

PAUSES_HELP = ("Pauses: write `[pause 0.5]` (seconds) or `<break time=\"500ms\"/>` in the text, where a silence "
               "should be. Pronunciations: a word and how to say it, e.g. `Nguyen = win`, applied before the "
               "text is read. Speed changes the finished audio (time-stretched, pitch kept), not the model.")

NO_PRESETS = ("**No preset voices yet.** The voices folder has none this model can use: build a voice in "
              "*Build a voice from several clips* and upload its file here, or add presets (clips and "
              "transcripts in `voices/presets.json`, tuned for the loaded model by the app) or `*.safetensors` "
              "voices to `voices/`; see `voices/README.md`.")


HOW_TO_GET_RELEASED = (f"For real speech, start the app with the released model (`{RELEASED_REPO}`, fetched "
                       "from the Hugging Face Hub, non-commercial licence): `LINA_MODEL=released python3 app.py`, "
                       "best on a machine with a GPU.")

EMBEDDED_PURPOSE = ("**What this model is good for:** it is *lina-mini*, a small model (12 M parameters) embedded "
                    "in the repository so the Space runs offline, trained from scratch on **synthetic voices** "
                    "(offline speech engines reading public-domain English). It reads English text with the preset "
                    "voices and shows how the Space works; the audio sounds robotic, and **real voices clone "
                    "poorly** (they sound like none of its training voices). " + HOW_TO_GET_RELEASED)

RELEASED_PURPOSE = ("**What this model is good for:** the released Lina-Speech model, trained on real English "
                    "speech: natural reading and voice cloning from a clip or several. Non-commercial use only.")


def purpose(loaded: LoadedModel) -> str:
    """What the loaded model is good for, in a sentence or two ('' for a model we know nothing about)."""
    if loaded.is_test_model:
        return ""
    if loaded.source == str(EMBEDDED_MODEL_DIR) or loaded.tts.model_id.startswith("lina-mini"):
        return EMBEDDED_PURPOSE
    if loaded.source == RELEASED:
        return RELEASED_PURPOSE
    return ""


def banner(loaded: LoadedModel) -> str:
    """Top-of-page line: which model speaks and what it is good for; the random test model loudly flagged."""
    tts = loaded.tts
    line = f"**Model:** {tts.name} — licence {tts.license} — {loaded.notice}."
    if loaded.is_test_model:
        return ("## ⚠️ TEST MODEL — random weights, the audio is NOISE\n"
                "This instance runs the tiny random-weight model that lets the app and its tests run "
                "without the real weights. Every output is noise, not speech.\n\n" + line)
    good_for = purpose(loaded)
    return line + ("\n\n" + good_for if good_for else "")


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
