"""Determinism for notebooks (every chapter's first cell), tests and benchmarks: seeds, threads, kernels.

Floating-point reductions can change with the number of threads, so every chapter fixes both
before computing anything it prints. Which CPU kernels torch and MKL pick also changes the last bits,
so the book runs with `PINNED_KERNELS` in the environment (the Makefile, the Jupyter kernel and the
repository's conftest.py set them before torch loads; `lmbasics.book.bitexact`); `setup_notebook` warns
when they are missing on a machine that could be bit-exact. `LMBASICS_SEED_OFFSET` shifts every seed a
chapter uses, to re-run the book as "another run" (`make robustness`).
"""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

from lmbasics.book.bitexact import PINNED_KERNELS, kernels_pinned, nbval_mode

DEFAULT_THREADS = 2
SEED_OFFSET_VARIABLE = "LMBASICS_SEED_OFFSET"


def seed_offset() -> int:
    """The non-negative integer in `LMBASICS_SEED_OFFSET` (0 when unset)."""
    raw = os.environ.get(SEED_OFFSET_VARIABLE, "").strip()
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_OFFSET_VARIABLE} must be a non-negative integer, got {raw!r}") from None
    if offset < 0:
        raise ValueError(f"{SEED_OFFSET_VARIABLE} must be a non-negative integer, got {offset}")
    return offset


def book_seed(seed: int = 0) -> int:
    """`seed` shifted by `seed_offset()`: every seed a chapter uses goes through this."""
    return seed + seed_offset()


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def fix_threads(num_threads: int = DEFAULT_THREADS) -> int:
    """Pin torch's intra-op threads (and the env vars child processes read); returns the count set."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    os.environ["OMP_NUM_THREADS"] = str(num_threads)
    torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def setup_notebook(seed: int = 0, num_threads: int = DEFAULT_THREADS) -> torch.Generator:
    """What every chapter runs first: fixed threads, seeded RNGs (shifted by `LMBASICS_SEED_OFFSET`),
    and short float printing. Warns if the kernels are not pinned, since the last digits may then
    differ from the committed outputs; not in portable mode (`LMBASICS_NBVAL`, or a machine that cannot
    be bit-exact anyway), where nbval checks those cells by their asserts."""
    if not kernels_pinned() and seed_offset() == 0 and nbval_mode() != "portable":
        pins = " ".join(f"{name}={value}" for name, value in PINNED_KERNELS.items())
        warnings.warn(
            f"CPU kernels are not pinned ({pins}): floating-point outputs may differ from the committed ones "
            "in their last digits. Start Jupyter with 'make lab', or set these before starting it "
            "(pytest sets them itself).",
            stacklevel=2,
        )
    fix_threads(num_threads)
    np.set_printoptions(precision=4, suppress=True)
    torch.set_printoptions(precision=4, sci_mode=False)
    return seed_everything(book_seed(seed))
