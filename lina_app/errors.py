"""Every failure reaches the visitor as a clear `gr.Error`; stack traces stay in the server log."""
from __future__ import annotations

import functools
import inspect
import logging
import sys
import traceback
import uuid
from typing import Callable

import gradio as gr
import torch

from lina.audio import AudioError
from lina.tokenizer import TextError
from lina.voice import VoiceError
from lina_app.gate import Busy

log = logging.getLogger("lina_app")

# lina's own exceptions carry messages written for users: they are shown as they are.
USER_ERRORS = (TextError, AudioError, VoiceError)


def user_message(error: BaseException) -> str:
    """lina's lower-case message as a sentence: 'the audio is silent' -> 'The audio is silent.'"""
    text = str(error).strip() or type(error).__name__
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


OUT_OF_MEMORY = ("The GPU ran out of memory for this request (other requests may be using it at the same time). "
                 "Please try again in a moment, or with a shorter text or fewer candidates.")


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or a RuntimeError saying "out of memory" (other backends, older torch)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return bool(oom and isinstance(error, oom)) or (isinstance(error, RuntimeError)
                                                    and "out of memory" in str(error).lower())


def free_gpu_memory(error: BaseException) -> None:
    """After an out-of-memory error: drop the failed call's frames (they hold its tensors), then hand the
    cached blocks back, so the next request starts from a clean allocator instead of failing too."""
    error.__traceback__ = None
    if torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - a broken CUDA context must not hide the visitor's message
            log.warning("torch.cuda.empty_cache() failed after an out-of-memory error", exc_info=True)


def to_gr_error(error: BaseException) -> gr.Error:
    """The `gr.Error` a visitor sees for `error`; unexpected ones are logged with a reference."""
    if isinstance(error, gr.Error):
        log_refusal(error.message)
        return error
    if isinstance(error, Busy):  # the shared gate's queue is full: a load condition, said plainly
        log_refusal(str(error))
        return gr.Error(str(error), print_exception=False)
    if isinstance(error, USER_ERRORS):
        log_refusal(user_message(error))
        return gr.Error(user_message(error), print_exception=False)
    if is_out_of_memory(error):
        # A load condition, not a bug: one log line (no trace), a message that says what to do.
        log.warning("out of memory: %s", str(error).splitlines()[0][:200] if str(error) else type(error).__name__)
        free_gpu_memory(error)
        return gr.Error(OUT_OF_MEMORY, print_exception=False)
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error (reference %s)", reference, exc_info=error)
    return gr.Error(f"Something went wrong on our side (reference {reference}). "
                    "Please try again, or with other input.", print_exception=False)


def user_errors(fn: Callable) -> Callable:
    """Decorator for event handlers (plain or generator): maps exceptions with `to_gr_error`.

    `functools.wraps` keeps the signature visible to Gradio (inputs, `gr.Progress` defaults).
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every error becomes a gr.Error
                raise to_gr_error(error) from None
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every error becomes a gr.Error
            raise to_gr_error(error) from None
    return wrapper


def log_refusal(message: str) -> None:
    """A request refused for its input is routine: one line in the log, no trace."""
    log.info("refused: %s", " ".join(str(message).split())[:300])


class _QuietTraceback:
    """Stands in for the `traceback` module inside Gradio's queue and routes.

    Gradio prints a full trace for its own input checks (a slider value out of range, a file of the
    wrong type), as for a crash. Those are refusals of a request, not faults: they get `log_refusal`'s
    one line; everything else still prints its trace as Gradio would.
    """

    def __getattr__(self, name):
        return getattr(traceback, name)

    @staticmethod
    def print_exc(*args, **kwargs) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, gr.Error):
            log_refusal(error.message)
            return
        traceback.print_exc(*args, **kwargs)


def quiet_validation_errors() -> None:
    """Routes Gradio's own validation errors to one log line each (idempotent)."""
    import gradio.queueing
    import gradio.routes

    for module in (gradio.queueing, gradio.routes):
        module.traceback = _QuietTraceback()
