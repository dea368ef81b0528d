"""Book experiments: runs are cached exactly when nothing that decides them changed; seed statistics."""

import numpy as np
import pytest
import torch

from lmbasics import last, margin, run_experiment, run_seeds, seed_range
from lmbasics.training.config import TrainConfig


def tiny_base(tmp_path) -> TrainConfig:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 32, size=3000).astype(np.uint16)
    np.save(tmp_path / "train.npy", tokens[:2500])
    np.save(tmp_path / "valid.npy", tokens[2500:])
    return TrainConfig.from_dict(
        {
            "model": dict(vocab_size=32, context_length=8, d_model=16, num_layers=1, num_heads=2, d_ff=32),
            "optimizer": dict(max_learning_rate=1e-2, min_learning_rate=1e-3, warmup_iters=2),
            "data": dict(train=str(tmp_path / "train.npy"), valid=str(tmp_path / "valid.npy")),
            "run": dict(
                batch_size=4, max_iters=6, eval_interval=3, eval_iters=1, log_interval=3, device="cpu", num_threads=1
            ),
        }
    )


def test_a_finished_run_is_reused_and_any_change_trains_afresh(tmp_path, monkeypatch):
    base, runs = tiny_base(tmp_path), tmp_path / "runs"
    first = run_experiment(base, seed=0, runs_dir=runs)
    stamp = (first.out_dir / "metrics.jsonl").stat().st_mtime_ns
    again = run_experiment(base, seed=0, runs_dir=runs)
    assert again.out_dir == first.out_dir and again.log == first.log
    assert (again.out_dir / "metrics.jsonl").stat().st_mtime_ns == stamp  # read, not retrained
    assert again.checkpoint.is_file()

    seed_1 = run_experiment(base, seed=1, runs_dir=runs).out_dir
    changed = {run_experiment(base, "optimizer.max_learning_rate=0.02", runs_dir=runs).out_dir, seed_1}
    monkeypatch.setenv("LMBASICS_SEED_OFFSET", "1")
    assert run_experiment(base, seed=0, runs_dir=runs).out_dir == seed_1  # the same seed, 1
    monkeypatch.delenv("LMBASICS_SEED_OFFSET")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    changed.add(run_experiment(base, runs_dir=runs).out_dir)
    assert first.out_dir not in changed and len(changed) == 3


def test_an_unfinished_run_is_trained_again(tmp_path):
    base, runs = tiny_base(tmp_path), tmp_path / "runs"
    run = run_experiment(base, runs_dir=runs)
    (run.out_dir / "experiment.json").unlink()  # as if training had crashed before the end
    stamp = (run.out_dir / "metrics.jsonl").stat().st_mtime_ns
    assert run_experiment(base, runs_dir=runs).log[-1]["step"] == 6
    assert (run.out_dir / "metrics.jsonl").stat().st_mtime_ns != stamp


def test_seeds_give_different_runs(tmp_path):
    runs = run_seeds(tiny_base(tmp_path), seeds=(0, 1), runs_dir=tmp_path / "runs")
    assert runs[0].config.run.seed == 0 and runs[1].config.run.seed == 1
    assert last(runs[0]) != last(runs[1])


def test_seed_range_and_margin():
    spread = seed_range([3.0, 4.0, 3.5])
    assert (spread.mean, spread.low, spread.high) == (3.5, 3.0, 4.0)
    assert str(spread) == "3.50 (3.00–4.00)"
    assert margin([1.0, 1.2], [1.5, 2.0]) == pytest.approx(0.3)  # ranges apart
    assert margin([1.0, 1.6], [1.5, 2.0]) < 0  # ranges overlap: no claim
    with pytest.raises(ValueError, match="at least one"):
        seed_range([])
    with pytest.raises(ValueError, match="no 'val_loss'"):
        last([{"step": 1}])


def test_seed_offset_comes_from_the_environment(monkeypatch):
    from lmbasics import book_seed, seed_offset

    monkeypatch.delenv("LMBASICS_SEED_OFFSET", raising=False)
    assert seed_offset() == 0 and book_seed(5) == 5
    monkeypatch.setenv("LMBASICS_SEED_OFFSET", "2")
    assert book_seed(5) == 7
    for bad in ["-1", "one"]:
        monkeypatch.setenv("LMBASICS_SEED_OFFSET", bad)
        with pytest.raises(ValueError, match="LMBASICS_SEED_OFFSET must be a non-negative integer"):
            seed_offset()


def test_setup_notebook_warns_only_without_the_pinned_kernels(monkeypatch, recwarn):
    import warnings

    from lmbasics import PINNED_KERNELS, kernels_pinned, setup_notebook

    for name, value in PINNED_KERNELS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LMBASICS_SEED_OFFSET", raising=False)
    monkeypatch.setenv("LMBASICS_NBVAL", "strict")  # portable mode (e.g. an ARM machine) never warns
    assert kernels_pinned()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        setup_notebook(0, num_threads=1)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    with pytest.warns(UserWarning, match="CPU kernels are not pinned"):
        setup_notebook(0, num_threads=1)


def test_snapshots_keep_checkpoints_without_changing_the_run(tmp_path):
    base, runs = tiny_base(tmp_path), tmp_path / "runs"
    plain = run_experiment(base, runs_dir=runs)
    with_snapshots = run_experiment(base, runs_dir=tmp_path / "other", snapshots=[2, 4])
    strip = [{k: v for k, v in r.items() if k not in ("tokens_per_s", "wall_time_s")} for r in plain.log]
    assert strip == [{k: v for k, v in r.items() if k not in ("tokens_per_s", "wall_time_s")}
                     for r in with_snapshots.log]  # fmt: skip
    assert torch.load(with_snapshots.snapshot(2), weights_only=False)["iteration"] == 2
    assert torch.load(with_snapshots.snapshot(4), weights_only=False)["iteration"] == 4
    with pytest.raises(FileNotFoundError, match="no snapshot at step 3"):
        with_snapshots.snapshot(3)
    with pytest.raises(ValueError, match="strictly between"):
        run_experiment(base, runs_dir=runs, snapshots=[6])


def test_only_the_training_code_decides_whether_a_run_is_reused(tmp_path, monkeypatch):
    from lmbasics.book import experiments

    files = ["model/lm.py", "training/trainer.py", "checks.py", "atomic.py", "book/experiments.py", "book/notebook.py"]
    for name in [*files, "book/plotting.py", "tokenization/bpe.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    monkeypatch.setattr(experiments, "_SOURCE", tmp_path)
    before = experiments._source_digest()
    (tmp_path / "book/plotting.py").write_text("x = 2\n")  # display code: the run is reused
    assert experiments._source_digest() == before
    for name in files:
        (tmp_path / name).write_text((tmp_path / name).read_text() + "y = 3\n")
        changed = experiments._source_digest()
        assert changed != before, name
        before = changed
