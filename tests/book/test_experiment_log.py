"""The experiment log: what a chapter records reads back with the runs' own metrics."""

import pytest
from test_experiments import tiny_base

from lmbasics import (
    config_changes,
    distinct_runs,
    log_experiment,
    read_experiment_log,
    recorded_results,
    regenerate_chapters,
    run_identity,
    run_seeds,
)


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


def test_entries_show_changes_from_the_base_and_stay_per_variant(tmp_path, monkeypatch):
    base = tiny_base(tmp_path)
    runs = {"lr 2e-2": run_seeds(base, "optimizer.max_learning_rate=0.02", seeds=(0,), runs_dir=tmp_path / "runs")}
    log = tmp_path / "log"
    log_experiment("08_learning_rate", "lr", runs, "c", log_dir=log, base=base)
    (entry,) = read_experiment_log(log)
    assert entry.chapter_number == 8 and entry.base == base
    # the seed and the output directory are where a run ran, not what was changed
    assert config_changes(entry.settings["lr 2e-2"][0].config, entry.base) == {"optimizer.max_learning_rate": 0.02}
    monkeypatch.setenv("LMBASICS_SEED_OFFSET", "1")
    assert read_experiment_log(log) == []  # another variant has recorded nothing yet
    with pytest.raises(ValueError, match="no number"):
        log_experiment("intro", "x", runs, "c", log_dir=log)


def test_regenerate_runs_only_chapters_without_entries_and_names_silent_ones(tmp_path):
    base = tiny_base(tmp_path)
    runs = {"base": run_seeds(base, seeds=(0,), runs_dir=tmp_path / "runs")}
    notebooks, log = tmp_path / "notebooks", tmp_path / "log"
    notebooks.mkdir()
    for name in ("06_optimizers", "07_training", "08_lr", "09_ablations"):
        (notebooks / f"{name}.ipynb").write_text("{}")
    log_experiment("07", "main run", runs, "ok", log_dir=log)
    executed = []

    def execute(path):  # stands in for running the notebook: chapter 8 records, chapter 9 does not
        executed.append(path.name)
        if path.name.startswith("08"):
            log_experiment("08", "sweep", runs, "ok", log_dir=log)

    with pytest.raises(RuntimeError, match="09_ablations.ipynb"):
        regenerate_chapters(notebooks, log, execute=execute)
    assert executed == ["08_lr.ipynb", "09_ablations.ipynb"]  # 06 is not a training chapter, 07 had run
    (notebooks / "09_ablations.ipynb").unlink()
    assert regenerate_chapters(notebooks, log, execute=execute) == []


def test_a_run_logged_by_two_experiments_counts_once(tmp_path):
    base = tiny_base(tmp_path)
    shared = run_seeds(base, seeds=(0, 1), runs_dir=tmp_path / "runs")
    other = run_seeds(base, "optimizer.max_learning_rate=0.02", seeds=(0,), runs_dir=tmp_path / "runs")
    log_dir = tmp_path / "log"
    log_experiment("08", "rates", {"base": shared, "higher": other}, "x", log_dir=log_dir)
    log_experiment("09", "ablation", {"base": shared}, "y", log_dir=log_dir)
    log = read_experiment_log(log_dir)
    assert sum(len(runs) for entry in log for runs in entry.settings.values()) == 5
    assert distinct_runs(log) == 3
    # The same config trained into another folder is the same run; another seed is not.
    moved = shared[0].config.with_overrides([f"run.out_dir={tmp_path / 'elsewhere'}"])
    assert run_identity(moved) == run_identity(shared[0].config) != run_identity(shared[1].config)


def test_recorded_results_lists_every_record_and_sweep():
    from pathlib import Path

    results = Path(__file__).resolve().parents[2] / "results"
    rows = recorded_results(results)
    names = {row["name"] for row in rows}
    expected = {path.parent.name for pattern in ("*/record.json", "*/sweep.json") for path in results.glob(pattern)}
    assert names == expected and "tinystories_story" in names
    story = next(row for row in rows if row["name"] == "tinystories_story")
    assert story["kind"] == "recorded run" and story["runs"] == 1 and story["steps (longest run)"] == 1100
