"""What autograd keeps for the backward pass (chapters 4 and 6): `saved_for_backward`.

Chapters 4 and 6 compare a two-line function that autograd differentiates with the library's
hand-written `torch.autograd.Function` of the same computation; this measures the difference:
the distinct tensors a call saves for its backward pass, in multiples of its first input's size.

What it does not do: it does not see temporaries that exist only while the backward pass runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def saved_for_backward(fn: Callable[..., Any], x: Tensor, *args: Any) -> float:
    """Bytes that `fn(x, *args)` saves for backward (each distinct tensor once), divided by x's bytes.

    `x` is copied and made to require a gradient; `args` pass through unchanged.

    >>> saved_for_backward(lambda t: t * t.sigmoid(), torch.ones(10))  # t and sigmoid(t)
    2.0
    """
    x = x.detach().clone().requires_grad_()
    saved: dict[tuple[int, int, tuple[int, ...]], int] = {}

    def pack(t: Tensor) -> Tensor:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        saved[key] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x, *args)
    return sum(saved.values()) / (x.numel() * x.element_size())
