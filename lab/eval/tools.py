"""Evaluation tools are optional installs (requirements-eval.txt), each loaded once, on first use."""
from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


class ToolUnavailable(RuntimeError):
    """An evaluation tool is not installed (or cannot run offline); the message says which and why."""


def shared_tool(load: Callable[..., T]) -> Callable[..., T]:
    """Wraps a loader so the tool is built once per process (once per positional argument, e.g. a model name),
    even when threads ask at the same time."""
    lock = threading.Lock()
    loaded: dict[tuple, T] = {}

    @functools.wraps(load)
    def get(*key) -> T:
        with lock:
            if key not in loaded:
                loaded[key] = load(*key)
            return loaded[key]
    return get
