"""Reference points for a loss (chapters 7-11): the unigram model, and losses in bits per byte.

A loss in nats per token means little alone. Guessing uniformly costs ln V; a unigram model, which
always predicts the training text's token frequencies and ignores the context, costs its cross-entropy
on the held-out text; what a model gains below that line it learnt from the context. Nats per token
also depend on the tokenizer (a larger vocabulary puts more bytes in a token), so the book converts
them to bits per byte, which compares models with different tokenizers and the handout's targets.
"""

from __future__ import annotations

import math

import numpy as np


def unigram_cross_entropy(train_ids: np.ndarray, heldout_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats per token) on `heldout_ids` of the training ids' add-one-smoothed frequencies.

    Every held-out id after the first is a target, as in `mean_window_loss`; add-one smoothing gives an
    id the training text never shows a finite cost."""
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size).astype(np.float64) + 1.0
    if len(counts) != vocab_size:
        raise ValueError(f"training ids reach {len(counts) - 1}, beyond vocab_size {vocab_size}")
    return float(-np.log(counts / counts.sum())[np.asarray(heldout_ids[1:])].mean())


def bits_per_byte(nats_per_token: float, bytes_per_token: float) -> float:
    """A loss in nats per token as bits per byte of text, given the tokenizer's bytes per token."""
    if not bytes_per_token > 0:
        raise ValueError(f"bytes_per_token must be positive, got {bytes_per_token!r}")
    return nats_per_token / math.log(2) / bytes_per_token
