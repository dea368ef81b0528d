"""lmbasics.book.bitexact: the pins, which machines can be bit-exact, and the nbval mode."""

import os
import re
import warnings
from pathlib import Path

import pytest
import torch

from lmbasics.book.bitexact import (
    MODE_VARIABLE,
    PINNED_KERNELS,
    PINNED_TORCH,
    apply_pins,
    bit_exact_blockers,
    cpu_flags,
    kernels_pinned,
    nbval_mode,
    requested_mode,
)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = dict(system="Linux", machine="x86_64", flags={"sse2", "avx", "avx2", "fma"}, torch_version="2.13.0+cpu")


def test_apply_pins_fills_only_what_the_caller_left_unset():
    env = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": " "}
    assert apply_pins(env) == {"ATEN_CPU_CAPABILITY": "set by the caller", "MKL_CBWR": "pinned here"}
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
    assert not kernels_pinned(env)
    empty: dict[str, str] = {}
    apply_pins(empty)
    assert empty == PINNED_KERNELS and kernels_pinned(empty)


def test_this_pytest_process_runs_the_pinned_or_the_callers_kernels():
    # The root conftest.py sets the pins (unless the caller set them) before tests/conftest.py imports torch.
    assert all(os.environ.get(name) for name in PINNED_KERNELS)
    assert torch.backends.cpu.get_cpu_capability() == os.environ["ATEN_CPU_CAPABILITY"].upper()
    assert os.environ[MODE_VARIABLE] in ("strict", "portable")  # resolved once, for the notebook kernels


def test_only_linux_x86_64_with_avx2_and_the_pinned_torch_can_be_bit_exact():
    assert bit_exact_blockers(**REFERENCE) == []
    assert bit_exact_blockers(**{**REFERENCE, "system": "Darwin", "machine": "arm64"}) == [
        "Darwin, not Linux",
        "arm64 CPU, not x86-64",
    ]
    assert bit_exact_blockers(**{**REFERENCE, "machine": "aarch64"}) == ["aarch64 CPU, not x86-64"]
    assert bit_exact_blockers(**{**REFERENCE, "flags": {"sse2", "avx"}}) == ["CPU without AVX2"]
    assert bit_exact_blockers(**{**REFERENCE, "torch_version": "2.5.1"}) == ["torch 2.5.1, not 2.13.0"]


def test_cpu_flags_come_from_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "fma"}
    info.write_text("processor\t: 0\nFeatures\t: fp asimd\n")  # an ARM kernel's layout
    assert cpu_flags(info) is None
    assert cpu_flags(tmp_path / "missing") is None


def test_the_mode_variable_forces_a_mode_and_rejects_anything_else():
    assert requested_mode({}) == "auto" and requested_mode({MODE_VARIABLE: ""}) == "auto"
    assert nbval_mode({MODE_VARIABLE: "Portable"}, blockers=[]) == "portable"
    assert nbval_mode({MODE_VARIABLE: "strict"}, blockers=["arm64 CPU, not x86-64"]) == "strict"
    assert nbval_mode({}, blockers=[]) == "strict"
    assert nbval_mode({MODE_VARIABLE: "auto"}, blockers=["CPU without AVX2"]) == "portable"
    with pytest.raises(ValueError, match=re.escape("LMBASICS_NBVAL must be one of auto, strict, portable")):
        nbval_mode({MODE_VARIABLE: "exact"})


def test_pinned_torch_is_the_one_requirements_txt_installs():
    pins = re.findall(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    assert pins == [PINNED_TORCH]


def test_setup_notebook_is_silent_in_portable_mode(monkeypatch):
    from lmbasics import setup_notebook

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.delenv("LMBASICS_SEED_OFFSET", raising=False)
    monkeypatch.setenv(MODE_VARIABLE, "portable")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup_notebook(0, num_threads=1)
    monkeypatch.setenv(MODE_VARIABLE, "strict")
    with pytest.warns(UserWarning, match="CPU kernels are not pinned"):
        setup_notebook(0, num_threads=1)
    monkeypatch.setenv(MODE_VARIABLE, "sometimes")
    with pytest.raises(ValueError, match="LMBASICS_NBVAL must be one of"):
        setup_notebook(0, num_threads=1)
