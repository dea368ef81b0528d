"""Atomic writes: the old file survives a failed write, and the new one gets ordinary permissions."""

import os
import stat

import pytest

from lmbasics.atomic import atomic_file, atomic_write_text


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "vocab.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(target) as handle:
            handle.write(b"half of the new cont")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.json"]


def test_the_written_file_has_the_permissions_open_would_give(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644


def test_missing_folders_are_created(tmp_path):
    atomic_write_text(tmp_path / "new" / "folder" / "merges.txt", "a b\n")
    assert (tmp_path / "new" / "folder" / "merges.txt").read_text() == "a b\n"
