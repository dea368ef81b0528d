"""Peak memory of a call and of the worker processes it starts (chapter 2): `peak_tree_memory(func)`.

`tracemalloc` sees only the Python heap of one process, and `ru_maxrss` only one process at a time, but
`train_bpe` pre-tokenizes in forked worker processes. This helper runs the call in this process while a
thread polls this process and all its descendants with psutil and keeps the peak of their summed memory:

- **PSS** (proportional set size): a page shared by a forked worker and its parent counts once, split
  between them. The sum over the tree is the memory the call really holds.
- **RSS**: counts shared pages in every process that maps them, so the sum is an upper bound.

Both include what the process held before the call (the notebook's imports); `baseline_pss` says how much.
Polling misses peaks shorter than the interval, so short spikes may be under-reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TreeMemory:
    """Peak sums over a process and its descendants during a call, in bytes."""

    peak_pss: int
    peak_rss: int
    baseline_pss: int  # the process tree's PSS just before the call
    max_processes: int  # the most processes seen at once

    @property
    def added_pss(self) -> int:
        """How much the call added at its peak, over what the tree held before."""
        return self.peak_pss - self.baseline_pss


def _tree_memory(root) -> tuple[int, int, int]:
    """(PSS sum, RSS sum, number of processes) of `root` and its descendants now."""
    import psutil

    pss = rss = count = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a worker that exited between listing and reading
        pss, rss, count = pss + info.pss, rss + info.rss, count + 1
    return pss, rss, count


def peak_tree_memory(func: Callable[[], T], interval: float = 0.01) -> tuple[T, TreeMemory]:
    """Run `func()` and return its result with the peak memory of this process and its workers meanwhile.

    >>> result, memory = peak_tree_memory(lambda: sum(range(1000)))
    >>> result, memory.peak_pss >= memory.baseline_pss > 0, memory.peak_rss >= memory.peak_pss
    (499500, True, True)
    """
    import psutil

    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    root = psutil.Process()
    baseline_pss, baseline_rss, processes = _tree_memory(root)
    peak = [baseline_pss, baseline_rss, processes]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            pss, rss, count = _tree_memory(root)
            peak[:] = [max(peak[0], pss), max(peak[1], rss), max(peak[2], count)]
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = func()
    finally:
        done.set()
        thread.join()
    pss, rss, count = _tree_memory(root)
    return result, TreeMemory(max(peak[0], pss), max(peak[1], rss), baseline_pss, max(peak[2], count))
