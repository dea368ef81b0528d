"""The Transformer's position-wise building blocks, from scratch (handout §3.4–3.5.2, chapter 4).

`Linear`, `Embedding`, `RMSNorm`, the feed-forward networks (`SwiGLU`, `SiLUFFN` for the
swiglu_ablation, and `ReLUSquaredFFN` for chapter 11). Each is a plain `nn.Module` holding
`nn.Parameter`s and computing with tensor ops; parameter names are the handout's, so state dicts
load into its reference adapters. RoPE and attention live in `attention.py`.

What it does not do: no biases (as in most modern LLMs), no dropout, no fused kernels. SiLU has a
hand-written backward pass (like softmax and the cross-entropy) to save memory traffic.

Initialisation (handout §3.4.1): linear weights ~ N(0, 2 / (d_in + d_out)) and embeddings ~ N(0, 1),
both truncated at ±3σ; RMSNorm gains start at 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from lmbasics.checks import check_positive, checkable
from lmbasics.model.config import Device, DType


class Linear(nn.Module):
    """y = W x without bias; `weight` is stored (out_features, in_features) like `nn.Linear`'s."""

    def __init__(self, in_features: int, out_features: int, device: Device = None, dtype: DType = None) -> None:
        super().__init__()
        check_positive(in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        std = math.sqrt(2.0 / (in_features + out_features))
        nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)

    def forward(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_out"]:
        # x @ Wᵀ: one matrix multiply over all leading dimensions (row-vector convention, handout §3.3.1).
        return x @ self.weight.T

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Embedding(nn.Module):
    """Lookup table: token id -> row of `weight` (num_embeddings, embedding_dim).

    `std` is the initialisation's standard deviation (the handout's 1; a tied LM head wants less)."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, device: Device = None, dtype: DType = None, *, std: float = 1.0
    ) -> None:
        super().__init__()
        check_positive(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if not std > 0:
            raise ValueError(f"Embedding: std must be positive, got {std!r}")
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype))
        nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-3.0 * std, b=3.0 * std)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim

    def forward(self, token_ids: Int[Tensor, ...]) -> Float[Tensor, "... d_model"]:
        if token_ids.is_floating_point() or token_ids.is_complex() or token_ids.dtype == torch.bool:
            raise TypeError(f"token ids must be an integer tensor, got {token_ids.dtype}")
        if checkable(token_ids) and token_ids.numel() > 0:
            low, high = int(token_ids.min()), int(token_ids.max())
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise IndexError(f"token id {bad} is outside the vocabulary [0, {self.num_embeddings})")
        # Same as self.weight[token_ids]; index_select's backward (one index_add) is several times
        # faster on CPU than advanced indexing's (an accumulating index_put).
        rows = self.weight.index_select(0, token_ids.reshape(-1))  # (n_tokens, d_model)
        return rows.view(*token_ids.shape, self.embedding_dim)

    def extra_repr(self) -> str:
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"


class RMSNorm(nn.Module):
    """RMSNorm(a)_i = a_i / sqrt(mean(a²) + eps) · g_i over the last dimension, computed in float32.

    Squaring a bf16/fp16 activation can overflow, so the input is upcast and the result cast back.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, device: Device = None, dtype: DType = None) -> None:
        super().__init__()
        check_positive(d_model=d_model)
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.d_model, self.eps = d_model, eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        in_dtype = x.dtype
        compute_dtype = torch.promote_types(in_dtype, torch.float32)  # float32, or float64 if given
        x = x.to(compute_dtype)
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return (x * inv_rms * self.weight.to(compute_dtype)).to(in_dtype)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, eps={self.eps}"


class _SiLU(torch.autograd.Function):
    """x · σ(x) with the derivative σ(x) · (1 + x · (1 − σ(x))) computed in one temporary, where
    autograd's product rule would allocate three."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        sigmoid = torch.sigmoid(x)
        ctx.save_for_backward(x, sigmoid)
        return x * sigmoid

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        x, sigmoid = ctx.saved_tensors
        return (1 - sigmoid).mul_(x).add_(1).mul_(sigmoid).mul_(grad)


def silu(x: Tensor) -> Tensor:
    """SiLU(x) = x · σ(x) (also called Swish); σ from torch.sigmoid, which is stable for large |x|."""
    return _SiLU.apply(x)


class SwiGLU(nn.Module):
    """The handout's feed-forward network: W2 (SiLU(W1 x) ⊙ W3 x), with W1, W3: d_model -> d_ff."""

    def __init__(self, d_model: int, d_ff: int, device: Device = None, dtype: DType = None) -> None:
        super().__init__()
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)
        self.w3 = Linear(d_model, d_ff, device=device, dtype=dtype)

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        return self.w2(silu(self.w1(x)) * self.w3(x))  # gate and value: (..., d_ff)


class SiLUFFN(nn.Module):
    """Ungated FFN for the swiglu_ablation (handout eq. 25): W2 SiLU(W1 x); use d_ff = 4·d_model."""

    def __init__(self, d_model: int, d_ff: int, device: Device = None, dtype: DType = None) -> None:
        super().__init__()
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        return self.w2(silu(self.w1(x)))


class ReLUSquaredFFN(nn.Module):
    """Ungated FFN with a squared ReLU (So et al., 2021, "Primer"): W2 ReLU(W1 x)².

    Two matrices like `SiLUFFN`; d_ff = 1.5 x SwiGLU's d_ff gives it SwiGLU's parameter count.
    Autograd differentiates it: ReLU² has the simple derivative 2·ReLU(x)."""

    def __init__(self, d_model: int, d_ff: int, device: Device = None, dtype: DType = None) -> None:
        super().__init__()
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)

    def forward(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        return self.w2(self.w1(x).clamp(min=0).square())  # hidden: (..., d_ff)
