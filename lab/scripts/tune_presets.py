#!/usr/bin/env python3
"""Tunes every preset of a voices folder's manifest for one model and writes the states to commit.

The Space then ships them precomputed (no tuning after start-up): each state goes to
``VOICES/states/<model id>/<preset id>.safetensors`` and the manifest (`voices/presets.json`) lists it
under that model id with the key it was tuned for (model id, clips and transcripts, settings), which
the app checks (`lina_app.preset_tuner`). The manifest's own settings are used (100 steps, whole clips),
as on the GPU where this runs; presets whose listed state already has the current key are skipped.

    python lab/scripts/tune_presets.py --model released                  # GPU with Hub access, then commit voices/
    python lab/scripts/tune_presets.py --model embedded --only ava_happy --steps 20 --device cpu

``--model random-released`` (random weights of the released size) with ``--out DIR --no-manifest``
measures the tuning time per preset without touching the folder (`lab/scripts/gpu_preset_tuning.sh`).
``--report FILE`` writes the times as JSON.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lina.tts import LinaTTS  # noqa: E402
from lina_app.preset_cache import KEY_FIELD  # noqa: E402
from lina_app.preset_manifest import MANIFEST, clip_path, preset_key, read_manifest, write_manifest  # noqa: E402
from lina_app.preset_tuner import OFF, PresetTuner, tune_with  # noqa: E402

STATES_DIR = "states"


def load(name: str, device: str) -> LinaTTS:
    if name == "random-released":
        from lab.bench.common import released_size
        from lina.codec import Codec, CodecConfig
        from lina.model import LinaModel
        from lina.pretrained import Bundle, character_tokenizer

        torch.manual_seed(0)
        bundle = Bundle(LinaModel(released_size()).eval(), character_tokenizer(), Codec(CodecConfig()).eval(),
                        "random-released-size", "-", "random weights of the released size")
        return LinaTTS(bundle, device, watermark=False)  # tuning only: the app marks what it serves
    return LinaTTS.from_pretrained(str(ROOT / "assets" / "lina-mini") if name == "embedded" else name, device,
                                   watermark=False)


def _sync(tts: LinaTTS) -> None:
    if tts.device.type == "cuda":
        torch.cuda.synchronize()


def write_report(path: str, tts: LinaTTS, rows: list[dict], t0: float) -> dict:
    report = {"model_id": tts.model_id, "device": str(tts.device),
              "gpu": torch.cuda.get_device_name() if tts.device.type == "cuda" else "", "presets": rows,
              "first_seconds": rows[0]["seconds"] if rows else None,
              "median_seconds": sorted(r["seconds"] for r in rows)[len(rows) // 2] if rows else None,
              "total_seconds": round(time.perf_counter() - t0, 1)}
    if path:
        Path(path).write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="released | embedded | random-released | a model folder")
    p.add_argument("--voices", default=str(ROOT / "voices"), help="folder with presets.json and the clips")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--only", default="", help="comma-separated preset ids (default: all)")
    p.add_argument("--limit", type=int, default=0, help="only the first N presets")
    p.add_argument("--steps", type=int, default=0, help="override the manifest's steps (timing runs)")
    p.add_argument("--out", default="", help="write states here instead of VOICES/states/<model id>")
    p.add_argument("--no-manifest", action="store_true", help="leave presets.json as it is")
    p.add_argument("--app-settings", action="store_true",
                   help="tune as the app does on this device (on a CPU: its bounded steps and crops)")
    p.add_argument("--force", action="store_true", help="tune even presets whose state has the current key")
    p.add_argument("--report", default="", help="JSON file for the times")
    args = p.parse_args(argv)

    folder = Path(args.voices)
    specs = read_manifest(folder)
    wanted = {s for s in args.only.split(",") if s}
    specs = [s for s in specs if not wanted or s.id in wanted][: args.limit or None]
    t0 = time.perf_counter()
    tts = load(args.model, args.device)
    model_id = tts.model_id
    print(f"model {model_id} on {tts.device} ({time.perf_counter() - t0:.1f} s to load): {len(specs)} presets",
          flush=True)
    out = Path(args.out) if args.out else folder / STATES_DIR / re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
    if not args.no_manifest and folder.resolve() not in out.resolve().parents:
        p.error("--out outside the voices folder: add --no-manifest (the manifest lists states inside it)")
    out.mkdir(parents=True, exist_ok=True)
    rows, updated = [], {s.id: s for s in read_manifest(folder)}
    app = PresetTuner(tts, folder, mode=OFF) if args.app_settings else None
    for n, spec in enumerate(specs, 1):
        tuning = app.run_settings(spec, app.clip_seconds(spec))[0] if app else spec.tuning
        tuning = replace(tuning, steps=args.steps) if args.steps else tuning
        spec = replace(spec, tuning=tuning)
        key = preset_key(spec, folder, model_id, tuning.as_dict())
        listed = spec.states.get(model_id)
        if listed and listed["key"] == key and (folder / listed["file"]).is_file() and not args.force:
            print(f"[{n}/{len(specs)}] {spec.id}: state with the current key, kept", flush=True)
            continue
        pairs = [(str(clip_path(c, folder)), c.text) for c in spec.clips]
        losses: list[float] = []
        _sync(tts)
        start = time.perf_counter()
        voice = tune_with(tts, pairs, tuning, spec, lambda step, loss: losses.append(loss))
        _sync(tts)
        seconds = time.perf_counter() - start
        voice.extra = {**voice.extra, KEY_FIELD: key, "preset": spec.id, **tuning.as_dict(),
                       "first_loss": round(losses[0], 4), "final_loss": round(losses[-1], 4),
                       "tuning_seconds": round(seconds, 2)}
        path = out / f"{spec.id}.safetensors"
        voice.save(path)
        rows.append({"id": spec.id, "clips": len(pairs), "steps": tuning.steps, "seconds": round(seconds, 2),
                     "first_loss": voice.extra["first_loss"], "final_loss": voice.extra["final_loss"]})
        print(f"[{n}/{len(specs)}] {spec.id}: {len(pairs)} clips, {tuning.steps} steps, loss {losses[0]:.3f} -> "
              f"{losses[-1]:.3f}, {seconds:.1f} s", flush=True)
        write_report(args.report, tts, rows, t0)  # after each preset: a run cut off by its time limit keeps its times
        if not args.no_manifest:
            rel = path.resolve().relative_to(folder.resolve()).as_posix()
            updated[spec.id] = updated[spec.id].with_state(model_id, rel, key)
            write_manifest(folder / MANIFEST, list(updated.values()))  # after each: a cut-off run keeps its work
    report = write_report(args.report, tts, rows, t0)
    print(json.dumps({k: v for k, v in report.items() if k != "presets"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
