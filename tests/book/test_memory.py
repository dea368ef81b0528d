"""peak_tree_memory: it sees memory held by worker processes, not only by this one."""

import multiprocessing

import pytest

from lmbasics.book.memory import peak_tree_memory

MIB = 1 << 20


def _hold(megabytes: int, seconds: float) -> None:
    import time

    block = bytearray(megabytes * MIB)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    time.sleep(seconds)


def test_memory_of_a_worker_process_counts():
    def run() -> int:
        process = multiprocessing.get_context("fork").Process(target=_hold, args=(64, 0.5))
        process.start()
        process.join()
        return process.exitcode

    exitcode, memory = peak_tree_memory(run)
    assert exitcode == 0
    assert memory.max_processes >= 2
    assert memory.added_pss > 48 * MIB, memory  # the worker's 64 MiB, minus what polling may miss
    assert memory.peak_rss >= memory.peak_pss


def test_bad_interval_is_named():
    with pytest.raises(ValueError, match="interval must be positive"):
        peak_tree_memory(lambda: None, interval=0)
