"""The book's experiment log (handout problem experiment_log; chapters 7 to 11 and the log page).

Each training chapter records what it ran where it draws its conclusion: `log_experiment(chapter,
title, runs, conclusion)` writes one JSON entry (the settings compared, each with its seed runs'
directories, and the one-line conclusion) under `artifacts/experiment_log/`. The log page reads the
entries back with `read_experiment_log` and shows every run's config, curve and result; the runs'
own metrics (in their run directories, see `experiments.py`) are the only source of its numbers.

What it does not do: it trains nothing and judges nothing; a chapter's conclusion is the chapter's,
asserted there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbasics.atomic import atomic_write_text
from lmbasics.book.experiments import Run
from lmbasics.book.plotting import read_metrics
from lmbasics.training.config import TrainConfig

LOG_DIR = Path("../artifacts/experiment_log")  # relative to notebooks/, where the chapters run


@dataclass(frozen=True)
class LoggedExperiment:
    """One comparison a chapter made: setting label -> that setting's runs (one per seed)."""

    chapter: str
    title: str
    conclusion: str
    settings: dict[str, list[Run]]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def log_experiment(
    chapter: str,
    title: str,
    runs: Mapping[str, Sequence[Run]],
    conclusion: str,
    log_dir: str | os.PathLike = LOG_DIR,
) -> Path:
    """Record that `chapter` ran `runs` (setting label -> seed runs) and concluded `conclusion`.

    One file per (chapter, title): running the chapter again replaces its entry. Returns the file."""
    if not runs or any(not seed_runs for seed_runs in runs.values()):
        raise ValueError(f"log_experiment({chapter!r}, {title!r}): every setting needs at least one run")
    entry = {
        "chapter": chapter,
        "title": title,
        "conclusion": conclusion,
        "settings": {
            label: [{"out_dir": str(run.out_dir), "config": run.config.to_dict()} for run in seed_runs]
            for label, seed_runs in runs.items()
        },
    }
    path = Path(log_dir) / f"{_slug(chapter)}--{_slug(title)}.json"
    atomic_write_text(path, json.dumps(entry, indent=1))
    return path


def read_experiment_log(log_dir: str | os.PathLike = LOG_DIR) -> list[LoggedExperiment]:
    """Every recorded experiment, by chapter then title, with each run's metrics read afresh.

    An entry whose run directory has gone (a cleaned `artifacts/`) is an error that names it, not a
    silent gap in the log."""
    entries = []
    for path in sorted(Path(log_dir).glob("*.json")):
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        settings = {}
        for label, seed_runs in raw["settings"].items():
            runs = []
            for item in seed_runs:
                out_dir = Path(item["out_dir"])
                if not out_dir.is_dir():
                    raise FileNotFoundError(f"{path.name}: run directory {out_dir} of {label!r} is gone")
                runs.append(Run(TrainConfig.from_dict(item["config"]), out_dir, read_metrics(out_dir)))
            settings[label] = runs
        entries.append(LoggedExperiment(raw["chapter"], raw["title"], raw["conclusion"], settings))
    return entries
