"""Checkpoints that survive crashes and resume runs exactly (handout §5.2, chapter 7).

A checkpoint holds the model and optimizer state, the iteration, the model's config (so a
checkpoint alone can rebuild the model, e.g. for generation) and every random-number state that
training consumes, so that a resumed run is bit-identical to an uninterrupted one.

Writing to a path goes through a temporary file in the same directory that is renamed into place,
so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import torch

from lmbasics.atomic import atomic_file
from lmbasics.model.config import ModelConfig
from lmbasics.model.lm import TransformerLM

FORMAT_VERSION = 1


def rng_states() -> dict[str, Any]:
    """The global RNG states of Python, NumPy's legacy generator and torch (CPU and CUDA)."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["torch_cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of `rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model behind DistributedDataParallel or torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    out: str | os.PathLike | BinaryIO | IO[bytes],
    extra: dict[str, Any] | None = None,
) -> None:
    """Save model, optimizer, iteration, model config, RNG states and `extra` to `out`.

    `out` is a path (written atomically) or a binary file object. `extra` carries caller state that
    must survive a restart, such as the data sampler's generator state or the training config.
    """
    bare = _unwrap(model)
    config = getattr(bare, "config", None)
    payload = {
        "format_version": FORMAT_VERSION,
        "iteration": int(iteration),
        "model": bare.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": config.to_dict() if config is not None else None,
        "rng": rng_states(),
        "extra": extra or {},
    }
    if isinstance(out, (str, os.PathLike)):
        with atomic_file(out) as handle:
            torch.save(payload, handle)
    else:
        torch.save(payload, out)


def read_checkpoint(src: str | os.PathLike | BinaryIO | IO[bytes]) -> dict[str, Any]:
    """Load a checkpoint's contents onto the CPU, with a clear error for missing or damaged files."""
    name = str(src) if isinstance(src, (str, os.PathLike)) else "checkpoint stream"
    if isinstance(src, (str, os.PathLike)) and not Path(src).is_file():
        raise FileNotFoundError(f"checkpoint not found: {src}")
    try:
        # Our own files hold Python and NumPy RNG states, which the weights-only unpickler refuses.
        payload = torch.load(src, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{name} is not a readable checkpoint (corrupt or truncated?): {error}") from error
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{name} is not an lmbasics checkpoint (format version {FORMAT_VERSION} expected)")
    return payload


def load_checkpoint(
    src: str | os.PathLike | BinaryIO | IO[bytes],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
) -> int:
    """Restore model (and optimizer, and RNG states) from `src`; returns the saved iteration."""
    return restore_checkpoint(read_checkpoint(src), model, optimizer, restore_rng)


def restore_checkpoint(
    payload: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = True,
) -> int:
    """`load_checkpoint` from contents already read by `read_checkpoint`; returns the saved iteration."""
    _unwrap(model).load_state_dict(payload["model"])
    if optimizer is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if restore_rng:
        set_rng_states(payload["rng"])
    return payload["iteration"]


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> TransformerLM:
    """The model saved in a checkpoint written by `lmbasics train`, rebuilt from its config, in eval mode.

    Only the weights are read: no optimizer, and the caller's random-number states are left as they were."""
    payload = read_checkpoint(path)
    if payload.get("model_config") is None:
        raise ValueError(f"{path} holds no model config; it was not written by `lmbasics train`")
    device = torch.device(device)
    # The random initialisation is overwritten at once: keep it from consuming the caller's RNG streams.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = TransformerLM.from_config(ModelConfig.from_dict(payload["model_config"]), device=device)
    restore_checkpoint(payload, model, restore_rng=False)
    return model.eval()
