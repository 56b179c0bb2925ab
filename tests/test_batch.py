"""Bulk synthesis (`lina.batch`) on the tiny random model: each id written once across torchrun's ranks,
a cut run resumed without duplicates, voices mixed in a batch as each alone, bad lines failed in words."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from tqdm import tqdm

from lina.batch import Inputs, Options, Runner, main, prepare
from lina.batch_plan import Job, Row, pack, rank_of, read_jobs, read_manifest
from lina.tts import LinaTTS
from lina.voice import Voice

ROOT = Path(__file__).resolve().parents[1]
MODEL = ["--model", "tiny-random", "--no-watermark", "--max-seconds", "1.5"]
TEXTS = ["Hello there.", "The boats came in early today.", "Twelve of them.", "A record for this time of year.",
         "I counted eleven.", "Then we agree, mostly.", "One more line to read.", "And the last one."]


def _voice(tts, seed):
    c, gen = tts.model.cfg, torch.Generator().manual_seed(seed)
    return Voice(torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_k_dim, generator=gen),
                 3 * torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_v_dim, generator=gen), 1.0,
                 model_id=tts.model_id)


@pytest.fixture(scope="module")
def tts():
    return LinaTTS.from_pretrained("tiny-random", device="cpu", watermark=False)


@pytest.fixture(scope="module")
def inputs(tts, tmp_path_factory):
    """-> folder with voices/v1..v3 and jobs.jsonl: 8 good jobs over 3 voices and none, then 3 bad lines."""
    folder = tmp_path_factory.mktemp("batch")
    (folder / "voices").mkdir()
    for seed in (1, 2, 3):
        _voice(tts, seed).save(folder / "voices" / f"v{seed}.safetensors")
    lines = [json.dumps({"id": f"job{i}", "text": t, "voice": [None, "v1", "v2", "v3"][i % 4]})
             for i, t in enumerate(TEXTS)]
    lines += [json.dumps({"id": "nobody", "text": "Hi there.", "voice": "unknown"}),
              json.dumps({"id": "mute", "text": "?! ..."}), "{not json"]
    (folder / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _ok(out: Path) -> dict[str, list[dict]]:
    """id -> its ``ok`` manifest lines over every rank's file."""
    seen: dict[str, list[dict]] = {}
    for path in out.glob("manifest-*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line) if line.endswith("}") else {"status": "torn"}
            if entry["status"] == "ok":
                seen.setdefault(entry["id"], []).append(entry)
    return seen


def test_jobs_are_read_shared_and_packed():
    ids = [f"chapter-{i}" for i in range(1000)]
    shares = np.bincount([rank_of(i, 4) for i in ids], minlength=4)
    assert shares.sum() == 1000 and shares.min() > 200          # every id to one rank, about evenly
    assert [rank_of(i, 4) for i in ids] == [rank_of(i, 4) for i in ids]
    rows = [Row(Job(f"j{i}", t, f"v{i % 3}"), 0, t, f"v{i % 3}") for i, t in enumerate(TEXTS)]
    batches = pack(rows, 3)
    assert [len(b) for b in batches] == [3, 3, 2]
    lengths = [len(r.text) for b in batches for r in b]
    assert lengths == sorted(lengths)                           # similar lengths share a batch ...
    assert len({r.voice for r in batches[0]}) > 1               # ... whatever their voices
    cloned = [Row(Job("c", "Hi.", prompt="a.wav", transcript="A."), 0, "Hi.", None)]
    assert len(pack(rows + cloned, 16)) == 2                    # one batch continues one prompt only


def test_bad_lines_are_reasons(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"id": "a", "text": "Hi."}\n\n[1]\n{"id": "../x", "text": "Hi."}\n'
                    '{"id": "a", "text": "Again."}\n{"id": "b", "text": "Hi.", "seed": "x"}\n'
                    '{"id": "c", "text": "Hi.", "prompt": "me.wav"}\n')
    jobs, bad = read_jobs(path)
    assert [j.id for j in jobs] == ["a"]
    assert [(b.id, b.reason.split(": ", 1)[1]) for b in bad] == [
        ("line-3", "the line is not a JSON object"),
        ("line-4", "the id must be letters, digits, '.', '-' or '_' (at most 200, no leading dot)"),
        ("a", "the id is used by an earlier line"), ("b", "seed must be an integer"),
        ("c", "a prompt clip needs its transcript")]


def test_torchrun_two_ranks_write_every_id_once(inputs, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "lina.batch",
           "--jobs", str(inputs / "jobs.jsonl"), "--out", str(out), "--voices", str(inputs / "voices"),
           "--batch-size", "3", *MODEL]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    ok = _ok(out)
    assert sorted(ok) == sorted(f"job{i}" for i in range(len(TEXTS)))
    assert all(len(lines) == 1 and lines[0]["rank"] == rank_of(i, 2) for i, lines in ok.items())
    assert {e["rank"] for lines in ok.values() for e in lines} == {0, 1}   # both ranks worked
    for job_id, (entry,) in ok.items():
        info = soundfile.info(str(out / f"{job_id}.wav"))
        assert (info.samplerate, info.subtype) == (24_000, "PCM_16")
        assert abs(info.duration - entry["duration"]) < 1e-3 and entry["tokens"] > 0
    failed = {i: e["reason"] for i, e in read_manifest(out).items() if e["status"] == "failed"}
    assert failed == {"nobody": "voice 'unknown': no such voice file or preset",
                      "mute": "nothing speakable in the text", "line-11": "line 11: the line is not valid JSON"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"]["files"] == len(TEXTS) and summary["total"]["failed"] == 3
    assert [r["rank"] for r in summary["ranks"]] == [0, 1] and summary["total"]["tokens_per_second"] > 0
    assert "rank all: 8 files, 3 failed" in run.stdout
    assert not list(out.glob(".*"))                                      # no temporary file left


def test_a_cut_run_resumes_without_duplicates(inputs, tmp_path):
    out = tmp_path / "out"
    args = ["--jobs", str(inputs / "jobs.jsonl"), "--out", str(out), "--voices", str(inputs / "voices"),
            "--batch-size", "2", *MODEL]
    main([*args, "--max-jobs", "3"])                      # stops after 3 files, as a kill would
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    assert len(first) == 3
    with open(out / "manifest-0.jsonl", "a") as f:          # and a line torn by the kill
        f.write('{"id": "job7", "sta')
    main(args)
    ok = _ok(out)
    assert sorted(ok) == sorted(f"job{i}" for i in range(len(TEXTS)))
    assert all(len(lines) == 1 for lines in ok.values())                 # none written twice
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav") if p.name in first} == first
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"]["skipped"] == 3 and summary["total"]["files"] == len(TEXTS) - 3


def test_a_killed_run_resumes(inputs, tmp_path):
    """A real SIGKILL while files are being written, then the same command: each id written once."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lina.batch", "--jobs", str(inputs / "jobs.jsonl"), "--out", str(out),
           "--voices", str(inputs / "voices"), "--batch-size", "1", *MODEL]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.wav"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    before = len(_ok(out))
    assert 1 <= before < len(TEXTS)                          # killed mid-run
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ok = _ok(out)
    assert sorted(ok) == sorted(f"job{i}" for i in range(len(TEXTS))) and all(len(v) == 1 for v in ok.values())
    assert f"{before} already done" in run.stdout


def test_mixed_voices_in_one_batch_sound_as_each_alone(tts, inputs, tmp_path):
    jobs = [Job(f"m{i}", TEXTS[i], [None, "v1", "v2", "v3"][i % 4]) for i in range(4)]
    jobs.append(Job("same-text", TEXTS[0], "v1"))            # m0's sentence in another voice
    greedy = Options(top_k=1, max_seconds=1.5, batch_size=4, writers=2)   # two writer threads

    def run(subset, out):
        """-> {id: (audio [S] as read back, codes [T] of each sentence)}"""
        out.mkdir()
        runner = Runner(tts, out, Inputs(tts, inputs / "voices", inputs), greedy)
        codes, finish = {}, runner.finish
        runner.finish = lambda p: (codes.__setitem__(p.job.id, [r.codes for r in p.rows.values()]), finish(p))
        with tqdm(disable=True) as progress:
            runner.run(subset, progress)
        return {j.id: (soundfile.read(out / f"{j.id}.wav")[0], codes[j.id]) for j in subset}

    mixed = run(jobs, tmp_path / "mixed")
    alone = {}
    for job in jobs:
        alone |= run([job], tmp_path / job.id)
    for job in jobs:
        (wav, codes), (wav1, codes1) = mixed[job.id], alone[job.id]
        assert [c.tolist() for c in codes] == [c.tolist() for c in codes1], job.id
        assert len(wav) == len(wav1) and np.abs(wav - wav1).max() < 2e-3, job.id  # 16-bit rounding only
    assert mixed["m0"][1][0].tolist() != mixed["same-text"][1][0].tolist()    # the voice is heard
    inputs_ = Inputs(tts, inputs / "voices", inputs)
    for job in jobs:   # the reference: one synthesize call per job
        ref = tts.synthesize(job.text, voice=inputs_.voice(job.voice), top_k=1, max_seconds=1.5).audio[0]
        assert len(ref) == len(mixed[job.id][0]) and np.abs(ref - mixed[job.id][0]).max() < 2e-3, job.id


def test_a_chapter_is_planned_by_paragraph(tts, inputs):
    chapter = "\n\n".join(" ".join(f"Sentence {p}.{s} is here." for s in range(40)) for p in range(3))
    prepared = prepare(tts, Inputs(tts, None, inputs), Job("ch", chapter))
    assert len(prepared.sentences) == 120                   # past one request's 64-sentence limit
    assert prepared.pauses[39] == 0.5 and prepared.pauses[0] == 0.25 and prepared.pauses[-1] == 0.0


def _bash_snippets() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- snippet:(\w+) -->\s*```bash\n(.*?)```", text, re.S))


@pytest.mark.skipif(not (ROOT / "assets" / "lina-mini" / "config.json").is_file(), reason="no embedded model")
def test_readme_bulk_snippets_run_as_written(tmp_path):
    """The README's commands, in a folder laid out as the repository root: the embedded model and presets,
    watermark on (the library default); the torchrun commands then find every id written."""
    from lina.watermark import detect_watermark

    for name in ("assets", "voices"):
        (tmp_path / name).symlink_to(ROOT / name)
    snippets = _bash_snippets()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NODES": "1", "HEAD": "127.0.0.1"}
    for name in ("bulk", "bulk_hosts"):
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", snippets[name]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        if name == "bulk":   # the first command wrote both, torchrun's ranks skipped them
            assert "rank all: 2 files, 0 failed, 0 already done" in run.stdout, run.stdout
        assert "rank all: 0 files, 0 failed, 2 already done" in run.stdout, run.stdout
    out = tmp_path / "out" / "bulk"
    entries = read_manifest(out)
    assert sorted(entries) == ["harbour", "news-01"] and all(e["status"] == "ok" for e in entries.values())
    for job_id, entry in entries.items():
        audio, rate = soundfile.read(out / f"{job_id}.wav")
        assert rate == 24_000 and len(audio) / rate == pytest.approx(entry["duration"], abs=1e-3)
        assert entry["duration"] > 1.0 and detect_watermark(out / f"{job_id}.wav").present


def test_gpu_bench_smoke_on_the_cpu(tmp_path):
    """lab.bench.batch_speed's three modes on the tiny model: what lab/scripts/gpu_batch_bench.sh runs on the H200."""
    from lab.bench.batch_speed import main as bench

    result = bench(["--model", "tiny-random", "--device", "cpu", "--jobs", "3", "--voices", "2", "--loop-jobs", "1",
                    "--batch-size", "2", "--row-seconds", "0.5", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "batch_speed.json").read_text()) == result
    for mode in ("mixed", "one_voice"):
        assert result[mode]["files"] == 3 and result[mode]["tokens"] > 0 and result[mode]["audio_s"] > 0
    assert result["loop"]["jobs"] == 1 and result["mixed_vs_loop"] > 0 and result["watermark"] is False


def test_out_of_memory_halves_the_batch_and_an_error_fails_only_its_jobs(tts, inputs, tmp_path, monkeypatch):
    jobs = [Job(f"o{i}", t, "v1") for i, t in enumerate(TEXTS[:4])] + [Job("boom", "Explode here please.")]
    real, sizes = tts.generate_rows, []

    def flaky(rows, voices, **kw):
        sizes.append(len(rows))
        if len(rows) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        if rows == ["Explode here please."]:
            raise RuntimeError("the kernel gave up")
        return real(rows, voices, **kw)

    monkeypatch.setattr(tts, "generate_rows", flaky)
    runner = Runner(tts, tmp_path, Inputs(tts, inputs / "voices", inputs), Options(max_seconds=1.0, batch_size=4))
    with tqdm(disable=True) as progress:
        stats = runner.run(jobs, progress)
    assert sizes[:3] == [4, 2, 1] and max(sizes[3:]) <= 2        # 4 -> 2 -> 1 row per call
    assert stats.files == 4 and stats.failed == 1
    assert read_manifest(tmp_path)["boom"]["reason"] == "generation failed: the kernel gave up"


@pytest.mark.gpu
def test_batch_on_cuda_with_the_apps_back_end(inputs, tmp_path):
    """On a GPU: the back end `auto` picks, the batch size from free memory, every job written."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from lina.batch import auto_batch_size

    gpu = LinaTTS.from_pretrained("tiny-random", device="cuda", watermark=False)
    assert gpu.backend.name.startswith("cuda-graph")
    assert 1 <= auto_batch_size(gpu, 8.0) <= 256
    jobs, _ = read_jobs(inputs / "jobs.jsonl")
    runner = Runner(gpu, tmp_path, Inputs(gpu, inputs / "voices", inputs), Options(max_seconds=1.5))
    with tqdm(disable=True) as progress:
        stats = runner.run(jobs, progress)
    assert stats.files == len(TEXTS) and stats.failed == 2 and stats.tokens > 0


def test_prompt_clips_continue_in_their_own_batch(tts, inputs, tmp_path):
    t = np.arange(48_000) / 24_000
    clip = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    soundfile.write(tmp_path / "me.wav", clip, 24_000)
    jobs = [Job("cloned", "Twelve boats came in.", prompt="me.wav", transcript="This is me speaking."),
            Job("plain", "Twelve boats came in."), Job("lost", "Hi there.", prompt="gone.wav", transcript="Gone.")]
    sizes = []
    real = tts.generate_rows

    def spy(rows, voices, **kw):
        sizes.append((len(rows), kw["prompt"] is not None, kw["prefix"]))
        return real(rows, voices, **kw)

    runner = Runner(tts, tmp_path, Inputs(tts, None, tmp_path), Options(top_k=1, max_seconds=1.0, batch_size=8))
    runner.tts = type("Spy", (), {"__getattr__": lambda self, name: getattr(tts, name), "generate_rows": staticmethod(spy)})()
    with tqdm(disable=True) as progress:
        stats = runner.run(jobs, progress)
    assert sorted(sizes) == [(1, False, ""), (1, True, "This is me speaking.")]   # one batch per prompt
    assert stats.files == 2 and (tmp_path / "cloned.wav").is_file()
    assert read_manifest(tmp_path)["lost"]["reason"].startswith("prompt clip 'gone.wav': ")
