"""Wall-clock helper shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_time(func: Callable[[], T], repeats: int = 1) -> tuple[float, T]:
    """Best wall time in seconds of `repeats` calls (the least disturbed), and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result
