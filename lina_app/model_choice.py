"""Which model the Space serves: `--model` / `LINA_MODEL`, else a default that suits the machine.

Default: the released model when a GPU is present and the Hub answers, else the embedded model
(`assets/lina-mini`) when it is shipped, else the tiny random-weight model (noise; for testing).
A model that fails to load falls back to the next one, and the UI says so.
"""
from __future__ import annotations

import logging
import os
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from lina.pretrained import RELEASED, RELEASED_REPO, TINY_RANDOM
from lina.tts import LinaTTS
from lina_app.settings import APP_AUDIO_OPTIONS, EMBEDDED_MODEL_DIR, HUB_PROBE_TIMEOUT_SECONDS

log = logging.getLogger("lina_app")

ENV_VAR = "LINA_MODEL"
BACKEND_ENV_VAR = "LINA_BACKEND"  # decode back end (lina.backends), default "auto"
AUTO = "auto"
EMBEDDED = "embedded"
TRUTHY = {"1", "true", "yes", "on"}


@dataclass
class LoadedModel:
    """The model in service and how it was chosen (shown in the UI)."""

    tts: LinaTTS
    source: str           # what was loaded: "released", "tiny-random", a folder or a .ckpt
    notice: str           # why this model, or what failed before it (Markdown, one line)

    @property
    def is_test_model(self) -> bool:
        return self.tts.model_id == TINY_RANDOM


def requested_model(cli_value: str | None) -> str:
    """The CLI flag wins over the environment variable; neither means automatic choice."""
    return (cli_value or os.environ.get(ENV_VAR, "") or AUTO).strip()


def gpu_present() -> bool:
    # On a ZeroGPU Space the GPU is attached per call, so CUDA may not show at start-up.
    return torch.cuda.is_available() or os.environ.get("SPACES_ZERO_GPU", "").lower() in TRUTHY


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_SECONDS) -> bool:
    """A quick look at the released model's Hub page; honours HF_HUB_OFFLINE and never waits long.

    The probe runs in a daemon thread because a name lookup can outlast a socket timeout.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUTHY:
        return False
    from huggingface_hub import constants

    url = f"{constants.ENDPOINT}/api/models/{RELEASED_REPO}"
    answer: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):  # noqa: S310
                answer.append(True)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])


def embedded_available() -> bool:
    return (EMBEDDED_MODEL_DIR / "config.json").is_file()


def automatic_choice() -> tuple[str, str]:
    """-> (model to load, why) when nothing was requested."""
    gpu = gpu_present()
    if gpu and hub_reachable():
        return RELEASED, "chosen automatically: a GPU is present and the Hub is reachable"
    why = "no GPU" if not gpu else "the Hub is not reachable"
    if embedded_available():
        return str(EMBEDDED_MODEL_DIR), f"chosen automatically ({why}): the embedded model"
    return TINY_RANDOM, (f"chosen automatically ({why}, and the embedded model `assets/lina-mini` is not "
                         "shipped yet): the tiny random-weight test model")


def fallback_for(failed: str) -> str:
    """The next model to try after `failed` could not be loaded."""
    if failed != str(EMBEDDED_MODEL_DIR) and embedded_available():
        return str(EMBEDDED_MODEL_DIR)
    return TINY_RANDOM


def load_model(request: str = AUTO) -> LoadedModel:
    """Loads the requested model (see the module docstring), falling back with a notice on failure."""
    if request == AUTO:
        name, notice = automatic_choice()
    elif request == EMBEDDED:
        name, notice = str(EMBEDDED_MODEL_DIR), "requested: the embedded model"
    else:
        name, notice = request, f"requested: `{request}`"
    if name == RELEASED and request != AUTO and not hub_reachable():
        # huggingface_hub would retry for half a minute before failing: say so at once instead.
        fallback = fallback_for(name)
        notice = (f"⚠️ could not load `released`: the Hub is not reachable (or HF_HUB_OFFLINE is set); "
                  f"fell back to `{display_name(fallback)}`")
        name = fallback
    while True:
        try:
            # The Space marks every audio it returns (lina.watermark): never switched off here.
            tts = LinaTTS.from_pretrained(name, backend=os.environ.get(BACKEND_ENV_VAR, "") or "auto",
                                          watermark=True)
            tts.audio_options = APP_AUDIO_OPTIONS   # the clean-up the report cards describe (inputs.py)
            log.info("model %s loaded (%s)", name, notice)
            return LoadedModel(tts, name, notice)
        except Exception as error:  # noqa: BLE001 - any failure falls back to a model that works
            if name == TINY_RANDOM:
                raise
            log.warning("could not load model %s", name, exc_info=True)
            fallback = fallback_for(name)
            reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            notice = (f"⚠️ could not load `{display_name(name)}` ({type(error).__name__}: {reason}); "
                      f"fell back to `{display_name(fallback)}`")
            name = fallback


def display_name(name: str) -> str:
    """Short form of a model source for messages (folders by their last parts)."""
    path = Path(name)
    return name if name in (RELEASED, TINY_RANDOM) or not path.is_absolute() else str(Path(*path.parts[-2:]))
