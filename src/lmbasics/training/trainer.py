"""The training loop (handout §5.3, chapter 7): AdamW, cosine schedule, clipping, evaluation, logs, checkpoints.

Run it as `lmbasics train --config configs/NAME.toml [--set section.key=value ...] [--resume]`, or
under torchrun for several processes: `torchrun --nproc_per_node N -m lmbasics.training --config ...`.
Chapters 8 to 10 call `train(config)` at other settings.

A run directory (`run.out_dir`) holds `config.json`, `metrics.jsonl` (one JSON object per logged
step, see `metrics.py`) and `checkpoint.pt`; with `run.tensorboard` (or `--tensorboard`) the same
records also go to TensorBoard event files in `tensorboard/` (`tensorboard --logdir <out_dir>`).
Ctrl-C saves a checkpoint before exiting (see `interrupt.py`), and `--resume` continues from it bit
for bit: the data sampler's state travels in the checkpoint. Several processes share a global batch
(see `distributed.py`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lmbasics.atomic import atomic_write_text
from lmbasics.model.lm import TransformerLM
from lmbasics.training.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from lmbasics.training.config import TrainConfig
from lmbasics.training.data import load_tokens, sample_starts, windows_at
from lmbasics.training.device import resolve_device
from lmbasics.training.distributed import init_distributed
from lmbasics.training.interrupt import stop_on_ctrl_c
from lmbasics.training.loss import cross_entropy, cross_entropy_and_z
from lmbasics.training.metrics import METRICS_NAME, MetricsLog
from lmbasics.training.optim import clip_grad_norm, cosine_lr_schedule, optimizer_from_config, wsd_lr_schedule

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"
TENSORBOARD_DIR = "tensorboard"


@dataclass
class RunResult:
    """What a finished (or interrupted) run reports back."""

    iteration: int
    final_train_loss: float | None
    final_val_loss: float | None
    interrupted: bool
    out_dir: Path


class Trainer:
    """One training run: set-up, the step loop, evaluation, logging and checkpoints."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False):
        self.config = config
        run = config.run
        if run.num_threads:
            torch.set_num_threads(run.num_threads)
        self.dist, self.device = init_distributed(resolve_device(run.device))
        if run.batch_size % self.dist.world_size:
            raise ValueError(f"run.batch_size ({run.batch_size}) must be divisible by the number of processes "
                             f"({self.dist.world_size})")  # fmt: skip
        self.local_batch = run.batch_size // self.dist.world_size
        self.out_dir = Path(run.out_dir)
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self._check_run_directory(resume, overwrite)
        self.learning_rate(0)  # a schedule that cannot work fails now, not at the first step

        torch.manual_seed(run.seed)
        self.train_tokens = self._tokens(config.data.train, "data.train")
        self.valid_tokens = self._tokens(config.data.valid, "data.valid") if config.data.valid else None
        self.model = TransformerLM.from_config(config.model, device=self.device)
        self.optimizer = optimizer_from_config(self.model, config.optimizer)
        self.sampler = np.random.default_rng(run.seed)  # every rank draws the same global windows
        self.iteration, self.wall_offset = self._resume() if resume else (0, 0.0)

        self.step_model = self._wrap_for_steps()
        self.use_autocast = self.device.type == "cuda" and run.mixed_precision
        if self.use_autocast:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.log = self._open_run_directory(resume)
        self.tensorboard = self._open_tensorboard()
        self.progress = progress and self.dist.is_main

    def _check_run_directory(self, resume: bool, overwrite: bool) -> None:
        if not resume and not overwrite and self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.out_dir} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
                "--force to start over, or set run.out_dir to a new directory"
            )
        if resume and not self.checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no {CHECKPOINT_NAME} in {self.out_dir}")

    def _tokens(self, path: str, key: str) -> np.ndarray:
        """A token array of the run, long enough for one window."""
        if not path:
            raise ValueError(f"{key} is not set: give the path of a token .npy (from `lmbasics encode`)")
        tokens = load_tokens(Path(path), self.config.model.vocab_size)
        context = self.config.model.context_length
        if len(tokens) < context + 1:
            raise ValueError(f"{key} has {len(tokens)} tokens, fewer than context_length + 1 = {context + 1}")
        return tokens

    def _resume(self) -> tuple[int, float]:
        """Restore model, optimizer, RNG and sampler states from the checkpoint (read once)."""
        payload = read_checkpoint(self.checkpoint_path)
        iteration = restore_checkpoint(payload, self.model, self.optimizer)
        self.sampler.bit_generator.state = payload["extra"]["sampler"]
        return iteration, payload["extra"].get("wall_time_s", 0.0)

    def _wrap_for_steps(self) -> torch.nn.Module:
        """The model the train step calls: compiled and/or wrapped in DDP as the run asks."""
        model: torch.nn.Module = self.model
        if self.config.run.compile:
            model = torch.compile(model)
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model)
        return model

    def _open_run_directory(self, resume: bool) -> MetricsLog | None:
        """On rank 0: write config.json and open the metrics log (cut back to the checkpoint on resume)."""
        if not self.dist.is_main:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out_dir / CONFIG_NAME, json.dumps(self.config.to_dict(), indent=2))
        return MetricsLog(self.out_dir / METRICS_NAME, self.iteration if resume else None)

    def _open_tensorboard(self):  # -> SummaryWriter | None (imported only when asked for)
        """On rank 0 with `run.tensorboard`: an event-file writer in out_dir/tensorboard."""
        if not (self.config.run.tensorboard and self.dist.is_main):
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.out_dir / TENSORBOARD_DIR))

    def _write_tensorboard(self, record: dict) -> None:
        """Every number of a metrics record as a scalar at its step: losses under loss/, the rest under train/."""
        for key, value in record.items():
            if key != "step" and value is not None:
                tag = f"loss/{key}" if key.endswith("_loss") else f"train/{key}"
                self.tensorboard.add_scalar(tag, value, global_step=record["step"])
        self.tensorboard.flush()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_autocast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def learning_rate(self, iteration: int) -> float:
        opt = self.config.optimizer
        if opt.schedule == "wsd":
            total = self.config.run.max_iters
            decay = opt.decay_iters if opt.decay_iters is not None else max(1, round(0.2 * total))
            peak, floor = opt.max_learning_rate, opt.min_learning_rate
            return wsd_lr_schedule(iteration, peak, floor, opt.warmup_iters, total, decay)
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
        opt = self.config.optimizer
        for group in self.optimizer.param_groups:
            if "peak_lr" in group:  # Muon's groups: each its own peak, scaled by the schedule
                group["lr"] = group["peak_lr"] * (lr / opt.max_learning_rate if opt.max_learning_rate else 0.0)
            else:
                group["lr"] = lr
        inputs, targets = self._local_batch(self.train_tokens, self.sampler)
        if opt.z_loss:
            with self._autocast():
                loss, z = cross_entropy_and_z(self.step_model(inputs), targets)
            (loss + opt.z_loss * z).backward()  # the log reports the cross-entropy alone
        else:
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
        return self.dist.mean(torch.stack(losses).mean())

    def save(self, iteration: int, wall_time: float) -> None:
        if self.dist.is_main:
            extra = {
                "sampler": self.sampler.bit_generator.state,
                "wall_time_s": wall_time,
                "train_config": self.config.to_dict(),
            }
            save_checkpoint(self.model, self.optimizer, iteration, self.checkpoint_path, extra=extra)

    def run(self, until: int | None = None) -> RunResult:
        """Train from the current iteration to `run.max_iters` (or stop, checkpointed, at step `until`).

        Ctrl-C stops after the current step and saves a checkpoint, like `until`.
        """
        run = self.config.run
        stop_at = run.max_iters if until is None else min(until, run.max_iters)
        start_time = time.perf_counter() - self.wall_offset
        tokens_per_iter = self.config.tokens_per_iter
        train_loss = val_loss = None
        interrupted = False
        bar = tqdm(total=run.max_iters, initial=self.iteration, disable=not self.progress, desc="train", unit="step")
        window_start, window_steps = time.perf_counter(), 0
        try:
            with stop_on_ctrl_c() as stop:
                for it in range(self.iteration, stop_at):
                    loss, grad_norm = self.train_step(it)
                    self.iteration = step = it + 1
                    window_steps += 1
                    is_last = step == run.max_iters
                    is_eval = step % run.eval_interval == 0 or is_last
                    if is_eval or step % run.log_interval == 0:
                        train_loss = self.dist.mean(loss)
                        now = time.perf_counter()
                        record = {
                            "step": step,
                            "tokens_seen": step * tokens_per_iter,
                            "lr": self.learning_rate(it),
                            "train_loss": train_loss,
                            "grad_norm": float(grad_norm),
                            "tokens_per_s": window_steps * tokens_per_iter / max(now - window_start, 1e-9),
                            "wall_time_s": now - start_time,
                        }
                        if is_eval:
                            val_loss = record["val_loss"] = self.evaluate()
                        if self.log:
                            self.log.write(record)
                        if self.tensorboard:
                            self._write_tensorboard(record)
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
            if self.tensorboard:
                self.tensorboard.close()
        return RunResult(self.iteration, train_loss, val_loss, interrupted, self.out_dir)

    def close(self) -> None:
        self.dist.close()


def train(config: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False) -> RunResult:
    """Run (or resume) training for `config`; the library entry point behind `lmbasics train`."""
    trainer = Trainer(config, resume=resume, progress=progress, overwrite=overwrite)
    try:
        return trainer.run()
    finally:
        trainer.close()
