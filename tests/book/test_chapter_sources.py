"""Chapters 4 to 6 put the library source of every component they explain on the page (issue 13).

Reads the committed notebook outputs: each component must appear as the output of `show_source`,
whose text form starts with the file's path and shows the definition line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

SHOWN = {
    "04_transformer": {
        "lmbasics/model/layers.py": [
            "class Linear(",
            "class Embedding(",
            "class RMSNorm(",
            "class _SiLU(",
            "def silu(",
            "class SwiGLU(",
        ],
        "lmbasics/model/attention.py": [
            "class RotaryPositionalEmbedding(",
            "class _Softmax(",
            "def softmax(",
            "def scaled_dot_product_attention(",
            "class MultiHeadSelfAttention(",
        ],
        "lmbasics/model/lm.py": ["class TransformerBlock(", "class TransformerLM("],
    },
    "05_transformer_accounting": {
        "lmbasics/model/accounting.py": ["def count_parameters(", "def forward_flops("],
    },
    "06_optimizers": {
        "lmbasics/training/loss.py": ["def cross_entropy(", "class _MeanCrossEntropy("],
        "lmbasics/training/optim.py": ["def step(", "m.lerp_(", "def cosine_lr_schedule(", "def clip_grad_norm("],
    },
}


def shown_sources(notebook: str) -> list[str]:
    """The text/plain outputs of `show_source` in a committed notebook."""
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    texts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/plain", ""))
            if re.match(r"# lmbasics/\S+\.py, lines \d+-\d+", text):
                texts.append(text)
    return texts


@pytest.mark.parametrize("notebook", sorted(SHOWN))
def test_chapter_shows_the_source_of_its_components(notebook: str):
    views = shown_sources(notebook)
    for path, definitions in SHOWN[notebook].items():
        for definition in definitions:
            hits = [
                v
                for v in views
                if v.startswith(f"# {path},") and re.search(rf"^\s*\d+\s+{re.escape(definition)}", v, re.M)
            ]
            assert hits, f"{notebook} does not show {definition!r} from {path}"
