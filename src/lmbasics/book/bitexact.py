"""Bit-exact notebook outputs: the pinned CPU kernels, and which machines can reproduce them.

The committed outputs of the training chapters were made with `PINNED_KERNELS` in the environment
(read by torch and MKL when they load). Under the pins they are bit-exact on Linux x86-64 CPUs with
AVX2 and the pinned torch, and `pytest --nbval` compares every output there ("strict"). Elsewhere (Apple
silicon and other ARM CPUs, x86 without AVX2, another torch) the last digits of the cells tagged
`kernel-dependent` differ: there `pytest --nbval` runs "portable", checking those cells by their
asserts instead of by their output. `LMBASICS_NBVAL` chooses: `auto` (the default) decides from the
machine, `strict` or `portable` force a mode.

This module imports neither torch nor the rest of lmbasics, so that the repository's `conftest.py`
can load it and set the pins before torch starts.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, MutableMapping
from importlib import metadata
from pathlib import Path

# Read by torch and MKL when they load: torch's portable (non-vectorised) ATen kernels, and MKL's
# AVX2 code path, which gives the same bits on every x86-64 CPU with AVX2 (Intel and AMD alike).
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX2"}
# The torch the committed outputs were made with (requirements.txt pins the same; a test checks).
PINNED_TORCH = "2.13.0"
MODE_VARIABLE = "LMBASICS_NBVAL"
MODES = ("auto", "strict", "portable")
# The cell tag of outputs that change with the CPU's kernels (scripts/kernel_dependence.py writes it).
KERNEL_DEPENDENT_TAG = "kernel-dependent"


def apply_pins(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each of `PINNED_KERNELS` that `environ` (default `os.environ`) lacks or has empty.

    A value the caller set is kept (`make robustness`'s variants, a reader's experiment). Returns, per
    variable, where its value now comes from: "pinned here" or "set by the caller"."""
    env = os.environ if environ is None else environ
    origin = {}
    for name, value in PINNED_KERNELS.items():
        if env.get(name, "").strip():
            origin[name] = "set by the caller"
        else:
            env[name] = value
            origin[name] = "pinned here"
    return origin


def kernels_pinned(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether `environ` (default `os.environ`) holds exactly `PINNED_KERNELS`."""
    env = os.environ if environ is None else environ
    return all(env.get(name) == value for name, value in PINNED_KERNELS.items())


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags from `/proc/cpuinfo` (Linux); None when the file has none."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


def _torch_version() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def bit_exact_blockers(
    system: str | None = None,
    machine: str | None = None,
    flags: Iterable[str] | None = None,
    torch_version: str | None = None,
) -> list[str]:
    """Why this machine cannot reproduce the committed bits; empty when it can.

    Each argument defaults to this machine's value (`platform`, `/proc/cpuinfo`, the installed torch)."""
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    torch_version = _torch_version() if torch_version is None else torch_version
    blockers = []
    if system != "Linux":
        blockers.append(f"{system or 'unknown OS'}, not Linux")
    if machine.lower() not in ("x86_64", "amd64"):
        blockers.append(f"{machine or 'unknown'} CPU, not x86-64")
    elif system == "Linux":
        found = cpu_flags() if flags is None else set(flags)
        if found is None:
            blockers.append("CPU flags unreadable in /proc/cpuinfo")
        elif "avx2" not in found:
            blockers.append("CPU without AVX2")
    if (torch_version or "").split("+")[0] != PINNED_TORCH:
        blockers.append(f"torch {torch_version or 'not installed'}, not {PINNED_TORCH}")
    return blockers


def requested_mode(environ: MutableMapping[str, str] | None = None) -> str:
    """The mode `LMBASICS_NBVAL` asks for ('auto' when unset or empty); ValueError for anything else."""
    env = os.environ if environ is None else environ
    raw = env.get(MODE_VARIABLE, "").strip()
    mode = raw.lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE} must be one of {', '.join(MODES)} (or unset, meaning auto), got {raw!r}")
    return mode


def nbval_mode(environ: MutableMapping[str, str] | None = None, blockers: list[str] | None = None) -> str:
    """'strict' or 'portable': `LMBASICS_NBVAL` if it forces one, else strict exactly when the machine
    can be bit-exact (`bit_exact_blockers()` is empty, or `blockers` when given)."""
    mode = requested_mode(environ)
    if mode != "auto":
        return mode
    return "portable" if (bit_exact_blockers() if blockers is None else blockers) else "strict"
