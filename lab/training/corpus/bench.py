"""Render speed per engine (seconds of audio per CPU second, engine subprocesses included) and the
speech rate (seconds per character) that calibrates the manifest's duration estimates."""
from __future__ import annotations

import resource
import time

import numpy as np

from . import engines
from .generate import SAMPLE_RATE, render_row
from .manifest import EDGE_SILENCE_S, utterance_seed
from .speakers import inventory_v2
from .styles import STYLES, style

BENCH_TEXTS = (
    "the committee will meet again on thursday to discuss the budget.",
    "he said nothing, but the look on his face told us everything we needed to know.",
    "in the spring the river rises and floods the low meadows beside the old mill, where the children play.",
    "why would anyone leave the door open on such a cold night?",
    "and god said, let there be light: and there was light.",
    "a good listener is not only popular everywhere, but after a while he gets to know something.",
)


def _cpu() -> float:
    return time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + \
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime


def bench(per_engine: int = 6, seed: int = 0) -> dict:
    """Render `per_engine` utterances per engine (speakers spread over base and derived ones, styles
    cycling) in this process, one at a time."""
    speakers = inventory_v2(seed)  # v1's engines and kokoro
    report: dict = {}
    for engine in engines.ENGINES:
        if not engines.available(engine):
            report[engine] = "not installed"
            continue
        pool = [s for s in speakers if s.engine == engine]
        picks = [pool[(i * 7) % len(pool)] for i in range(per_engine)]
        if engine == "piper":
            engines.piper_engine()  # model load is a one-off per worker, not per utterance
        if engine == "kokoro":
            from .engines_kokoro import kokoro_engine

            kokoro_engine()
        audio_s = cpu_s = 0.0
        rates, per_style = [], {}
        for i, spk in enumerate(picks):
            text = BENCH_TEXTS[i % len(BENCH_TEXTS)]
            st = STYLES[(i // 2) % len(STYLES)] if i % 2 else "neutral"  # every other one styled
            uid = f"{spk.id}_{st}_bench{i}"
            row = {"id": uid, "spk": spk.to_dict(), "style": st, "text": text, "seed": utterance_seed(seed, uid)}
            c0 = _cpu()
            audio = render_row(row)
            c = _cpu() - c0
            dur = len(audio) / SAMPLE_RATE
            audio_s += dur
            cpu_s += c
            per_style.setdefault(st, [0.0, 0.0])
            per_style[st][0] += dur
            per_style[st][1] += c
            speech = dur - 2 * EDGE_SILENCE_S
            rates.append(speech * spk.tempo * style(st).tempo / len(text))
        report[engine] = {"utterances": len(picks), "audio_s": round(audio_s, 2), "cpu_s": round(cpu_s, 3),
                          "audio_s_per_cpu_s": round(audio_s / max(cpu_s, 1e-9), 2),
                          "per_style_audio_s_per_cpu_s": {k: round(a / max(c, 1e-9), 2) for k, (a, c) in per_style.items()},
                          "seconds_per_char": round(float(np.median(rates)), 4)}
    return report
