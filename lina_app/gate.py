"""One gate in front of the model's synthesis work, shared by the page, `gradio_client` and the HTTP API.

Gradio's queue caps its own events (`SYNTHESIS_CONCURRENCY` at once, `QUEUE_MAX_SIZE` waiting), but
routes mounted beside it (the OpenAI-style `/v1/audio/speech`) do not pass through that queue. The
engine's synthesis calls therefore take a slot here too: whoever calls, at most
`SYNTHESIS_CONCURRENCY` generations run at once, and a caller finding `QUEUE_MAX_SIZE` others already
waiting is turned away at once (`Busy`) instead of piling up. Gradio's own events pass its queue first,
so for them this gate only ever waits on API requests.
"""
from __future__ import annotations

import contextlib
import threading

from lina_app.settings import QUEUE_MAX_SIZE, SYNTHESIS_CONCURRENCY

# How long a caller waits for a slot before being told the server is busy (seconds): a visitor or
# client that waited this long is better told to come back.
MAX_WAIT_SECONDS = 300.0


class Busy(RuntimeError):
    """Too many requests are waiting already; the message is for the caller."""


class Gate:
    """`slots` generations at once, at most `max_waiting` callers queued behind them."""

    def __init__(self, slots: int = SYNTHESIS_CONCURRENCY, max_waiting: int = QUEUE_MAX_SIZE,
                 max_wait_seconds: float = MAX_WAIT_SECONDS):
        self.slots, self.max_waiting, self.max_wait_seconds = slots, max_waiting, max_wait_seconds
        self._free = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.peak_running = 0   # the most generations ever under way at once (tests check the cap)

    @contextlib.contextmanager
    def slot(self):
        """Holds one slot for the `with` block (raises `Busy` when the queue is full or the wait too long)."""
        with self._lock:
            if self.waiting >= self.max_waiting:
                raise Busy(f"The server is busy: {self.waiting} requests are waiting. Please try again in a moment.")
            self.waiting += 1
        try:
            got = self._free.acquire(timeout=self.max_wait_seconds)
        finally:
            with self._lock:
                self.waiting -= 1
        if not got:
            raise Busy("The server is busy and this request waited too long. Please try again in a moment.")
        with self._lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
            self._free.release()


synthesis = Gate()
