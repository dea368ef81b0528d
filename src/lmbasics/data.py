"""Token arrays for training: open them without reading them, and sample batches (handout §5.1).

A tokenized dataset is a 1-D array of token ids, usually a uint16 `.npy` written by
`lmbasics.encode_file`. `load_tokens` memory-maps it, so an 11 GB file costs no RAM until batches
touch it; `get_batch` reads only the windows it samples.

What it does not do: no shuffling of documents and no epoch bookkeeping; windows are sampled
uniformly at random, as the handout's training loop does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from jaxtyping import Int
from torch import Tensor

# Elements scanned at a time when validating a memory-mapped array (16 M ids = 32 MB of uint16).
_SCAN_CHUNK = 1 << 24


def load_tokens(path: str | Path, vocab_size: int | None = None) -> np.ndarray:
    """Memory-map a 1-D integer `.npy` of token ids, checking it before training starts.

    With `vocab_size`, every id is checked to be below it (a streaming scan, chunk by chunk), so that a
    dataset encoded with another tokenizer fails here rather than as an index error mid-run.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file not found: {path}")
    try:
        tokens = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise ValueError(f"{path} is not a readable .npy array: {error}") from error
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{path} must hold a 1-D integer array of token ids, got {tokens.dtype} with shape {tokens.shape}")
    if vocab_size is not None:
        check_token_ids(tokens, vocab_size, name=str(path))
    return tokens


def check_token_ids(tokens: npt.NDArray[np.integer], vocab_size: int, name: str = "dataset") -> None:
    """Raise if any id is negative or not below `vocab_size` (scans in chunks; fine on memmaps)."""
    for start in range(0, len(tokens), _SCAN_CHUNK):
        chunk = np.asarray(tokens[start : start + _SCAN_CHUNK])
        low, high = int(chunk.min()), int(chunk.max())
        if low < 0 or high >= vocab_size:
            bad = int(np.flatnonzero((chunk < 0) | (chunk >= vocab_size))[0]) + start
            raise ValueError(
                f"{name}: token id {int(tokens[bad])} at position {bad} is outside the vocabulary [0, {vocab_size})"
            )


def get_batch(
    x: npt.NDArray[np.integer],
    batch_size: int,
    context_length: int,
    device: str | torch.device,
    rng: np.random.Generator | None = None,
) -> tuple[Int[Tensor, "batch seq"], Int[Tensor, "batch seq"]]:
    """Sample `batch_size` windows of `context_length + 1` consecutive ids from `x`.

    Returns (inputs, targets), both int64 of shape (batch_size, context_length) on `device`, where
    targets are the inputs shifted one position left. Pass `rng` for a reproducible stream (it is
    what a checkpoint saves); without it NumPy's global generator is used.
    """
    if x.ndim != 1:
        raise ValueError(f"get_batch expects a 1-D array of token ids, got shape {x.shape}")
    if batch_size < 1 or context_length < 1:
        raise ValueError(f"batch_size and context_length must be positive, got {batch_size} and {context_length}")
    if len(x) < context_length + 1:
        raise ValueError(
            f"dataset has {len(x)} tokens, fewer than context_length + 1 = {context_length + 1}: "
            "use a shorter context or more data"
        )
    high = len(x) - context_length  # exclusive bound on a window's first index
    starts = rng.integers(0, high, size=batch_size) if rng is not None else np.random.randint(0, high, size=batch_size)
    # (batch, seq + 1) index grid; fancy indexing a memmap reads only these elements.
    windows = np.asarray(x[starts[:, None] + np.arange(context_length + 1)], dtype=np.int64)
    batch = torch.from_numpy(windows)
    if torch.device(device).type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return batch[:, :-1], batch[:, 1:]
