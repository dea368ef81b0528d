"""The set-up script behind `make book` / `make test` fails with a message that names the problem."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_venv.sh"


def run_script(tmp_path: Path, python: str) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    return subprocess.run(
        ["bash", str(SCRIPT), python, str(tmp_path / ".venv")], cwd=tmp_path, capture_output=True, text=True
    )


def test_missing_interpreter_is_named(tmp_path):
    result = run_script(tmp_path, str(tmp_path / "no-python-here"))
    assert result.returncode != 0
    assert "no-python-here' not found" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_too_old_python_is_refused_before_anything_is_created(tmp_path):
    fake = tmp_path / "python3.8"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.8.10"; fi\nexit 1\n')
    fake.chmod(0o755)
    result = run_script(tmp_path, str(fake))
    assert result.returncode != 0
    assert "Python 3.10 or newer is required, found Python 3.8.10" in result.stderr
    assert not (tmp_path / ".venv").exists()
