"""Writing a file so that a crash never leaves a half-written one (checkpoints, vocabularies, token arrays;
chapters 2, 3 and 7).

Everything is written to a temporary file in the destination's folder and renamed over the
destination only once complete: until then the previous file, if any, is untouched, and a killed
process leaves at worst a stray `.NAME.*.tmp` beside it. The finished file gets the permissions a
plain `open(path, "w")` would give (mode 0o666 less the umask), not the private 0o600 of a
temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file that replaces `path` when the `with` block ends normally.

    If the block raises (or the process dies), `path` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _default_mode())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` in one step (see `atomic_file`)."""
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text`, encoded as UTF-8, in one step (see `atomic_file`)."""
    atomic_write_bytes(path, text.encode("utf-8"))
