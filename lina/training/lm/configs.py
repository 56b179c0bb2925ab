"""Model presets of the training runs: ``mini`` (the embedded lina-mini) and ``tiny`` (tests).

``mini`` must speak in real time on a 2-core CPU: 75 codec frames per second of audio means one
`LinaModel.step` at batch 1 in under 13.3 ms, and we aim at about half of that for a shared machine.
TIMINGS_PLACEHOLDER
"""
from __future__ import annotations

from lina.config import LinaConfig

# Shared by every preset: the codec's 4096 codes (WavTokenizer) and the 256-id BPE.
N_CODEBOOK = 4096
N_TEXT_VOCAB = 256

MINI = LinaConfig(d_model=384, n_layer=4, n_heads=4, text_layers=4, text_heads=4,
                  n_text_vocab=N_TEXT_VOCAB, n_codebook=N_CODEBOOK)
# Seconds-long CPU tests: the smallest widths the model accepts, a 256-code codec (lina.pretrained's
# tiny random codec) and a short position table.
TINY = LinaConfig(d_model=32, n_layer=1, n_heads=2, text_layers=1, text_heads=2, gate_low_rank=4,
                  n_text_vocab=N_TEXT_VOCAB, n_codebook=256, max_text_len=256, pos_kernel=5)

PRESETS: dict[str, LinaConfig] = {"mini": MINI, "tiny": TINY}


def preset(name: str) -> LinaConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; presets: {sorted(PRESETS)}") from None
