"""Which committed outputs depend on the CPU's kernels? Reads the copies `make robustness` executed.

For every chapter it compares the outputs nbval would compare (not the cells tagged
`nbval-ignore-output`; streams joined; text only, as nbval skips images; the regexes of
notebooks/nbval_sanitize.cfg applied) between the committed notebook and its copy under each kernel
variant. A chapter with no differing cell reproduces on another machine of this kind whatever the
kernels, so nbval alone proves it there; the others belong in `KERNEL_DEPENDENT` (scripts/robustness.py),
which sets the chapters of make test's perturbed pass.

    python scripts/robustness.py --variants aten-default,aten-avx2,mkl-compatible   # first, or make robustness
    python scripts/kernel_dependence.py
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import sys
from pathlib import Path

from robustness import KERNEL_DEPENDENT, ROOT, notebooks

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-dir", default=str(ROOT / "artifacts" / "robustness"))
    args = parser.parse_args(argv)
    rules = sanitizers()
    dependent, missing = [], []
    print("| chapter | cells nbval compares | change under some kernel variant (code cell numbers) |")
    print("|---|---:|---|")
    for notebook in notebooks("all"):
        copies = [Path(args.log_dir) / variant / notebook.name for variant in KERNEL_VARIANTS]
        if not all(copy.is_file() for copy in copies):
            missing.append(notebook.name)
            continue
        committed = compared_outputs(notebook, rules)
        variants = [compared_outputs(copy, rules) for copy in copies]
        compared = [i for i, text in enumerate(committed) if text]
        changed = [i for i in compared if any(v[i] != committed[i] for v in variants)]
        print(f"| {notebook.name[:2]} | {len(compared)} | {len(changed)}: {changed} |")
        if changed:
            dependent.append(notebook.name[:2])
    if missing:
        print(f"not executed under every kernel variant yet: {', '.join(missing)}", file=sys.stderr)
    print(f"\nkernel-dependent: {dependent}; KERNEL_DEPENDENT in scripts/robustness.py: {KERNEL_DEPENDENT}")
    unlisted = [chapter for chapter in dependent if chapter not in KERNEL_DEPENDENT]
    if unlisted:
        print(f"add {unlisted} to KERNEL_DEPENDENT: make test's perturbed pass must cover them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
