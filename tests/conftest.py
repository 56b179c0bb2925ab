"""Shared fixtures: the reference checkpoints and outputs of the original code in ../shared/reference."""
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of the reference fixtures; tests that need it skip, with the reason, when it is absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference fixtures not found at {REFERENCE_DIR} (they sit beside the repo in CI)")
    return REFERENCE_DIR
