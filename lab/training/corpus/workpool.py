"""A process pool for corpus rendering that never blocks its caller and can be abandoned at once.

`concurrent.futures.ProcessPoolExecutor` alone left a GPU-host render call waiting forever twice: the main
loop waited for a completion with no timeout while no row came back, and on SIGINT its ``with`` block's
``shutdown(wait=True)`` waited for rows that never finished (the whole call was killed 75 s later). Here:

- workers ignore SIGINT (``timeout -s INT`` signals the whole process group): only the main process decides
  what happens on a stop, and no worker dies half-way through a queue operation;
- `wait` always returns within its timeout, with what finished (results or the error of each task);
- `running` says which tasks have been running how long (workers report each start on a queue: the
  executor's own `Future.running()` is also true for tasks merely queued for a worker), and
  `restart` replaces every worker and submits the unfinished tasks again, leaving out stuck ones;
- `kill` cancels what is queued and SIGKILLs the workers: it returns in about a second whatever they do;
- a worker that dies breaks the executor: `wait` starts new workers and submits the tasks again
  (a task running in a dead pool MAX_CRASHES times is returned as failed).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

KILL_JOIN_S = 2.0  # per worker, after SIGKILL (the kernel reaps it at once; this only bounds the join)
# A worker that dies (a crash in an engine, the OOM killer) breaks the whole executor: its tasks go to new
# workers, and a task that was running in a dead pool this many times is reported as failed.
MAX_CRASHES = 2


class WorkerDied(RuntimeError):
    """The task's worker process died under it MAX_CRASHES times."""


_started = None  # in a worker: the queue its task starts are reported on


def _init_worker(initializer: Callable[[], None] | None, started) -> None:
    global _started
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _started = started
    if initializer is not None:
        initializer()


def _call(key: Any, fn: Callable, *args):
    _started.put(key)
    return fn(*args)


@dataclass
class Task:
    key: Any
    fn: Callable
    args: tuple
    submitted: float
    started: float | None = None  # first time `running` saw it running (a worker holds it)
    crashes: int = 0              # pools that died while it ran


@dataclass
class WorkerPool:
    """`jobs` spawned worker processes; tasks are ``fn(*args)`` named by a `key` (a row id)."""

    jobs: int
    initializer: Callable[[], None] | None = None
    tasks: dict[cf.Future, Task] = field(default_factory=dict)
    restarts: int = 0

    def __post_init__(self) -> None:
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.started = ctx.SimpleQueue()  # put() writes at once: a worker that dies next has still reported
        self.pool = cf.ProcessPoolExecutor(max_workers=max(1, self.jobs), mp_context=ctx, initializer=_init_worker,
                                           initargs=(self.initializer, self.started))

    def __len__(self) -> int:
        return len(self.tasks)

    def submit(self, key: Any, fn: Callable, *args) -> None:
        self._submit(Task(key, fn, args, time.monotonic()))

    def _submit(self, task: Task) -> None:
        task.started = None
        self.tasks[self.pool.submit(_call, task.key, task.fn, *task.args)] = task

    def wait(self, timeout: float) -> list[tuple[Any, Any, BaseException | None]]:
        """Block at most `timeout` s for a task to finish -> [(key, result, error)] of every finished task."""
        if not self.tasks:
            time.sleep(max(0.0, timeout))
            return []
        done, _ = cf.wait(list(self.tasks), timeout=max(0.0, timeout), return_when=cf.FIRST_COMPLETED)
        out, broken = [], False
        self.running()  # note which tasks workers held, before a broken pool fails them all
        for f in done:
            task = self.tasks[f]
            try:
                out.append((task.key, f.result(), None))
            except cf.process.BrokenProcessPool:
                broken = True
                continue  # stays in self.tasks: submitted again below
            except BaseException as exc:  # noqa: BLE001 (a worker's error is the caller's to report)
                out.append((task.key, None, exc))
            del self.tasks[f]
        if broken:
            out += self._replace_dead_pool()
        return out

    def _replace_dead_pool(self) -> list[tuple[Any, Any, BaseException | None]]:
        """New workers for every unfinished task; those that were running get a crash counted."""
        todo = list(self.tasks.values())
        self.kill()
        self.tasks, self.restarts = {}, self.restarts + 1
        self._start()
        failed = []
        for t in todo:
            t.crashes += t.started is not None
            if t.crashes >= MAX_CRASHES:
                failed.append((t.key, None, WorkerDied(f"its worker process died {t.crashes} times")))
            else:
                self._submit(t)
        return failed

    def running(self) -> list[tuple[Any, float]]:
        """(key, seconds running) of the tasks that workers hold, longest first."""
        now = time.monotonic()
        by_key = {t.key: t for t in self.tasks.values()}
        while not self.started.empty():
            key = self.started.get()
            if key in by_key and by_key[key].started is None:  # (a finished task's report may come late)
                by_key[key].started = now
        ages = [(t.key, now - t.started) for t in self.tasks.values() if t.started is not None]
        return sorted(ages, key=lambda ka: -ka[1])

    def restart(self, drop: set) -> None:
        """Kill every worker, start new ones and submit the unfinished tasks again, except those in `drop`."""
        todo = [t for t in self.tasks.values() if t.key not in drop]
        self.kill()
        self.tasks, self.restarts = {}, self.restarts + 1
        self._start()
        for t in todo:
            self._submit(t)

    def pids(self) -> list[int]:
        """The worker processes' ids (for a last-resort os.kill that takes no lock)."""
        return list(getattr(self.pool, "_processes", None) or {})

    def kill(self) -> None:
        """Cancel queued tasks and SIGKILL the workers; returns without waiting for any task (nor the queue's
        feeder thread, which a killed reader could block)."""
        # The executor has no public handle on its processes; `_processes` (pid -> Process) has been there
        # since Python 3.2. Taken before shutdown, which may drop it.
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                p.kill()
            except (OSError, ValueError):  # already gone
                pass
        for p in procs:
            p.join(KILL_JOIN_S)
        self.started.close()
