"""Lina-Speech Space: clone a voice from a clip, build one from several clips (Initial-State Tuning),
speak with preset voices; the same functions as named API endpoints for `gradio_client`.

    python app.py                       # model chosen automatically (see lina_app/model_choice.py)
    python app.py --model tiny-random   # or LINA_MODEL=released | embedded | tiny-random | FOLDER

This file only lays out the UI: the endpoints (names, handlers, inputs, queues) are declared once in
`lina_app/endpoints.py` and wired from there; checks and model calls live in `lina_app/`, the model in `lina/`.
"""
from __future__ import annotations

# `spaces` must come before torch and gradio so that ZeroGPU can prepare CUDA; elsewhere it is a no-op.
try:
    import spaces  # noqa: F401
except ImportError:  # pragma: no cover - the app runs without it off Spaces
    pass

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

from lina_app import transcriber
from lina_app.dialogue import dialogue_tab
from lina_app.endpoints import ENDPOINTS, QUEUES, api_only
from lina_app.extras import speech_options, subtitle_outputs
from lina_app.handlers import Handlers
from lina_app.model_choice import LoadedModel, load_model, requested_model
from lina_app.openai_api import SpeechAPI
from lina_app.errors import quiet_validation_errors
from lina_app.examples import EXAMPLES_DIR, clone_examples, preset_examples, tune_examples
from lina_app.fields import CANDIDATES, EXAMPLE_TEXT, LEARNING_RATE, RANK, SAMPLING, STEPS, TEXT
from lina_app.presets import default_preset
from lina_app.tuning import default_steps, tuning_hint
from lina_app.settings import (BEST_CLONE_CLIP_SECONDS, DEFAULT_PREVIEW_TEXT, DEFAULT_STEPS, DEFAULT_VOICES_DIR,
                               MAX_CANDIDATES, MAX_CLONE_CLIP_SECONDS, MAX_TRANSCRIPT_CHARS, MAX_TUNING_CLIP_SECONDS,
                               MAX_TUNING_CLIPS, OUTPUT_TTL_SECONDS, QUEUE_MAX_SIZE, SYNTHESIS_CONCURRENCY)
from lina_app.texts import (AUTO_TRANSCRIPT, CLONE_HELP, CONSENT, NO_PRESETS, PAUSES_HELP, PRESETS_HELP, TITLE,
                            TUNE_HELP, about, banner)
from lina_app.warmup import configure_kernel_caches

VOICES_ENV_VAR = "LINA_VOICES_DIR"
MCP_ENV_VAR = "LINA_MCP_SERVER"   # 1/true: serve the endpoints as MCP tools too (as --mcp)
CLIP_FILE_TYPES = ["audio", ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".txt"]
VOICE_FILE_TYPES = [".safetensors"]
MAX_UPLOAD_BYTES = 50 * 2**20  # as lina.audio's limit: larger uploads are refused before they are stored
CSS = """
#model-banner h2 { color: #b91c1c; }
.candidate-row { flex-wrap: wrap; }
"""
SYNTHESIS, ASR = QUEUES["synthesis"], QUEUES["asr"]   # the UI's own events share the endpoints' queues
PRESET_STATUS_SECONDS = 2.0   # the presets tab redraws a preset's tuning status this often


def _sampling_controls(prefix: str) -> dict[str, gr.Component]:
    """Top-k and temperature on one row, the seed below them; by input name."""
    top_k, temperature, seed = SAMPLING
    with gr.Row():
        widgets = {f.name: f.widget(f"{prefix}-{f.name.replace('_', '-')}") for f in (top_k, temperature)}
    widgets["seed"] = seed.widget(f"{prefix}-seed")
    return widgets


def _api_only(h: Handlers, tab: str) -> None:
    for endpoint in api_only(tab):
        endpoint.serve(h)


def _examples(rows: list, inputs: list, prefix: str, label: str) -> None:
    """Clickable examples that fill `inputs` (the visitor then presses the tab's button); none if `rows` is
    empty. Not cached: nothing runs at start-up, and the outputs stay those of the visitor's own run."""
    if rows:
        gr.Examples(rows, inputs, label=label, cache_examples=False, elem_id=f"{prefix}-examples")


def _clone_tab(h: Handlers) -> None:
    auto = transcriber.available()
    gr.Markdown(CLONE_HELP + (AUTO_TRANSCRIPT if auto else ""))
    gr.Markdown(CONSENT)
    with gr.Row():
        with gr.Column():
            low, high = BEST_CLONE_CLIP_SECONDS
            clip = gr.Audio(sources=["upload", "microphone"], type="filepath",
                            label=f"Voice clip ({low} to {high} s is best; at most {MAX_CLONE_CLIP_SECONDS:g} s)",
                            elem_id="clone-clip")
            need = "left empty: transcribed for you, check it" if auto else "required"
            transcript = gr.Textbox(label=f"Transcript of the clip ({need}, up to {MAX_TRANSCRIPT_CHARS} characters)",
                                    lines=2,
                                    placeholder="Exactly the words spoken in the clip", elem_id="clone-transcript")
            text = TEXT.widget("clone-text")
            sampling = _sampling_controls("clone")
            candidates = CANDIDATES.widget("clone-candidates")
            button = gr.Button("Clone and speak", variant="primary", elem_id="clone-button")
            _examples(clone_examples(), [clip, transcript, text], "clone",
                      "Examples (a synthetic voice): click one, then Clone and speak")
        with gr.Column():
            with gr.Row(elem_classes="candidate-row"):
                players = [gr.Audio(label=f"Candidate {i + 1}", type="filepath", interactive=False, visible=i == 0,
                                    buttons=["download"], elem_id=f"clone-candidate-{i + 1}")
                           for i in range(MAX_CANDIDATES)]
            info = gr.Textbox(label="Generation info", lines=2, interactive=False, elem_id="clone-info")
            alignment = gr.Image(label="Alignment (cross-attention)", show_label=False, type="filepath",
                                 interactive=False, elem_id="clone-alignment")
            files = gr.File(label="All candidates", file_count="multiple", visible=False)
    # An empty transcript box is filled (and shown) before cloning; a recognizer failure stops here, the clip kept.
    for upload in (clip.upload, clip.stop_recording):
        upload(h.fill_transcript, [clip, transcript], transcript, api_visibility="private", **ASR)
    filled = button.click(h.fill_transcript, [clip, transcript], transcript, api_visibility="private", **ASR)
    ENDPOINTS["clone"].listen(filled.success, h, dict(text=text, prompt_audio=clip, transcript=transcript,
                                                      candidates=candidates, **sampling), [files, info, alignment]
                              ).success(h.show_candidates, files, players, api_visibility="private", queue=False)
    _api_only(h, "clone")


def _tune_tab(h: Handlers) -> None:
    gr.Markdown(TUNE_HELP + (AUTO_TRANSCRIPT if transcriber.available() else ""))
    gr.Markdown(CONSENT)
    with gr.Row():
        with gr.Column():
            clips = gr.File(label=f"Clips: up to {MAX_TUNING_CLIPS}, each at most {MAX_TUNING_CLIP_SECONDS:g} s "
                                  "(audio; optional clip.txt transcripts)", file_count="multiple",
                            file_types=CLIP_FILE_TYPES, elem_id="tune-clips")
            transcripts = gr.Textbox("", label=f"Transcripts: one line per clip, in upload order (up to "
                                               f"{MAX_TRANSCRIPT_CHARS} characters a line)", lines=4,
                                     placeholder="Not needed for clips uploaded with a clip.txt of the same name",
                                     elem_id="tune-transcripts")
            with gr.Row():
                device = h.tts.device.type
                steps = STEPS.widget("tune-steps", value=default_steps(device, DEFAULT_STEPS), info=tuning_hint(device))
                rank = RANK.widget("tune-rank")
                learning_rate = LEARNING_RATE.widget("tune-learning-rate")
            name = gr.Textbox(label="Voice name", value="my voice", elem_id="tune-name")
            preview_text = gr.Textbox(label="Preview sentence", value=DEFAULT_PREVIEW_TEXT, elem_id="tune-preview-text")
            with gr.Row():
                button = gr.Button("Build the voice", variant="primary", elem_id="tune-button", scale=3)
                stop = gr.Button("Stop, keep the best so far", elem_id="tune-stop", scale=1)
            _examples(tune_examples(), [clips, transcripts, steps, name], "tune",
                      "Example clip set (a synthetic voice): click it, then Build the voice")
        with gr.Column():
            # The progress bar covers the status box only, so the loss curve stays in view as it grows.
            status = gr.Textbox(label="Status", lines=2, interactive=False, elem_id="tune-status")
            loss = gr.LinePlot(x="step", y="loss", label="Training loss", height=220, elem_id="tune-loss")
            preview = gr.Audio(label="Preview with the new voice", type="filepath", interactive=False,
                               buttons=["download"], elem_id="tune-preview")
            voice_file = gr.File(label="Voice file (.safetensors): the tuned voice, or upload one saved earlier",
                                 file_types=VOICE_FILE_TYPES, interactive=True, elem_id="tune-voice-file")
            with gr.Row():
                again_text = gr.Textbox(label="Text to speak with this voice file", value=EXAMPLE_TEXT, scale=3,
                                        elem_id="again-text")
                again = gr.Button("Speak with this voice", scale=1, elem_id="again-button")
            again_audio = gr.Audio(label="Speech with the voice file", type="filepath", interactive=False,
                                   buttons=["download"], elem_id="again-audio")
            again_info = gr.Textbox(label="Generation info", interactive=False, elem_id="again-info")
    filled = button.click(h.fill_tune_transcripts, [clips, transcripts], transcripts, api_visibility="private", **ASR)
    ENDPOINTS["tune_voice"].listen(filled.success, h, dict(
        clips=clips, transcripts=transcripts, steps=steps, rank=rank, learning_rate=learning_rate, name=name,
        preview_text=preview_text), [voice_file, preview, loss, status], show_progress_on=status)
    # Not a cancel: the tuning ends at its next step and still saves and previews its best state.
    stop.click(h.stop_tuning, None, status, api_visibility="private", queue=False)
    again.click(h.speak_with_file, [again_text, voice_file], [again_audio, again_info], api_visibility="private",
                **SYNTHESIS)


def _presets_tab(h: Handlers) -> None:
    gr.Markdown(PRESETS_HELP)
    presets = [p for p in h.presets() if p.compatible]
    if not presets:
        gr.Markdown(NO_PRESETS, elem_id="no-presets")
    with gr.Row():
        with gr.Column():
            # Without presets the picker is hidden but stays an input ("" = none) so the API keeps its shape.
            first = default_preset(presets)
            preset = gr.Dropdown([(p.label, p.id) for p in presets], value=first.id if first else "",
                                 label="Preset voice", allow_custom_value=True, visible=bool(presets),
                                 elem_id="presets-preset")
            first_details, first_sample = h.preset_details(first.id) if first else ("", None)
            details = gr.Markdown(first_details, elem_id="presets-details")
            # Where the preset stands for this model (ready / tuning / tuned on first use / failed), redrawn
            # while presets are being tuned.
            status = gr.Markdown(h.preset_status(first.id) if first else "", elem_id="presets-status")
            ticker = gr.Timer(PRESET_STATUS_SECONDS, active=not h.tuner.all_ready())
            sample = gr.Audio(first_sample, label="Sample of the preset", type="filepath", interactive=False,
                              visible=bool(presets), elem_id="presets-sample")
            voice_file = gr.File(label="…or upload a voice file (.safetensors); it wins over the preset",
                                 file_types=VOICE_FILE_TYPES, elem_id="presets-voice-file")
            with gr.Row():
                hub_repo = gr.Textbox(label="…or a voice shared on the Hugging Face Hub (repo id)", scale=3,
                                      placeholder="owner/name", elem_id="presets-hub-repo")
                hub_load = gr.Button("Load from the Hub", scale=1, elem_id="presets-hub-load")
            hub_status = gr.Markdown(elem_id="presets-hub-status")
            text = TEXT.widget("presets-text")
            with gr.Accordion("Pauses, pronunciations, speed", open=False):
                gr.Markdown(PAUSES_HELP)
                glossary, speed = speech_options("presets")
            sampling = _sampling_controls("presets")
            with gr.Row():
                speak = gr.Button("Speak", variant="primary", elem_id="presets-speak")
                stream = gr.Button("Stream (first sentence plays early)", elem_id="presets-stream")
            _examples(preset_examples(presets), [text, preset], "presets", "Examples: click one, then Speak")
        with gr.Column():
            audio = gr.Audio(label="Speech", type="filepath", interactive=False, buttons=["download"],
                             elem_id="presets-audio")
            info = gr.Textbox(label="Generation info", lines=2, interactive=False, elem_id="presets-info")
            streamed = gr.Audio(label="Streamed speech", streaming=True, autoplay=True, interactive=False,
                                elem_id="presets-streamed")
            subtitles, words = subtitle_outputs("presets")
    inputs = dict(text=text, preset=preset, voice_file=voice_file, glossary=glossary, speed=speed, **sampling)
    ENDPOINTS["speak"].listen(speak.click, h, inputs, [audio, info]).success(
        h.speech_subtitles, None, [subtitles, words], api_visibility="private", queue=False)
    ENDPOINTS["speak_stream"].listen(stream.click, h, inputs, [streamed, info])
    preset.change(h.preset_details, preset, [details, sample], api_visibility="private", queue=False)
    # The loaded voice goes into the voice-file box: Speak uses it, and the visitor can download it.
    ENDPOINTS["voice_from_hub"].listen(hub_load.click, h, dict(repo_id=hub_repo), [voice_file, hub_status])
    for event in (preset.change, ticker.tick, speak.click):
        event(h.preset_status, preset, status, api_visibility="private", queue=False)

    _api_only(h, "presets")


def build_demo(loaded: LoadedModel, voices_dir: str | Path | None = DEFAULT_VOICES_DIR) -> gr.Blocks:
    """The whole page, bound to `loaded`; queue limits set (launch with `launch_options`, which also mounts
    `demo.speech_api`, the OpenAI-style API on the same handlers)."""
    h = Handlers(loaded, voices_dir)
    quiet_validation_errors()  # Gradio's own input checks: one log line each, not a trace
    with gr.Blocks(title=f"{TITLE} — {loaded.tts.name}", delete_cache=(OUTPUT_TTL_SECONDS, OUTPUT_TTL_SECONDS)) as demo:
        gr.Markdown(f"# {TITLE}: text to speech with voice cloning\n"
                    "Gated linear attention TTS: clone from one clip, or build a reusable voice from several.")
        gr.Markdown(banner(loaded), elem_id="model-banner")
        with gr.Tabs():
            with gr.Tab("Clone from a clip", id="clone"):
                _clone_tab(h)
            with gr.Tab("Build a voice from several clips", id="tune"):
                _tune_tab(h)
            with gr.Tab("Expressive voices", id="presets"):
                _presets_tab(h)
            with gr.Tab("Dialogue and subtitles", id="dialogue"):
                dialogue_tab(h, VOICE_FILE_TYPES)
            with gr.Tab("About", id="about"):
                gr.Markdown(about(loaded), elem_id="about")
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=SYNTHESIS_CONCURRENCY)
    demo.preset_tuner = h.tuner  # main() starts its background tuning once the warm-up is done
    demo.engine = h.engine  # the model's calls: main() warms them up
    # The OpenAI-style API on the same handlers (presets, tuner, engine gate); `launch_options` mounts it.
    demo.speech_api = SpeechAPI(h)
    return demo


def launch_options(voices_dir: str | Path | None, api: SpeechAPI | None = None) -> dict:
    """Keyword arguments of `demo.launch` shared by `main` and the tests (Gradio 6: theme/css go here).
    With `api` (`build_demo(...).speech_api`), the OpenAI-style speech API (`lina_app.openai_api`) is served
    by the same process: its routes go into Gradio's FastAPI app, ahead of Gradio's own."""
    allowed = [str(EXAMPLES_DIR)] + ([str(voices_dir)] if voices_dir else [])
    options = dict(theme=gr.themes.Soft(), css=CSS, allowed_paths=allowed,
                   show_error=False, max_file_size=MAX_UPLOAD_BYTES)
    if api is not None:
        options["app_kwargs"] = {"routes": list(api.router().routes)}
    return options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="released | embedded | tiny-random | a model folder | a .ckpt "
                                        "(default: $LINA_MODEL, else automatic)")
    parser.add_argument("--voices", default=os.environ.get(VOICES_ENV_VAR, str(DEFAULT_VOICES_DIR)),
                        help="folder of preset voices (default: $LINA_VOICES_DIR, else voices/)")
    parser.add_argument("--host", default=None, help="address to listen on (default: Gradio's, e.g. 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)")
    parser.add_argument("--mcp", action="store_true",
                        default=os.environ.get(MCP_ENV_VAR, "").lower() in ("1", "true", "yes", "on"),
                        help=f"also serve the endpoints as MCP tools at /gradio_api/mcp/ (default: ${MCP_ENV_VAR})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    # Before anything compiles: kernels and autotune results come from (and go to) a folder that
    # outlives this process, so a restart or a fresh ZeroGPU worker does not redo them.
    logging.getLogger("lina_app").info("kernel caches in %s", configure_kernel_caches())
    loaded = load_model(requested_model(args.model))
    demo = build_demo(loaded, args.voices)
    # Every kernel shape the endpoints use runs once before the page is served (lina_app/warmup.py).
    demo.engine.warm_up()
    # On a dedicated GPU, presets without a state for this model are tuned while visitors use the app.
    demo.preset_tuner.start_background()
    # mcp_server=None leaves it to Gradio's own GRADIO_MCP_SERVER.
    demo.launch(server_name=args.host, server_port=args.port, mcp_server=args.mcp or None,
                **launch_options(args.voices, demo.speech_api))


if __name__ == "__main__":
    main()
