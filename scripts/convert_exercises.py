"""Convert a chapter's hand-made exercises to sphinx-exercise directives (markdown cells only).

Before: a "## Exercises" cell with a numbered list (`1. **Title.** text`), or one markdown cell per exercise
(`**1. Title.** text`), and each solution a MyST `{dropdown} Solution k` followed by its code cells
(tagged `hide-input`). After: one `{exercise}` per exercise with the label `ex-NN-k` (NN: the chapter's
number), and each solution a `{solution}` of that exercise, labelled `sol-NN-k` and collapsed
(`:class: dropdown`). A solution followed by code cells becomes a gated `{solution-start}` ...
`{solution-end}` pair, so that its code cells sit inside the solution and stay ordinary code cells that
nbval executes and compares: where no markdown cell follows them, a markdown cell holding `{solution-end}`
is inserted. Code cells are never changed.

    python scripts/convert_exercises.py notebooks/07_training.ipynb   # rewrites the notebook in place
    python scripts/convert_exercises.py --check notebooks/*.ipynb     # fails if a chapter is not converted
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import nbformat

HEADING = "## Exercises"
LIST_ITEM = re.compile(r"^(\d+)\. \*\*(.+?)\*\*\s*(.*)$")
CELL_ITEM = re.compile(r"^\*\*(\d+)\. (.+?)\*\*\s*(.*)$", re.S)
DROPDOWN = re.compile(r"^(`{3,})\{dropdown\} Solution(?: (\d+))?[ \t]*\n(.*?)^\1[ \t]*$\n?", re.S | re.M)


def fence(text: str) -> str:
    """A backtick fence longer than any fence inside `text`."""
    inner = [len(m.group(0)) for m in re.finditer(r"^`{3,}", text, re.M)]
    return "`" * max(3, max(inner, default=0) + 1)


def directive(name: str, argument: str, options: dict[str, str], body: str = "") -> str:
    lines = [f"{{{name}}} {argument}".rstrip(), *(f":{k}: {v}" for k, v in options.items())]
    head = "\n".join(lines)
    marks = fence(body)
    if "`" in argument:  # a backtick fence's info string cannot hold a backtick: use tildes
        marks = marks.replace("`", "~")
    if body:
        return f"{marks}{head}\n\n{body.strip()}\n{marks}"
    return f"{marks}{head}\n{marks}"


def exercise_block(prefix: str, number: int, title: str, text: str) -> str:
    title = title.strip().rstrip(".")
    return directive("exercise", title, {"label": f"ex-{prefix}-{number}"}, text.strip())


def convert_list(cell_text: str, prefix: str) -> str:
    """The '## Exercises' cell with a numbered list -> the heading, any preface, one {exercise} per item."""
    lines = cell_text.splitlines()
    assert lines[0].strip() == HEADING, lines[0]
    preface: list[str] = []
    items: list[tuple[int, str, list[str]]] = []
    for line in lines[1:]:
        match = LIST_ITEM.match(line)
        if match:
            items.append((int(match.group(1)), match.group(2), [match.group(3)]))
        elif items and (not line.strip() or line.startswith("   ")):
            items[-1][2].append(line)
        elif items:
            raise ValueError(f"unexpected line after the exercise list: {line!r}")
        else:
            preface.append(line)
    if not items:
        raise ValueError("no numbered exercises (`1. **Title.** text`) in the Exercises cell")
    blocks = [HEADING]
    if "\n".join(preface).strip():
        blocks.append("\n".join(preface).strip())
    for number, title, body in items:
        first, rest = body[0], textwrap.dedent("\n".join(body[1:]))
        blocks.append(exercise_block(prefix, number, title, f"{first}\n{rest}"))
    return "\n\n".join(blocks) + "\n"


def convert(path: Path) -> bool:
    """Rewrite one notebook; False if it has nothing to convert."""
    nb = nbformat.read(path, as_version=4)
    prefix = re.match(r"(\d+)_", path.name).group(1)
    cells = nb.cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.lstrip().startswith(HEADING)]
    if not starts or "{dropdown} Solution" not in "".join(c.source for c in cells[starts[0] :]):
        return False
    first = starts[0]
    if LIST_ITEM.search(cells[first].source.split("\n", 2)[-1].lstrip()) or re.search(
        r"^\d+\. \*\*", cells[first].source, re.M
    ):
        cells[first].source = convert_list(cells[first].source, prefix)
        numbered_in_cell = False
    else:
        numbered_in_cell = True

    index = first
    pending_end: int | None = None  # index of the last code cell of a gated solution awaiting its end
    converted = 0
    while index < len(cells):
        cell = cells[index]
        if cell.cell_type != "markdown":
            index += 1
            continue
        text, end = cell.source, ""
        if pending_end is not None:
            end = directive("solution-end", "", {}) + "\n\n"
            pending_end = None
        match = DROPDOWN.search(text)
        if not match:
            cell.source = end + text
            index += 1
            continue
        before, body, after = text[: match.start()], match.group(3), text[match.end() :]
        if numbered_in_cell:
            heading = ""
            if before.lstrip().startswith(HEADING):
                heading, before = HEADING + "\n\n", before.lstrip()[len(HEADING) :].lstrip()
            item = CELL_ITEM.match(before.strip())
            if not item:
                raise ValueError(f"{path.name}: cannot find `**N. Title.**` before a solution in cell {index}")
            number = int(item.group(1))
            before = heading + exercise_block(prefix, number, item.group(2), item.group(3)) + "\n\n"
        else:
            number = int(match.group(2))
        before = end + before
        code_after = 0
        while index + 1 + code_after < len(cells) and cells[index + 1 + code_after].cell_type == "code":
            code_after += 1
        options = {"label": f"sol-{prefix}-{number}", "class": "dropdown"}
        if code_after == 0:
            solution = directive("solution", f"ex-{prefix}-{number}", options, body)
            cell.source = before + solution + ("\n" + after if after.strip() else "\n")
        else:
            if after.strip():
                raise ValueError(f"{path.name}: text after a gated solution's opening in cell {index}")
            start = directive("solution-start", f"ex-{prefix}-{number}", options)
            cell.source = before + start + "\n\n" + body.strip() + "\n"
            last_code = index + code_after
            following = last_code + 1
            if following < len(cells) and cells[following].cell_type == "markdown":
                pending_end = last_code
            else:
                end = nbformat.v4.new_markdown_cell(directive("solution-end", "", {}))
                cells.insert(following, end)
        converted += 1
        index += 1
    if pending_end is not None:  # pragma: no cover - the loop always consumes it
        raise AssertionError("unclosed gated solution")
    nbformat.write(nb, path)
    print(f"{path}: {converted} solutions converted")
    return True


def check(path: Path) -> list[str]:
    text = "".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    problems = []
    if "{dropdown} Solution" in text:
        problems.append(f"{path.name}: hand-made solution dropdowns left")
    exercises = set(re.findall(r"^:label: (ex-\d+-\d+)$", text, re.M))
    solved = set(re.findall(r"\{solution(?:-start)?\} (ex-\d+-\d+)", text))
    if exercises != solved:
        problems.append(f"{path.name}: exercises {sorted(exercises)} but solutions for {sorted(solved)}")
    if text.count("{solution-start}") != text.count("{solution-end}"):
        problems.append(f"{path.name}: unbalanced solution-start/solution-end")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="only report notebooks that are not converted")
    args = parser.parse_args()
    if args.check:
        problems = [p for nb in args.notebooks for p in check(nb)]
        print("\n".join(problems) or "all exercises are sphinx-exercise directives")
        return 1 if problems else 0
    for notebook in args.notebooks:
        if not convert(notebook):
            print(f"{notebook}: nothing to convert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
