"""Offline evaluation: ``python -m lab.evaluate --model tiny-random --split quick --out eval-out``.

Writes ``results.json`` and ``results.md`` (WER, CER, speaker similarity, DNSMOS, runaway and
empty shares, real-time factor per case, with the test clips themselves and their codec round-trips
as upper bounds). With thresholds (``--max-wer 0.5`` ...) it exits 1 when a model case misses one:
usable as a CI gate on a real model. Needs ``pip install -r requirements-eval.txt`` and, for the
built-in lists, ``apt-get install flite`` (see ``scripts/eval_setup.sh``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from lab.eval.asr import ASR_MODELS, DEFAULT_ASR, asr_model
from lab.eval.report import Thresholds
from lab.eval.runner import CASES, METRICS, EvalConfig

# IST is the costly case on CPU (released-size model: ~35 s per step on 7 s of clips), hence one
# speaker and 3 steps in quick mode: enough to catch a broken tuning path, not to judge cloning.
QUICK_DEFAULTS = {"ist_steps": 3, "ist_seconds": 8.0, "ist_speakers": 1}
TEST_DEFAULTS = {"ist_steps": 100, "ist_seconds": 60.0, "ist_speakers": None}


def _csv(choices):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(x.strip() for x in text.split(",") if x.strip())
        bad = [x for x in items if x not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(choices)}")
        return items
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="tiny-random", help='"tiny-random", "released", or a model folder')
    p.add_argument("--split", choices=("quick", "test"), default="quick",
                   help="built-in list (quick: CI, a few utterances; test: the full built-in list)")
    p.add_argument("--testlist", type=Path, help="a lina-testlist JSON manifest (e.g. the corpus test split); "
                                                 "overrides --split's list, keeps its defaults")
    p.add_argument("--out", type=Path, required=True, help="output folder (results.json, results.md, audio/)")
    p.add_argument("--cache", type=Path, help="folder for regenerated reference clips "
                                              "(default $LINA_EVAL_CACHE or ~/.cache/lina-eval)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", type=_csv(CASES), default=CASES, help=f"subset of {','.join(CASES)}")
    p.add_argument("--metrics", type=_csv(METRICS), default=METRICS, help=f"subset of {','.join(METRICS)}")
    p.add_argument("--asr", choices=tuple(ASR_MODELS), default=DEFAULT_ASR,
                   help="speech recognizer of the asr metric (WERs of different ones are not comparable)")
    p.add_argument("--max-speakers", type=int, help="keep the first N speakers")
    p.add_argument("--max-utterances", type=int, help="keep at most N test sentences per speaker")
    p.add_argument("--ist-steps", type=int, help="IST optimizer steps (quick 3, test 100)")
    p.add_argument("--ist-seconds", type=float, help="enrollment audio per speaker for IST (quick 8, test 60)")
    p.add_argument("--ist-speakers", type=int, help="tune voices for the first N speakers only (quick 1, test all)")
    p.add_argument("--max-seconds", type=float, help="cap of one generated sentence (default: the API's)")
    p.add_argument("--voices", type=Path, default=Path("voices"), help="preset voice folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (0: torch's default). 1 gives the same samples on every machine and "
                        "is the fastest on a busy 2-core machine")
    p.add_argument("--ist-voices", type=Path, help="score pre-tuned voices of this folder in the ist case "
                   "(one per test speaker, metadata extra.speaker; e.g. lab/scripts/make_presets.py --only-test) "
                   "instead of tuning here")
    p.add_argument("--no-audio", action="store_true", help="do not write the generated audio under OUT/audio")
    g = p.add_argument_group("thresholds (exit 1 when a model case misses one)")
    g.add_argument("--max-wer", type=float)
    g.add_argument("--max-cer", type=float)
    g.add_argument("--min-sim", type=float, help="minimum speaker similarity (resemblyzer cosine)")
    g.add_argument("--min-dnsmos", type=float)
    g.add_argument("--max-runaway", type=float, help="maximum share of outputs without EOS (0..1)")
    g.add_argument("--max-empty", type=float, help="maximum share of silent/empty outputs (0..1)")
    return p


def tool_versions() -> dict:
    from importlib import metadata

    from lab.eval.references import engine_version

    versions = {}
    asr_packages = [pkg for m in ASR_MODELS.values() for pkg in m.packages]
    for pkg in ("torch", "faster-whisper", "ctranslate2", *asr_packages, "jiwer", "resemblyzer",
                "speechmos", "onnxruntime", "librosa", "pesq", "pystoi"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["flite"] = engine_version("flite")
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=False,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch

    from lab.eval import report
    from lab.eval.runner import evaluate
    from lab.eval.testlist import BUILTIN, TestList
    from lina.tts import LinaTTS

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tests = TestList.load(args.testlist) if args.testlist else BUILTIN[args.split]
    tests = tests.limited(max_tests=args.max_utterances, max_speakers=args.max_speakers)
    defaults = QUICK_DEFAULTS if args.split == "quick" else TEST_DEFAULTS
    cfg = EvalConfig(seed=args.seed, cases=args.cases, metrics=args.metrics, asr_model=args.asr,
                     ist_steps=args.ist_steps or defaults["ist_steps"],
                     ist_seconds=args.ist_seconds or defaults["ist_seconds"],
                     ist_speakers=args.ist_speakers or defaults["ist_speakers"],
                     max_seconds=args.max_seconds, voices_dir=args.voices, cache_dir=args.cache,
                     ist_voices_dir=args.ist_voices,
                     audio_dir=None if args.no_audio else args.out / "audio")
    tts = LinaTTS.from_pretrained(args.model, device=args.device, watermark=False)  # the model, not the mark
    result = evaluate(tts, tests, cfg)
    limits = Thresholds(args.max_wer, args.max_cer, args.min_sim, args.min_dnsmos, args.max_runaway, args.max_empty)
    run_info = {"model": args.model, "model_id": tts.model_id, "model_description": tts.description,
                "testlist": tests.name, "testlist_description": tests.description, "seed": args.seed,
                "cases": list(cfg.cases), "metrics": list(cfg.metrics),
                "asr": args.asr, "asr_description": asr_model(args.asr).description, "ist_steps": cfg.ist_steps,
                "ist_seconds": cfg.ist_seconds, "ist_speakers": cfg.ist_speakers, "ist_voices": str(args.ist_voices or ""), "max_seconds": cfg.max_seconds, "device": args.device, "torch_threads": torch.get_num_threads(),
                "git_commit": git_commit(), "tools": tool_versions()}
    data = report.build(result, run_info, limits, total_seconds=time.perf_counter() - start)
    js, md = report.write(data, args.out)
    print(md.read_text(encoding="utf-8").split("\n## Utterances")[0])
    print(f"wrote {js} and {md} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if limits.any and not data["passed"]:
        failed = [f"{c['case']} {c['metric']}={c['value']} (limit {c['limit']})" for c in data["checks"] if not c["ok"]]
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
