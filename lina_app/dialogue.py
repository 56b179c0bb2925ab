"""The dialogue tab and `/dialogue`: a script of `Name: text` lines, each name a voice (a preset, an
uploaded voice file or the clip), every line in one batch, one audio file, a per-line table, word
timestamps (JSON) and subtitles (SRT, WebVTT).

Voices: a line of the "Voices" box, `Name = target`, picks a speaker's voice, where target is a preset id
(`ava_happy`), the name of an uploaded voice file (`my-voice`, without `.safetensors`), `clip` (the
uploaded clip, made into a voice by a short Initial-State Tuning) or `none` (the untuned model). A speaker
not listed gets the preset of the same first name (`Ava` -> `ava_neutral`), else the next unused person's.
"""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from lina.dialogue import parse_script, speakers
from lina.voice import Voice
from lina_app.errors import user_errors
from lina_app.events import TuningDone
from lina_app.endpoints import ENDPOINTS
from lina_app.extras import (at_speed, glossary_note, request_glossary, speech_options, speed_note, subtitle_files,
                             subtitle_outputs, words_json)
from lina_app.fields import GAP, SAMPLING, SCRIPT, SEED, SPEED, TEMPERATURE, TOP_K
from lina_app.inputs import check_transcript, load_voice_file
from lina_app.presets import DEFAULT_STYLE, find_preset
from lina_app.tuning import default_steps

CLIP = "clip"
NONE = "none"
MAX_SPEAKERS = 8
TABLE_HEADERS = ["speaker", "start (s)", "end (s)", "text"]
_VOICE_LINE_RE = re.compile(r"^\s*(.+?)\s*[=:]\s*(.+?)\s*$")


def _person(preset) -> str:
    """The person of a preset id: 'ava_happy' -> 'ava'."""
    return preset.id.split("_")[0].lower()


class DialogueHandlers:
    """`/dialogue`, bound to the app's `Handlers` (model, presets, output folder)."""

    def __init__(self, h) -> None:
        self.h = h

    def _assign(self, names: list[str], voices_text: str, voice_files, clip, transcript) -> tuple[dict, list[str]]:
        """Speaker -> Voice (or None), and how each was chosen, for the info line."""
        chosen: dict[str, str] = {}
        for number, line in enumerate((voices_text or "").splitlines(), start=1):
            if not line.strip():
                continue
            match = _VOICE_LINE_RE.match(line)
            if match is None:
                raise gr.Error(f"Voices line {number} ({line.strip()[:40]!r}) is not understood: write Name = "
                               "preset id, voice file name, clip or none.", print_exception=False)
            chosen[match[1].lower()] = match[2]
        unknown = [n for n in chosen if n not in {s.lower() for s in names}]
        if unknown:
            raise gr.Error(f"The voices box names {', '.join(unknown)}, who never speaks in the script.",
                           print_exception=False)
        # Ready presets first: an automatic pick should not wait for a preset still being tuned.
        presets = sorted((p for p in self.h.presets() if p.compatible), key=lambda p: p.status not in ("", "ready"))
        files = {Path(str(f)).stem.lower(): str(f) for f in (voice_files or [])}
        used = {_person(p) for n in names for p in presets if chosen.get(n.lower()) in (p.id,)}
        voices, labels, clip_voice = {}, [], None
        for name in names:
            target = chosen.get(name.lower())
            if target is None:  # the same first name's neutral preset, else the next person nobody has
                same = [p for p in presets if _person(p) == name.split()[0].lower()]
                free = [p for p in presets if _person(p) not in used]
                pool = same or free or presets
                pick = next((p for p in pool if p.style.lower() == DEFAULT_STYLE), pool[0] if pool else None)
                target = pick.id if pick else NONE
            if target.lower() == NONE:
                voices[name], label = None, "the untuned model"
            elif target.lower() == CLIP:
                if clip_voice is None:
                    clip_voice = self._clip_voice(clip, transcript)
                voices[name], label = clip_voice, "the clip (tuned into a voice)"
            elif target.lower().removesuffix(".safetensors") in files:
                path = files[target.lower().removesuffix(".safetensors")]
                voices[name], label = load_voice_file(path, self.h.tts.model.cfg), Path(path).name
            else:
                found = find_preset(presets, target)
                if found is None:
                    raise gr.Error(f"{name}'s voice '{target}' is neither a preset, an uploaded voice file, "
                                   "'clip' nor 'none'.", print_exception=False)
                voices[name], label = self.h._voice(found.id, None)  # a preset tuned on demand included
                label = label.removeprefix("Preset: ")
                used.add(_person(found))
            labels.append(f"{name}: {label}")
        return voices, labels

    def _clip_voice(self, clip, transcript) -> Voice:
        """The uploaded clip as a voice: a short Initial-State Tuning (the clip's speaker for every row)."""
        if not clip:
            raise gr.Error("A speaker's voice is 'clip': please upload the clip (and its transcript).",
                           print_exception=False)
        transcript = check_transcript(transcript)
        steps = default_steps(self.h.tts.device.type, 20)
        voice = None
        for event in self.h.engine.tune([(str(clip), transcript)], steps, 1, 0.05, 0, "clip", "dialogue clip"):
            if isinstance(event, TuningDone):
                voice = event.voice
        if voice is None:
            raise gr.Error("The clip could not be made into a voice; please try again.", print_exception=False)
        return voice

    @user_errors
    def dialogue(self, script, voices="", voice_files=None, clip=None, transcript="", gap=GAP.default,
                 glossary="", speed=SPEED.default, top_k=TOP_K.default, temperature=TEMPERATURE.default,
                 seed=SEED.default, line_by_line=True):
        """-> (WAV file, per-line table, info line, [SRT, VTT] files, words JSON)."""
        script = SCRIPT.check(script)
        turns = parse_script(script)
        names = speakers(turns)
        if len(names) > MAX_SPEAKERS:
            raise gr.Error(f"The script has {len(names)} speakers; the limit is {MAX_SPEAKERS}.", print_exception=False)
        gap, speed = GAP.check(gap), SPEED.check(speed)
        top_k, temperature, seed = (field.check(value) for field, value in zip(SAMPLING, (top_k, temperature, seed)))
        words_glossary = request_glossary(glossary)
        chosen, labels = self._assign(names, voices, voice_files, clip, transcript)
        result = self.h.engine.dialogue(turns, chosen, gap, top_k, temperature, seed, words_glossary,
                                        bool(line_by_line))
        audio, words = at_speed(result.audio, result.words, speed)
        wav = self.h.out.wav(audio, result.sample_rate, "dialogue")
        table = [[line.speaker, round(line.start / speed, 2), round(line.end / speed, 2), line.text]
                 for line in result.lines]
        return wav, table, self._info(result, labels, words_glossary, script, speed), \
            subtitle_files(self.h.out, words, "dialogue"), words_json(words)

    def _info(self, result, labels, glossary, script, speed) -> str:
        parts = [f"Model: {self.h.tts.name}", f"{len(result.lines)} lines, {result.rows} sentences in one batch",
                 f"{result.duration / speed:.1f} s of audio", f"generated in {result.seconds:.2f} s"]
        if result.speedup is not None:
            parts.append(f"speed-up over line by line {result.speedup:.1f}x ({result.line_by_line_seconds:.2f} s "
                         "one line at a time)")
        marks = [tts_marks for tts_marks in (self.h.tts.plan(t).describe for _, t in parse_script(script)) if tts_marks]
        parts += [f"pauses: {'; '.join(marks)}"] if marks else []
        parts += [n for n in (glossary_note(glossary, script), speed_note(speed)) if n]
        line = " · ".join(parts) + "\nVoices: " + "; ".join(labels)
        unfinished = [str(i + 1) for i, line_ in enumerate(result.lines) if not line_.finished]
        if unfinished:
            line += f"\n⚠️ line {', '.join(unfinished)} reached the length limit before the end of speech."
        return line


def dialogue_tab(h, voice_file_types: list[str]) -> None:
    """The tab's components and its `/dialogue` event (inside a `gr.Tab`)."""
    d = DialogueHandlers(h)
    gr.Markdown("Write a script, **one line per turn** as `Name: text`. Every line is spoken by its speaker's "
                "voice, and **all lines are generated together as one batch** (each row starts from its own "
                "voice state), then joined in order. Pauses: `[pause 0.5]` or `<break time=\"500ms\"/>`. "
                "Subtitles (SRT, WebVTT) come from the model's own alignment of text and audio.")
    with gr.Row():
        with gr.Column():
            script = SCRIPT.widget("dialogue-script")
            voices = gr.Textbox("", label="Voices (optional): one `Name = preset id | voice file name | clip | none` "
                                "a line; others get the preset of their first name or a free one", lines=2,
                                placeholder="Ava = ava_happy\nLeo = my-voice", elem_id="dialogue-voices")
            with gr.Accordion("Voice files and a clip", open=False):
                voice_files = gr.File(label="Voice files (.safetensors)", file_count="multiple",
                                      file_types=voice_file_types, elem_id="dialogue-voice-files")
                clip = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Clip (for `Name = clip`)",
                                elem_id="dialogue-clip")
                transcript = gr.Textbox("", label="Transcript of the clip", elem_id="dialogue-transcript")
            gap = GAP.widget("dialogue-gap")
            glossary, speed = speech_options("dialogue")
            with gr.Row():
                top_k, temperature, seed = (field.widget(f"dialogue-{field.name.replace('_', '-')}", info=None)
                                            for field in SAMPLING)
            compare = gr.Checkbox(True, label="Also time the lines one by one (shows the batch's speed-up; "
                                  "doubles the work)", elem_id="dialogue-compare")
            button = gr.Button("Speak the dialogue", variant="primary", elem_id="dialogue-button")
        with gr.Column():
            audio = gr.Audio(label="Dialogue", type="filepath", interactive=False, buttons=["download"],
                             elem_id="dialogue-audio")
            info = gr.Textbox(label="Generation info", lines=3, interactive=False, elem_id="dialogue-info")
            table = gr.Dataframe(headers=TABLE_HEADERS, label="Lines", interactive=False, wrap=True,
                                 elem_id="dialogue-table")
            subtitles, words = subtitle_outputs("dialogue")
    ENDPOINTS["dialogue"].listen(button.click, d, dict(
        script=script, voices=voices, voice_files=voice_files, clip=clip, transcript=transcript, gap=gap,
        glossary=glossary, speed=speed, top_k=top_k, temperature=temperature, seed=seed, line_by_line=compare),
        [audio, table, info, subtitles, words])
