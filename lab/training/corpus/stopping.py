"""When a GPU-host render call stops: SIGINT/SIGTERM, its time limit, and a watchdog behind both.

The device kills a call at 600 s and anything still writing to the call's output keeps it open, so the render
must end by itself, on time, whatever its main thread is doing (a GPU batch, a codec pass, a wait).
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Callable


class StopFlag:
    """SIGINT / SIGTERM / the time limit -> `reason`, which the render loop polls.

    Further signals are ignored: ``timeout -s INT`` signals the process and then its group, so the main process
    gets SIGINT twice, and a second KeyboardInterrupt used to land inside the save. With `hard_exit_s`, a
    watchdog thread calls `on_hard_exit` (which must end the process) `hard_exit_s` after a signal, and at
    ``max_seconds + drain_s + hard_exit_s`` from `start` in any case, unless `restore` came first: the time
    limit needs no loop iteration to be enforced (a Kokoro batch on a CPU held the loop for minutes)."""

    def __init__(self, start: float, max_seconds: float | None, drain_s: float, hard_exit_s: float | None,
                 on_hard_exit: Callable[[], None]) -> None:
        self.start, self.max_seconds, self.drain_s = start, max_seconds, drain_s
        self.reason: str | None = None
        self.at: float | None = None
        self.hard_exit_s, self.on_hard_exit = hard_exit_s, on_hard_exit
        self.finished = threading.Event()
        self.saved = {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        if hard_exit_s is not None and max_seconds is not None:
            self._watch(start + max_seconds + drain_s + hard_exit_s - time.monotonic())

    def _handle(self, signum, _frame) -> None:
        if self.reason is None or self.reason == "time":
            if self.hard_exit_s is not None:
                self._watch(self.hard_exit_s)
        self.request(f"signal {signal.Signals(signum).name}", force=self.reason == "time")

    def request(self, reason: str, force: bool = False) -> None:
        if self.reason is None or force:
            self.reason, self.at = reason, time.monotonic()

    def _watch(self, seconds: float) -> None:
        def watchdog():
            if not self.finished.wait(max(0.0, seconds)):
                self.on_hard_exit()

        threading.Thread(target=watchdog, daemon=True).start()

    def check(self) -> None:
        """Past --max-seconds: the loop stops taking rows (those in flight get `drain_s` more seconds)."""
        if self.reason is None and self.max_seconds is not None and time.monotonic() - self.start > self.max_seconds:
            self.request("time")

    def draining(self) -> bool:
        """A time stop whose rows in flight may still finish."""
        return self.reason == "time" and time.monotonic() - self.at <= self.drain_s

    def restore(self) -> None:
        self.finished.set()
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


class Heartbeat:
    """A thread that says what the main thread is doing once it has been at one thing for over `every` s
    with no log line: a GPU batch or a codec pass that hangs is then named in the log, not silent."""

    def __init__(self, log: Callable[[str], None], every: float, status: Callable[[], str],
                 check_s: float = 2.0) -> None:
        self.log, self.every, self.status, self.check_s = log, every, status, check_s
        self.what, self.since = "starting", time.monotonic()
        self.last = self.since
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def doing(self, what: str) -> None:
        if what != self.what:
            self.what, self.since = what, time.monotonic()

    def logged(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self.done.wait(self.check_s):
            now = time.monotonic()
            if now - self.last > self.every and now - self.since > self.every:
                self.last = now
                self.log(f"still {self.what} after {now - self.since:.0f} s; {self.status()}")

    def stop(self) -> None:
        self.done.set()
