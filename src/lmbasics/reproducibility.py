"""Determinism for notebooks, tests and benchmarks: seeds and a fixed CPU thread count.

Floating-point reductions can change with the number of threads, so every chapter fixes both
before computing anything it prints.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEFAULT_THREADS = 2


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
    """What every chapter runs first: fixed threads, seeded RNGs, and short float printing."""
    fix_threads(num_threads)
    np.set_printoptions(precision=4, suppress=True)
    torch.set_printoptions(precision=4, sci_mode=False)
    return seed_everything(seed)
