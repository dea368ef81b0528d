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

import lmbasics
from lmbasics import show_source

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = sorted((ROOT / "book").glob("*.md"))


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


def markdown_text(path: Path) -> str:
    """All the markdown of a notebook or a page."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    return "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")


def all_markdown() -> dict[str, str]:
    paths = [*NOTEBOOKS, ROOT / "notebooks" / "experiment_log.ipynb", *PAGES]
    return {p.stem: markdown_text(p) for p in paths}


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"), re.M))


def test_every_citation_is_in_the_bibliography_and_every_entry_is_cited():
    cited = set()
    for text in all_markdown().values():
        for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            cited |= {k.strip() for k in keys.split(",")}
    keys = bib_keys()
    assert cited - keys == set(), f"cited but not in book/references.bib: {sorted(cited - keys)}"
    assert keys - cited == set(), f"in book/references.bib but cited nowhere: {sorted(keys - cited)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_hand_written_citations_or_file_links_remain(notebook: Path):
    text = markdown_text(notebook)
    hand = re.findall(r"\b[A-Z][a-z]+(?: et al\.| and [A-Z][a-z]+| & [A-Z][a-z]+),? \(?(?:19|20)\d\d\b", text)
    assert not hand, f"{notebook.stem}: hand-written citations {hand}: use {{cite}} and book/references.bib"
    links = re.findall(r"\]\([^)]*\.ipynb[^)]*\)", text)
    assert not links, f"{notebook.stem}: file links {links}: use {{doc}} or {{ref}}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_numbered_and_every_solution_keeps_its_code_cells(notebook: Path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        convert_exercises = importlib.import_module("convert_exercises")
    finally:
        sys.path.pop(0)
    assert convert_exercises.check(notebook) == []
    cells = load(notebook)["cells"]
    exercises = re.findall(r"^(?:`{3,}|~{3,})\{exercise\}", markdown_text(notebook), re.M)
    assert 3 <= len(exercises) <= 5, f"{notebook.stem}: {len(exercises)} exercises (CONTRIBUTING: 3 to 5)"
    # Every gated solution holds at least one code cell, and no code cell is left hanging after its end.
    inside, held = False, 0
    for cell in cells:
        text = source(cell)
        if cell["cell_type"] == "markdown":
            if "{solution-end}" in text:
                assert inside and held, f"{notebook.stem}: a solution-end without code cells before it"
                inside = False
            if "{solution-start}" in text:
                inside, held = True, 0
        elif inside:
            held += 1
    assert not inside, f"{notebook.stem}: a solution-start without its solution-end"


def glossary_terms() -> set[str]:
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    block = text.split("```{glossary}", 1)[1]
    return {line.strip().lower() for line in block.splitlines() if line and not line.startswith((" ", "`"))}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_use_of_each_glossary_term_links_to_the_glossary(notebook: Path):
    terms = glossary_terms()
    text = markdown_text(notebook)
    targets = {(t or w).strip().lower() for w, t in re.findall(r"\{term\}`([^`<]+?)(?:\s*<([^>]+)>)?`", text)}
    assert targets <= terms, f"{notebook.stem}: terms not in book/glossary.md: {sorted(targets - terms)}"
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        linker = importlib.import_module("link_glossary_terms")
    finally:
        sys.path.pop(0)
    assert linker.link(notebook, write=False) == [], f"{notebook.stem}: run scripts/link_glossary_terms.py"


# Every figure is a named, captioned, numbered figure (CONTRIBUTING.md, "Citations, cross-references, terms"):
# the cell's metadata `"mystnb": {"figure": {"name": "fig-NN-...", "caption": "..."}}`. The experiment log is the
# exception: one cell draws a figure per logged experiment (a gallery generated from the log, dozens of images),
# which no single label could name, and no text refers to them one by one.
UNLABELLED_FIGURES = {"experiment_log"}
BOOK_NOTEBOOKS = [*NOTEBOOKS, ROOT / "notebooks" / "experiment_log.ipynb"]
FIGURE_NAME = re.compile(r"fig-(\d\d)-[a-z0-9]+(?:-[a-z0-9]+)*")
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?([^`<>]+?)>?`")


def image_outputs(cell: dict) -> list[dict]:
    return [o for o in cell.get("outputs", []) if any(m.startswith("image/") for m in o.get("data", {}))]


def figure_options(cell: dict) -> dict | None:
    return cell.get("metadata", {}).get("mystnb", {}).get("figure")


def book_figures() -> dict[str, str]:
    """Every figure name in the book's notebooks -> the notebook (stem) that holds it."""
    figures = {}
    for notebook in BOOK_NOTEBOOKS:
        for cell in code_cells(notebook):
            if options := figure_options(cell):
                assert options.get("name") not in figures, f"figure name {options.get('name')} used twice"
                figures[options.get("name")] = notebook.stem
    return figures


@pytest.mark.parametrize("notebook", BOOK_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_has_a_label_and_a_caption(notebook: Path):
    assert UNLABELLED_FIGURES <= {nb.stem for nb in BOOK_NOTEBOOKS}
    for cell in code_cells(notebook):
        options, images = figure_options(cell), image_outputs(cell)
        where = f"{notebook.stem}, cell {source(cell)[:50]!r}"
        if options is None:
            assert not images or notebook.stem in UNLABELLED_FIGURES, f"{where}: a figure without name and caption"
            continue
        # one image per figure: book/_ext/figure_outputs.py gives the figure metadata to the image output only
        assert len(images) == 1, f"{where}: figure metadata on a cell with {len(images)} images"
        assert set(options) == {"name", "caption"}, f"{where}: figure options {sorted(options)}"
        match = FIGURE_NAME.fullmatch(options["name"])
        assert match and match.group(1) == notebook.stem[:2], f"{where}: name {options['name']!r} is not fig-NN-..."
        caption = options["caption"].strip()
        assert caption[:1].isupper() or caption[:1] in "$`", f"{where}: caption {caption!r}"
        assert caption.endswith(".") and len(caption) >= 30, f"{where}: caption {caption!r} (one full sentence)"


def test_every_numref_names_a_figure_and_every_figure_is_referred_to():
    figures = book_figures()
    referred = set()
    for page, text in all_markdown().items():
        for label in NUMREF.findall(text):
            assert label in figures, f"{page}: {{numref}} to {label!r}, which no figure of the book is named"
            referred.add(label)
    assert figures, "no labelled figures"
    unreferred = sorted(set(figures) - referred)
    assert not unreferred, f"figures the text never refers to with {{numref}}: {unreferred}"


def test_readme_and_the_intro_share_one_chapter_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    assert "```{include} ../README.md" in intro and "<!-- chapter-table-start" in readme
    assert "| [01 Unicode]" not in intro and "| chapter |" not in intro, "the intro must not keep its own table"
    table = readme.split("<!-- chapter-table-start", 1)[1].split("<!-- chapter-table-end -->", 1)[0]
    for nb in NOTEBOOKS:
        assert f"(notebooks/{nb.name})" in table, f"{nb.stem} missing from README's chapter table"


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


@pytest.mark.slow
def test_figures_are_numbered_across_the_book_and_numrefs_resolve(built_book: Path):
    numbers = {}
    for name, stem in book_figures().items():
        page = (built_book / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")
        found = re.findall(rf'<figure class="[^"]*" id="{name}">(.*?)</figure>', page, re.S)
        assert len(found) == 1, f"{stem}: {len(found)} figures named {name}"
        assert found[0].count("<img ") == 1 and "<table" not in found[0], f"{name}: the figure must hold its image only"
        number = re.search(r'<span class="caption-number">Fig\. (\d+) </span><span class="caption-text">', found[0])
        assert number, f"{name} has no numbered caption"
        numbers[name] = (stem, number.group(1))
    assert sorted(int(n) for _, n in numbers.values()) == list(range(1, len(numbers) + 1)), "numbered 1, 2, ..."
    referred = set()
    for page in sorted(built_book.glob("*/*.html")):
        for target, stem, name, text in re.findall(
            r'href="((?:[\w./]*?([\w.]+)\.html)?#(fig-[\w-]+))"><span class="std std-numref">([^<]*)</span>',
            page.read_text(encoding="utf-8"),
        ):
            assert name in numbers, f"{page.name}: numref to {target}, no such figure"
            assert text == f"Fig. {numbers[name][1]}" and (stem or page.stem) == numbers[name][0], (page.name, target)
            referred.add(name)
    assert referred == set(numbers), f"figures without a numref in the built book: {sorted(set(numbers) - referred)}"


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


def public_api() -> dict[str, str]:
    """Every class and function the top-level package exports -> its defining module."""
    names = {}
    for name in dir(lmbasics):
        obj = getattr(lmbasics, name)
        if not name.startswith("_") and (isinstance(obj, type) or callable(obj)) and hasattr(obj, "__module__"):
            if obj.__module__.startswith("lmbasics."):
                names[name] = obj.__module__
    return names


@pytest.mark.slow
def test_api_reference_documents_the_public_api_and_links_chapters(built_book: Path):
    page = (built_book / "book" / "api.html").read_text(encoding="utf-8")
    missing = [f"{m}.{n}" for n, m in public_api().items() if f'id="{m}.{n}"' not in page]
    assert not missing, f"not in the API reference (book/api.md): {missing}"
    assert page.count('href="../notebooks/') >= 20, "each API section links the chapters that explain it"
    for nb in NOTEBOOKS:
        chapter = (built_book / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "../book/api.html#api-" in chapter, f"{nb.stem}: no 'Library reference' links to the API reference"


@pytest.mark.slow
def test_bibliography_glossary_and_exercises_render(built_book: Path):
    references = (built_book / "book" / "references.html").read_text(encoding="utf-8")
    assert references.count('role="doc-biblioentry"') == len(bib_keys()), "one bibliography entry per key"
    glossary = (built_book / "book" / "glossary.html").read_text(encoding="utf-8")
    assert glossary.count('<dt id="term-') >= 30
    numbers = []
    for nb in NOTEBOOKS:
        page = (built_book / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "../book/references.html#id" in page or "{cite" not in markdown_text(nb)
        assert "../book/glossary.html#term-" in page, f"{nb.stem}: no glossary links"
        numbers += [int(n) for n in re.findall(r'<span class="caption-number">Exercise (\d+)', page)]
        exercises = page.count('class="exercise admonition"')
        solutions = re.findall(r'<div class="solution dropdown admonition" id="sol-', page)
        assert exercises >= 3 and len(solutions) == exercises, (
            f"{nb.stem}: {exercises} exercises, {len(solutions)} solutions"
        )
    assert numbers and len(set(numbers)) == len(numbers), "exercise numbers must be unique across the book"


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("latexmk")), reason="needs XeLaTeX and latexmk")
def test_the_whole_book_builds_as_a_pdf(tmp_path):
    """`make pdf`'s build (README, 'PDF'), where LaTeX is installed; the shown library source must be in it."""
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [jupyter_book, "build", str(ROOT), "--path-output", str(tmp_path), "--builder", "pdflatex"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    pdf = tmp_path / "_build" / "latex" / "book.pdf"
    assert result.returncode == 0 and pdf.is_file(), (
        f"PDF build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    assert pdf.stat().st_size > 1_000_000
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert show_source(lmbasics.RMSNorm).header in text, "the shown library source is missing from the PDF"
        assert "Exercise" in text and "Glossary" in text and "References" in text
