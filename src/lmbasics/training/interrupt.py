"""Ctrl-C during training (chapter 7): the first one asks the loop to stop after the current step
(and save a checkpoint); a second one aborts at once."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopRequest:
    """Set by the first Ctrl-C; the training loop checks it after each step."""

    requested = False


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[StopRequest]:
    """Turn the first Ctrl-C into a request to stop after the current step; a second one aborts.

    Outside the main thread signals cannot be caught, and the request is never set."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
