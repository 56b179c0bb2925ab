"""The Space's path as a visitor meets it: every endpoint timed through `LinaTTS`, first call and steady.

    python -m lab.bench.space_path                          # CUDA, random weights of the released size
    python -m lab.bench.space_path --model embedded --device cpu --tune-steps 10   # this CPU, lina-mini
    python -m lab.bench.space_path --model tiny-random --device cpu --quick        # seconds (tests)

One command runs three fresh processes, as ZeroGPU does: ``cold`` loads the model and runs the app's
warm-up (`lina_app.warmup`) on an empty kernel cache (``--cache``, default ``$OUT/kernel-cache``);
``measure`` starts again with that cache on disk, warms up (timed: what a restarted Space pays before
"ready"), then times each endpoint's first call and its steady state (best of ``--repeats`` more):
synthesize at batch 1/4/8/32 (sentences x candidates), clone with a 10 s prompt, stream's first audio,
tune_voice on 4 clips of 8 s. On CUDA it also times the harness's best decoder (`GraphDecoder` with a
compiled step) on the same bfloat16 weights at batch 1 and 8: the bar the product path is held to.
Writes ``$OUT/space_path.json`` (+ ``space_path.md``); each phase rewrites its own JSON after every row.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SENTENCE = "This sentence is read aloud by the benchmark, number {}."
BATCHES = (1, 4, 8, 32)              # rows = sentences x candidates; 32 = 8 sentences x 4 candidates
ROW_SECONDS = 8.0                    # cap of each row: 600 tokens (random weights rarely stop earlier)
PROMPT_SECONDS, CLIP_SECONDS, N_CLIPS = 10.0, 8.0, 4
HARNESS_STEPS = 600
PHASE_SECONDS = {"cold": 480, "measure": 480}   # each fresh process is stopped after this (--cold-seconds ...)


def _bundle(args):
    from lina.pretrained import resolve
    if args.model != "random-released":
        return resolve(str(Path("assets/lina-mini")) if args.model == "embedded" else args.model)
    import torch

    from lab.bench.common import released_size
    from lina.codec import Codec, CodecConfig
    from lina.model import LinaModel
    from lina.pretrained import Bundle, character_tokenizer
    torch.manual_seed(0)
    # The released WavTokenizer's layout (4096 codes) with random weights, as the released checkpoint is
    # not on this machine; the released model size (lab.bench.common.released_size).
    return Bundle(LinaModel(released_size()).eval(), character_tokenizer(), Codec(CodecConfig()).eval(),
                  "random-released-size", "-", "random weights of the released size")


def _tone(seconds: float, rate: int, freq: float = 200.0):
    import numpy as np
    t = np.arange(int(seconds * rate)) / rate
    return rate, (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _sync(tts):
    import torch
    if tts.device.type == "cuda":
        torch.cuda.synchronize(tts.device)


def endpoints(tts, args) -> dict:
    """name -> (call, tokens it generates or None); each call is what the app's engine calls."""
    rate, cap = tts.sample_rate, args.row_seconds

    def synth(batch):
        sentences, candidates = (batch, 1) if batch <= 8 else (8, batch // 8)
        text = " ".join(SENTENCE.format(i + 1) for i in range(sentences))
        return lambda: tts.synthesize(text, candidates=candidates, max_seconds=cap)

    def first_audio():
        chunks = tts.stream(SENTENCE.format(1))
        next(chunks)
        chunks.close()

    clips = [(_tone(CLIP_SECONDS, rate, 150 + 30 * i), SENTENCE.format(i)) for i in range(N_CLIPS)]
    calls = {f"synthesize_b{b}": synth(b) for b in args.batches}
    calls["stream_first_audio"] = first_audio
    calls["clone_10s_prompt"] = lambda: tts.clone(SENTENCE.format(1), _tone(PROMPT_SECONDS, rate), "a prompt clip "
                                                  "of ten seconds, read for the benchmark", max_seconds=cap)
    if args.tune_steps:
        calls[f"tune_voice_{args.tune_steps}_steps"] = lambda: tts.tune_voice(clips, steps=args.tune_steps)
    return calls


def timed(tts, fn) -> tuple[float, object]:
    _sync(tts)
    start = time.perf_counter()
    out = fn()
    _sync(tts)
    return time.perf_counter() - start, out


def harness_rows(tts, batches=(1, 8), steps: int = HARNESS_STEPS) -> list[dict]:
    """`GraphDecoder(compile_step=True)` on the back end's own (bfloat16) copy: tokens/s of decoding alone."""
    import torch

    from lab.bench.common import allow_many_recompiles
    from lina.cuda_graphs import GraphDecoder
    from lina.sampling import SamplingConfig
    allow_many_recompiles()
    model, rows = tts.backend.model, []
    for batch in batches:
        with torch.inference_mode():
            text = torch.randint(3, model.cfg.n_text_vocab, (batch, 60), device=model.device)
            ctx = model.encode_text(text, torch.full((batch,), 60, device=model.device))
            start = time.perf_counter()
            dec = GraphDecoder(model, ctx, model.init_state(batch), None, SamplingConfig(), block=steps,
                               compile_step=True)
            dec.run(4)
            setup = time.perf_counter() - start
            sec, _ = timed(tts, lambda: dec.run(steps - 4))
        rows.append({"batch": batch, "tokens_per_s": round(batch * (steps - 4) / sec), "setup_s": round(setup, 1)})
    return rows


def run_phase(args) -> dict:
    """One fresh process: load, warm up, then (``measure``) every endpoint first and steady."""
    import torch

    from lab.bench.common import Results, device_name
    from lina.tts import LinaTTS
    from lina_app.warmup import warm_up
    torch.manual_seed(0)
    start = time.perf_counter()
    # What a visitor gets includes the watermark, where its package is installed (the GPU image may lack it).
    marked = importlib.util.find_spec("perth") is not None
    tts = LinaTTS(_bundle(args), args.device, args.backend, watermark=marked)
    res = Results(f"space_path_{args.phase}", phase=args.phase, device=device_name(tts.device), model=args.model,
                  model_id=tts.model_id, backend=tts.backend.name, torch=torch.__version__, watermark=marked,
                  load_s=round(time.perf_counter() - start, 2), rows=[])
    sec, parts = (0.0, {}) if args.no_warmup else timed(
        tts, lambda: warm_up(tts, tuning=bool(args.tune_steps) and not args.quick))
    res.data.update(warm_up_s=round(sec, 2), warm_up_parts=parts)
    res.log(f"{args.phase}: load {res.data['load_s']} s, warm-up {sec:.1f} s {parts}")
    if args.phase == "cold":
        return res.done() and res.data
    harness = tts.device.type == "cuda" and not args.quick and bool(args.harness_batches)
    for name, call in endpoints(tts, args).items():
        if harness and name.startswith(("clone", "tune_voice")):  # before the rows that run fla's kernels
            # (prefill, tuning: they autotune on an empty cache), so that a time limit cuts those last
            res.data["harness"], harness = harness_rows(tts, args.harness_batches), False
            res.log("harness", res.data["harness"])
        first, out = timed(tts, call)
        steady = [timed(tts, call) for _ in range(args.repeats)]
        best, best_out = min(steady, key=lambda x: x[0]) if steady else (first, out)
        row = {"what": name, "first_s": round(first, 3), "steady_s": round(best, 3)}
        tokens = getattr(best_out, "tokens", None)
        if isinstance(tokens, int):
            row.update(tokens=tokens, rows=len(best_out.audio) * len(best_out.text),
                       tok_s_first=round(getattr(out, "tokens", 0) / first), tok_s_steady=round(tokens / best),
                       rtf_steady=round(best / max(best_out.duration, 1e-9), 4))
        res.add("rows", row)
        res.log(row)
    if harness:
        res.data["harness"] = harness_rows(tts, args.harness_batches)
        res.log("harness", res.data["harness"])
    res.done()
    return res.data


def table(data: dict) -> str:
    cold = data.get("cold", {})
    lines = [f"{data['device']} · {data['model']} · back end `{data['backend']}` · warm-up: empty cache "
             f"{cold.get('warm_up_s', '-')} s, from the disk cache {data.get('warm_up_s', '-')} s (fresh process)",
             "", "| endpoint | first call after ready (s) | steady (s) | tokens | tok/s first | tok/s steady |",
             "|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        lines.append(f"| {r['what']} | {r['first_s']} | {r['steady_s']} | {r.get('tokens', '')} | "
                     f"{r.get('tok_s_first', '')} | {r.get('tok_s_steady', '')} |")
    for h in data.get("harness", []):
        lines.append(f"| harness GraphDecoder + compiled step, batch {h['batch']} (decode only) | | | | | "
                     f"{h['tokens_per_s']} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="random-released", help="random-released | embedded | tiny-random | folder")
    p.add_argument("--device", default=None, help="(default cuda where available, else cpu)")
    p.add_argument("--backend", default="auto", help="decode back end (lina.backends; default auto)")
    p.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--tune-steps", type=int, default=100, help="0: no voice tuning (row and warm-up)")
    p.add_argument("--no-warmup", action="store_true", help="(short budgets) first calls then include compiling")
    p.add_argument("--harness-batches", type=int, nargs="*", default=[1, 8])
    p.add_argument("--row-seconds", type=float, default=ROW_SECONDS)
    p.add_argument("--repeats", type=int, default=2, help="steady-state calls per endpoint (best is kept)")
    p.add_argument("--cache", default=None, help="kernel cache folder (default $OUT/kernel-cache)")
    p.add_argument("--phase", choices=["all", "cold", "measure"], default="all")
    p.add_argument("--quick", action="store_true", help="no tuning warm-up, no harness (smoke runs)")
    p.add_argument("--cold-seconds", type=float, default=PHASE_SECONDS["cold"],
                   help="limit of the empty-cache warm-up process (what it cached so far stays on disk)")
    p.add_argument("--measure-seconds", type=float, default=PHASE_SECONDS["measure"])
    args = p.parse_args(argv)
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    out = Path(os.environ.get("OUT", "out"))
    from lina_app.warmup import configure_kernel_caches
    os.environ.setdefault("LINA_KERNEL_CACHE", str(Path(args.cache or out / "kernel-cache").resolve()))
    configure_kernel_caches()  # the children inherit the environment: one cache for both phases
    if args.phase != "all":
        return run_phase(args)
    rest = [a for a in argv if not a.startswith("--phase")]
    for phase, limit in (("cold", args.cold_seconds), ("measure", args.measure_seconds)):
        cmd = [sys.executable, "-m", "lab.bench.space_path", *rest, "--phase", phase]
        print("$", " ".join(cmd), flush=True)
        try:
            subprocess.run(cmd, check=False, timeout=limit)
        except subprocess.TimeoutExpired:
            print(f"{phase}: stopped after {limit:g} s (its JSON keeps what it measured)", flush=True)

    def read(name: str) -> dict:
        path = out / f"space_path_{name}.json"
        return json.loads(path.read_text()) if path.exists() else {"missing": str(path)}
    data = read("measure")
    data["cold"] = read("cold")
    data.setdefault("device", "-"), data.setdefault("model", args.model), data.setdefault("backend", "-")
    (out / "space_path.json").write_text(json.dumps(data, indent=2))
    (out / "space_path.md").write_text(table(data) + "\n")
    print(table(data))
    return data


if __name__ == "__main__":
    main()
