"""The metrics log of a run (chapter 7): one JSON object per logged step in `metrics.jsonl`.

`MetricsLog` writes it during training (cut back to the checkpoint's step on resume); `read_metrics`
reads it back for the chapters' plots and the benchmarks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmbasics.atomic import atomic_write_text

METRICS_NAME = "metrics.jsonl"


class MetricsLog:
    """Append-only JSONL metrics file; on resume it is cut back to the checkpoint's step."""

    def __init__(self, path: Path, resume_from: int | None):
        self.path = path
        lines = [] if resume_from is None else [r for r in _lines(path) if json.loads(r)["step"] <= resume_from]
        atomic_write_text(path, "".join(f"{line}\n" for line in lines))
        self.handle = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _lines(path: Path) -> list[str]:
    return [line for line in (path.read_text().splitlines() if path.exists() else []) if line.strip()]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics JSONL file (a run directory or the file itself), in order."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no metrics log at {path}")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON record: {error}") from error
    return records
