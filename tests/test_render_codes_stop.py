"""render_codes on the GPU host must end on time whatever its workers do, keeping the rows it finished.

A fake engine (module-level, so spawned workers can import it) returns half a second of noise at once, or
sleeps for an hour for rows named "hang": the run must give those up (stuck_s), stop at --max-seconds and on
SIGINT within seconds, with the finished rows in its shards; shards of another codec are refused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lab.training.corpus import manifest, render_codes
from lab.training.corpus.codes_shards import OtherCodec, done_ids
from lab.training.corpus.kokoro_render import row_chunks, validation_pieces_first

CODEC = "assets/lina-mini/codec"
RATE = 24_000
HANG_S = 3_600
# Slack on this 2-core test machine: spawning workers (~1.5 s of imports each) and the CPU codec's save.
SLACK_S = 20.0
MARKERS = "RENDER_STOP_TEST_MARKERS"  # a folder where the fake engine notes each hanging row it starts


def fake_render(row: dict) -> tuple[str, np.ndarray]:
    if "crash" in row["id"]:
        os._exit(1)  # as a worker killed by the OOM killer or a crash in an engine
    if "hang" in row["id"]:
        if os.environ.get(MARKERS):
            (Path(os.environ[MARKERS]) / row["id"]).touch()
        time.sleep(HANG_S)
    rng = np.random.default_rng(len(row["id"]))
    return row["id"], (0.1 * rng.standard_normal(RATE // 2)).astype(np.float32)


def _rows(tmp_path, fast: int, hang: int, validation: int = 0):
    rows = [{"id": f"fast{i}", "split": "validation" if i < validation else "train", "spk": {"engine": "fake"}}
            for i in range(fast)]
    rows += [{"id": f"hang{i}", "split": "train", "spk": {"engine": "fake"}} for i in range(hang)]
    path = tmp_path / "rows.jsonl"
    manifest.write_jsonl(path, rows[::-1])  # train rows first in the file: validation must still come first
    return [path]


def _run(tmp_path, manifests, **kw):
    kw = {"device": "cpu", "jobs": 2, "log": lambda _: None, "render_fn": fake_render, **kw}
    return render_codes.run(manifests, tmp_path / "codes", CODEC, **kw)


def test_stuck_rows_are_given_up_and_the_rest_is_rendered(tmp_path):
    t0 = time.monotonic()
    report = _run(tmp_path, _rows(tmp_path, fast=5, hang=2, validation=2), stuck_s=2.0)
    assert report["rows_given_up"] == 2 and report["rows_failed"] == 0
    assert report["rows_done"] == 5 and report["stopped"] is None
    assert done_ids(tmp_path / "codes") == {f"fast{i}" for i in range(5)}
    assert time.monotonic() - t0 < 2.0 + 3 * SLACK_S  # two pool starts


def test_a_worker_that_dies_costs_only_its_row(tmp_path):
    manifests = _rows(tmp_path, fast=4, hang=0, validation=4)
    rows = manifest.read_jsonl(manifests[0]) + [{"id": "crash0", "split": "train", "spk": {"engine": "fake"}}]
    manifest.write_jsonl(manifests[0], rows)
    lines = []
    report = _run(tmp_path, manifests, log=lines.append)
    assert report["rows_failed"] == 1 and report["rows_done"] == 4
    assert any(line.startswith("row failed: crash0: its worker process died 2 times") for line in lines), lines


def test_max_seconds_saves_the_finished_rows_and_returns_on_time(tmp_path):
    lines = []
    t0 = time.monotonic()
    report = _run(tmp_path, _rows(tmp_path, fast=3, hang=4, validation=3), max_seconds=6.0, drain_s=1.0,
                  log=lines.append)
    took = time.monotonic() - t0
    assert report["stopped"] == "time"
    assert took < 6.0 + 1.0 + SLACK_S, took
    done = done_ids(tmp_path / "codes")
    assert done <= {f"fast{i}" for i in range(3)} and report["rows_this_call"] == len(done)  # no hanging row
    assert any(line.startswith("stopping (time)") for line in lines)


def _when_workers_hang(markers: Path, count: int, then) -> threading.Thread:
    """Call `then` once `count` workers sit in hanging rows: every row before them is finished by then."""
    def watch():
        while len(list(markers.iterdir())) < count:
            time.sleep(0.1)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sigint_saves_and_returns_within_seconds(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS, str(markers))
    before = signal.getsignal(signal.SIGINT)
    sent = {}

    def interrupt():
        sent["at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # `timeout` signals the process, then its group: twice

    _when_workers_hang(markers, 2, interrupt)
    report = _run(tmp_path, _rows(tmp_path, fast=3, hang=4, validation=3), max_seconds=600.0)
    assert time.monotonic() - sent["at"] < SLACK_S
    assert report["stopped"] == "signal SIGINT"
    assert done_ids(tmp_path / "codes") == {f"fast{i}" for i in range(3)}
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_shards_of_another_codec_are_refused(tmp_path):
    manifests = _rows(tmp_path, fast=2, hang=0)
    _run(tmp_path, manifests)
    shard = next((tmp_path / "codes" / "shards").glob("*.npz"))
    with np.load(shard) as data:
        other = {k: data[k] for k in data.files}
    np.savez(shard, **{**other, "codes_id": np.array("0123456789abcdef")})
    with pytest.raises(OtherCodec, match="0123456789abcdef"):
        _run(tmp_path, manifests)
    with pytest.raises(OtherCodec):
        render_codes.finalize(manifests, tmp_path / "codes", CODEC)


def test_validation_rows_and_pieces_come_first():
    rows = [{"id": "a", "split": "train"}, {"id": "b", "split": "validation"}, {"id": "c", "split": "train"}]
    assert [r["id"] for r in render_codes.validation_first(rows)] == ["b", "a", "c"]
    piece_row = np.array([0, 0, 1, 2, 2, 2, 3])
    keep, rank = validation_pieces_first(np.arange(7), piece_row, np.array([0, 0, 0, 1, 1, 1, 0], bool))
    assert keep.tolist() == [3, 4, 5, 0, 1, 2, 6] and rank.tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert [sorted(set(piece_row[keep[c]].tolist())) for c in row_chunks(rank, rows_per_chunk=1)] == [[2], [0], [1], [3]]


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")
def test_command_under_timeout_sigint_exits_with_its_rows_saved(tmp_path):
    """As on the GPU host: `timeout -s INT` signals the process and its group (the workers too)."""
    from lab.training.corpus import speakers

    spk = speakers.by_id(speakers.inventory(0))["espeak-en-us-m1"]
    rows = [{"id": f"espeak-en-us-m1_neutral_t{i}", "speaker": spk.id, "engine": "espeak", "split": "train",
             "spk": spk.to_dict(), "style": "neutral", "text": "a short sentence, read again and again.",
             "seed": i, "duration": 0.0} for i in range(200)]
    manifest.write_jsonl(tmp_path / "rows.jsonl", rows)
    proc = subprocess.Popen([sys.executable, "-m", "lab.training.corpus.render_codes", "run", "--manifest",
                             str(tmp_path / "rows.jsonl"), "--codec", CODEC, "--out", str(tmp_path / "codes"),
                             "--device", "cpu", "--jobs", "2", "--max-seconds", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()  # said once the signal handlers are in place and the workers start
        assert first.startswith("rendering 200 rows"), first + proc.stderr.read()
        time.sleep(4)
        t0 = time.monotonic()
        for _ in range(2):  # what `timeout -s INT` does: the process, then its whole group (workers included)
            os.kill(proc.pid, signal.SIGINT)
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - t0 < SLACK_S
    assert proc.returncode == 0, err[-2000:]
    assert "stopping (signal SIGINT)" in out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["rows_this_call"] == len(done_ids(tmp_path / "codes")) < len(rows)
    time.sleep(1)  # (the resource tracker leaves once it reads the end of its pipe)
    left = subprocess.run(["pgrep", "-a", "-s", str(proc.pid)], capture_output=True, text=True).stdout.splitlines()
    left = [line for line in left if "<defunct>" not in line]  # zombies (no init reaps them here) hold no pipe
    assert left == [], left  # no worker left holding the call's output pipe


def test_the_watchdog_ends_a_stuck_call_on_time_and_after_a_signal():
    """The main thread never polls here (as when a GPU batch hangs): the deadline still fires, once."""
    from lab.training.corpus.stopping import StopFlag

    fired = []
    start = time.monotonic()
    stop = StopFlag(start, max_seconds=0.5, drain_s=0.3, hard_exit_s=0.4, on_hard_exit=lambda: fired.append(time.monotonic()))
    try:
        time.sleep(2.0)
    finally:
        stop.restore()
    assert len(fired) == 1 and 1.2 - 0.05 <= fired[0] - start < 1.2 + 0.6
    fired.clear()
    stop = StopFlag(time.monotonic(), max_seconds=None, drain_s=0.3, hard_exit_s=0.5,
                    on_hard_exit=lambda: fired.append(time.monotonic()))
    try:
        sent = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.5)
    finally:
        stop.restore()
    assert stop.reason == "signal SIGINT" and len(fired) == 1 and 0.45 <= fired[0] - sent < 1.2


def test_the_heartbeat_names_what_holds_the_main_thread():
    from lab.training.corpus.stopping import Heartbeat

    lines = []
    beat = Heartbeat(lines.append, every=0.3, status=lambda: "12 rows done", check_s=0.1)
    beat.doing("in a Kokoro batch")
    time.sleep(1.5)
    beat.stop()
    assert lines and lines[0].startswith("still in a Kokoro batch after") and lines[0].endswith("; 12 rows done")
