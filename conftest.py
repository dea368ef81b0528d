"""Pytest set-up for the whole repository: the pinned CPU kernels, and nbval's strict or portable mode.

pytest loads this file before any test module and before nbval starts a notebook kernel, however it is
started (`pytest`, `python -m pytest`, `make test`; from the repository root or from `notebooks/`).

Pins. Each of `lmbasics.PINNED_KERNELS` that the environment lacks (or has empty) is set here, before
torch loads in this process; nbval's kernel (`--nbval-current-env`) inherits this environment, so the
notebooks run pinned as well. A value the caller set is kept: `make robustness`'s variants and a reader
who exports another kernel on purpose get what they asked for (the header says so).

Mode (`LMBASICS_NBVAL`: auto, strict or portable; `lmbasics.book.bitexact`). Strict compares every
output, as committed. Portable, for machines that cannot reproduce the committed bits (auto picks it
off Linux x86-64 with AVX2 and the pinned torch), still runs every cell and compares every output except
those of cells tagged `kernel-dependent` (scripts/kernel_dependence.py measures which): they are
checked by their asserts only, through nbval's own per-cell switch (what `nbval-ignore-output` sets).
The resolved mode is written back to `LMBASICS_NBVAL`, where the kernels' `setup_notebook` reads it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent


def _load_bitexact() -> ModuleType:
    """lmbasics/book/bitexact.py, loaded by path: importing the package would load torch before the pins."""
    spec = importlib.util.spec_from_file_location(
        "_lmbasics_bitexact", ROOT / "src" / "lmbasics" / "book" / "bitexact.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bitexact = _load_bitexact()
PIN_ORIGIN = bitexact.apply_pins()  # before anything imports torch
BLOCKERS = bitexact.bit_exact_blockers()
try:
    REQUESTED = bitexact.requested_mode()
    MODE = bitexact.nbval_mode(blockers=BLOCKERS)
    MODE_ERROR = None
    os.environ[bitexact.MODE_VARIABLE] = MODE  # what setup_notebook reads in the notebook kernels
except ValueError as error:
    REQUESTED = MODE = ""
    MODE_ERROR = str(error)

_relaxed: list[str] = []  # node ids of the cells whose output portable mode does not compare


def pytest_configure(config: pytest.Config) -> None:
    if MODE_ERROR:
        raise pytest.UsageError(MODE_ERROR)
    # pyproject.toml names the sanitizer file relative to the repository root; find it from notebooks/ too.
    sanitize = getattr(config.option, "nbval_sanitize_with", None)
    if sanitize and not Path(sanitize).is_file() and (config.rootpath / sanitize).is_file():
        config.option.nbval_sanitize_with = str(config.rootpath / sanitize)


def _nbval_active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def pytest_report_header(config: pytest.Config) -> list[str]:
    kernels = ", ".join(f"{name}={os.environ[name]} ({PIN_ORIGIN[name]})" for name in bitexact.PINNED_KERNELS)
    lines = [f"lmbasics: CPU kernels {kernels}"]
    why = f"{bitexact.MODE_VARIABLE}={REQUESTED}" if REQUESTED != "auto" else "auto"
    if MODE == "strict":
        line = f"lmbasics: nbval mode strict ({why}): every notebook output is compared with the committed one"
        if not bitexact.kernels_pinned():
            line += "; the kernels are not the pins, so outputs of kernel-dependent cells will differ"
    else:
        reasons = "; ".join(BLOCKERS) if REQUESTED == "auto" else "forced"
        line = (
            f"lmbasics: nbval mode PORTABLE ({why}: {reasons}): outputs of cells tagged "
            f"{bitexact.KERNEL_DEPENDENT_TAG} are not compared, their asserts still run; every other output is "
            "compared"
        )
    lines.append(line)
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Portable mode: nbval checks no output for cells tagged kernel-dependent (the cell still runs)."""
    if MODE != "portable" or not _nbval_active(config):
        return
    from nbval.plugin import IPyNbCell

    for item in items:
        if isinstance(item, IPyNbCell) and bitexact.KERNEL_DEPENDENT_TAG in item.cell.metadata.get("tags", []):
            item.options["check"] = False  # nbval's switch for nbval-ignore-output
            _relaxed.append(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A differing notebook output gets a note on what it means in the current mode."""
    report = yield
    if report.when != "call" or not report.failed or "Cell outputs differ" not in str(report.longrepr):
        return report
    tags = getattr(item, "cell", {}).get("metadata", {}).get("tags", [])
    if MODE == "portable":
        note = (
            f"Portable mode compares this output because the cell is not tagged {bitexact.KERNEL_DEPENDENT_TAG}: "
            "it should be exact on every machine. If only the last digits of floating-point numbers differ, "
            "the tag is missing; please report it with your machine (scripts/kernel_dependence.py)."
        )
    elif bitexact.KERNEL_DEPENDENT_TAG in tags and not bitexact.kernels_pinned():
        kernels = " ".join(f"{name}={os.environ[name]}" for name in bitexact.PINNED_KERNELS)
        note = (
            f"This output depends on the CPU's kernels, and this run does not use the pinned ones ({kernels}, "
            "set by the caller): unset them to compare, or run with "
            f"{bitexact.MODE_VARIABLE}=portable."
        )
    elif bitexact.KERNEL_DEPENDENT_TAG in tags:
        note = (
            "This output depends on the CPU's kernels. It is bit-exact under the pins on Linux x86-64 with AVX2 "
            f"and torch {bitexact.PINNED_TORCH}; if only the last digits differ, this machine is not one of "
            f"those: run with {bitexact.MODE_VARIABLE}=portable (README, 'Running the tests')."
        )
    else:
        return report
    report.sections.append((f"lmbasics: nbval mode {MODE}", note))
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if MODE == "portable" and _nbval_active(config):
        notebooks = len({nodeid.split("::")[0] for nodeid in _relaxed})
        terminalreporter.write_line(
            f"lmbasics portable mode: {len(_relaxed)} cells tagged {bitexact.KERNEL_DEPENDENT_TAG} in "
            f"{notebooks} notebook(s) ran without output comparison (asserts only)"
        )
