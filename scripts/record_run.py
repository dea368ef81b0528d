"""Make a recorded run: `make runs NAME=<name>` (or every spec in configs/records/ with `make runs`).

Trains `configs/records/<name>.toml` under the pinned kernels from the repository root and writes
`results/<name>/` (see `lmbasics.book.records`). The record is proven by `make test`, which replays its
opening steps; re-record after any change to the training code that changes its numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lmbasics.book.records import record_run

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "configs" / "records"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="record names (configs/records/<name>.toml); default: all")
    args = parser.parse_args(argv)
    names = args.names or sorted(path.stem for path in SPECS.glob("*.toml"))
    missing = [name for name in names if not (SPECS / f"{name}.toml").is_file()]
    if missing:
        known = sorted(path.stem for path in SPECS.glob("*.toml"))
        parser.error(f"no record spec for {missing} in configs/records/; known: {known}")
    os.chdir(ROOT)  # the record's paths are relative to the repository root
    for name in names:
        print(f"recording {name} ...", flush=True)
        out = record_run(Path("configs/records") / f"{name}.toml", Path("."), Path("results"))
        print(f"recorded {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
