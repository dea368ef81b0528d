"""Overhead of the training loop: tokens/s of `lmbasics.training.trainer.Trainer` against a bare train step.

- bare step: forward, cross-entropy, backward, gradient clipping, AdamW step, on batches sampled
  before the timer starts: the least work one optimizer step can be;
- Trainer loop: `Trainer.run` on a memory-mapped uint16 token file, with everything a real run does
  per step (sampling windows from the memmap, the cosine learning rate, the step, loss and gradient-norm
  bookkeeping) and a JSONL log record every `log_interval` steps, as in the book's runs. Evaluation and
  checkpoints happen only after the last step and fall outside the timed window, which is read from the
  metrics log: wall-clock time between the record that ends the warm-up and the last record.

Both use the same model shapes, batch and thread count, after the same number of warm-up steps; rounds
alternate the two so that background load hits both alike. The overhead is judged on each variant's
best round (the least disturbed, as in `train_step.py`); the medians are printed beside it, since on a
shared 2-core machine a single disturbed round moves a median by several percent. The default shapes
are the book's CPU-scale model (`configs/tinystories_cpu.toml`).

Usage:  python benchmarks/train_loop.py [--quick] [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lmbasics import TransformerLM, clip_grad_norm, cross_entropy, fix_threads, get_batch, load_train_config
from lmbasics.training.config import TrainConfig
from lmbasics.training.metrics import read_metrics
from lmbasics.training.optim import adamw_from_config
from lmbasics.training.trainer import Trainer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tinystories_cpu.toml"
FULL = {"overrides": [], "warmup": 10, "steps": 100, "log_interval": 10}
QUICK = {"overrides": ["model.vocab_size=512", "model.d_model=32", "model.d_ff=64", "model.context_length=32",
                       "run.batch_size=4"], "warmup": 5, "steps": 10, "log_interval": 5}  # fmt: skip


def loop_seconds(config: TrainConfig, warmup: int) -> float:
    """Seconds per step of `Trainer.run` after `warmup` steps, from the run's own metrics log."""
    trainer = Trainer(config, progress=False, overwrite=True)
    try:
        trainer.run()
    finally:
        trainer.close()
    records = {r["step"]: r for r in read_metrics(config.run.out_dir)}
    last = config.run.max_iters
    return (records[last]["wall_time_s"] - records[warmup]["wall_time_s"]) / (last - warmup)


def bare_seconds(config: TrainConfig, tokens: np.ndarray, warmup: int, steps: int) -> float:
    """Seconds per step of forward + backward + clip + AdamW on pre-sampled batches."""
    torch.manual_seed(config.run.seed)
    model = TransformerLM.from_config(config.model)
    opt = config.optimizer
    optimizer = adamw_from_config(model.parameters(), opt)
    rng = np.random.default_rng(config.run.seed)
    batches = [get_batch(tokens, config.run.batch_size, config.model.context_length, "cpu", rng)
               for _ in range(warmup + steps)]  # fmt: skip

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        loss = cross_entropy(model(inputs), targets)
        loss.backward()
        clip_grad_norm(model.parameters(), opt.max_grad_norm if opt.max_grad_norm is not None else math.inf)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for inputs, targets in batches[:warmup]:
        step(inputs, targets)
    start = time.perf_counter()
    for inputs, targets in batches[warmup:]:
        step(inputs, targets)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, a smoke run")
    # One thread by default: with both cores busy, scheduling jitter on a 2-core machine spreads the
    # rounds by ±20%, far more than the overhead being measured.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=None, help="measurement rounds (default 5, quick 2)")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    rounds = args.rounds or (2 if args.quick else 5)
    warmup, steps = settings["warmup"], settings["steps"]
    fix_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        base = load_train_config(CONFIG, settings["overrides"])
        tokens = np.random.default_rng(0).integers(0, base.model.vocab_size, size=200_000).astype(np.uint16)
        np.save(Path(tmp) / "tokens.npy", tokens)
        config = base.with_overrides(
            [
                f"data.train={tmp}/tokens.npy",
                f"data.valid={tmp}/tokens.npy",
                f"run.out_dir={tmp}/run",
                f"run.max_iters={warmup + steps}",
                f"run.log_interval={settings['log_interval']}",
                f"optimizer.warmup_iters={warmup}",
                "run.eval_interval=1000000000",
                "run.eval_iters=1",
                "run.checkpoint_interval=1000000000",
                f"run.num_threads={args.threads}",
                "run.device=cpu",
            ]
        )
        tokens = np.load(Path(tmp) / "tokens.npy", mmap_mode="r")
        seconds: dict[str, list[float]] = {"bare step": [], "Trainer loop": []}
        for round_ in range(rounds):
            order = ["bare step", "Trainer loop"] if round_ % 2 == 0 else ["Trainer loop", "bare step"]
            for name in order:
                if name == "bare step":
                    seconds[name].append(bare_seconds(config, tokens, warmup, steps))
                else:
                    seconds[name].append(loop_seconds(config, warmup))

    tokens_per_step = config.tokens_per_iter
    print(f"model: {config.model}\nbatch {config.run.batch_size} x {config.model.context_length} = "
          f"{tokens_per_step:,} tokens/step; {torch.get_num_threads()} threads; {rounds} rounds of {steps} timed "
          f"steps after {warmup} warm-up steps; log every {config.run.log_interval} steps\n")  # fmt: skip
    print(f"{'':14s} {'best ms/step':>12s} {'tokens/s':>9s} {'median ms/step':>15s} {'tokens/s':>9s}")
    for name, values in seconds.items():
        best, median = min(values), statistics.median(values)
        print(
            f"{name:14s} {1e3 * best:12.2f} {tokens_per_step / best:9.0f} {1e3 * median:15.2f} "
            f"{tokens_per_step / median:9.0f}"
        )
    overhead = min(seconds["Trainer loop"]) / min(seconds["bare step"]) - 1
    median_overhead = statistics.median(seconds["Trainer loop"]) / statistics.median(seconds["bare step"]) - 1
    verdict = "met" if overhead <= 0.05 else "MISSED"
    print(
        f"\nloop overhead: {overhead:+.1%} of the bare step time, best rounds (target: at most 5%: {verdict}); "
        f"medians: {median_overhead:+.1%}"
    )


if __name__ == "__main__":
    main()
