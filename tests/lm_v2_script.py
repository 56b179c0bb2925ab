"""lab/scripts/gpu_lm_v2.sh run dry on this machine: the script, the codec its tests take the codes id of,
and one call of it with the environment a test gives (its folders stand in for the GPU host's)."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "lab/scripts/gpu_lm_v2.sh"
CODEC = ROOT / "assets/lina-mini/codec"


def run_script(*args: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=120)
