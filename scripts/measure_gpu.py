"""Measure on a CUDA GPU what the book can only estimate on its CPU: results/gpu_measurements/.

Three parts, each appended to a JSON-lines file in --out as soon as it is measured:

- `throughput.jsonl`: tokens/s of the full configurations (configs/tinystories_17m.toml, owt_17m.toml,
  owt_leaderboard.toml) exactly as configured (bf16 autocast, TF32, torch.compile, their batch), on
  random token ids (speed does not depend on the data), with the peak GPU memory of each run;
- `memory.jsonl`: the leaderboard model's training step in fp32 without compilation, the set-up
  chapter 6's accounting describes, at several batch sizes (an out-of-memory is recorded, not fatal);
- `sweep.jsonl`: the story-model candidates of chapter 7 trained on the book's TinyStories tokens
  (--sweep-tokens), in fp32 as the CPU trains them, with the whole held-out text scored along the way.
  These choose the CPU run's shape and rate; the GPU's numbers are not bit-identical to the CPU's.

    python scripts/measure_gpu.py --out results/gpu_measurements --sweep-tokens artifacts/sweep
    python scripts/measure_gpu.py --smoke --out /tmp/smoke --sweep-tokens artifacts/sweep   # CPU check
    python scripts/measure_gpu.py --summary --out results/gpu_measurements                  # the tables

MFU is computed afterwards from the book's own FLOP accounting (`lmbasics.training_step_flops`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lmbasics.model.accounting import adamw_memory, training_step_flops
from lmbasics.training.config import TrainConfig, load_train_config
from lmbasics.training.loss import cross_entropy
from lmbasics.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
FULL_CONFIGS = {"tinystories_17m": 150, "owt_17m": 150, "owt_leaderboard": 40}  # name -> steps to time
FP32_BATCHES = [16, 32, 64, 128]
# Dense bf16 tensor-core peak of an H100 SXM and of an H200 (the same chip, more memory), FLOP/s.
BF16_PEAK = 989e12
# name -> (d_model, num_layers, num_heads, d_ff, peak rate, tokens): CPU-hour budgets at the shapes'
# measured CPU speeds (vocab 4,096, context 256, batch 32).
SWEEP = {
    "d256L4": (256, 4, 8, 704, 3e-3, 13_500_000),
    "d128L4": (128, 4, 4, 384, 3e-3, 27_000_000),
    "d192L4": (192, 4, 6, 512, 3e-3, 19_000_000),
    "d256L6": (256, 6, 8, 704, 3e-3, 12_000_000),
    "d384L6": (384, 6, 6, 1024, 3e-3, 7_300_000),
    "d256L4-lr1e-3": (256, 4, 8, 704, 1e-3, 13_500_000),
    "d256L4-lr6e-3": (256, 4, 8, 704, 6e-3, 13_500_000),
}


def append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def random_tokens(path: Path, vocab_size: int, count: int) -> str:
    np.save(path, np.random.default_rng(0).integers(0, vocab_size, count, dtype=np.uint16))
    return str(path)


def throughput(out: Path, work: Path, smoke: bool) -> None:
    for name, steps in FULL_CONFIGS.items():
        config = load_train_config(ROOT / "configs" / f"{name}.toml")
        data = random_tokens(work / f"{name}.npy", config.model.vocab_size, 20_000_000 if not smoke else 100_000)
        overrides = [f"data.train={data}", f"data.valid={data}", f"run.out_dir={work / name}"]
        overrides += [f"run.max_iters={steps if not smoke else 4}", "run.log_interval=10", "run.eval_iters=1"]
        overrides += ["run.eval_interval=1000000", "run.checkpoint_interval=1000000", "run.tensorboard=false"]
        overrides += ["optimizer.warmup_iters=1"]  # a short run must end after its warm-up; speed is the same
        if smoke:
            overrides += ["run.device=cpu", "run.compile=false", "run.batch_size=2", "run.log_interval=2"]
        config = config.with_overrides(overrides)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(config, progress=False, overwrite=True)
        start = time.perf_counter()
        trainer.run()
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (work / name / "metrics.jsonl").read_text().splitlines()]
        steady = [r["tokens_per_s"] for r in records[1:]]  # the first window holds the compilation
        append(
            out / "throughput.jsonl",
            {
                "config": name,
                "steps": config.run.max_iters,
                "batch_size": config.run.batch_size,
                "context_length": config.model.context_length,
                "tokens_per_s_windows": steady,
                "tokens_per_s_median": float(np.median(steady)) if steady else None,
                "first_window_s": records[0]["wall_time_s"],
                "run_s": seconds,
                "peak_allocated_gib": peak_gib("max_memory_allocated"),
                "peak_reserved_gib": peak_gib("max_memory_reserved"),
            },
        )
        trainer.close()
        del trainer


def peak_gib(kind: str) -> float | None:
    return getattr(torch.cuda, kind)() / 2**30 if torch.cuda.is_available() else None


def fp32_memory(out: Path, work: Path, smoke: bool) -> None:
    """Peak memory of the leaderboard model's fp32, uncompiled training step at several batch sizes."""
    base = load_train_config(ROOT / "configs" / "owt_leaderboard.toml")
    data = work / "owt_leaderboard.npy"
    data = (
        str(data)
        if data.is_file()
        else random_tokens(data, base.model.vocab_size, 20_000_000 if not smoke else 100_000)
    )
    for batch in FP32_BATCHES if not smoke else [2]:
        overrides = [f"data.train={data}", f"data.valid={data}", f"run.out_dir={work / 'fp32'}", "run.max_iters=2"]
        overrides += ["optimizer.warmup_iters=1"]
        overrides += ["run.mixed_precision=false", "run.compile=false", f"run.batch_size={batch}"]
        overrides += ["run.eval_interval=1000000", "run.checkpoint_interval=1000000", "run.tensorboard=false"]
        if smoke:
            overrides += ["run.device=cpu"]
        config = base.with_overrides(overrides)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        record: dict = {"config": "owt_leaderboard", "precision": "fp32", "compile": False, "batch_size": batch}
        try:
            trainer = Trainer(config, progress=False, overwrite=True)
            start = time.perf_counter()
            for step in range(2):
                trainer.train_step(step)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            record |= {
                "two_steps_s": time.perf_counter() - start,
                "peak_allocated_gib": peak_gib("max_memory_allocated"),
            }
            trainer.close()
            del trainer
        except torch.OutOfMemoryError as error:
            record |= {"out_of_memory": str(error).splitlines()[0]}
        append(out / "memory.jsonl", record)


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, ids: np.ndarray, device: torch.device, batch: int = 64) -> float:
    """Mean loss over every non-overlapping window of the held-out text (as `mean_window_loss`)."""
    context = model.config.context_length
    windows = (len(ids) - 1) // context
    tensor = torch.from_numpy(ids[: windows * context + 1].astype(np.int64)).to(device)
    inputs, targets = tensor[:-1].view(windows, context), tensor[1:].view(windows, context)
    model.eval()
    total = sum(float(cross_entropy(model(x), y)) * len(x) for x, y in zip(inputs.split(batch), targets.split(batch)))
    model.train()
    return total / windows


def train_and_score(
    name: str, shape: tuple, rate: float, tokens: int, train_path: Path, valid: np.ndarray, work: Path, smoke: bool
) -> dict:
    """Train one story-model candidate (vocab 4,096, context 256, batch 32) for `tokens` tokens on
    `train_path`, scoring the whole held-out text 16 times along the way."""
    d_model, layers, heads, d_ff = shape
    batch, context = 32, 256
    steps = tokens // (batch * context) if not smoke else 2
    model = dict(
        vocab_size=4096, context_length=context, d_model=d_model, num_layers=layers, num_heads=heads, d_ff=d_ff
    )
    config = TrainConfig.from_dict(
        {
            "model": model,
            "optimizer": dict(max_learning_rate=rate, min_learning_rate=rate / 10, warmup_iters=max(1, steps // 20)),
            "data": {"train": str(train_path)},
            "run": dict(
                batch_size=batch,
                max_iters=steps,
                out_dir=str(work / name),
                device="cuda" if torch.cuda.is_available() else "cpu",
                mixed_precision=False,
                eval_interval=10**9,
                log_interval=10**9,
                checkpoint_interval=10**9,
            ),
        }
    )
    trainer = Trainer(config, progress=False, overwrite=True)
    every = max(1, steps // 16)
    curve, start = [], time.perf_counter()
    for step in range(steps):
        loss, _ = trainer.train_step(step)
        if (step + 1) % every == 0 or step + 1 == steps:
            val = heldout_loss(trainer.model, valid if not smoke else valid[:600], trainer.device)
            curve.append({"step": step + 1, "train_loss": float(loss), "heldout_loss": val})
    trainer.close()
    return {
        "name": name,
        "model": dataclasses.asdict(config.model),
        "max_learning_rate": rate,
        "steps": steps,
        "tokens": steps * batch * context,
        "train_tokens_available": len(np.load(train_path, mmap_mode="r")),
        "seconds": time.perf_counter() - start,
        "best_heldout_loss": min(point["heldout_loss"] for point in curve),
        "final_heldout_loss": curve[-1]["heldout_loss"],
        "curve": curve,
    }


def sweep(out: Path, work: Path, tokens_dir: Path, smoke: bool) -> None:
    valid = np.load(tokens_dir / "valid.npy")
    for name, (d_model, layers, heads, d_ff, rate, tokens) in SWEEP.items():
        result = train_and_score(
            name, (d_model, layers, heads, d_ff), rate, tokens, tokens_dir / "train.npy", valid, work, smoke
        )
        append(out / "sweep.jsonl", result)


# Chapter 7's "what limits us": the record's shape and rate (d256L6, 6e-3) at fixed compute (4.5M tokens)
# on 1/8 .. all of the training tokens, and on all of them at 1.1M .. 18M tokens.
CURVE_SHAPE, CURVE_RATE, CURVE_TOKENS = (256, 6, 8, 704), 6e-3, 4_500_000
CURVES = [("data", 1 / 8, CURVE_TOKENS), ("data", 1 / 4, CURVE_TOKENS), ("data", 1 / 2, CURVE_TOKENS),
          ("data", 1, CURVE_TOKENS), ("compute", 1, 1_125_000), ("compute", 1, 2_250_000),
          ("compute", 1, 9_000_000), ("compute", 1, 18_000_000)]  # fmt: skip


def curves(out: Path, work: Path, tokens_dir: Path, smoke: bool) -> None:
    train, valid = np.load(tokens_dir / "train.npy"), np.load(tokens_dir / "valid.npy")
    for kind, fraction, tokens in CURVES:
        subset = work / f"train_{fraction:.3f}.npy"
        np.save(subset, train[: int(len(train) * fraction)])
        name = f"{kind}-{fraction:.3f}-{tokens}"
        result = train_and_score(name, CURVE_SHAPE, CURVE_RATE, tokens, subset, valid, work, smoke)
        append(out / "curves.jsonl", {"axis": kind, "data_fraction": fraction} | result)


def summary(folder: Path) -> str:
    """Markdown tables of a measurement folder: throughput with MFU by the book's accounting, fp32 memory
    against `adamw_memory`, and the sweep."""

    def rows(name: str) -> list[dict]:
        path = folder / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    lines = ["| config | batch x context | tokens/s (median) | model TFLOP/s | MFU (bf16 peak 989) | peak GiB |"]
    lines.append("|---|---|---:|---:|---:|---:|")
    for r in rows("throughput.jsonl"):
        model = load_train_config(ROOT / "configs" / f"{r['config']}.toml").model
        flops = training_step_flops(model, r["batch_size"])
        per_token = (flops.forward + flops.backward) / (r["batch_size"] * r["context_length"])
        achieved = per_token * r["tokens_per_s_median"]
        lines.append(
            f"| {r['config']} | {r['batch_size']} x {r['context_length']} | {r['tokens_per_s_median']:,.0f} "
            f"| {achieved / 1e12:.0f} | {achieved / BF16_PEAK:.1%} | {r['peak_allocated_gib']:.1f} |"
        )
    lines += [
        "",
        "| leaderboard, fp32, no compile: batch | measured peak GiB | adamw_memory estimate GiB |",
        "|---:|---:|---:|",
    ]
    model = load_train_config(ROOT / "configs" / "owt_leaderboard.toml").model
    for r in rows("memory.jsonl"):
        estimate = adamw_memory(model, r["batch_size"]).total / 2**30
        measured = f"{r['peak_allocated_gib']:.1f}" if "peak_allocated_gib" in r else "out of memory"
        lines.append(f"| {r['batch_size']} | {measured} | {estimate:.1f} |")
    lines += ["", "| sweep run | peak rate | tokens | best held-out loss (at step) | final | last train loss |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for r in rows("sweep.jsonl"):
        best = min(r["curve"], key=lambda point: point["heldout_loss"])
        at = f"{best['heldout_loss']:.3f} ({best['step']} of {r['steps']})"
        lines.append(
            f"| {r['name']} | {r['max_learning_rate']:g} | {r['tokens']:,} | {at} "
            f"| {r['final_heldout_loss']:.3f} | {r['curve'][-1]['train_loss']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/measure_gpu"))
    parser.add_argument("--sweep-tokens", type=Path, help="folder with train.npy and valid.npy (4,096-token ids)")
    parser.add_argument("--parts", default="throughput,memory,sweep")
    parser.add_argument("--smoke", action="store_true", help="a few tiny steps on the CPU: checks the script runs")
    parser.add_argument("--summary", action="store_true", help="print the tables of --out's measurements and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    append(
        args.out / "environment.jsonl",
        {
            "device": device,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d"),
        },
    )
    parts = args.parts.split(",")
    if "throughput" in parts:
        throughput(args.out, args.work, args.smoke)
    if "memory" in parts:
        fp32_memory(args.out, args.work, args.smoke)
    if "sweep" in parts and args.sweep_tokens:
        sweep(args.out, args.work, args.sweep_tokens, args.smoke)
    if "curves" in parts and args.sweep_tokens:
        curves(args.out, args.work, args.sweep_tokens, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
