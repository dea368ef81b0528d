"""Training-step throughput of the from-scratch Transformer LM against the same model from torch built-ins.

One training step = forward, cross-entropy, backward, optimizer step. Two implementations of the
same architecture, holding the same weights:

- scratch:  `lmbasics.TransformerLM` + `lmbasics.cross_entropy` + `lmbasics.AdamW`;
- built-in: `nn.Embedding`, `nn.Linear`, `F.rms_norm`, `F.silu`, `F.scaled_dot_product_attention`
  (RoPE as complex multiplication, as in the LLaMA reference code), `F.cross_entropy`,
  `torch.optim.AdamW`.

Each runs eager and with forward + loss under `torch.compile`; the optimizer step stays eager for
both (the handout's AdamW keeps its step count as a Python int, which torch.compile would
specialise on and recompile for at every step). Inductor generates no code for complex numbers,
so the built-in RoPE's complex product runs as an eager kernel inside the compiled graph.

The four variants are measured in interleaved rounds in the same process, so that background load
hits all of them alike, and each reports its best round (the least disturbed on a shared
machine). MFU is the achieved matmul FLOP/s (forward + backward, counted with
`torch.utils.flop_counter.FlopCounterMode`) over the best FLOP/s of plain fp32 matmuls, measured
in every round of the same run.

Usage:  python benchmarks/train_step.py [--quick] [--no-compile] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from lmbasics import AdamW, ModelConfig, TransformerLM, cross_entropy, fix_threads

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from references import BuiltinLM  # noqa: E402  (tests/references.py: shared with the model tests)

# Matmul-dominated shapes: wide layers (d_model 768, d_ff 2048) and a moderate context, so that
# the attention scores (∝ seq²) and the elementwise work (∝ d_model) stay small next to the
# projections (∝ d_model²); 4,096 tokens per step amortise the optimizer's per-parameter work.
FULL = {"config": ModelConfig(vocab_size=8192, context_length=128, d_model=768, num_layers=4,
                              num_heads=12, d_ff=2048), "batch": 32, "rounds": 6, "steps": 1}  # fmt: skip
QUICK = {"config": ModelConfig(vocab_size=512, context_length=64, d_model=128, num_layers=2,
                               num_heads=4, d_ff=384), "batch": 8, "rounds": 2, "steps": 2}  # fmt: skip
OPTIMIZER = {"lr": 1e-4, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}


def _builtin_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def make_variant(kind: str, compiled: bool, config: ModelConfig, state: dict) -> Callable[[Tensor, Tensor], Tensor]:
    """A `step(inputs, targets) -> loss` closure for one implementation, starting from `state`."""
    if kind == "scratch":
        model, loss_fn, optimizer_cls = TransformerLM.from_config(config), cross_entropy, AdamW
    else:
        model, loss_fn, optimizer_cls = BuiltinLM(config), _builtin_cross_entropy, torch.optim.AdamW
    model.load_state_dict(state)
    optimizer = optimizer_cls(model.parameters(), **OPTIMIZER)

    def forward_loss(inputs: Tensor, targets: Tensor) -> Tensor:
        return loss_fn(model(inputs), targets)

    if compiled:
        forward_loss = torch.compile(forward_loss)

    def step(inputs: Tensor, targets: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = forward_loss(inputs, targets)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def matmul_peak(shapes: list[tuple[int, int, int]], repeats: int = 3) -> float:
    """Best FLOP/s of plain fp32 (m×k)·(k×n) products on this machine."""
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * m * k * n / (time.perf_counter() - start))
    return best


def training_flops(config: ModelConfig, inputs: Tensor, targets: Tensor) -> int:
    """Matmul FLOPs of one forward + backward pass, as FlopCounterMode counts them."""
    model = TransformerLM.from_config(config)
    with FlopCounterMode(display=False) as counter:
        cross_entropy(model(inputs), targets).backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, a smoke run")
    parser.add_argument("--no-compile", action="store_true", help="eager only (skip torch.compile)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Torchinductor does not support code generation for complex")
    settings = QUICK if args.quick else FULL
    config, batch = settings["config"], settings["batch"]
    fix_threads(args.threads)
    torch.manual_seed(0)
    inputs = torch.randint(0, config.vocab_size, (batch, config.context_length))
    targets = torch.randint(0, config.vocab_size, (batch, config.context_length))
    tokens = inputs.numel()

    reference = TransformerLM.from_config(config)
    state = reference.state_dict()
    builtin = BuiltinLM(config)
    builtin.load_state_dict(state)
    with torch.no_grad():  # same weights, same function: the comparison is like for like
        torch.testing.assert_close(builtin(inputs), reference(inputs), rtol=1e-4, atol=1e-4)

    modes = [False] if args.no_compile else [False, True]
    names = [(kind, compiled) for compiled in modes for kind in ("scratch", "builtin")]
    steps = {}
    for name in names:
        start = time.perf_counter()
        steps[name] = make_variant(*name, config, state)
        steps[name](inputs, targets)  # first step: compiles, allocates optimizer state
        steps[name](inputs, targets)
        print(f"warm-up {name[0]:8s} {'compiled' if name[1] else 'eager':8s} {time.perf_counter() - start:6.1f} s")

    d = config.d_model
    peak_shapes = [(2048, 2048, 2048), (tokens, d, config.d_ff), (tokens, d, config.vocab_size)]
    seconds: dict[tuple[str, bool], list[float]] = {name: [] for name in names}
    peak = 0.0
    for _ in range(settings["rounds"]):  # interleaved, so background load hits every variant alike
        peak = max(peak, matmul_peak(peak_shapes))
        for name in names:
            start = time.perf_counter()
            for _ in range(settings["steps"]):
                steps[name](inputs, targets)
            seconds[name].append((time.perf_counter() - start) / settings["steps"])
    flops = training_flops(config, inputs, targets)

    print(f"\nshapes: {config}\nbatch {batch} x {config.context_length} = {tokens} tokens/step, "
          f"{flops / 1e9:.1f} GFLOP/step (matmuls, forward + backward), "
          f"{torch.get_num_threads()} threads; matmul peak {peak / 1e9:.1f} GFLOP/s\n")  # fmt: skip
    print(f"{'mode':9s} {'impl':8s} {'ms/step':>8s} {'tokens/s':>9s} {'GFLOP/s':>8s} {'MFU':>6s} {'vs built-in':>11s}")
    for compiled in modes:
        builtin_time = min(seconds[("builtin", compiled)])
        for kind in ("scratch", "builtin"):
            t = min(seconds[(kind, compiled)])
            print(f"{'compiled' if compiled else 'eager':9s} {kind:8s} {1e3 * t:8.1f} {tokens / t:9.0f} "
                  f"{flops / t / 1e9:8.1f} {flops / t / peak:6.1%} {builtin_time / t:10.2f}x")  # fmt: skip
    spread = {name: max(ts) / min(ts) - 1 for name, ts in seconds.items()}
    print(
        f"\nbest of {settings['rounds']} interleaved rounds of {settings['steps']} steps; slowest round "
        f"{max(spread.values()):.0%} above the best (background load). Peak: best of the rounds' matmuls."
    )


if __name__ == "__main__":
    main()
