"""Which device a run uses (chapter 7): `auto` picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """`auto` means CUDA if present, then Apple's MPS, then the CPU; anything else is taken as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
