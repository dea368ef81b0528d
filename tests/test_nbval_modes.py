"""`pytest --nbval` as a reader starts it (the repository's conftest.py): pins set whatever the caller's
environment, strict and portable modes. Each test runs pytest in a subprocess on small notebooks:
tests/fixtures/nbval_modes/kernel_dependent.ipynb has one exact output, one tagged `kernel-dependent`
(a softmax's bits, which torch's AVX2 kernel changes) and one assert; broken_claim.ipynb is the same with
an assert that fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmbasics.book.bitexact import MODE_VARIABLE, PINNED_KERNELS, bit_exact_blockers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "nbval_modes"
GOOD = FIXTURES / "kernel_dependent.ipynb"
BROKEN = FIXTURES / "broken_claim.ipynb"


def _pytest_nbval(*args: str, cwd: Path, **env: str) -> tuple[int, dict[str, str], str]:
    """Run `python -m pytest --nbval ARGS` in `cwd` with no pins and no mode in the environment except
    `env`; returns the exit code, each cell's outcome ('<notebook name>::Cell n' -> PASSED/FAILED) and
    the output."""
    environ = {k: v for k, v in os.environ.items() if k not in (*PINNED_KERNELS, MODE_VARIABLE)}
    environ.update(env)
    command = [sys.executable, "-m", "pytest", "--nbval", "-rA", "-p", "no:randomly", *args]
    result = subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    outcomes = {
        f"{Path(path).name}::{cell}": outcome
        for outcome, path, cell in re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+\.ipynb)::(Cell \d+)", output, re.M)
    }
    return result.returncode, outcomes, output


def _cells(name: str, count: int) -> list[str]:
    return [f"{name}::Cell {i}" for i in range(count)]


@pytest.mark.slow
def test_nbval_from_notebooks_dir_without_pins_in_the_environment():
    # A reader who exported nothing, in notebooks/ (pyproject.toml's sanitizer path is relative to the root):
    # the conftest pins the kernels, so the tagged cell gives the committed softmax bits (native kernels
    # would not), and setup_notebook prints no warning in the first cell.
    code, outcomes, output = _pytest_nbval(os.path.relpath(GOOD, ROOT / "notebooks"), cwd=ROOT / "notebooks")
    assert code == 0, output
    assert "lmbasics: CPU kernels ATEN_CPU_CAPABILITY=default (pinned here), MKL_CBWR=AVX2 (pinned here)" in output
    assert [outcomes[c] for c in _cells(GOOD.name, 4)] == ["PASSED"] * 4, output


@pytest.mark.slow
@pytest.mark.skipif(bool(bit_exact_blockers()), reason="the fixture's bits need a bit-exact machine (strict half)")
def test_portable_mode_checks_kernel_dependent_cells_by_their_asserts_only():
    other_kernels = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}  # a CPU the pins do not cover
    # Strict under other kernels: the tagged output differs, and the first cell warns (stderr).
    code, outcomes, output = _pytest_nbval(str(GOOD), cwd=ROOT, **other_kernels, **{MODE_VARIABLE: "strict"})
    assert code == 1
    assert outcomes[f"{GOOD.name}::Cell 2"] == "FAILED"
    assert outcomes[f"{GOOD.name}::Cell 1"] == outcomes[f"{GOOD.name}::Cell 3"] == "PASSED"
    assert outcomes[f"{GOOD.name}::Cell 0"] == "FAILED"  # setup_notebook's warning: stderr
    assert "this run does not use the pinned ones (ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2" in output
    assert "ATEN_CPU_CAPABILITY=avx2 (set by the caller)" in output

    # Portable under the same kernels: every cell passes; a failing assert still fails its cell.
    code, outcomes, output = _pytest_nbval(
        str(GOOD), str(BROKEN), cwd=ROOT, **other_kernels, **{MODE_VARIABLE: "portable"}
    )
    assert code == 1
    assert [outcomes[c] for c in _cells(GOOD.name, 4)] == ["PASSED"] * 4, output
    assert [outcomes[c] for c in _cells(BROKEN.name, 4)] == ["PASSED"] * 3 + ["FAILED"], output
    assert "the largest probability is" in output  # the assert's own message
    assert "lmbasics: nbval mode PORTABLE (LMBASICS_NBVAL=portable: forced)" in output
    assert "2 cells tagged kernel-dependent in 2 notebook(s) ran without output comparison" in output


@pytest.mark.slow
def test_an_unknown_mode_is_a_usage_error():
    code, _, output = _pytest_nbval(str(GOOD), "--collect-only", cwd=ROOT, **{MODE_VARIABLE: "lenient"})
    assert code == 4  # pytest's usage error
    assert "LMBASICS_NBVAL must be one of auto, strict, portable" in output and "'lenient'" in output
