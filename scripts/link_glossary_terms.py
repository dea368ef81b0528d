"""Link the first use of each glossary term in a chapter to the glossary (markdown cells only).

For every term of `book/glossary.md` that has a pattern in TERMS, the first occurrence in a chapter's
prose becomes "{term}`text <term>`". Prose means markdown outside headings, code spans and blocks,
math, links, roles and directive lines (a directive's content counts as prose). An occurrence that is
already a {term} link counts as the first use. Code cells are never touched.

    python scripts/link_glossary_terms.py notebooks/07_training.ipynb     # rewrites in place
    python scripts/link_glossary_terms.py --check notebooks/*.ipynb       # lists unlinked first uses
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

# glossary term -> regular expression for its forms in running text (case-sensitive unless (?i)).
TERMS = {
    "ablation": r"(?i:ablations?)",
    "AdamW": r"AdamW",
    "attention": r"(?i:attention)",
    "bits per byte": r"bits per byte",
    "BPE": r"BPE",
    "byte": r"(?i:bytes?)",
    "causal mask": r"causal mask",
    "checkpoint": r"(?i:checkpoints?)",
    "code point": r"code points?",
    "cross-entropy": r"(?i:cross-entropy)",
    "embedding": r"(?i:embeddings?)",
    "FLOPs": r"FLOPs?",
    "gradient clipping": r"(?i:gradient clipping)",
    "held-out": r"held-out",
    "learning-rate schedule": r"(?i:learning[- ]rate schedules?)",
    "logits": r"logits?",
    "merge": r"merges?",
    "MFU": r"MFU",
    "Muon": r"Muon",
    "nats": r"nats?",
    "perplexity": r"(?i:perplexit(?:y|ies))",
    "pre-norm": r"pre-norm|post-norm",
    "pre-token": r"pre-tokens?|pre-tokeni[sz]ation",
    "recorded run": r"recorded runs?",
    "residual stream": r"residual stream",
    "RMSNorm": r"RMSNorm",
    "RoPE": r"RoPE",
    "SiLU": r"SiLU",
    "softmax": r"(?i:softmax)",
    "special token": r"special tokens?",
    "SwiGLU": r"SwiGLU",
    "token": r"tokens?",
    "unigram model": r"unigram (?:model|baseline)s?",
    "UTF-8": r"UTF-8",
    "validation": r"validation",
    "vocabulary": r"(?i:vocabular(?:y|ies))",
    "warm-up": r"(?i:warm-?ups?)",
    "weight tying": r"weight tying|tied (?:input and output )?embeddings",
    "z-loss": r"(?i:z-loss)",
}
# Terms that share a glossary entry count as one: the first use of either is linked.
SAME_ENTRY = {"validation": "held-out"}

WORD_BEFORE, WORD_AFTER = r"(?<![\w`{<-])(?:", r")(?![\w-])"
# Spans of a line that are not prose: code spans, math, roles with their content, link targets and texts.
SKIP = re.compile(r"``.*?``|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\{[\w:-]+\}`[^`]*`|\[[^\]]*\]\([^)]*\)|<[^>]*>")


def prose_spans(line: str) -> list[tuple[int, int]]:
    """The (start, end) ranges of a line that are prose."""
    spans, pos = [], 0
    for match in SKIP.finditer(line):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(line)))
    return spans


def link_cell(text: str, todo: dict[str, re.Pattern], done: set[str]) -> str:
    lines = text.split("\n")
    stack: list[tuple[str, bool]] = []  # open fences: (marker, is a directive whose content is prose)
    math = False
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stack and re.fullmatch(r"(`{3,}|~{3,})", stripped) and stripped == stack[-1][0]:
            stack.pop()
            continue
        opening = re.match(r"(`{3,}|~{3,})\s*(\{[\w-]+\})?", stripped)
        if opening and not (stack and not stack[-1][1]):
            prose = bool(opening.group(2)) and opening.group(2) not in ("{code-cell}", "{code}", "{math}", "{eval-rst}")
            stack.append((opening.group(1), prose))
            continue
        if stack and not stack[-1][1]:
            continue  # code or math block
        if stripped.startswith("$$"):
            math = not math if not (len(stripped) > 4 and stripped.endswith("$$")) else math
            continue
        if math or re.match(r"^(#|:[\w-]+:|\(\S+\)=)", stripped):
            continue
        for term, pattern in list(todo.items()):
            entry = SAME_ENTRY.get(term, term)
            if entry in done:
                todo.pop(term)
                continue
            line = lines[n]
            for start, end in prose_spans(line):
                match = pattern.search(line, start, end)
                if match:
                    word = match.group(0)
                    target = "" if word == entry else f" <{entry}>"
                    lines[n] = line[: match.start()] + f"{{term}}`{word}{target}`" + line[match.end() :]
                    done.add(entry)
                    todo.pop(term)
                    break
    return "\n".join(lines)


def already_linked(text: str) -> set[str]:
    found = set()
    for word, target in re.findall(r"\{term\}`([^`<]+?)(?:\s*<([^>]+)>)?`", text):
        found.add((target or word).strip())
    return found


def link(path: Path, write: bool = True) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    done = already_linked("\n".join(c.source for c in markdown))
    todo = {t: re.compile(WORD_BEFORE + p + WORD_AFTER) for t, p in TERMS.items() if SAME_ENTRY.get(t, t) not in done}
    before = set(done)
    for cell in markdown:
        cell.source = link_cell(cell.source, todo, done)
    added = sorted(done - before)
    if write and added:
        nbformat.write(nb, path)
    return added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="list unlinked first uses, change nothing")
    args = parser.parse_args()
    missing = 0
    for notebook in args.notebooks:
        added = link(notebook, write=not args.check)
        missing += len(added) if args.check else 0
        print(f"{notebook}: {'unlinked' if args.check else 'linked'}: {', '.join(added) or 'nothing'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
