"""What `pip install .` ships: the library with the files it reads beside its code, not the Space, not the lab."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """Built from a copy of the tracked files: an in-tree build would leave build/ behind, whose stale files
    a later build may pack."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    shipped_or_not = ["pyproject.toml", "requirements.txt", "lina", "lina_app", "app.py", "lab"]
    tracked = subprocess.run(["git", "ls-files", *shipped_or_not], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split()
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("lina_speech-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_ships_the_library_and_its_data_files(wheel_names):
    assert "lina/__init__.py" in wheel_names and "lina/tts.py" in wheel_names
    # The C step compiles from this source at run time; without it an installed copy runs the slower fused step.
    assert "lina/ops/native_step.c" in wheel_names


def test_the_wheel_leaves_the_space_and_the_lab_out(wheel_names):
    assert not any(name.startswith(("lina_app/", "app.py", "tests/", "lab/")) for name in wheel_names)
    assert not any(name.startswith(("lina/training/", "lina/eval/")) for name in wheel_names)
