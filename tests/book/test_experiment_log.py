"""The experiment log: what a chapter records reads back with the runs' own metrics."""

import pytest
from test_experiments import tiny_base

from lmbasics import log_experiment, read_experiment_log, run_seeds


def test_recorded_runs_read_back_with_their_metrics(tmp_path):
    base = tiny_base(tmp_path)
    runs = {
        "lr 1e-2": run_seeds(base, seeds=(0, 1), runs_dir=tmp_path / "runs"),
        "lr 2e-2": run_seeds(base, "optimizer.max_learning_rate=0.02", seeds=(0,), runs_dir=tmp_path / "runs"),
    }
    log = tmp_path / "log"
    log_experiment("08", "learning rate", runs, "the higher rate ends lower", log_dir=log)
    log_experiment("08", "learning rate", runs, "rewritten", log_dir=log)  # a re-run replaces the entry
    (entry,) = read_experiment_log(log)
    assert (entry.chapter, entry.title, entry.conclusion) == ("08", "learning rate", "rewritten")
    assert list(entry.settings) == ["lr 1e-2", "lr 2e-2"]
    assert [r.log for r in entry.settings["lr 1e-2"]] == [r.log for r in runs["lr 1e-2"]]
    assert entry.settings["lr 2e-2"][0].config.optimizer.max_learning_rate == 0.02


def test_a_missing_run_directory_is_named(tmp_path):
    base = tiny_base(tmp_path)
    runs = {"base": run_seeds(base, seeds=(0,), runs_dir=tmp_path / "runs")}
    log_experiment("07", "base", runs, "ok", log_dir=tmp_path / "log")
    for f in runs["base"][0].out_dir.iterdir():
        f.unlink()
    runs["base"][0].out_dir.rmdir()
    with pytest.raises(FileNotFoundError, match="is gone"):
        read_experiment_log(tmp_path / "log")
    with pytest.raises(ValueError, match="at least one run"):
        log_experiment("07", "empty", {"base": []}, "x", log_dir=tmp_path / "log")
