"""Cross-entropy loss from logits, numerically stable (handout §4.1).

`cross_entropy` turns a model's logits and the next-token targets into the mean negative
log-likelihood, the training objective. It subtracts each row's largest logit before exponentiating
and never forms the probabilities themselves (log and exp cancel), so huge logits stay finite.

What it does not do: label smoothing, ignore-index or class weights (the handout needs none).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def cross_entropy(logits: Float[Tensor, "... vocab"], targets: Int[Tensor, "..."]) -> Float[Tensor, ""]:
    """Mean over all batch positions of -log softmax(logits)[target].

    Batch-like dimensions come first (any number of them); the last dimension of `logits` is the
    vocabulary. Low-precision logits are promoted to float32, since a log-sum-exp over a 50k-word
    vocabulary in bfloat16 loses the digits that matter.
    """
    if logits.dim() < 1:
        raise ValueError("cross_entropy: logits need a vocabulary dimension, got a scalar")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets shape {tuple(targets.shape)} must equal the logits shape without "
            f"its last (vocabulary) dimension, {tuple(logits.shape[:-1])}"
        )
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"cross_entropy: targets must be integer token ids, got dtype {targets.dtype}")
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    # (..., vocab), every row's max is 0. The shift cancels out of the loss, so its gradient is zero
    # and the max needs no backward pass of its own.
    shifted = logits - logits.amax(dim=-1, keepdim=True).detach()
    log_normalizer = shifted.exp().sum(dim=-1).log()  # (...), log Σ exp(o - max)
    target_logit = shifted.gather(-1, targets.unsqueeze(-1).long()).squeeze(-1)  # (...)
    return (log_normalizer - target_logit).mean()
