"""Cross-entropy loss from logits, numerically stable (handout §4.1, chapter 6).

`cross_entropy` turns a model's logits and the next-token targets into the mean negative
log-likelihood, the training objective. It subtracts each row's largest logit before exponentiating
and takes the log of the sum rather than of probabilities, so huge logits stay finite.

Its backward pass is written by hand: the gradient with respect to the logits is the textbook
(softmax − one-hot) / N, computed in one pass into one new tensor. Left to autograd, the same
forward costs several logits-sized temporaries (a zero tensor for the gather, a product for the
exp) — with a 50k vocabulary the largest tensors of the whole step — and was the main reason the
from-scratch model trailed PyTorch's fused `F.cross_entropy` in `benchmarks/train_step.py`.

`cross_entropy_and_z` (chapter 11) also returns PaLM's auxiliary z-loss (Chowdhery et al., 2022),
the mean of (log Z)² with Z = Σ exp(o) the softmax's normaliser; a small coefficient on it keeps log Z
near 0, so the logits cannot drift upwards together. Its gradient is written by hand as well:
∂(log Z)²/∂o = 2 · log Z · softmax(o).

What it does not do: label smoothing, ignore-index or class weights (the handout needs none).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.autograd.function import once_differentiable


class _MeanCrossEntropy(torch.autograd.Function):
    """Mean of logsumexp(o) − o[target] over rows, with the gradient (softmax(o) − onehot) / N."""

    @staticmethod
    def forward(ctx: Any, logits: Float[Tensor, "n vocab"], targets: Int[Tensor, " n"]) -> Float[Tensor, ""]:
        # A new float32 tensor (n, vocab): o − max(o) per row; the shift cancels out of the loss.
        shifted = logits.to(torch.promote_types(logits.dtype, torch.float32)) - logits.amax(dim=-1, keepdim=True)
        target_logit = shifted.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (n,)
        exps = shifted.exp_()  # our own temporary, so in place: exp(o − max)
        sum_exps = exps.sum(dim=-1, keepdim=True)  # (n, 1)
        ctx.save_for_backward(exps, sum_exps, targets)
        ctx.logits_dtype = logits.dtype
        return (sum_exps.squeeze(-1).log() - target_logit).mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None]:
        exps, sum_exps, targets = ctx.saved_tensors
        scale = grad_loss / targets.numel()
        grad = exps * (scale / sum_exps)  # (n, vocab): softmax · scale
        grad.scatter_add_(-1, targets.unsqueeze(-1), (-scale).expand(targets.numel(), 1).to(grad.dtype))
        return grad.to(ctx.logits_dtype), None


class _MeanCrossEntropyAndZ(torch.autograd.Function):
    """(mean cross-entropy, mean (log Z)²) over rows, with both gradients in one pass."""

    @staticmethod
    def forward(
        ctx: Any, logits: Float[Tensor, "n vocab"], targets: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
        row_max = logits.amax(dim=-1, keepdim=True).to(torch.promote_types(logits.dtype, torch.float32))  # (n, 1)
        shifted = logits.to(row_max.dtype) - row_max  # (n, vocab)
        target_logit = shifted.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (n,)
        exps = shifted.exp_()
        sum_exps = exps.sum(dim=-1, keepdim=True)  # (n, 1)
        log_sum = sum_exps.log()  # (n, 1): log Z − max
        log_z = log_sum + row_max  # (n, 1): log Z = log Σ exp(o)
        ctx.save_for_backward(exps, sum_exps, log_z, targets)
        ctx.logits_dtype = logits.dtype
        return (log_sum.squeeze(-1) - target_logit).mean(), log_z.square().mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_ce: Tensor, grad_z: Tensor) -> tuple[Tensor, None]:
        exps, sum_exps, log_z, targets = ctx.saved_tensors
        n = targets.numel()
        # softmax · (g_ce + g_z · 2 log Z) / n, then − g_ce / n at each target.
        grad = exps * ((grad_ce + grad_z * 2 * log_z) / (n * sum_exps))  # (n, vocab)
        grad.scatter_add_(-1, targets.unsqueeze(-1), (-grad_ce / n).expand(n, 1).to(grad.dtype))
        return grad.to(ctx.logits_dtype), None


def _check_loss_inputs(logits: Tensor, targets: Tensor, name: str) -> None:
    if logits.dim() < 1:
        raise ValueError(f"{name}: logits need a vocabulary dimension, got a scalar")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"{name}: targets shape {tuple(targets.shape)} must equal the logits shape without "
            f"its last (vocabulary) dimension, {tuple(logits.shape[:-1])}"
        )
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"{name}: targets must be integer token ids, got dtype {targets.dtype}")


def cross_entropy(logits: Float[Tensor, "... vocab"], targets: Int[Tensor, ...]) -> Float[Tensor, ""]:
    """Mean over all batch positions of -log softmax(logits)[target].

    Batch-like dimensions come first (any number of them); the last dimension of `logits` is the
    vocabulary. Low-precision logits are promoted to float32, since a log-sum-exp over a 50k-word
    vocabulary in bfloat16 loses the digits that matter.
    """
    _check_loss_inputs(logits, targets, "cross_entropy")
    return _MeanCrossEntropy.apply(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())


def cross_entropy_and_z(
    logits: Float[Tensor, "... vocab"], targets: Int[Tensor, ...]
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """(`cross_entropy`, the z-loss mean((log Z)²)) over all batch positions, both differentiable.

    Train on `ce + coefficient · z` (PaLM used 1e-4); report `ce`, which stays comparable to runs
    without the z-loss."""
    _check_loss_inputs(logits, targets, "cross_entropy_and_z")
    return _MeanCrossEntropyAndZ.apply(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())
