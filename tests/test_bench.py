"""The benchmarks' smoke paths on the CPU (tiny model, a few steps): every entry point runs, writes its
JSON, and the CUDA-graph / compiled-step rows are wired as `GraphDecoder` expects (a CPU stand-in)."""
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from lab.bench import codec_speed, common, latency, latency_timing, lm_speed, throughput
from lina.cuda_graphs import GraphDecoder
from lina.generate import decode
from lina.ops import dispatch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Results under tmp_path; the process-wide switches the benchmarks flip are put back."""
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(dispatch, "_fla_ops", dispatch._fla_ops)
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


class StandIn:
    """`GraphDecoder` on the CPU: checks the call against the real signature, decodes eagerly."""

    calls: ClassVar[list] = []

    def __init__(self, *args, **kwargs):
        inspect.signature(GraphDecoder).bind(*args, **kwargs)
        StandIn.calls.append(kwargs)
        if kwargs.get("compile_step") and StandIn.fail_compiled:
            raise RuntimeError("compile failed (test)")
        model, ctx, state, prompt, sampling = args[:5]
        self.steps = decode(model, ctx, state, prompt, sampling)

    def run(self, n):
        with torch.inference_mode():
            return torch.stack([next(self.steps).tokens for _ in range(n)], 1)

    fail_compiled = False


@pytest.fixture
def stand_in(monkeypatch):
    StandIn.calls, StandIn.fail_compiled = [], False
    monkeypatch.setattr(throughput, "GraphDecoder", StandIn)
    monkeypatch.setattr(latency_timing, "GraphDecoder", StandIn)
    return StandIn


def _json(tmp_path, name):
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_throughput_smoke(tmp_path):
    data = throughput.main(["--smoke"])
    assert data == _json(tmp_path, "throughput") and data["complete"]
    for entry in data["batches"] + data["lengths"]:
        assert entry["gla_eager"]["tokens_per_s"] > 0 and entry["sa_eager"]["tokens_per_s"] > 0
    assert [e["tokens"] for e in data["lengths"]] == [4, 6] and data["lengths"][1]["from_batch_table"]
    assert "| batch |" in throughput.tables(data)


def test_throughput_graph_rows(tmp_path, stand_in, monkeypatch):
    """Compiled-step rows reach GraphDecoder with compile_step=True (and use_fla for the fla ones); a row
    that fails is recorded and the others still run; the length table uses the best decoder."""
    monkeypatch.setattr(throughput, "fla_installed", lambda: True)
    stand_in.fail_compiled = True
    data = throughput.main(["--smoke", "--no-sa", "--name", "tp", "--batches", "2", "--lengths", "3",
                            "--gla", "gla_graph", "gla_graph_fla", "gla_graph_compile", "gla_graph_compile_fla"])
    kinds = {(c["use_fla"], c["compile_step"]) for c in stand_in.calls}
    assert kinds == {(False, False), (True, False), (False, True), (True, True)}
    row = data["batches"][0]
    assert row["gla_graph"]["tokens_per_s"] > 0 and row["gla_graph_fla"]["tokens_per_s"] > 0
    assert "error" in row["gla_graph_compile"] and "error" in row["gla_graph_compile_fla"]
    assert data["length_gla"] == [throughput.best_gla(row)]
    assert data["lengths"][0][data["length_gla"][0]]["tokens_per_s"] > 0
    assert _json(tmp_path, "tp")["complete"]


def test_throughput_time_budget_skips_rows(tmp_path):
    data = throughput.main(["--smoke", "--max-seconds", "0", "--lengths"])
    assert all("skipped" in e["gla_eager"] and "skipped" in e["sa_eager"] for e in data["batches"])
    assert data["complete"]


def test_latency_smoke_with_graph_modes(tmp_path, stand_in):
    data = latency.main(["--smoke", "--modes", "eager", "graph", "compile"])
    assert data == _json(tmp_path, "latency") and data["complete"]
    assert [r["mode"] for r in data["steps"]] == ["eager", "graph", "compile"]
    assert all(r["ms_per_token"] > 0 and r["first_audio_s"] > 0 for r in data["steps"])
    assert any(c["compile_step"] for c in stand_in.calls)
    assert data["prefill"]["parallel_s"] > 0 and data["prefill"]["token_by_token_s"] > 0
    assert [r["use_fla"] for r in data["ist"]] == [False] and data["ist"][0]["total_s"] > 0
    assert "IST" in latency.tables(data)


def test_codec_and_lm_speed_smoke(tmp_path):
    report = codec_speed.main(["--smoke"])
    assert report["config"]["dim"] == 32 and (tmp_path / "codec_gpu.json").exists()
    assert all(r.get("audio_seconds_per_second", 1) > 0 for r in report["results"])
    result = lm_speed.main(["--smoke"])
    assert [r["batch"] for r in result["rows"]] == [1, 2] and (tmp_path / "lm_speed.json").exists()


def test_fla_modes():
    """``step`` keeps fla's step kernel and computes sequences with the PyTorch chunked form."""
    fake_step = object()

    def original():
        return "fla chunk", fake_step
    saved = list(common._ORIGINAL_FLA_OPS)
    common._ORIGINAL_FLA_OPS[:] = [original]
    try:
        common.set_fla("step")
        chunk, step = dispatch._fla_ops()
        assert step is fake_step and chunk is common._chunk_in_torch
        with common.fla_mode("none"):
            assert dispatch._fla_ops() is None
        assert dispatch._fla_ops()[1] is fake_step
        common.set_fla("all")
        assert dispatch._fla_ops() == ("fla chunk", fake_step)
    finally:
        common._ORIGINAL_FLA_OPS[:] = saved
    from lina.ops.gla import gla_chunked
    q, k, g = (torch.randn(1, 9, 2, 4) for _ in range(3))
    v, s0 = torch.randn(1, 9, 2, 8), torch.randn(1, 2, 4, 8)
    g = torch.nn.functional.logsigmoid(g)
    o1, s1 = common._chunk_in_torch(q, k, v, g, scale=0.5, initial_state=s0, output_final_state=True)
    o2, s2 = gla_chunked(q, k, v, g, s0, 0.5)
    assert torch.equal(o1, o2) and torch.equal(s1, s2)


def test_gpu_bench_script(tmp_path):
    """Parses, lists its phases, and a DRY run of a phase hands the bench valid arguments."""
    script = ROOT / "lab" / "scripts" / "gpu_bench.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run(["bash", str(script), "help"], capture_output=True, text=True, check=True).stdout
    for phase in ("check", "latency", "latency_fla", "throughput1", "throughput2", "codec"):
        assert phase in out
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # python3 of this interpreter
    env = {**os.environ, "DRY": "1", "OUT": str(tmp_path), "PATH": path}
    run = subprocess.run(["bash", str(script), "throughput2"], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "'batches': [64, 256]" in run.stdout and "'lengths': [500, 1500, 3000]" in run.stdout
    assert (tmp_path / "throughput2.log").exists()


@pytest.mark.slow
def test_cpu_embedded_smoke(tmp_path):
    if not (ROOT / "assets" / "lina-mini").is_dir():
        pytest.skip("assets/lina-mini is absent")
    from lab.bench import cpu_embedded
    result = cpu_embedded.main(["--smoke", "--model", str(ROOT / "assets" / "lina-mini")])
    assert result["smoke"] and result["runs"][0]["rows"][0]["rtf"] > 0


def test_report_tables_and_plot(tmp_path, stand_in):
    """lab.bench.report reads what the smoke runs write (and the CPU results file), prints every table, marks
    what was not measured, judges the targets, and draws a small PNG."""
    from lab.bench import report
    throughput.main(["--smoke", "--no-sa", "--name", "throughput1", "--batches", "1", "--lengths"])
    throughput.main(["--smoke", "--name", "throughput2", "--batches", "2", "--lengths", "4", "6"])
    latency.main(["--smoke", "--parts", "decode", "ist"])
    stand_in.fail_compiled = True
    latency.main(["--smoke", "--parts", "decode", "--modes", "eager", "compile", "--name", "check_latency"])
    codec_speed.main(["--smoke"])
    cpu = ROOT / "lab" / "bench" / "results" / "cpu_embedded.json"
    if cpu.exists():
        (tmp_path / "cpu_embedded.json").write_text(cpu.read_text())
    (tmp_path / "latency_fla.json").write_text("{not json")  # a broken file is reported and skipped
    png, md = tmp_path / "plots" / "speed.png", tmp_path / "report.md"
    text = report.main(["--results", str(tmp_path), "--out-md", str(md), "--plot", str(png)])
    assert md.read_text() == text + "\n"
    for title in ("Throughput vs batch", "Length at batch 64", "Batch-1 latency", "Time to first audio",
                  "Prefill", "IST", "Codec decode speed", "GPU check", "Targets"):
        assert f"### {title}" in text
    assert "| 256 | not measured |" in text and "| 3000 | 64 | not measured |" in text  # rows the smoke runs lack
    assert "| 2 | 6 | " in text and "| 4 | 2 | gla_eager |" in text  # throughput2 rows, merged with throughput1
    assert "not measured (no prefill row in latency{,_fla}.json)" in text  # latency ran without its prefill part
    assert "failed: RuntimeError: compile failed (test)" in text
    assert "| IST 100 steps <= 5 s |" in text and "(smoke run)" in text
    assert all(len({line.count("|") for line in block.splitlines() if line.startswith("|")}) <= 1
               for block in text.split("\n\n"))  # every table row has its header's columns
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 150_000
    if cpu.exists():
        assert "| CPU real-time factor <= 0.5 | 0." in text and "### Embedded model on the CPU" in text


def test_report_without_results(tmp_path):
    from lab.bench import report
    text = report.main(["--results", str(tmp_path), "--plot", str(tmp_path / "p.png")])
    assert text.count("| not measured |") == 7 and (tmp_path / "p.png").exists()


def test_floor_bytes_by_hand():
    """lab.bench.floor on a tiny config, every byte counted by hand (and the weights against the modules)."""
    from lab.bench import floor
    from lab.bench.sa_baseline import SADecoder
    from lina.config import LinaConfig
    from lina.model import LinaModel

    cfg = LinaConfig(d_model=8, n_layer=1, n_heads=2, gate_low_rank=2, n_codebook=5, text_layers=1, text_heads=2)
    # GLA block: norms 4*8, q k 2*8*8, v g 2*8*16, gate 8*2 + 2*8+8, o 16*8, convs 32*4, out norm 8,
    # SwiGLU 8*20+20 + 10*8+8 = 988; 3 blocks + cross q 8*8+8, ln_q 16, head 8*8 = 3116 params
    assert floor.gla_block_params(cfg) == 988 and floor.gla_weight_params(cfg) == 3116
    model = LinaModel(cfg)
    ca = model.cross_attention
    read = [*model.encoder, *model.decoder, ca.pos_net, ca.q, ca.ln_q, model.head]
    assert sum(p.numel() for m in read for p in m.parameters()) == 3116
    sa = SADecoder(cfg)
    assert floor.sa_weight_params(cfg) == 1860 == sum(p.numel() for p in sa.parameters()) - sa.embed.weight.numel()
    # per row: recurrent 3 layers * 2 heads * 4 * 8 * 4 B, read + written = 1536; conv windows
    # 3 * (8+8+16) * 3 * 2 B, twice = 1152; text 4 * 5 tokens * 8 * 2 B = 320; embedding row 16
    gla = floor.step_bytes(cfg, "torch.bfloat16", batch=2, tokens=3, text_tokens=5)
    assert (gla["recurrent"], gla["conv"], gla["text"], gla["embedding"]) == (1536, 1152, 320, 16)
    assert gla["weights"] == 6232 and gla["total"] == 6232 + 2 * 3024
    # SA, 3 tokens: a position is 3 blocks * K,V * 8 * 2 B = 96; read (3+1)/2 positions on average, append one;
    # text K, V 2 * 5 * 8 * 2 = 160
    sa_b = floor.step_bytes(cfg, "bfloat16", batch=2, tokens=3, model="sa", text_tokens=5)
    assert (sa_b["kv_read"], sa_b["kv_append"], sa_b["text"]) == (192, 96, 160)
    assert sa_b["total"] == 3720 + 2 * 464
    f = floor.floor(cfg, "bfloat16", 2, 3, "gla", bandwidth=1e6, text_tokens=5)
    assert f["ms_per_step"] == pytest.approx(12.28) and f["tokens_per_s"] == pytest.approx(2 / 0.01228)
    assert floor.floor(cfg, "bfloat16", 1, 3)["bandwidth"] == floor.FALLBACK_BANDWIDTH
    assert floor.bandwidth_of({"latency": {"bandwidth_gbs": 2000.0}})[0] == 2e12
    assert floor.config_of({"config": cfg.to_dict()}) == cfg and floor.config_of(None).d_model == 1024
    assert "| 256 | 3000 |" in floor.main([])
