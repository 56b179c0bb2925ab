"""Imported first by the tests that build the app in-process: the environment of scripts/test.sh (no analytics,
no Hub; set before gradio and huggingface_hub are imported), no speech recognizer (an empty transcript is refused
as without one; tests/test_transcription.py switches it on), and the repository root on the path (`import app`)."""
import os
import sys
from pathlib import Path

for _key, _value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                     "HF_HUB_DISABLE_TELEMETRY": "1", "LINA_ASR_MODEL": "none"}.items():
    os.environ.setdefault(_key, _value)

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
