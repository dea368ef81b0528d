"""Loss curves from the JSONL metrics that `lmbasics train` writes, for chapters 7 to 11.

`read_metrics` loads a run's log; `plot_losses` draws one or several runs against steps, tokens
or wall-clock time; `plot_seed_bands` draws each setting's mean over seeds with the band from the
lowest to the highest seed, the picture behind every comparison the chapters claim. matplotlib is
imported only when plotting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from lmbasics.training.metrics import read_metrics

XAxis = Literal["step", "tokens_seen", "wall_time_s"]
_X_LABELS = {"step": "step", "tokens_seen": "tokens seen", "wall_time_s": "wall-clock time (s)"}


def series(records: list[dict[str, Any]], x: XAxis, y: str) -> tuple[list[float], list[float]]:
    """The (x, y) points of the records that have a finite `y`."""
    points = [(r[x], r[y]) for r in records if r.get(y) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_losses(
    runs: Mapping[str, str | Path | list[dict[str, Any]]],
    x: XAxis = "step",
    metric: str = "val_loss",
    ax: Any = None,
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Any:
    """One line per run of `metric` against `x`; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, run in runs.items():
        records = read_metrics(run) if isinstance(run, (str, Path)) else run
        xs, ys = series(records, x, metric)
        ax.plot(xs, ys, label=label, marker="o" if len(xs) < 15 else None, markersize=3)
    ax.set_xlabel(_X_LABELS[x])
    ax.set_ylabel(metric.replace("_", " "))
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_seed_bands(
    settings: Mapping[str, Sequence[Any]],
    x: XAxis = "step",
    metric: str = "val_loss",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Per setting, the mean of `metric` over its seeds' runs (a line) and their range (a band).

    Each value of `settings` is a list of runs (metrics logs, or objects with a `.log`) of one setting.
    With x="wall_time_s" the seeds are logged at different times; the line then uses their mean time."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, runs in settings.items():
        curves = [series(getattr(run, "log", run), x, metric) for run in runs]
        length = min(len(ys) for _, ys in curves)
        xs = np.mean([xs[:length] for xs, _ in curves], axis=0)
        ys = np.array([ys[:length] for _, ys in curves])
        (line,) = ax.plot(
            xs, ys.mean(axis=0), label=f"{label} ({len(runs)} seeds)", marker="o" if length < 15 else None, markersize=3
        )
        ax.fill_between(xs, ys.min(axis=0), ys.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(_X_LABELS[x])
    ax.set_ylabel(metric.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def mark_baselines(ax: Any, unigram: float, uniform: float | None = None) -> Any:
    """Draw the reference losses every loss plot of the book carries: the unigram model (what a model that
    ignores its context reaches) and, if given, the uniform guess ln V (above it a run has diverged)."""
    ax.axhline(unigram, color="gray", linestyle="--", linewidth=1, label=f"unigram model ({unigram:.2f})")
    if uniform is not None:
        ax.axhline(uniform, color="gray", linestyle=":", linewidth=1, label=f"uniform guess, ln V ({uniform:.2f})")
    ax.legend(fontsize=8)
    return ax
