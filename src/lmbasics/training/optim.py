"""Optimizers and their helpers, from scratch (handout §4.2–4.5, chapter 6).

- `SGD`: the handout's toy SGD whose step size decays as lr / sqrt(t + 1).
- `AdamW`: Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as the handout's
  Algorithm 1 writes it: the bias corrections are folded into the step size α_t.
- `cosine_lr_schedule`: linear warm-up, cosine decay, then a constant floor (as used for LLaMA).
- `clip_grad_norm`: rescale all gradients together so their joint L2 norm is at most a bound.

Both optimizers subclass `torch.optim.Optimizer`, so parameter groups, `zero_grad`, `state_dict`
and `load_state_dict` come from the base class. What this module does not do: fused or multi-tensor
kernels, AMSGrad, momentum variants, or learning-rate scheduler objects (the schedule is a plain
function; the training loop writes its value into `param_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from lmbasics.training.config import OptimizerConfig


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _loss_of(closure: Callable[[], float] | None) -> float | None:
    """What `Optimizer.step(closure)` returns: the closure's loss, computed with gradients on."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class SGD(torch.optim.Optimizer):
    """θ_{t+1} = θ_t − lr / sqrt(t + 1) · ∇L(θ_t) with t counted per parameter (handout eq. 20)."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3) -> None:
        _check(lr >= 0, f"SGD: learning rate must be >= 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = _loss_of(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                t = state.get("t", 0)
                p.add_(p.grad, alpha=-group["lr"] / math.sqrt(t + 1))
                state["t"] = t + 1
        return loss


class AdamW(torch.optim.Optimizer):
    """AdamW per the handout's Algorithm 1; state per parameter: step `t`, moments `m` and `v`.

    For t = 1, 2, …:  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
    α_t = α·sqrt(1−β2^t)/(1−β1^t);  θ ← θ − α_t·m/(sqrt(v)+ε);  θ ← θ − αλθ.

    The decay uses θ from before this step's Adam update, as in Loshchilov and Hutter's Algorithm 2
    and in `torch.optim.AdamW` (read one after the other, the handout's two lines would decay the
    already-updated θ; the two differ by α·λ times the update, a second-order amount). The one
    remaining difference from torch is where ε sits: torch adds it to sqrt(v / (1−β2^t)), the
    handout to sqrt(v), which matters only when sqrt(v) is near ε.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        _check(lr >= 0, f"AdamW: learning rate must be >= 0, got {lr}")
        _check(len(betas) == 2, f"AdamW: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _check(0.0 <= beta < 1.0, f"AdamW: betas[{i}] must be in [0, 1), got {beta}")
        _check(eps >= 0, f"AdamW: eps must be >= 0, got {eps}")
        _check(weight_decay >= 0, f"AdamW: weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = _loss_of(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.lerp_(grad, 1 - beta1)  # m ← β1·m + (1−β1)·g
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v ← β2·v + (1−β2)·g²
                alpha_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                if weight_decay != 0:
                    p.mul_(1 - lr * weight_decay)  # θ ← θ − αλθ
                p.addcdiv_(m, v.sqrt().add_(eps), value=-alpha_t)  # θ ← θ − α_t·m/(sqrt(v)+ε)
        return loss


def cosine_lr_schedule(
    it: int,
    max_learning_rate: float,
    min_learning_rate: float,
    warmup_iters: int,
    cosine_cycle_iters: int,
) -> float:
    """Learning rate at iteration `it` (handout §4.4).

    Linear warm-up from 0 for it < T_w, then a half cosine from the maximum at T_w down to the
    minimum at T_c, then the minimum for it > T_c.
    """
    _check(it >= 0, f"cosine_lr_schedule: it must be >= 0, got {it}")
    _check(warmup_iters >= 0, f"cosine_lr_schedule: warmup_iters must be >= 0, got {warmup_iters}")
    _check(
        cosine_cycle_iters > warmup_iters,
        f"cosine_lr_schedule: cosine_cycle_iters ({cosine_cycle_iters}) must exceed warmup_iters ({warmup_iters})",
    )
    _check(
        0 <= min_learning_rate <= max_learning_rate,
        f"cosine_lr_schedule: need 0 <= min_learning_rate <= max_learning_rate, "
        f"got {min_learning_rate} and {max_learning_rate}",
    )
    if it < warmup_iters:
        return it / warmup_iters * max_learning_rate
    if it > cosine_cycle_iters:
        return min_learning_rate
    progress = (it - warmup_iters) / (cosine_cycle_iters - warmup_iters)  # 0 → 1
    return min_learning_rate + 0.5 * (1 + math.cos(progress * math.pi)) * (max_learning_rate - min_learning_rate)


def clip_grad_norm(parameters: Iterable[Tensor], max_l2_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale every gradient in place by min(1, M / (‖g‖₂ + ε)), ‖g‖₂ over all gradients jointly.

    Returns the total norm before clipping (a 0-dim float32 tensor, for logging). The scale is
    applied unconditionally (1 when no clipping is needed), so on a GPU this never waits for the
    norm to reach the CPU. Parameters without a gradient are skipped.
    """
    _check(max_l2_norm > 0, f"clip_grad_norm: max_l2_norm must be > 0, got {max_l2_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads])
    total_norm = torch.linalg.vector_norm(norms)
    scale = (max_l2_norm / (total_norm + eps)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype))
    return total_norm


def adamw_from_config(params: Iterable[Tensor] | Iterable[dict], config: OptimizerConfig) -> AdamW:
    """The run's `AdamW`, at the schedule's peak rate (the trainer sets each step's rate)."""
    return AdamW(
        params,
        lr=config.max_learning_rate,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
