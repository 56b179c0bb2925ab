"""Where a codes folder keeps a split: ``DIR/{split}.jsonl.gz`` (the manifest rows) and
``DIR/{split}.codes.npy`` (their codec ids), and how its manifest is read.

Its own module so that `data` (batching) and `phonemes` (the phoneme cache) both read a folder from
below instead of from each other.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path


def manifest_path(root: Path, split: str) -> Path:
    return root / f"{split}.jsonl.gz"


def codes_path(root: Path, split: str) -> Path:
    return root / f"{split}.codes.npy"


def read_manifest(root: str | Path, split: str) -> list[dict]:
    """The rows of ``root/{split}.jsonl.gz`` (one JSON object a line)."""
    with gzip.open(manifest_path(Path(root), split), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
