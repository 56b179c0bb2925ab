"""Offline evaluation of Lina-Speech: intelligibility, speaker similarity, quality, codec fidelity.

Every tool here works without network access once ``requirements-eval.txt`` is installed (the app
itself needs none of it). One concern per module:

- ``audio``: resampling and level helpers shared by the metrics (16 kHz mono float32 for all tools);
- ``asr``: ``transcribe`` with faster-whisper: tiny.en by default, or base by name (CTranslate2 models
  shipped in PyPI packages);
- ``scoring``: text normalization for scoring, ``wer`` and ``cer`` (jiwer);
- ``speaker``: ``speaker_similarity`` (resemblyzer GE2E cosine, *not comparable with WavLM Sim-O*);
- ``quality``: ``dnsmos`` (speechmos) and the ``silence`` / runaway flags;
- ``signal``: PESQ-wb, STOI and mel-cepstral distance for codec round-trips;
- ``references``: deterministic reference speech from flite / espeak-ng (cached);
- ``testlist``: the JSON test-list format and the built-in QUICK / TEST lists;
- ``runner``: the evaluation cases (plain TTS, prompt continuation, IST, preset voices, upper bounds);
- ``report``: aggregation, thresholds, ``results.json`` and ``results.md``;
- ``golden``: golden-sample drift check for the app.

Entry point: ``python -m lab.evaluate --model tiny-random --split quick --out DIR``.
"""
from importlib import import_module

# The metrics API, importable from here (``from lab.eval import wer, transcribe``); loaded lazily.
_API = {
    "transcribe": "asr", "ToolUnavailable": "asr",
    "wer": "scoring", "cer": "scoring", "normalize_for_scoring": "scoring",
    "speaker_similarity": "speaker", "speaker_embedding": "speaker", "SIMILARITY_LABEL": "speaker",
    "dnsmos": "quality", "check_silence": "quality", "is_silent": "quality", "is_runaway": "quality",
    "pesq_wb": "signal", "stoi": "signal", "mcd": "signal", "codec_roundtrip_metrics": "signal",
    "TestList": "testlist", "Utterance": "testlist",
    "EvalConfig": "runner", "evaluate": "runner",
    "write_goldens": "golden", "check_goldens": "golden",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(f"lab.eval.{_API[name]}"), name)
    raise AttributeError(f"module 'lab.eval' has no attribute {name!r}")
