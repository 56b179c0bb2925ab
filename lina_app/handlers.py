"""The event handlers behind the UI and the API: check inputs, call the engine, write the outputs.

The endpoints' methods are named in `lina_app.endpoints` (their parameters are the table's inputs, in order;
their returns the endpoint's outputs), and check their numbers with the table's fields.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
import numpy as np
import soundfile

from lina.audio import to_int16
from lina.marks import strip_marks
from lina.text import normalize_text
from lina.voice import Voice
from lina.voice_hub import SOURCE_CLIPS_KEY
from lina.watermark import apply_watermark
from lina_app import transcriber
from lina_app.clips import pair_clips, recognized_lines
from lina_app.engine import Engine
from lina_app.errors import user_errors
from lina_app.events import StreamAudio, TuningDone
from lina_app.extras import (LastWords, at_speed, glossary_note, request_glossary, speed_note,
                             subtitle_files, words_json)
from lina_app.fields import CANDIDATES, LEARNING_RATE, RANK, SEED, SPEED, STEPS, TEMPERATURE, TEXT, TOP_K
from lina_app.inputs import (cards_text, check_clip, check_clips_audio, check_text, check_transcript,
                             load_voice_file, reference_card, voice_name)
from lina_app.model_choice import LoadedModel
from lina_app.outputs import OutputDir, info_line, slug
from lina_app.plots import alignment_png, loss_frame
from lina_app.preset_tuner import PresetNotReady, PresetTuner, on_zero_gpu
from lina_app.presets import Preset, find_preset, list_presets, load_preset, manifest_presets, state_files
from lina_app.settings import DEFAULT_PREVIEW_TEXT, DEFAULT_SEED, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, MAX_CANDIDATES
from lina_app.tuning import plan as tuning_plan
from lina_app.tuning import time_left

# The live loss plot is redrawn at most this often (seconds): often enough to watch, cheap to send.
LOSS_PLOT_INTERVAL_SECONDS = 0.5
DEFAULT_VOICE_NAME = "my voice"


def _session(request) -> str:
    """The visitor's session id ("" for calls without one): a stop button reaches only its own tuning."""
    return str(getattr(request, "session_hash", "") or "")


def _blank(text) -> bool:
    return not isinstance(text, str) or not text.strip()


def _sampling(top_k, temperature, seed) -> tuple[int, float, int]:
    return TOP_K.check(top_k), TEMPERATURE.check(temperature), SEED.check(seed)


class Handlers:
    """Endpoints bound to the loaded model (through `engine`, the model's calls: by default one of its own), the
    presets folder and an output folder."""

    def __init__(self, loaded: LoadedModel, voices_dir: str | Path | None, outputs: OutputDir | None = None,
                 engine: Engine | None = None):
        self.loaded = loaded
        self.tts = loaded.tts
        self.engine = engine or Engine(self.tts)
        self.voices_dir = Path(voices_dir) if voices_dir else None
        self.out = outputs or OutputDir()
        self.last_words = LastWords()
        self._samples: dict[str, str] = {}   # shipped preset sample -> its marked copy in `out`
        # A preset of the manifest without a state for this model is tuned through the engine: on ZeroGPU in
        # the request's GPU slot, where no step callback can cross to the GPU worker (so no live progress).
        zero_gpu = on_zero_gpu()
        self.tuner = PresetTuner(self.tts, self.voices_dir, tune_fn=lambda pairs, settings, spec, on_step:
                                 self.engine.tune_preset(pairs, settings, spec, None if zero_gpu else on_step))

    def _dropped(self, text: str) -> tuple[str, ...]:
        """Characters of `text` the model's front end cannot read (emoji, other scripts): for the info line."""
        tokenizer = self.tts.tokenizer
        with contextlib.suppress(ValueError):  # a malformed pause mark: refused with its own message later
            text = strip_marks(text)
        return normalize_text(text, tokenizer.alphabet, lowercase=tokenizer.lowercases, warn=False).dropped

    # ---- tab 1: prompt continuation ------------------------------------------------------------
    @user_errors
    def clone(self, text, prompt_audio, transcript, top_k=TOP_K.default, temperature=TEMPERATURE.default,
              seed=SEED.default, candidates=CANDIDATES.default):
        """-> (WAV file per candidate, info line, alignment plot PNG)."""
        text = TEXT.check(text)
        if _blank(transcript) and transcriber.available():  # an empty transcript: Whisper's words are used
            transcript = transcriber.transcribe(check_clip(prompt_audio))
        transcript = check_transcript(transcript)
        prompt_audio = check_clip(prompt_audio)
        top_k, temperature, seed = _sampling(top_k, temperature, seed)
        candidates = CANDIDATES.check(candidates)
        card = cards_text([reference_card(prompt_audio)])
        result = self.engine.clone(text, prompt_audio, transcript, top_k, temperature, seed, candidates)
        files = [self.out.wav(audio, result.sample_rate, f"clone-{i + 1}") for i, audio in enumerate(result.audio)]
        plot = alignment_png(result.alignments if result.alignments is not None else result.alignment,
                             self.out.new_path("alignment.png"), self.tts.sentences(text))
        return files, info_line(self.tts.name, result, dropped=self._dropped(text)) + "\n" + card, plot

    @staticmethod
    def fill_transcript(prompt_audio, transcript):
        """UI, before `/clone` and on upload: an empty transcript box gets the clip's recognized words, shown
        for correction; a typed one, or no recognizer here, leaves the box as it is (`/clone` then decides)."""
        if not prompt_audio or not _blank(transcript) or not transcriber.available():
            return gr.skip()
        return transcriber.transcribe(prompt_audio)

    @staticmethod
    def transcribe(clip: FileData) -> str:
        """`/transcribe`: the words spoken in an audio file (str path or Gradio file data), as Whisper hears them."""
        path = clip.get("path") if isinstance(clip, dict) else clip
        return transcriber.transcribe(check_clip(path))

    @staticmethod
    def fill_tune_transcripts(clips, transcripts):
        """UI, before `/tune_voice`: an empty transcript box gets one recognized line per clip that has no
        clip.txt, shown for correction; otherwise the box is left as it is."""
        if not clips or not _blank(transcripts) or not transcriber.available():
            return gr.skip()
        lines = recognized_lines(clips)
        return "\n".join(lines) if lines else gr.skip()

    @staticmethod
    def show_candidates(files):
        """One player per candidate, side by side; unused players hidden (UI only)."""
        files = list(files or [])
        return [gr.update(value=files[i], visible=True) if i < len(files) else gr.update(value=None, visible=False)
                for i in range(MAX_CANDIDATES)]

    # ---- tab 2: Initial-State Tuning -----------------------------------------------------------
    @user_errors
    def tune_voice(self, clips, transcripts="", steps=STEPS.default, rank=RANK.default,
                   learning_rate=LEARNING_RATE.default, name=DEFAULT_VOICE_NAME, preview_text=DEFAULT_PREVIEW_TEXT,
                   request: gr.Request = None,
                   progress=gr.Progress()):  # noqa: B008 - Gradio's way of asking for a progress tracker
        """Yields live (voice file, preview WAV, loss table, status); the last yield is the result."""
        pairs = pair_clips(clips, transcripts, transcriber.transcribe if transcriber.available() else None)
        steps, rank, learning_rate = STEPS.check(steps), RANK.check(rank), LEARNING_RATE.check(learning_rate)
        name = voice_name(name, DEFAULT_VOICE_NAME)
        preview = check_text(preview_text if (preview_text or "").strip() else DEFAULT_PREVIEW_TEXT,
                             "preview sentence")
        cleaned = check_clips_audio(pairs)
        seconds = [report.kept_seconds for report in cleaned]
        how = tuning_plan(seconds, steps, self.tts.device.type)
        if how.too_long:  # a hard cap, checked before any work
            raise gr.Error(f"This tuning would take {how.describe(steps)}; the limit here is "
                           f"{how.limit_seconds / 60:g} min. Please use fewer steps, or fewer or shorter clips.",
                           print_exception=False)
        description = f"tuned from {len(pairs)} clip(s), {steps} steps, rank {rank}, on {self.tts.name}"
        losses: list[float] = []
        voice = None
        last_plot = 0.0
        progress(0, desc="Encoding the clips")
        yield gr.skip(), gr.skip(), gr.skip(), f"Starting: {how.describe(steps)}."
        started = time.monotonic()
        # Gradio closes this generator when the visitor leaves or cancels; `closing` passes that on to the
        # engine at once (not whenever the garbage collector gets to it), which stops the tuning thread.
        key = _session(request)
        with contextlib.closing(self.engine.tune(pairs, steps, rank, learning_rate, 0, name, description,
                                            how.batch_size, how.crop_seconds, key)) as events:
            for event in events:
                if isinstance(event, TuningDone):
                    voice, losses = event.voice, event.losses
                    break
                step, loss = event.step, event.loss
                losses.append(loss)
                progress((step + 1, steps), desc="Tuning the voice", unit="steps")
                if time.monotonic() - last_plot > LOSS_PLOT_INTERVAL_SECONDS:
                    last_plot = time.monotonic()
                    left = time_left(time.monotonic() - started, step + 1, steps)
                    yield (gr.skip(), gr.skip(), loss_frame(losses),
                           f"Tuning: step {step + 1}/{steps}, loss {loss:.3f}, {left}")
        if voice is None:
            raise gr.Error("Tuning stopped before it finished.", print_exception=False)
        # The voice card of a voice shared on the Hub lists them (lina/voice_hub.py).
        voice.extra[SOURCE_CLIPS_KEY] = [{"name": Path(path).name, "seconds": round(length, 2)}
                                         for (path, _), length in zip(pairs, seconds)]
        voice_path = self.out.new_path(f"{slug(name)}.safetensors")
        voice.save(voice_path)
        progress(1.0, desc="Speaking the preview")
        result = self.engine.synthesize(preview, voice, DEFAULT_TOP_K, DEFAULT_TEMPERATURE, DEFAULT_SEED)
        wav = self.out.wav(result.audio[0], result.sample_rate, f"{slug(name)}-preview")
        if len(losses) < steps:  # stopped by the visitor: the voice is the best state so far
            best = min(range(len(losses)), key=losses.__getitem__)
            done = (f"stopped at step {len(losses)} of {steps}, kept the best state (step {best + 1}, "
                    f"loss {losses[best]:.3f})")
        else:
            done = f"in {steps} steps"
        summary = (f"Voice '{name}' tuned from {len(pairs)} clip(s) {done} (rank {rank}); "
                   f"loss {losses[0]:.3f} → {losses[-1]:.3f}.\n" + info_line(self.tts.name, result) + "\n"
                   + cards_text(cleaned))
        yield str(voice_path), wav, loss_frame(losses), summary

    def stop_tuning(self, request: gr.Request = None) -> str:
        """The stop button: the visitor's tuning ends at its next step, keeping its best state so far."""
        if self.engine.request_stop(_session(request)):
            return "Stopping at the next step; the best state so far is kept…"
        return gr.skip()

    # ---- tab 3 (and tab 2's voice file): speaking with a tuned voice ---------------------------
    def presets(self) -> list[Preset]:
        """The manifest's presets (with their status), then the folder's other voice files, re-read at each
        call so that voices added to the folder are found without a restart."""
        return manifest_presets(self.tuner) + list_presets(self.voices_dir, self.tts.model.cfg,
                                                           state_files(self.tuner))

    def _voice(self, preset, voice_file) -> tuple[Voice | None, str]:
        """An uploaded voice file wins over a preset; neither means the untuned model."""
        if voice_file:
            voice = load_voice_file(voice_file, self.tts.model.cfg)
            return voice, f"Voice file: {voice.name or Path(voice_file).name}"
        if preset and str(preset).strip():
            presets = self.presets()
            found = find_preset(presets, str(preset))
            if found is None:
                known = ", ".join(p.id for p in presets if p.compatible) or "none"
                raise gr.Error(f"Unknown preset voice '{preset}'. Available: {known}.", print_exception=False)
            if found.managed:
                try:
                    return self.tuner.voice(found.id), f"Preset: {found.label}"
                except PresetNotReady as error:
                    raise gr.Error(str(error), print_exception=False) from None
            return load_preset(found), f"Preset: {found.label}"
        return None, "No voice (the untuned model)"

    @user_errors
    def speak(self, text, preset="", voice_file=None, top_k=TOP_K.default, temperature=TEMPERATURE.default,
              seed=SEED.default, glossary="", speed=SPEED.default, request: gr.Request = None):
        """-> (WAV file, info line). The word timestamps are kept for the visitor's subtitle files
        (`speech_subtitles`)."""
        text = TEXT.check(text)
        top_k, temperature, seed = _sampling(top_k, temperature, seed)
        speed = SPEED.check(speed)
        respell = request_glossary(glossary)
        voice, label = self._voice(preset, voice_file)
        result = self.engine.synthesize(text, voice, top_k, temperature, seed, glossary=respell)
        audio, words = at_speed(result.audio[0], result.words[0], speed)
        self.last_words.put(_session(request), words)
        extra = " · ".join(n for n in (label, result.marks and f"pauses: {result.marks}", glossary_note(respell, text),
                                       speed_note(speed, len(audio) / result.sample_rate)) if n)
        return (self.out.wav(audio, result.sample_rate, "speech"),
                info_line(self.tts.name, result, extra, self._dropped(text)))

    def speech_subtitles(self, request: gr.Request = None):
        """UI, after Speak: the visitor's last speech as SRT + WebVTT files and its words (JSON)."""
        words = self.last_words.get(_session(request))
        return (subtitle_files(self.out, words, "speech") if words else None), words_json(words or [])

    def speak_with_file(self, text, voice_file):
        """Tab 2: the voice file (just tuned, or uploaded) speaks the text, no retuning."""
        if not voice_file:
            raise gr.Error("Please tune a voice first, or upload a voice file (.safetensors).",
                           print_exception=False)
        return self.speak(text, "", voice_file)

    @user_errors
    def speak_stream(self, text, preset="", voice_file=None, top_k=TOP_K.default, temperature=TEMPERATURE.default,
                     seed=SEED.default, glossary=""):
        """Yields ((24 kHz, int16 chunk), info) as audio is generated: the first sentence plays early; the
        words are `/speak`'s for the same inputs (pauses and glossary included; speed is Speak's only: a
        stream is played as it comes); the info line comes with the end of the stream."""
        text = TEXT.check(text)
        top_k, temperature, seed = _sampling(top_k, temperature, seed)
        respell = request_glossary(glossary)
        voice, label = self._voice(preset, voice_file)
        label = " · ".join(n for n in (label, glossary_note(respell, text)) if n)
        # As in tune_voice: a visitor who leaves stops the generation at the next chunk.
        with contextlib.closing(self.engine.stream(text, voice, top_k, temperature, seed, glossary=respell)) as events:
            for event in events:
                if isinstance(event, StreamAudio):
                    yield (self.tts.sample_rate, to_int16(np.asarray(event.samples))), gr.skip()
                else:
                    yield gr.skip(), info_line(self.tts.name, event.result, label + " · streamed", self._dropped(text))

    @user_errors
    def voice_from_hub(self, repo_id):
        """`/voice_from_hub`: the voice of a Hub repo (owner/name), checked against the loaded model.
        -> (voice file, what was loaded)."""
        voice = Voice.from_hub(str(repo_id or "").strip(), model=self.tts.model.cfg)
        repo_id = str(repo_id).strip()
        path = self.out.new_path(f"{slug(voice.name or repo_id.split('/')[-1])}.safetensors")
        voice.save(path)
        return str(path), f"Loaded the voice '{voice.name or repo_id}' from the Hub repo {repo_id}."

    @user_errors
    def voices(self) -> list[dict]:
        """-> the preset voices as JSON: id, name, style, description, model_id, rank, compatible, ..."""
        return [p.public() for p in self.presets()]

    @user_errors
    def preset_details(self, preset):
        """Tab 3: style, description and sample of the chosen preset (UI only)."""
        found = find_preset(self.presets(), preset or "")
        if found is None:
            return "", None
        lines = [f"**{found.name}**" + (f" — *{found.style}*" if found.style else "")]
        if found.description:
            lines.append(found.description)
        if not found.compatible:
            lines.append(f"⚠️ Not usable with the loaded model: {found.problem}")
        return "\n\n".join(lines), self._marked_sample(found.sample, found.id)

    def preset_status(self, preset):
        """Tab 3: where the chosen preset stands for the loaded model, and all presets in one line (UI only;
        redrawn by a timer while presets are being tuned)."""
        found = find_preset(self.presets(), preset or "")
        line = f"**Status:** {found.public()['status_text']}" if found else ""
        summary = self.tuner.summary()
        return "\n\n".join(x for x in (line, summary and f"*{summary}*") if x)

    def _marked_sample(self, sample: str | None, name: str) -> str | None:
        """A preset's shipped sample, as a marked copy: it is the model's speech like any other output
        (marked once per sample and output folder lifetime; ~0.2 s)."""
        if not sample:
            return None
        cached = self._samples.get(sample)
        if cached and Path(cached).is_file():
            return cached
        audio, rate = soundfile.read(sample, dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim > 1 else audio
        marked = apply_watermark(audio, rate) if self.tts.watermark else audio
        self._samples[sample] = self.out.wav(marked, rate, f"{name}-sample")
        return self._samples[sample]
