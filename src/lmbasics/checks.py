"""Argument checks shared by every part of the library (all chapters): positive integers, one of a few choices, and
whether a tensor's values may be inspected. Every error names the argument and the value it got."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def check_positive(**values: Any) -> None:
    """Each keyword's value is a positive int (bools are not ints here), else ValueError naming it."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """`value` is one of `choices`, else ValueError listing them."""
    choices = tuple(choices)
    if value not in choices:
        listed = (
            ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}" if len(choices) > 1 else repr(choices[0])
        )
        raise ValueError(f"{name} must be {listed}, got {value!r}")


def checkable(x: torch.Tensor) -> bool:
    """Whether data-dependent input checks may run (they cannot on the meta device or inside torch.compile)."""
    return x.device.type != "meta" and not torch.compiler.is_compiling()
