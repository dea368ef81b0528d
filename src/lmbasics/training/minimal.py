"""Cross-entropy in its smallest correct form (chapter 6): a few lines that autograd differentiates.

Chapter 6 shows `minimal_cross_entropy` before the library's `cross_entropy` (`loss.py`), which computes
the same mean loss (the tests check values and gradients) and adds argument checks, float32 arithmetic
for low-precision logits, and a hand-written backward pass (`_MeanCrossEntropy`) that needs one
logits-sized temporary where autograd keeps several.

What it does not do: no checks, no dtype care; use `lmbasics.cross_entropy` to train.
"""

from __future__ import annotations

from torch import Tensor


def minimal_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over all positions of -log softmax(logits)[target]; logits (..., vocab), targets (...)."""
    shifted = logits - logits.amax(dim=-1, keepdim=True)  # (..., vocab): each row's largest logit is 0
    log_probs = shifted - shifted.exp().sum(dim=-1, keepdim=True).log()  # (..., vocab): log softmax
    return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()  # the target's log-probability, averaged
