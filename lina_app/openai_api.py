"""An OpenAI-compatible speech API beside the page: `POST /v1/audio/speech`, `GET /v1/models`,
`GET /v1/audio/voices`, and `POST /detect` (does a file carry our watermark?).

The same routes serve in the Gradio app's process (handed to its FastAPI app by `app.py`) and alone
(`python -m lina_app.serve`). Requests run through the engine's calls, so they share the app's
synthesis gate (`lina_app.gate`: its concurrency cap and queue size) and every audio is watermarked
by `LinaTTS`. Errors are OpenAI's JSON shape, `{"error": {"message", "type", "param", "code"}}`, with
messages written for people.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="unused")
    client.audio.speech.create(model="lina", voice="ava_neutral", input="Hello!", response_format="wav")
"""
from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from lina.audio import AudioError, AudioOptions, load_audio
from lina.constants import SAMPLE_RATE as RATE
from lina.speed import MAX_SPEED, MIN_SPEED, change_speed
from lina.tokenizer import TextError
from lina.tts import LinaTTS
from lina.voice import Voice, VoiceError
from lina.watermark import PERTH_RATE, detect_watermark
from lina_app.encoding import FORMATS, content_type, encode
from lina_app.errors import user_message
from lina_app.events import StreamAudio, StreamEvent
from lina_app.gate import Busy
from lina_app.handlers import Handlers
from lina_app.preset_tuner import PresetNotReady
from lina_app.presets import find_preset, load_preset
from lina_app.settings import DEFAULT_SEED, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, MAX_TEXT_CHARS

log = logging.getLogger("lina_app")

# "lina", and the names OpenAI clients send by habit: accepted for the loaded model, so existing code
# works unchanged.
OPENAI_MODEL_ALIASES = ("lina", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
DEFAULT_FORMAT = "mp3"                 # OpenAI's default
BODY_CHUNK_BYTES = 64 * 1024           # a whole file is sent in pieces of this size
MAX_BODY_BYTES = 64 * 1024             # a speech request is a small JSON object
MAX_LISTED_VOICES = 12                 # "unknown voice" names at most this many of the known ones
DETECT_OPTIONS = AudioOptions(trim_silence=False, normalize_loudness=False, min_speech_seconds=0.0)


class ApiError(Exception):
    """A refusal in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


@dataclass(frozen=True)
class SpeechRequest:
    """A checked `/v1/audio/speech` body."""

    model: str
    text: str
    voice: str
    response_format: str
    speed: float


def _field(body: dict, name: str, default=None, required: bool = False):
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"The '{name}' field is required.", name, "missing_required_parameter")
        return default
    return body[name]


def parse_speech(raw: bytes) -> SpeechRequest:
    """The request body -> `SpeechRequest`; anything wrong -> `ApiError` naming the field."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is larger than {MAX_BODY_BYTES // 1024} KB.")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object with 'model', 'input' and 'voice'.")
    text = _field(body, "input", required=True)
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "The 'input' text is empty: please send the text to speak.", "input")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(400, f"The 'input' text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}. "
                            "Please shorten it or split it into several requests.", "input", "string_above_max_length")
    voice = _field(body, "voice", required=True)
    if isinstance(voice, dict):  # newer clients may send {"id": "..."}
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice.strip():
        raise ApiError(400, "The 'voice' field must name a voice (see GET /v1/audio/voices).", "voice")
    fmt = _field(body, "response_format", DEFAULT_FORMAT)
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ApiError(400, f"Unsupported response_format {fmt!r}. Supported: {', '.join(FORMATS)}.",
                       "response_format", "unsupported_value")
    speed = _field(body, "speed", 1.0)
    # lina's WSOLA range (lina.speed), narrower than OpenAI's 0.25-4: beyond it speech smears.
    low, high = MIN_SPEED, MAX_SPEED
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) \
            or not low <= speed <= high:
        raise ApiError(400, f"'speed' must be a number between {low:g} and {high:g}, got {speed!r}.", "speed")
    stream_format = _field(body, "stream_format", "audio")
    if stream_format != "audio":
        raise ApiError(400, "Only stream_format 'audio' is supported (the audio bytes, streamed).", "stream_format",
                       "unsupported_value")
    model = _field(body, "model", "")
    if not isinstance(model, str):
        raise ApiError(400, "The 'model' field must be a string (see GET /v1/models).", "model")
    return SpeechRequest(model.strip(), text, voice.strip(), fmt.lower(), float(speed))


class SpeechAPI:
    """The routes bound to the page's `Handlers`: the same model, the same voices (the presets of the voices
    folder and its manifest, tuned on first use where the page would) and the same engine."""

    def __init__(self, handlers: Handlers):
        self.handlers = handlers
        self.tts: LinaTTS = handlers.tts

    # ---- what the routes compute -----------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return [self.tts.model_id or "lina"]

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "lina-speech"}
                                           for m in self.model_ids()]}

    def voices(self) -> dict:
        presets = [p for p in self.handlers.presets() if p.compatible]
        return {"object": "list", "data": [{"id": p.id, "object": "voice", "name": p.name, "style": p.style,
                                            "description": p.description, "status": p.public()["status"]}
                                           for p in presets]}

    def _check_model(self, model: str) -> None:
        if model and model not in self.model_ids() and model not in OPENAI_MODEL_ALIASES:
            raise ApiError(404, f"The model '{model}' does not exist here. Available: "
                                f"{', '.join(self.model_ids())} (or {', '.join(OPENAI_MODEL_ALIASES)}).",
                           "model", "model_not_found")

    def _voice(self, name: str) -> Voice:
        presets = self.handlers.presets()
        found = find_preset(presets, name)
        if found is None or not found.compatible:
            known = [p.id for p in presets if p.compatible]
            shown = ", ".join(known[:MAX_LISTED_VOICES]) + (", …" if len(known) > MAX_LISTED_VOICES else "")
            reason = "cannot be used with this model" if found else "is not a voice of this server"
            raise ApiError(400, f"The voice '{name}' {reason}. Available: {shown or 'none'} "
                                "(GET /v1/audio/voices lists them all).", "voice", "voice_not_found")
        if found.managed:
            try:
                return self.handlers.tuner.voice(found.id)
            except PresetNotReady as error:
                raise ApiError(503, str(error), "voice", "voice_not_ready", "server_error") from None
        return load_preset(found)

    def speak(self, request: SpeechRequest) -> bytes:
        """The whole file for `request` (blocking: call it from a worker thread)."""
        self._check_model(request.model)
        voice = self._voice(request.voice)
        result = self.handlers.engine.synthesize(request.text, voice, DEFAULT_TOP_K, DEFAULT_TEMPERATURE, DEFAULT_SEED)
        audio = result.audio[0]
        if request.speed != 1.0:
            # Stretched audio is marked again: the mark must survive what the server itself did.
            audio = self.tts.mark(change_speed(audio, request.speed, result.sample_rate))
        return encode(audio, result.sample_rate, request.response_format)

    def start_stream(self, request: SpeechRequest) -> tuple[StreamEvent, Iterator[StreamEvent]]:
        """`pcm` at speed 1, streamed as generated: -> (first event, the rest). Taking the first event here
        (blocking) surfaces a refusal (busy, unspeakable text) as an error before any byte is sent."""
        self._check_model(request.model)
        voice = self._voice(request.voice)
        events = self.handlers.engine.stream(request.text, voice, DEFAULT_TOP_K, DEFAULT_TEMPERATURE, DEFAULT_SEED)
        try:
            return next(events), events
        except BaseException:
            events.close()
            raise

    def detect(self, data: bytes) -> dict:
        audio = load_audio(data, PERTH_RATE, DETECT_OPTIONS)
        found = detect_watermark(audio, PERTH_RATE)
        return {"watermarked": found.present, "score": round(found.score, 4),
                "seconds": round(len(audio) / PERTH_RATE, 3)}

    # ---- routes ----------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/v1/models")
        def models() -> JSONResponse:
            return JSONResponse(self.models())

        @router.get("/v1/audio/voices")
        def voices() -> JSONResponse:
            return JSONResponse(self.voices())

        @router.post("/v1/audio/speech")
        async def speech(request: Request) -> Response:
            try:
                parsed = parse_speech(await request.body())
                if parsed.response_format == "pcm" and parsed.speed == 1.0:
                    first, events = await run_in_threadpool(self.start_stream, parsed)
                    return StreamingResponse(_pcm_pieces(first, events), media_type=content_type("pcm"))
                data = await run_in_threadpool(self.speak, parsed)
            except Exception as error:  # noqa: BLE001 - every failure becomes an OpenAI-shaped error
                return as_api_error(error).response()
            pieces = (data[i:i + BODY_CHUNK_BYTES] for i in range(0, len(data), BODY_CHUNK_BYTES))
            return StreamingResponse(pieces, media_type=content_type(parsed.response_format),
                                     headers={"Content-Length": str(len(data))})

        @router.post("/detect")
        async def detect(request: Request) -> JSONResponse:
            """Raw audio bytes as the body, or a multipart form with a `file` field."""
            try:
                if request.headers.get("content-type", "").startswith("multipart/form-data"):
                    form = await request.form()
                    upload = form.get("file")
                    if upload is None or not hasattr(upload, "read"):
                        raise ApiError(400, "Send the audio as the request body, or as a form field named 'file'.",
                                       "file")
                    data = await upload.read()
                else:
                    data = await request.body()
                if not data:
                    raise ApiError(400, "No audio received: send the file as the request body.", "file")
                return JSONResponse(await run_in_threadpool(self.detect, data))
            except Exception as error:  # noqa: BLE001
                return as_api_error(error, "file").response()

        return router


async def _pcm_pieces(first: StreamEvent, events: Iterator[StreamEvent]) -> AsyncIterator[bytes]:
    """The engine's stream as raw 16-bit pieces, each sent as soon as it is generated (and marked). A client
    that goes away closes this generator, which closes the engine's stream: no further token is made."""
    try:
        event = first
        while event is not None:
            if isinstance(event, StreamAudio):
                yield encode(event.samples, RATE, "pcm")
            event = await run_in_threadpool(next, events, None)
    finally:
        await run_in_threadpool(events.close)


def as_api_error(error: BaseException, param: str | None = None) -> ApiError:
    """Any failure -> the `ApiError` the caller sees; unexpected ones are logged with a reference."""
    if isinstance(error, ApiError):
        log.info("refused: %s", error.message)
        return error
    if isinstance(error, Busy):
        return ApiError(429, str(error), None, "server_busy", "rate_limit_error")
    if isinstance(error, (TextError, AudioError, VoiceError)):
        message = user_message(error)
        log.info("refused: %s", message)
        return ApiError(400, message, param or ("input" if isinstance(error, TextError) else None))
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error in the speech API (reference %s)", reference, exc_info=error)
    return ApiError(500, f"Something went wrong on our side (reference {reference}). Please try again.",
                    None, None, "server_error")
