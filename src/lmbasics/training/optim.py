"""Optimizers and their helpers, from scratch (handout §4.2–4.5, chapter 6).

- `SGD`: the handout's toy SGD whose step size decays as lr / sqrt(t + 1).
- `AdamW`: Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as the handout's
  Algorithm 1 writes it: the bias corrections are folded into the step size α_t.
- `cosine_lr_schedule`: linear warm-up, cosine decay, then a constant floor (as used for LLaMA).
- `wsd_lr_schedule` (chapter 11): warm-up, a long stable phase at the peak, a short linear decay
  (warmup–stable–decay, MiniCPM: Hu et al., 2024).
- `Muon` (chapter 11): orthogonalised momentum updates for the hidden 2-D weight matrices (Jordan et
  al., 2024), via the Newton–Schulz iteration `newton_schulz`; AdamW for every other parameter.
- `clip_grad_norm`: rescale all gradients together so their joint L2 norm is at most a bound.

The optimizers subclass `torch.optim.Optimizer`, so parameter groups, `zero_grad`, `state_dict`
and `load_state_dict` come from the base class. What this module does not do: fused or multi-tensor
kernels, AMSGrad, momentum variants, or learning-rate scheduler objects (the schedule is a plain
function; the training loop writes its value into `param_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from lmbasics.training.config import OptimizerConfig


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_schedule(name: str, it: int, warmup_iters: int, min_learning_rate: float, max_learning_rate: float) -> None:
    """The arguments every learning-rate schedule shares, checked with messages that name the schedule."""
    _check(it >= 0, f"{name}: it must be >= 0, got {it}")
    _check(warmup_iters >= 0, f"{name}: warmup_iters must be >= 0, got {warmup_iters}")
    _check(
        0 <= min_learning_rate <= max_learning_rate,
        f"{name}: need 0 <= min_learning_rate <= max_learning_rate, got {min_learning_rate} and {max_learning_rate}",
    )


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
                _adamw_update(p, grad, self.state[p], lr, beta1, beta2, eps, weight_decay)
        return loss


def _adamw_update(
    p: Tensor, grad: Tensor, state: dict, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float
) -> None:
    """One AdamW step of Algorithm 1 on one parameter, in place (shared by `AdamW` and `Muon`)."""
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


# Coefficients of the quintic Newton–Schulz step (Jordan et al., 2024): chosen so that the map
# s ↦ a·s + b·s³ + c·s⁵ pushes every singular value in (0, 1] quickly into roughly [0.7, 1.2].
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: Float[Tensor, "rows cols"], steps: int = 5, eps: float = 1e-7) -> Float[Tensor, "rows cols"]:
    """Approximately U·Vᵀ for g = U·S·Vᵀ: g with every singular value pushed towards 1.

    g is scaled by its Frobenius norm (so all singular values are at most 1), then each step maps
    X ↦ a·X + b·(X Xᵀ) X + c·(X Xᵀ)² X, an odd polynomial of X that acts on each singular value
    alone and leaves the singular vectors in place. Works on the wide orientation (rows ≤ cols),
    where X Xᵀ is the smaller square matrix. Computed in float32."""
    if g.dim() != 2:
        raise ValueError(f"newton_schulz: expected a 2-D matrix, got shape {tuple(g.shape)}")
    _check(steps >= 1, f"newton_schulz: steps must be >= 1, got {steps}")
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    x = g.to(torch.float32)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (torch.linalg.matrix_norm(x) + eps)  # Frobenius norm ≥ spectral norm: singular values ≤ 1
    for _ in range(steps):
        gram = x @ x.T  # (rows, rows)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon (Jordan et al., 2024) for the parameter groups marked `"muon": True`, AdamW for the rest.

    A Muon group's matrices W (d_out, d_in) take, per step, with momentum μ and Nesterov look-ahead:
    B ← μ·B + g;  U = NewtonSchulz(g + μ·B) · sqrt(max(1, d_out/d_in));  W ← W − lr·λ·W − lr·U.
    The update's singular values are all about 1 (times the shape factor), so every direction of the
    matrix moves at the same rate however unevenly the gradient is spread across them. Embeddings,
    the LM head and the RMSNorm gains belong in AdamW groups, as in the original (they are not
    "hidden" linear maps). Build the groups with `muon_param_groups`.
    """

    def __init__(
        self,
        params: Iterable[dict],
        lr: float = 0.02,
        momentum: float = 0.95,
        ns_steps: int = 5,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check(lr >= 0, f"Muon: learning rate must be >= 0, got {lr}")
        _check(0.0 <= momentum < 1.0, f"Muon: momentum must be in [0, 1), got {momentum}")
        _check(ns_steps >= 1, f"Muon: ns_steps must be >= 1, got {ns_steps}")
        for i, beta in enumerate(betas):
            _check(0.0 <= beta < 1.0, f"Muon: betas[{i}] must be in [0, 1), got {beta}")
        _check(weight_decay >= 0, f"Muon: weight_decay must be >= 0, got {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "ns_steps": ns_steps, "betas": tuple(betas), "eps": eps,
                    "weight_decay": weight_decay, "muon": False}  # fmt: skip
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["muon"]:
                for p in group["params"]:
                    _check(p.dim() == 2, f"Muon: a muon group holds 2-D matrices only, got shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = _loss_of(closure)
        for group in self.param_groups:
            lr, weight_decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not group["muon"]:
                    beta1, beta2 = group["betas"]
                    _adamw_update(p, p.grad, state, lr, beta1, beta2, group["eps"], weight_decay)
                    continue
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(p.grad)  # B ← μB + g
                update = newton_schulz(p.grad.add(buffer, alpha=group["momentum"]), group["ns_steps"])
                scale = max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                if weight_decay != 0:
                    p.mul_(1 - lr * weight_decay)
                p.add_(update, alpha=-lr * scale)
        return loss


def muon_param_groups(model: torch.nn.Module, config: OptimizerConfig) -> list[dict]:
    """Muon's split of a `TransformerLM`: hidden 2-D matrices (attention, FFN) in a Muon group at
    `muon_learning_rate`; the embedding, LM head and norm gains in an AdamW group at
    `max_learning_rate`. Each group keeps its peak rate as `peak_lr`, for the schedule to scale."""
    hidden, other = [], []
    for name, p in model.named_parameters():  # a tied embedding/LM head appears once
        is_outer = name.startswith(("token_embeddings.", "lm_head."))
        (hidden if p.dim() == 2 and not is_outer else other).append(p)
    return [
        {"params": hidden, "muon": True, "lr": config.muon_learning_rate, "peak_lr": config.muon_learning_rate},
        {"params": other, "muon": False, "lr": config.max_learning_rate, "peak_lr": config.max_learning_rate},
    ]


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
    _check_schedule("cosine_lr_schedule", it, warmup_iters, min_learning_rate, max_learning_rate)
    _check(
        cosine_cycle_iters > warmup_iters,
        f"cosine_lr_schedule: cosine_cycle_iters ({cosine_cycle_iters}) must exceed warmup_iters ({warmup_iters})",
    )
    if it < warmup_iters:
        return it / warmup_iters * max_learning_rate
    if it > cosine_cycle_iters:
        return min_learning_rate
    progress = (it - warmup_iters) / (cosine_cycle_iters - warmup_iters)  # 0 → 1
    return min_learning_rate + 0.5 * (1 + math.cos(progress * math.pi)) * (max_learning_rate - min_learning_rate)


def wsd_lr_schedule(
    it: int,
    max_learning_rate: float,
    min_learning_rate: float,
    warmup_iters: int,
    total_iters: int,
    decay_iters: int,
) -> float:
    """Warmup–stable–decay (Hu et al., 2024): linear warm-up from 0 for it < T_w, the maximum until
    T − T_d, then a linear decay to the minimum at T (`total_iters`), the minimum after it.

    Unlike the cosine, the rate stays at its peak for most of the run, and the decay can be started
    from any checkpoint of the stable phase."""
    _check_schedule("wsd_lr_schedule", it, warmup_iters, min_learning_rate, max_learning_rate)
    _check(decay_iters >= 1, f"wsd_lr_schedule: decay_iters must be >= 1, got {decay_iters}")
    _check(
        total_iters >= warmup_iters + decay_iters,
        f"wsd_lr_schedule: total_iters ({total_iters}) must be at least warmup_iters + decay_iters "
        f"({warmup_iters} + {decay_iters})",
    )
    if it < warmup_iters:
        return it / warmup_iters * max_learning_rate
    decay_start = total_iters - decay_iters
    if it <= decay_start:
        return max_learning_rate
    if it >= total_iters:
        return min_learning_rate
    progress = (it - decay_start) / decay_iters  # 0 → 1
    return max_learning_rate + progress * (min_learning_rate - max_learning_rate)


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


def optimizer_from_config(model: torch.nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names for `model`: AdamW over all parameters, or Muon with
    AdamW for the parameters Muon does not take (`muon_param_groups`)."""
    if config.optimizer == "adamw":
        return adamw_from_config(model.parameters(), config)
    return Muon(
        muon_param_groups(model, config),
        momentum=config.muon_momentum,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
