"""The training loop: it learns, resumes bit for bit, survives Ctrl-C, runs under DDP, and rejects bad input."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lmbasics.training.checkpoint import read_checkpoint
from lmbasics.training.config import TrainConfig
from lmbasics.training.trainer import Trainer, train

VOCAB = 64


def tiny_config(tmp_path: Path, **run) -> TrainConfig:
    """A model small enough to train in a second on data with an obvious pattern."""
    rng = np.random.default_rng(0)
    # Repeated short "words" with noise: learnable, so the loss must drop well below log(VOCAB).
    words = rng.integers(0, VOCAB, size=(20, 5))
    tokens = np.concatenate([words[i] for i in rng.integers(0, 20, size=4000)]).astype(np.uint16)
    np.save(tmp_path / "train.npy", tokens[:16000])
    np.save(tmp_path / "valid.npy", tokens[16000:])
    values = {
        "model": dict(vocab_size=VOCAB, context_length=16, d_model=32, num_layers=2, num_heads=2, d_ff=64),
        "optimizer": dict(max_learning_rate=1e-2, min_learning_rate=1e-3, warmup_iters=5, weight_decay=0.0),
        "data": dict(train=str(tmp_path / "train.npy"), valid=str(tmp_path / "valid.npy")),
        "run": dict(
            batch_size=8,
            max_iters=40,
            eval_interval=20,
            eval_iters=2,
            log_interval=5,
            checkpoint_interval=20,
            out_dir=str(tmp_path / "run"),
            device="cpu",
            num_threads=1,
        )
        | run,
    }
    return TrainConfig.from_dict(values)


def metrics(out_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(out_dir) / "metrics.jsonl").read_text().splitlines()]


def test_training_reduces_the_loss_and_logs_every_field(tmp_path):
    config = tiny_config(tmp_path, max_iters=60)
    result = train(config, progress=False)
    log = metrics(result.out_dir)
    assert [r["step"] for r in log] == list(range(5, 61, 5))
    assert {"step", "tokens_seen", "lr", "train_loss", "grad_norm", "tokens_per_s", "wall_time_s"} <= set(log[0])
    assert log[-1]["tokens_seen"] == 60 * 8 * 16
    assert "val_loss" in log[3] and "val_loss" not in log[0]
    assert log[-1]["train_loss"] < 0.6 * np.log(VOCAB)
    assert result.final_val_loss < 0.6 * np.log(VOCAB)
    assert read_checkpoint(result.out_dir / "checkpoint.pt")["iteration"] == 60


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight = tiny_config(tmp_path, max_iters=40, out_dir=str(tmp_path / "straight"))
    train(straight, progress=False)
    split = tiny_config(tmp_path, max_iters=40, out_dir=str(tmp_path / "split"))
    Trainer(split, progress=False).run(until=23)  # stops between checkpoints, as Ctrl-C would
    train(split, resume=True, progress=False)

    a = read_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoint.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    drop = ("tokens_per_s", "wall_time_s")
    strip = lambda log: [{k: v for k, v in r.items() if k not in drop} for r in log]  # noqa: E731
    assert strip(metrics(tmp_path / "straight")) == strip(metrics(tmp_path / "split"))


def test_a_run_directory_is_never_overwritten_silently(tmp_path):
    config = tiny_config(tmp_path, max_iters=8)
    train(config, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(config, progress=False)
    train(config, progress=False, overwrite=True)  # explicit --force


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"data.train": "missing.npy"}, FileNotFoundError, "token file not found"),
        ({"model.context_length": 100_000}, ValueError, "fewer than context_length"),
        ({"model.vocab_size": 32}, ValueError, "outside the vocabulary"),
    ],
)
def test_bad_data_is_reported_before_training(tmp_path, change, error, message):
    config = tiny_config(tmp_path)
    ((key, value),) = change.items()
    config = config.with_overrides([f"{key}={json.dumps(value)}"])
    with pytest.raises(error, match=message):
        Trainer(config, progress=False)


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        Trainer(tiny_config(tmp_path), resume=True, progress=False)


RUNNER = textwrap.dedent(
    """
    import sys
    from lmbasics.cli import train_main
    sys.exit(train_main(sys.argv[1:]))
    """
)


def write_toml(config: TrainConfig, path: Path) -> Path:
    lines = []
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    config = tiny_config(tmp_path, max_iters=100_000, checkpoint_interval=100_000, log_interval=1)
    toml = write_toml(config, tmp_path / "c.toml")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "--config", str(toml), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while not (log.exists() and log.read_text().count("\n") >= 3) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted at step" in out
    saved = read_checkpoint(tmp_path / "run" / "checkpoint.pt")["iteration"]
    assert saved >= 3 and f"step {saved}" in out


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_at_the_same_global_batch(tmp_path):
    single = tiny_config(tmp_path, max_iters=10, log_interval=1, out_dir=str(tmp_path / "one"))
    train(single, progress=False)
    double = write_toml(
        tiny_config(tmp_path, max_iters=10, log_interval=1, out_dir=str(tmp_path / "two")), tmp_path / "two.toml"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "lmbasics.training",
            "--config",
            str(double),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    np.testing.assert_allclose([r["train_loss"] for r in two], [r["train_loss"] for r in one], rtol=1e-4)
    np.testing.assert_allclose(two[-1]["val_loss"], one[-1]["val_loss"], rtol=1e-4)
