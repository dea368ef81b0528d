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
