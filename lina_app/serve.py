"""The HTTP speech API without the page: `/v1/audio/speech`, `/v1/models`, `/v1/audio/voices`, `/detect`.

    python -m lina_app.serve --port 8000                 # the model app.py would choose, voices/ as voices
    python -m lina_app.serve --model embedded --voices my_voices/

The same routes, limits and watermark as in `python app.py`, which serves them beside the page.
"""
from __future__ import annotations

import argparse
import logging
import os

import uvicorn
from fastapi import FastAPI

from lina_app.handlers import Handlers
from lina_app.model_choice import load_model, requested_model
from lina_app.openai_api import SpeechAPI
from lina_app.settings import DEFAULT_VOICES_DIR
from lina_app.warmup import configure_kernel_caches

VOICES_ENV_VAR = "LINA_VOICES_DIR"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def build_app(api: SpeechAPI) -> FastAPI:
    app = FastAPI(title="Lina-Speech API", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api.router())
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="released | embedded | tiny-random | a model folder (default: $LINA_MODEL, "
                                        "else automatic)")
    parser.add_argument("--voices", default=os.environ.get(VOICES_ENV_VAR, str(DEFAULT_VOICES_DIR)),
                        help="folder of voice files the `voice` field names (default: $LINA_VOICES_DIR, else voices/)")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    logging.getLogger("lina_app").info("kernel caches in %s", configure_kernel_caches())
    loaded = load_model(requested_model(args.model))
    handlers = Handlers(loaded, args.voices)   # the page's handlers (presets, tuner, engine), no page
    api = SpeechAPI(handlers)
    handlers.engine.warm_up()
    uvicorn.run(build_app(api), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
