"""Which committed outputs depend on the CPU's kernels? Reads the copies `make robustness` executed.

For every chapter it compares the outputs nbval would compare (not the cells tagged
`nbval-ignore-output`; streams joined; text only, as nbval skips images; the regexes of
notebooks/nbval_sanitize.cfg applied) between the committed notebook and its copy under each kernel
variant. A chapter with no differing cell reproduces on another machine of this kind whatever the
kernels, so nbval alone proves it there; the others belong in `KERNEL_DEPENDENT` (scripts/robustness.py),
which sets the chapters of make test's perturbed pass.

Cell by cell, the outputs that changed are the ones tagged `kernel-dependent` in the committed
notebook: `pytest --nbval` in portable mode (the root conftest.py, `LMBASICS_NBVAL`) checks those cells
by their asserts only. The script fails when a changed cell lacks the tag; `--write-tags` sets the tags
of every measured chapter to exactly the changed cells (cell metadata only: sources and outputs are
left byte for byte). A tag on a cell that no variant changed is reported, not failed: it may come
from a machine this script has no copies from.

    python scripts/robustness.py --variants aten-default,aten-avx2,mkl-compatible   # first, or make robustness
    python scripts/kernel_dependence.py                  # report; fails on a missing tag or chapter
    python scripts/kernel_dependence.py --write-tags     # then re-run it: it passes
    python scripts/kernel_dependence.py --variants aten-avx2 --chapters 07,08   # from some variants or chapters
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import sys
from pathlib import Path

from robustness import KERNEL_DEPENDENT, ROOT, notebooks

KERNEL_DEPENDENT_TAG = "kernel-dependent"  # lmbasics.book.bitexact.KERNEL_DEPENDENT_TAG (a test checks)
KERNEL_VARIANTS = ["aten-default", "aten-avx2", "mkl-compatible"]
UNPINNED_WARNING = re.compile(r"^.*UserWarning: CPU kernels are not pinned.*\n(.*\n)?", re.MULTILINE)


def sanitizers() -> list[tuple[re.Pattern[str], str]]:
    """The (regex, replacement) pairs of notebooks/nbval_sanitize.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "notebooks" / "nbval_sanitize.cfg", encoding="utf-8")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


def compared_outputs(path: Path, rules: list[tuple[re.Pattern[str], str]]) -> list[str | None]:
    """Per code cell, the text nbval compares; None for a cell tagged nbval-ignore-output."""
    texts: list[str | None] = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            texts.append(None)
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                parts.append("".join(output["text"]))
            elif "data" in output:
                parts.append("\n" + "".join(output["data"].get("text/plain", "")) + "\n")
        text = UNPINNED_WARNING.sub("", "".join(parts))  # the variants' expected set-up warning
        for regex, replacement in rules:
            text = regex.sub(replacement, text)
        texts.append(text)
    return texts


def changed_cells(notebook: Path, copies: list[Path], rules: list[tuple[re.Pattern[str], str]]) -> list[int]:
    """Code-cell numbers whose compared output differs between `notebook` and any of `copies`."""
    committed = compared_outputs(notebook, rules)
    variants = [compared_outputs(copy, rules) for copy in copies]
    for copy, texts in zip(copies, variants):
        if len(texts) != len(committed):
            raise SystemExit(f"kernel_dependence: {copy} has {len(texts)} code cells, {notebook} {len(committed)}")
    return [i for i, text in enumerate(committed) if text and any(v[i] != text for v in variants)]


def tagged_cells(notebook: Path) -> list[int]:
    """Code-cell numbers tagged `kernel-dependent` in `notebook`."""
    code = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    return [i for i, cell in enumerate(code) if KERNEL_DEPENDENT_TAG in cell.get("metadata", {}).get("tags", [])]


def write_tags(notebook: Path, cells: list[int]) -> bool:
    """Tag exactly code cells `cells` of `notebook` `kernel-dependent` (other tags kept); True if it changed.

    Only cell metadata changes; the file keeps Jupyter's layout (one-space indent, sorted keys)."""
    raw = notebook.read_text(encoding="utf-8")
    nb = json.loads(raw)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != KERNEL_DEPENDENT_TAG]
        if i in cells:
            tags.append(KERNEL_DEPENDENT_TAG)
        if tags:
            cell.setdefault("metadata", {})["tags"] = tags
        else:
            cell.get("metadata", {}).pop("tags", None)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text == raw:
        return False
    notebook.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-dir", default=str(ROOT / "artifacts" / "robustness"))
    parser.add_argument("--chapters", default="all", help="'all' (default) or e.g. '07,08': the chapters to look at")
    parser.add_argument("--write-tags", action="store_true", help="tag exactly the changed cells kernel-dependent")
    parser.add_argument(
        "--variants", default=",".join(KERNEL_VARIANTS), help=f"comma-separated, from {KERNEL_VARIANTS} (default: all)"
    )
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    if unknown := [v for v in variants if v not in KERNEL_VARIANTS]:
        parser.error(f"unknown kernel variant(s) {unknown}; choose from {KERNEL_VARIANTS}")
    rules = sanitizers()
    dependent, missing, untagged = [], [], []
    print("| chapter | cells nbval compares | change under some kernel variant (code cell numbers) | tagged |")
    print("|---|---:|---|---|")
    for notebook in notebooks(args.chapters):
        copies = [Path(args.log_dir) / variant / notebook.name for variant in variants]
        if not all(copy.is_file() for copy in copies):
            missing.append(notebook.name)
            continue
        compared = [i for i, text in enumerate(compared_outputs(notebook, rules)) if text]
        changed = changed_cells(notebook, copies, rules)
        if args.write_tags and write_tags(notebook, changed):
            print(f"kernel_dependence: tagged {notebook.name} cells {changed} {KERNEL_DEPENDENT_TAG}", file=sys.stderr)
        tagged = tagged_cells(notebook)
        print(f"| {notebook.name[:2]} | {len(compared)} | {len(changed)}: {changed} | {tagged} |")
        if changed:
            dependent.append(notebook.name[:2])
        untagged += [f"{notebook.name} cell {i}" for i in changed if i not in tagged]
        stale = [i for i in tagged if i not in changed]
        if stale:
            print(f"note: {notebook.name} cells {stale} are tagged but no kernel variant changed them", file=sys.stderr)
    if missing:
        print(f"not executed under every kernel variant yet: {', '.join(missing)}", file=sys.stderr)
    print(f"\nkernel-dependent: {dependent}; KERNEL_DEPENDENT in scripts/robustness.py: {KERNEL_DEPENDENT}")
    failed = False
    unlisted = [chapter for chapter in dependent if chapter not in KERNEL_DEPENDENT]
    if unlisted:
        print(f"add {unlisted} to KERNEL_DEPENDENT: make test's perturbed pass must cover them", file=sys.stderr)
        failed = True
    if untagged:
        print(
            f"not tagged {KERNEL_DEPENDENT_TAG}, so portable mode would compare them: {', '.join(untagged)}; "
            "run with --write-tags",
            file=sys.stderr,
        )
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
