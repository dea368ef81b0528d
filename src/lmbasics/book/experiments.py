"""Training runs as experiments, for chapters 7 to 11: several seeds, a cache of finished runs, and
comparisons that count only when they exceed the spread across seeds.

`run_experiment` trains one config (with `section.key=value` overrides) at one seed and returns its
metrics log. A finished run is reused when everything that decides its numbers is unchanged: the
config, the seed (shifted by `LMBASICS_SEED_OFFSET`), the token arrays, the library's training code, torch's
version and the CPU kernel settings. So a chapter that repeats another chapter's run, or a notebook
re-run in JupyterLab, does not train again, and any change that could move a bit trains afresh.

What it does not do: it does not compare runs for you. `seed_range` and `margin` give the numbers
a chapter asserts its claims with.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmbasics.atomic import atomic_write_text
from lmbasics.book.notebook import PINNED_KERNELS, book_seed
from lmbasics.book.plotting import read_metrics
from lmbasics.training.config import TrainConfig
from lmbasics.training.trainer import CHECKPOINT_NAME, Trainer, train

SEEDS = (0, 1, 2)
RUNS_DIR = Path("../artifacts/runs")  # relative to notebooks/, where the chapters run
_RECORD = "experiment.json"
_SOURCE = Path(__file__).resolve().parent.parent  # the lmbasics package
# The code a run's numbers can depend on: the model, the training loop, the checks and writes they use, and
# how this module and the notebook set-up drive them. Display, plotting, probes and tokenization (whose
# output reaches a run only as token arrays, hashed separately) are left out, so editing them reuses runs.
_RUN_SOURCES = ("model", "training", "checks.py", "atomic.py", "book/experiments.py", "book/notebook.py")

Log = list[dict[str, Any]]


@dataclass(frozen=True)
class Run:
    """A finished training run: its config, directory and metrics log."""

    config: TrainConfig
    out_dir: Path
    log: Log

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def snapshot(self, step: int) -> Path:
        """The checkpoint kept at `step` (see `run_experiment(..., snapshots=...)`)."""
        path = _snapshot_path(self.out_dir, step)
        if not path.is_file():
            raise FileNotFoundError(f"no snapshot at step {step} in {self.out_dir}: pass snapshots=[{step}, ...]")
        return path


def run_experiment(
    base: TrainConfig,
    *overrides: str,
    seed: int = 0,
    runs_dir: str | os.PathLike = RUNS_DIR,
    snapshots: Sequence[int] = (),
) -> Run:
    """Train `base` changed by `overrides` with seed `book_seed(seed)`, or reuse the same finished run.

    The run lives in `runs_dir/<hash of what decides it>`; `config.json` there says which run it is.
    `snapshots` lists steps at which a copy of the checkpoint is kept (`Run.snapshot(step)`), to look
    at the model part-way; they do not change the run's numbers (training stops and resumes bit for bit)."""
    config = base.with_overrides([*overrides, f"run.seed={book_seed(seed)}"])
    steps = sorted(set(snapshots))
    if any(not 0 < step < config.run.max_iters for step in steps):
        raise ValueError(f"snapshots must lie strictly between 0 and run.max_iters={config.run.max_iters}, got {steps}")
    key = _run_key(config)
    out_dir = Path(runs_dir) / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    config = config.with_overrides([f"run.out_dir={out_dir}"])
    record = out_dir / _RECORD
    finished = record.is_file() and (out_dir / CHECKPOINT_NAME).is_file() and _read_json(record) == key
    if not (finished and all(_snapshot_path(out_dir, step).is_file() for step in steps)):
        if steps:
            _train_with_snapshots(config, steps)
        else:
            train(config, progress=False, overwrite=True)
        atomic_write_text(record, json.dumps(key, sort_keys=True))  # written last: marks the run finished
    return Run(config, out_dir, read_metrics(out_dir))


def _snapshot_path(out_dir: Path, step: int) -> Path:
    return out_dir / f"checkpoint_step{step}.pt"


def _train_with_snapshots(config: TrainConfig, steps: Sequence[int]) -> None:
    """Train in legs that stop (checkpointed) at each of `steps` and resume: the run `train` makes."""
    for leg, stop in enumerate([*steps, None]):
        trainer = Trainer(config, resume=leg > 0, progress=False, overwrite=leg == 0)
        try:
            trainer.run(until=stop)
        finally:
            trainer.close()
        if stop is not None:
            shutil.copyfile(trainer.checkpoint_path, _snapshot_path(trainer.out_dir, stop))


def run_seeds(base: TrainConfig, *overrides: str, seeds: Sequence[int] = SEEDS, **kwargs: Any) -> list[Run]:
    """`run_experiment` once per seed: the runs of one setting, for its mean and spread."""
    return [run_experiment(base, *overrides, seed=seed, **kwargs) for seed in seeds]


def last(run: Run | Log, metric: str = "val_loss") -> float:
    """The last logged value of `metric` in a run."""
    log = run.log if isinstance(run, Run) else run
    values = [r[metric] for r in log if r.get(metric) is not None]
    if not values:
        raise ValueError(f"no {metric!r} in this log")
    return float(values[-1])


@dataclass(frozen=True)
class SeedRange:
    """One number over several seeds: its mean and the lowest and highest seed."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.2f} ({self.low:.2f}–{self.high:.2f})"


def seed_range(values: Iterable[float]) -> SeedRange:
    """Mean, minimum and maximum of one quantity measured once per seed."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        raise ValueError("seed_range needs at least one value")
    return SeedRange(float(array.mean()), float(array.min()), float(array.max()))


def margin(lower: Iterable[float], higher: Iterable[float]) -> float:
    """How far every seed of `higher` lies above every seed of `lower`: min(higher) - max(lower).

    Positive exactly when the two seed ranges do not overlap; a chapter claims "A is lower than B"
    only when this is positive, and asserts it with room to spare."""
    return float(min(higher)) - float(max(lower))


def _run_key(config: TrainConfig) -> dict[str, Any]:
    """Everything that decides a run's numbers (the output directory does not)."""
    settings = config.to_dict()
    settings["run"] = {k: v for k, v in settings["run"].items() if k != "out_dir"}
    settings.pop("data")  # paths: the arrays' contents count, not where they are
    return {
        "config": settings,
        "data": {split: _file_digest(getattr(config.data, split)) for split in ("train", "valid")},
        "library": _source_digest(),
        "torch": torch.__version__,
        "threads": config.run.num_threads or torch.get_num_threads(),  # what training will run with
        "kernels": {name: os.environ.get(name) for name in PINNED_KERNELS},
    }


def _file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _source_digest() -> str:
    digest = hashlib.sha256()
    paths = [
        p
        for name in _RUN_SOURCES
        for p in ([_SOURCE / name] if name.endswith(".py") else (_SOURCE / name).rglob("*.py"))
    ]
    for path in sorted(paths):
        digest.update(str(path.relative_to(_SOURCE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
