"""Token arrays for training: open them without reading them, and sample batches (handout §5.1, chapter 7).

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

from lmbasics.checks import check_positive

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
        raise ValueError(
            f"{path} must hold a 1-D integer array of token ids, got {tokens.dtype} with shape {tokens.shape}"
        )
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
    starts = sample_starts(len(x), batch_size, context_length, rng)
    return windows_at(x, starts, context_length, device)


def sample_starts(
    num_tokens: int, batch_size: int, context_length: int, rng: np.random.Generator | None = None
) -> npt.NDArray[np.int64]:
    """Uniformly random first positions of `batch_size` windows of `context_length + 1` tokens."""
    check_positive(batch_size=batch_size, context_length=context_length)
    if num_tokens < context_length + 1:
        raise ValueError(
            f"dataset has {num_tokens} tokens, fewer than context_length + 1 = {context_length + 1}: "
            "use a shorter context or more data"
        )
    high = num_tokens - context_length  # exclusive bound on a window's first index
    return rng.integers(0, high, size=batch_size) if rng is not None else np.random.randint(0, high, size=batch_size)


def windows_at(
    x: npt.NDArray[np.integer], starts: npt.NDArray[np.int64], context_length: int, device: str | torch.device
) -> tuple[Int[Tensor, "batch seq"], Int[Tensor, "batch seq"]]:
    """(inputs, targets) for windows beginning at `starts`; reads only those elements of `x`."""
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D array of token ids, got shape {x.shape}")
    # (batch, seq + 1) index grid; fancy indexing a memmap reads only these elements.
    windows = np.asarray(x[np.asarray(starts)[:, None] + np.arange(context_length + 1)], dtype=np.int64)
    batch = torch.from_numpy(windows)
    if torch.device(device).type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return batch[:, :-1], batch[:, 1:]
