"""The training loop (handout §5.3): AdamW, cosine schedule, clipping, evaluation, logs, checkpoints.

Run it as `lmbasics train --config configs/NAME.toml [--set section.key=value ...] [--resume]`, or
under torchrun for several processes: `torchrun --nproc_per_node N -m lmbasics.training --config ...`.

A run directory (`run.out_dir`) holds `config.json`, `metrics.jsonl` (one JSON object per logged
step) and `checkpoint.pt`. Ctrl-C saves a checkpoint before exiting, and `--resume` continues from
it bit for bit: the data sampler's state travels in the checkpoint.

With several processes (DistributedDataParallel; gloo on CPU, nccl on CUDA), `run.batch_size` is the
global batch: every rank draws the same window positions and reads only its own slice of them, so a
run on N processes follows the single-process run at the same global batch. Rank 0 logs and saves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from lmbasics.atomic import atomic_write_text
from lmbasics.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from lmbasics.training.data import load_tokens, sample_starts, windows_at
from lmbasics.training.loss import cross_entropy
from lmbasics.model.lm import TransformerLM
from lmbasics.training.optim import AdamW, clip_grad_norm, cosine_lr_schedule
from lmbasics.training.config import TrainConfig, add_train_arguments, load_train_config

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"


def resolve_device(name: str) -> torch.device:
    """`auto` means CUDA if present, then Apple's MPS, then the CPU; anything else is taken as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


@dataclass
class RunResult:
    """What a finished (or interrupted) run reports back."""

    iteration: int
    final_train_loss: float | None
    final_val_loss: float | None
    interrupted: bool
    out_dir: Path


class MetricsLog:
    """Append-only JSONL metrics file; on resume it is cut back to the checkpoint's step."""

    def __init__(self, path: Path, resume_from: int | None):
        self.path = path
        if resume_from is None:
            lines: list[str] = []
        else:
            lines = [
                line
                for line in (path.read_text().splitlines() if path.exists() else [])
                if line.strip() and json.loads(line)["step"] <= resume_from
            ]
        atomic_write_text(path, "".join(f"{line}\n" for line in lines))
        self.handle = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


class Trainer:
    """One training run: set-up, the step loop, evaluation, logging and checkpoints."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False):
        self.config = config
        run = config.run
        self.device = resolve_device(run.device)
        if run.num_threads:
            torch.set_num_threads(run.num_threads)
        self.dist = init_distributed(self.device)
        if self.dist.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        if run.batch_size % self.dist.world_size:
            raise ValueError(
                f"run.batch_size ({run.batch_size}) must be divisible by the number of processes ({self.dist.world_size})"
            )
        self.local_batch = run.batch_size // self.dist.world_size
        self.out_dir = Path(run.out_dir)
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        if not resume and not overwrite and self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.out_dir} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
                "--force to start over, or set run.out_dir to a new directory"
            )
        if resume and not self.checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no {CHECKPOINT_NAME} in {self.out_dir}")

        self.learning_rate(0)  # a schedule that cannot work fails now, not at the first step
        torch.manual_seed(run.seed)
        self.train_tokens = load_tokens(self._data_path(config.data.train, "data.train"), config.model.vocab_size)
        self.valid_tokens = (
            load_tokens(self._data_path(config.data.valid, "data.valid"), config.model.vocab_size)
            if config.data.valid
            else None
        )
        for name, tokens in (("train", self.train_tokens), ("valid", self.valid_tokens)):
            if tokens is not None and len(tokens) < config.model.context_length + 1:
                raise ValueError(
                    f"data.{name} has {len(tokens)} tokens, fewer than context_length + 1 = "
                    f"{config.model.context_length + 1}"
                )

        self.model = TransformerLM.from_config(config.model, device=self.device)
        opt = config.optimizer
        self.optimizer = AdamW(
            self.model.parameters(),
            lr=opt.max_learning_rate,
            betas=(opt.beta1, opt.beta2),
            eps=opt.eps,
            weight_decay=opt.weight_decay,
        )
        # Every rank draws the same global window positions and keeps its own slice of them.
        self.sampler = np.random.default_rng(run.seed)
        self.iteration = 0
        self.wall_offset = 0.0
        if resume:
            payload = read_checkpoint(self.checkpoint_path)
            self.iteration = load_checkpoint(self.checkpoint_path, self.model, self.optimizer)
            self.sampler.bit_generator.state = payload["extra"]["sampler"]
            self.wall_offset = payload["extra"].get("wall_time_s", 0.0)

        self.step_model: torch.nn.Module = self.model
        if run.compile:
            self.step_model = torch.compile(self.step_model)
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.step_model = DistributedDataParallel(self.step_model)
        self.use_autocast = self.device.type == "cuda" and run.mixed_precision
        if self.use_autocast:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        self.log: MetricsLog | None = None
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / CONFIG_NAME, json.dumps(config.to_dict(), indent=2))
            self.log = MetricsLog(self.out_dir / METRICS_NAME, self.iteration if resume else None)
        self.progress = progress and self.dist.is_main

    @staticmethod
    def _data_path(path: str, key: str) -> Path:
        if not path:
            raise ValueError(f"{key} is not set: give the path of a token .npy (from `lmbasics encode`)")
        return Path(path)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_autocast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def learning_rate(self, iteration: int) -> float:
        opt = self.config.optimizer
        cycle = opt.cosine_cycle_iters if opt.cosine_cycle_iters is not None else self.config.run.max_iters
        return cosine_lr_schedule(iteration, opt.max_learning_rate, opt.min_learning_rate, opt.warmup_iters, cycle)

    def _local_batch(self, tokens: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of a global batch drawn from `rng`."""
        context = self.config.model.context_length
        starts = sample_starts(len(tokens), self.config.run.batch_size, context, rng)
        mine = starts[self.dist.rank * self.local_batch : (self.dist.rank + 1) * self.local_batch]
        return windows_at(tokens, mine, context, self.device)

    def train_step(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns the (local) loss and the pre-clip gradient norm as tensors,
        so that on a GPU nothing waits for them unless the step is logged."""
        lr = self.learning_rate(iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = self._local_batch(self.train_tokens, self.sampler)
        with self._autocast():
            loss = cross_entropy(self.step_model(inputs), targets)
        loss.backward()
        max_norm = self.config.optimizer.max_grad_norm
        grad_norm = clip_grad_norm(self.model.parameters(), max_norm if max_norm is not None else math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), grad_norm

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean validation loss over `run.eval_iters` batches, the same batches at every evaluation."""
        if self.valid_tokens is None:
            return None
        rng = np.random.default_rng(self.config.run.seed + 1_000_003)
        self.model.eval()
        losses = []
        for _ in range(self.config.run.eval_iters):
            inputs, targets = self._local_batch(self.valid_tokens, rng)
            with self._autocast():
                losses.append(cross_entropy(self.model(inputs), targets))
        self.model.train()
        return self._mean_over_ranks(torch.stack(losses).mean())

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        value = value.detach().float()
        if self.dist.world_size > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.dist.world_size
        return float(value)

    def save(self, iteration: int, wall_time: float) -> None:
        if self.dist.is_main:
            extra = {"sampler": self.sampler.bit_generator.state, "wall_time_s": wall_time, "train_config": self.config.to_dict()}
            save_checkpoint(self.model, self.optimizer, iteration, self.checkpoint_path, extra=extra)

    def run(self, until: int | None = None) -> RunResult:
        """Train from the current iteration to `run.max_iters` (or stop, checkpointed, at step `until`).

        Ctrl-C stops after the current step and saves a checkpoint, like `until`.
        """
        run = self.config.run
        stop_at = run.max_iters if until is None else min(until, run.max_iters)
        start_time = time.perf_counter() - self.wall_offset
        tokens_per_step = run.batch_size * self.config.model.context_length
        train_loss = val_loss = None
        interrupted = False
        bar = tqdm(total=run.max_iters, initial=self.iteration, disable=not self.progress, desc="train", unit="step")
        window_start, window_steps = time.perf_counter(), 0
        try:
            with _stop_on_ctrl_c() as stop:
                for it in range(self.iteration, stop_at):
                    loss, grad_norm = self.train_step(it)
                    self.iteration = step = it + 1
                    window_steps += 1
                    is_last = step == run.max_iters
                    is_eval = step % run.eval_interval == 0 or is_last
                    if is_eval or step % run.log_interval == 0:
                        train_loss = self._mean_over_ranks(loss)
                        now = time.perf_counter()
                        record = {
                            "step": step,
                            "tokens_seen": step * tokens_per_step,
                            "lr": self.learning_rate(it),
                            "train_loss": train_loss,
                            "grad_norm": float(grad_norm),
                            "tokens_per_s": window_steps * tokens_per_step / max(now - window_start, 1e-9),
                            "wall_time_s": now - start_time,
                        }
                        if is_eval:
                            val_loss = record["val_loss"] = self.evaluate()
                        if self.log:
                            self.log.write(record)
                        bar.set_postfix(loss=f"{train_loss:.3f}")
                        window_start, window_steps = time.perf_counter(), 0
                    if step % run.checkpoint_interval == 0 or is_last or step == stop_at:
                        self.save(step, time.perf_counter() - start_time)
                    bar.update(1)
                    if stop.requested and step < stop_at:
                        interrupted = True
                        self.save(step, time.perf_counter() - start_time)
                        if self.progress:
                            tqdm.write(f"interrupted: checkpoint saved at step {step} in {self.checkpoint_path}")
                        break
        finally:
            bar.close()
            if self.log:
                self.log.close()
        return RunResult(self.iteration, train_loss, val_loss, interrupted, self.out_dir)

    def close(self) -> None:
        if self.dist.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


class _StopRequest:
    requested = False


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[_StopRequest]:
    """Turn the first Ctrl-C into a request to stop after the current step; a second one aborts."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


def train(config: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False) -> RunResult:
    """Run (or resume) training for `config`; the library entry point behind `lmbasics train`."""
    trainer = Trainer(config, resume=resume, progress=progress, overwrite=overwrite)
    try:
        return trainer.run()
    finally:
        trainer.close()


def run_from_args(args: argparse.Namespace) -> RunResult:
    config = load_train_config(args.config, args.overrides)
    result = train(config, resume=args.resume, progress=not args.no_progress, overwrite=args.force)
    if int(os.environ.get("RANK", "0")) == 0:
        losses = f"train loss {result.final_train_loss:.4f}" if result.final_train_loss is not None else "no steps"
        if result.final_val_loss is not None:
            losses += f", val loss {result.final_val_loss:.4f}"
        state = "interrupted" if result.interrupted else "finished"
        print(f"{state} at step {result.iteration}: {losses}; run directory {result.out_dir}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmbasics.training", description=__doc__.split("\n")[0])
    add_train_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
