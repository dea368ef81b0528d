"""The book as a reader sees it: build it with warnings as errors and inspect the HTML pages.

Also checks the notebook conventions of CONTRIBUTING.md that can be checked without running a kernel.
"""

from __future__ import annotations

import html
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmbasics import show_source

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def toc_files() -> list[str]:
    """Every document listed in _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def load(notebook: Path) -> dict:
    return json.loads(notebook.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    return "".join(cell["source"])


def code_cells(notebook: Path) -> list[dict]:
    return [c for c in load(notebook)["cells"] if c["cell_type"] == "code"]


def test_every_numbered_notebook_is_a_chapter_of_the_book():
    listed = set(toc_files())
    missing = [nb.name for nb in NOTEBOOKS if f"notebooks/{nb.stem}" not in listed]
    assert NOTEBOOKS, "no chapter notebooks found"
    assert not missing, f"notebooks missing from _toc.yml: {missing}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_conventions(notebook: Path):
    cells = load(notebook)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown" and source(cells[0]).startswith("# "), "first cell: the title"
    assert "setup_notebook(" in source(code[0]), "first code cell must call setup_notebook"
    assert all(c.get("outputs") is not None for c in code)
    assert any(c["outputs"] for c in code), "outputs must be committed (run `make notebooks`)"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"committed error outputs: {[e['ename'] for e in errors]}"
    stderr = ["".join(o["text"])[:80] for c in code for o in c["outputs"] if o.get("name") == "stderr"]
    assert not stderr, f"committed stderr output (warnings, progress bars): {stderr}"
    assert any("## Takeaways" in source(c) for c in cells if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    """Build the whole book once, with warnings as errors, into a temporary directory."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    assert jupyter_book, "jupyter-book is not installed in this environment"
    result = subprocess.run(
        [jupyter_book, "build", str(ROOT), "--path-output", str(out), "--builder", "html", "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out / "_build" / "html"


@pytest.mark.slow
def test_book_has_a_page_for_every_document(built_book: Path):
    for doc in toc_files():
        assert (built_book / f"{doc}.html").is_file(), f"no page for {doc}"
    assert (built_book / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_page_shows_outputs_and_figures(built_book: Path, notebook: Path):
    page = (built_book / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
    cells = code_cells(notebook)
    with_output = sum(1 for c in cells if c["outputs"])
    figures = sum(1 for c in cells for o in c["outputs"] if "image/png" in o.get("data", {}))

    assert page.count('class="cell_output') >= with_output
    images = re.findall(r'<img[^>]+src="([^"]+)"', page)
    local_images = [src for src in images if not src.startswith(("http:", "https:", "data:"))]
    assert len(local_images) >= figures
    for src in local_images:
        assert (built_book / "notebooks" / src).resolve().is_file(), f"broken image {src}"
    assert "_static/mathjax/tex-chtml.js" in page, "formulas must render offline, with the vendored MathJax"
    for marker in ("Traceback (most recent call last)", 'class="output traceback', 'class="output stderr'):
        assert marker not in page, f"{notebook.stem}: page shows {marker!r}"


# Every graded component of the handout, and the chapter whose page shows its library source (issue 13).
GRADED_COMPONENTS = {
    "02_bpe_training": [
        "lmbasics.tokenization.reference.naive_merges",
        "lmbasics.tokenization.reference.merge_word",
        "lmbasics.tokenization.reference.merge_steps",
        "lmbasics.tokenization.bpe._merge_pair",
        "lmbasics.tokenization.bpe.bpe_merges",
    ],
    "03_tokenizer_experiments": ["lmbasics.Tokenizer.encode", "lmbasics.Tokenizer.encode_iterable"],
    "04_transformer": [
        "lmbasics.Linear",
        "lmbasics.Embedding",
        "lmbasics.RMSNorm",
        "lmbasics.silu",
        "lmbasics.SwiGLU",
        "lmbasics.RotaryPositionalEmbedding",
        "lmbasics.softmax",
        "lmbasics.scaled_dot_product_attention",
        "lmbasics.MultiHeadSelfAttention",
        "lmbasics.TransformerBlock",
        "lmbasics.TransformerLM",
    ],
    "06_optimizers": [
        "lmbasics.cross_entropy",
        "lmbasics.AdamW.step",
        "lmbasics.cosine_lr_schedule",
        "lmbasics.clip_grad_norm",
    ],
    "07_training": [
        "lmbasics.get_batch",
        "lmbasics.save_checkpoint",
        "lmbasics.load_checkpoint",
        "lmbasics.Trainer.train_step",
        "lmbasics.next_token_distribution",
        "lmbasics.generate",
    ],
}


def resolve(dotted: str) -> object:
    """`lmbasics.module.attr.attr` -> the object, importing the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(GRADED_COMPONENTS))
def test_chapter_page_shows_the_current_source_of_its_components(built_book: Path, chapter: str):
    marked_up = (built_book / "notebooks" / f"{chapter}.html").read_text(encoding="utf-8")
    page = html.unescape(re.sub(r"<[^>]+>", "", marked_up))  # the text a reader sees, highlighting removed
    for dotted in GRADED_COMPONENTS[chapter]:
        view = show_source(resolve(dotted))
        assert view.header in page, f"{chapter}: no current source of {dotted} ({view.header}) on the page"
        assert all(line.strip() in page for line in view.lines[:3]), f"{chapter}: {dotted}'s code is not shown"
