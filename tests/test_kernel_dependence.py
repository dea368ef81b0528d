"""scripts/kernel_dependence.py compares what nbval compares, and nothing else."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from kernel_dependence import compared_outputs, sanitizers  # noqa: E402


def _notebook(path: Path, *cells: tuple[list[dict], list[str]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "markdown", "metadata": {}, "source": "# title"},
                    *({"cell_type": "code", "metadata": {"tags": tags}, "outputs": outs} for outs, tags in cells),
                ]
            }
        ),
        encoding="utf-8",
    )
    return path


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": [text]}


def test_streams_are_joined_volatile_cells_skipped_and_sanitizers_applied(tmp_path):
    warning = "/tmp/ipykernel_1/2.py:14: UserWarning: CPU kernels are not pinned (...).\n  setup_notebook(seed=0)\n"
    committed = _notebook(
        tmp_path / "a.ipynb",
        ([_stream("loss 4.1\n")], []),
        ([_stream("3 s\n")], ["nbval-ignore-output"]),
        ([{"output_type": "execute_result", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}], []),
    )
    variant = _notebook(
        tmp_path / "b.ipynb",
        ([_stream(warning, "stderr"), _stream("loss "), _stream("4.1\n")], []),
        ([_stream("9 s\n")], ["nbval-ignore-output"]),
        ([{"output_type": "execute_result", "data": {"text/plain": "<Figure size 700x400 with 1 Axes>"}}], []),
    )
    rules = sanitizers()
    assert compared_outputs(committed, rules) == compared_outputs(variant, rules)
    assert compared_outputs(committed, rules)[1] is None
    changed = _notebook(tmp_path / "c.ipynb", ([_stream("loss 4.2\n")], []), ([], []), ([], []))
    assert compared_outputs(changed, rules)[0] != compared_outputs(committed, rules)[0]


def test_write_tags_changes_exactly_the_tags_of_the_changed_cells(tmp_path):
    from kernel_dependence import KERNEL_DEPENDENT_TAG, changed_cells, tagged_cells, write_tags

    from lmbasics.book.bitexact import KERNEL_DEPENDENT_TAG as CONFTEST_TAG

    assert KERNEL_DEPENDENT_TAG == CONFTEST_TAG  # the tag the root conftest.py acts on
    committed = _notebook(
        tmp_path / "a.ipynb",
        ([_stream("loss 4.1\n")], ["hide-input"]),  # changes under the variant: gets the tag
        ([_stream("45\n")], [KERNEL_DEPENDENT_TAG]),  # a stale tag: removed
        ([_stream("3 s\n")], ["nbval-ignore-output"]),  # not compared: never tagged
    )
    variant = _notebook(
        tmp_path / "b.ipynb",
        ([_stream("loss 4.2\n")], ["hide-input"]),
        ([_stream("45\n")], []),
        ([_stream("9 s\n")], ["nbval-ignore-output"]),
    )
    rules = sanitizers()
    changed = changed_cells(committed, [variant], rules)
    assert changed == [0]
    before = json.loads(committed.read_text(encoding="utf-8"))
    assert write_tags(committed, changed) is True
    after = json.loads(committed.read_text(encoding="utf-8"))
    assert tagged_cells(committed) == [0]
    assert [c["metadata"].get("tags") for c in after["cells"]] == [
        None,
        ["hide-input", KERNEL_DEPENDENT_TAG],
        None,
        ["nbval-ignore-output"],
    ]
    for old, new in zip(before["cells"], after["cells"]):  # nothing but tags changed
        assert {k: v for k, v in old.items() if k != "metadata"} == {k: v for k, v in new.items() if k != "metadata"}
    assert write_tags(committed, changed) is False  # idempotent: the file is not rewritten
