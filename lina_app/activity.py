"""Model work in progress and how each piece ended, counted per engine (`lina_app.engine.Engine.activity`)."""
from __future__ import annotations

import contextlib
import threading
from collections import Counter


class Stopped(Exception):
    """Raised inside a piece of work when its consumer went away (visitor left, request cancelled)."""


class Activity:
    """Model work in progress and how each piece ended: "finished", "stopped" (its consumer went away
    before the end: visitor left, job cancelled) or "error".

    A visitor who closes the page must not leave a generation running unseen; these counters make that
    checkable (tests/test_faults.py). Cheap: a lock and two Counters.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: Counter = Counter()   # kind -> pieces of work under way
        self.ended: Counter = Counter()     # (kind, outcome) -> count

    @contextlib.contextmanager
    def track(self, kind: str):
        """Counts the work in its `with` block; inside a generator, a close() counts as "stopped"."""
        with self._lock:
            self.running[kind] += 1
        outcome = "error"
        try:
            yield
            outcome = "finished"
        except (GeneratorExit, Stopped):
            outcome = "stopped"
            raise
        finally:
            with self._lock:
                self.running[kind] -= 1
                self.ended[kind, outcome] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"running": {k: n for k, n in self.running.items() if n},
                    "ended": {f"{kind}:{outcome}": n for (kind, outcome), n in self.ended.items()}}
