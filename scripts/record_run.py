"""Make recorded runs and sweeps: `make runs NAME=<name>` (or every spec with `make runs`).

Trains `configs/records/<name>.toml` (one run, `lmbasics.book.records`) or `configs/sweeps/<name>.toml`
(settings x seeds, `lmbasics.book.sweeps`) under the pinned kernels from the repository root and writes
`results/<name>/`. `make test` proves each by replaying its opening steps; re-record after any change to
the training code that changes its numbers. A sweep interrupted part-way continues where it stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lmbasics.book.records import record_run
from lmbasics.book.sweeps import record_sweep

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"records": record_run, "sweeps": record_sweep}  # configs/<kind>/<name>.toml -> how to record it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "names", nargs="*", help="names of configs/records/<name>.toml or configs/sweeps/<name>.toml; default: all"
    )
    args = parser.parse_args(argv)
    specs = {path.stem: path for kind in KINDS for path in sorted((ROOT / "configs" / kind).glob("*.toml"))}
    names = args.names or sorted(specs)
    missing = [name for name in names if name not in specs]
    if missing:
        parser.error(f"no spec for {missing} in configs/records/ or configs/sweeps/; known: {sorted(specs)}")
    os.chdir(ROOT)  # the record's paths are relative to the repository root
    for name in names:
        spec = specs[name].relative_to(ROOT)
        print(f"recording {name} ({spec}) ...", flush=True)
        out = KINDS[spec.parent.name](spec, Path("."), Path("results"))
        print(f"recorded {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
