"""What every benchmark shares: where results go."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_result(name: str, result: dict) -> Path:
    """Writes ``result`` as ``$OUT/<name>.json`` (``OUT`` defaults to ./out) and returns the path."""
    out = Path(os.environ.get("OUT", "out"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
