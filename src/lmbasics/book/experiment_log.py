"""The book's experiment log (handout problem experiment_log; chapters 7 to 11 and the log page).

Each training chapter records what it ran where it draws its conclusion: `log_experiment(chapter,
title, runs, conclusion)` writes one JSON entry (the settings compared, each with its seed runs'
directories, and the one-line conclusion) under `artifacts/experiment_log/`. The log page reads the
entries back with `read_experiment_log` and shows every run's config, curve and result; the runs'
own metrics (in their run directories, see `experiments.py`) are the only source of its numbers.

Entries are kept per variant (seed offset and CPU-kernel settings, as `make robustness` changes them),
so a perturbed re-run of a chapter does not overwrite what the pinned run recorded. `missing_chapters`
and `regenerate_chapters` let the log page run from a fresh clone: a training chapter that exists but
has recorded nothing is executed headlessly first (the run cache makes that cheap after the chapter ran).

What it does not do: it trains nothing and judges nothing; a chapter's conclusion is the chapter's,
asserted there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbasics.atomic import atomic_write_text
from lmbasics.book.experiments import Run
from lmbasics.book.notebook import PINNED_KERNELS, SEED_OFFSET_VARIABLE
from lmbasics.book.plotting import read_metrics
from lmbasics.training.config import TrainConfig

LOG_DIR = Path("../artifacts/experiment_log")  # relative to notebooks/, where the chapters run
TRAINING_CHAPTERS = (7, 8, 9, 10, 11)
# Settings that say where or as which seed a run ran, not what was run: left out of config_changes.
_NOT_A_CHANGE = ("run.out_dir", "run.seed", "data.")


@dataclass(frozen=True)
class LoggedExperiment:
    """One comparison a chapter made: setting label -> that setting's runs (one per seed)."""

    chapter: str
    title: str
    conclusion: str
    settings: dict[str, list[Run]]
    base: TrainConfig | None = None  # the chapter's base config, if the chapter gave it

    @property
    def chapter_number(self) -> int:
        return chapter_number(self.chapter)


def chapter_number(chapter: str) -> int:
    """The chapter's number from how a chapter names itself: "08", "8", "08_learning_rate" -> 8."""
    found = re.match(r"\D*(\d+)", chapter)
    if not found:
        raise ValueError(f"chapter {chapter!r} has no number")
    return int(found.group(1))


def _variant() -> str:
    """Which variant of the book this process runs: seed offset and CPU-kernel settings."""
    settings = {name: os.environ.get(name) for name in (SEED_OFFSET_VARIABLE, *PINNED_KERNELS)}
    settings[SEED_OFFSET_VARIABLE] = settings[SEED_OFFSET_VARIABLE] or "0"
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def log_experiment(
    chapter: str,
    title: str,
    runs: Mapping[str, Sequence[Run]],
    conclusion: str,
    log_dir: str | os.PathLike = LOG_DIR,
    base: TrainConfig | None = None,
) -> Path:
    """Record that `chapter` ran `runs` (setting label -> seed runs) and concluded `conclusion`.

    `base`, the chapter's starting config, lets the log page show each setting as its change from it.
    One file per (chapter, title, variant): running the chapter again replaces its entry. Returns the file."""
    if not runs or any(not seed_runs for seed_runs in runs.values()):
        raise ValueError(f"log_experiment({chapter!r}, {title!r}): every setting needs at least one run")
    chapter_number(chapter)  # a chapter without a number could not be found again
    entry = {
        "chapter": chapter,
        "title": title,
        "conclusion": conclusion,
        "base": base.to_dict() if base is not None else None,
        "settings": {
            label: [{"out_dir": str(run.out_dir), "config": run.config.to_dict()} for run in seed_runs]
            for label, seed_runs in runs.items()
        },
    }
    path = Path(log_dir) / f"{_slug(chapter)}--{_slug(title)}--{_variant()}.json"
    atomic_write_text(path, json.dumps(entry, indent=1))
    return path


def read_experiment_log(log_dir: str | os.PathLike = LOG_DIR) -> list[LoggedExperiment]:
    """Every experiment recorded by this variant, by chapter then title, with each run's metrics read afresh.

    An entry whose run directory has gone (a cleaned `artifacts/`) is an error that names it, not a
    silent gap in the log."""
    entries = []
    for path in sorted(Path(log_dir).glob(f"*--{_variant()}.json")):
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
        base = TrainConfig.from_dict(raw["base"]) if raw.get("base") else None
        entries.append(LoggedExperiment(raw["chapter"], raw["title"], raw["conclusion"], settings, base))
    return sorted(entries, key=lambda entry: (entry.chapter_number, entry.title))


def run_identity(config: TrainConfig) -> str:
    """What makes two runs the same run: their config, with the data files by name and without the output
    folder. Chapter 9's baseline and chapter 8's run at the same rate and seed are one run, logged twice."""
    settings = config.to_dict()
    settings["run"] = {k: v for k, v in settings["run"].items() if k != "out_dir"}
    settings["data"] = {k: Path(v).name if isinstance(v, str) else v for k, v in settings["data"].items()}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def distinct_runs(log: Sequence[LoggedExperiment]) -> int:
    """How many different runs the log's experiments hold, each shared baseline counted once."""
    return len({run_identity(run.config) for entry in log for runs in entry.settings.values() for run in runs})


def recorded_results(results_dir: str | os.PathLike = Path("../results")) -> list[dict[str, Any]]:
    """One row per recorded run or sweep under `results_dir` (`record.json` or `sweep.json`): its name, kind,
    number of runs, steps and tokens of its longest run, training time, machine and date."""
    rows = []
    for path in sorted(Path(results_dir).glob("*/*.json")):
        if path.name not in ("record.json", "sweep.json"):
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        if path.name == "record.json":
            logs = [read_metrics(path.parent)]
        else:
            logs = [read_metrics(path.parent / Path(run["file"]).parent) for run in meta["runs"]]
        longest = max(logs, key=lambda log: log[-1]["tokens_seen"])
        rows.append({
            "name": meta["name"],
            "kind": "recorded run" if path.name == "record.json" else "recorded sweep",
            "runs": len(logs),
            "steps (longest run)": longest[-1]["step"],
            "tokens (longest run)": longest[-1]["tokens_seen"],
            "training time (min)": round(meta["wall_time_s"] / 60, 1),
            "machine": f"{meta['machine']['cpu']}, {meta['machine']['cores']} cores",
            "date": meta["date"],
            "command": meta["command"],
        })  # fmt: skip
    return rows


def _flatten(config: TrainConfig) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, table in config.to_dict().items() for key, value in table.items()}


def config_changes(config: TrainConfig, base: TrainConfig) -> dict[str, Any]:
    """The settings of `config` that differ from `base`, as `section.key` -> value (what `--set` would say).

    Where the run ran and its seed are not changes (`run.out_dir`, `run.seed`, the `data` paths)."""
    mine, theirs = _flatten(config), _flatten(base)
    return {
        key: value
        for key, value in mine.items()
        if theirs.get(key) != value and not any(key.startswith(prefix) for prefix in _NOT_A_CHANGE)
    }


def chapter_notebooks(notebooks_dir: str | os.PathLike, chapters: Sequence[int] = TRAINING_CHAPTERS) -> dict[int, Path]:
    """The notebooks `NN_*.ipynb` of `chapters` that exist in `notebooks_dir`, by chapter number."""
    found = {}
    for number in chapters:
        matches = sorted(Path(notebooks_dir).glob(f"{number:02d}_*.ipynb"))
        if matches:
            found[number] = matches[0]
    return found


def missing_chapters(
    notebooks_dir: str | os.PathLike, log_dir: str | os.PathLike = LOG_DIR, chapters: Sequence[int] = TRAINING_CHAPTERS
) -> dict[int, Path]:
    """The chapters whose notebook exists but which have recorded nothing in this variant's log."""
    logged = {path.name.split("--")[0] for path in Path(log_dir).glob(f"*--{_variant()}.json")}
    numbers = {chapter_number(name) for name in logged}
    return {n: path for n, path in chapter_notebooks(notebooks_dir, chapters).items() if n not in numbers}


def execute_notebook(path: str | os.PathLike, timeout_s: int = 1800) -> None:
    """Run a notebook headlessly (nbconvert, in a subprocess with this environment); outputs are discarded."""
    with tempfile.TemporaryDirectory() as out_dir:
        command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   f"--ExecutePreprocessor.timeout={timeout_s}", "--ExecutePreprocessor.kernel_name=python3",
                   "--output-dir", out_dir, str(path)]  # fmt: skip
        result = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"executing {path} failed:\n{result.stderr[-3000:]}")


def regenerate_chapters(
    notebooks_dir: str | os.PathLike,
    log_dir: str | os.PathLike = LOG_DIR,
    chapters: Sequence[int] = TRAINING_CHAPTERS,
    execute: Any = execute_notebook,
) -> list[int]:
    """Execute every chapter that exists but has recorded nothing, then check that each now has.

    Returns the chapters executed; raises naming any chapter that still recorded nothing."""
    missing = missing_chapters(notebooks_dir, log_dir, chapters)
    for path in missing.values():
        execute(path)
    still = missing_chapters(notebooks_dir, log_dir, chapters)
    if still:
        names = ", ".join(path.name for path in still.values())
        raise RuntimeError(f"these chapters ran but recorded no experiment (log_experiment): {names}")
    return sorted(missing)
