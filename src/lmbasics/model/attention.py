"""Attention from scratch (chapter 4): RoPE, a stable softmax, scaled dot-product and causal multi-head
self-attention (handout §3.5.3–3.5.5).

Conventions, as in the handout: a boolean attention mask is True where a query *may* attend to a
key; RoPE rotates the pairs (x[2k], x[2k+1]); heads are a batch dimension, so one RoPE rotation
serves every head.

What it does not do: no dropout, no key/value cache for generation (generation re-runs the
prefix), no fused flash-attention kernel (the benchmark compares against PyTorch's).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from lmbasics.checks import check_positive, checkable
from lmbasics.model.config import Device, DType
from lmbasics.model.layers import Linear, RMSNorm


class RotaryPositionalEmbedding(nn.Module):
    """Rotate each pair (x[2k], x[2k+1]) of a query/key at position i by the angle i · Θ^(-2k/d_k).

    cos and sin for every position up to `max_seq_len` are precomputed once, as non-persistent
    buffers: they are functions of (theta, d_k), not learned, so they stay out of the state dict.
    """

    def __init__(self, theta: float, d_k: int, max_seq_len: int, device: Device = None) -> None:
        super().__init__()
        check_positive(d_k=d_k, max_seq_len=max_seq_len)
        if d_k % 2 != 0:
            raise ValueError(f"RoPE rotates pairs of dimensions, so d_k must be even, got {d_k}")
        if not theta > 0:
            raise ValueError(f"RoPE needs theta > 0, got {theta!r}")
        self.theta = theta
        self.d_k = d_k
        self.max_seq_len = max_seq_len
        # Angles in float64 (position · frequency loses digits in float32 at long contexts), stored as float32.
        inv_freq = theta ** (-torch.arange(0, d_k, 2, device=device, dtype=torch.float64) / d_k)  # (d_k/2,)
        positions = torch.arange(max_seq_len, device=device, dtype=torch.float64)
        angles = torch.outer(positions, inv_freq)  # (max_seq_len, d_k/2)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(
        self, x: Float[Tensor, "... seq d_k"], token_positions: Int[Tensor, "... seq"]
    ) -> Float[Tensor, "... seq d_k"]:
        if x.shape[-1] != self.d_k:
            raise ValueError(f"RoPE was built for d_k={self.d_k}, got an input whose last dimension is {x.shape[-1]}")
        if checkable(token_positions) and token_positions.numel() > 0:
            low, high = int(token_positions.min()), int(token_positions.max())
            if low < 0 or high >= self.max_seq_len:
                raise IndexError(f"token positions must lie in [0, {self.max_seq_len}), got [{low}, {high}]")
        # Pair (a, b) rotates to (a·cos − b·sin, a·sin + b·cos) = (a, b)·cos + (b, a)·(−sin, sin):
        # two elementwise products over x, with the tables laid out to the full width d_k.
        cos = self.cos[token_positions].repeat_interleave(2, dim=-1)  # (..., seq, d_k): cos, cos per pair
        sin = (self.sin[token_positions].unsqueeze(-1) * self.sin.new_tensor([-1.0, 1.0])).flatten(-2)  # −sin, sin
        swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # (b, a) for every pair (a, b)
        return x * cos.to(x.dtype) + swapped * sin.to(x.dtype)

    def extra_repr(self) -> str:
        return f"theta={self.theta}, d_k={self.d_k}, max_seq_len={self.max_seq_len}"


class _Softmax(torch.autograd.Function):
    """Softmax with its textbook backward, ∂L/∂x = y ⊙ (g − Σ g ⊙ y), from the saved output y alone.

    Autograd would differentiate the max-shift, the exp and the division one by one, keeping an
    extra tensor of attention scores per step; this needs one temporary."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, dim: int) -> Tensor:
        # The shift cancels in the ratio, so it needs no gradient of its own.
        exps = (x - x.amax(dim=dim, keepdim=True)).exp_()  # in place on our own temporary
        probs = exps.div_(exps.sum(dim=dim, keepdim=True))
        ctx.save_for_backward(probs)
        ctx.dim = dim
        return probs

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (probs,) = ctx.saved_tensors
        grad_probs = grad * probs
        return grad_probs.addcmul_(probs, grad_probs.sum(dim=ctx.dim, keepdim=True), value=-1), None


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`, after subtracting the maximum so that exp never overflows."""
    return _Softmax.apply(x, dim)


def scaled_dot_product_attention(
    Q: Float[Tensor, "... queries d_k"],
    K: Float[Tensor, "... keys d_k"],
    V: Float[Tensor, "... keys d_v"],
    mask: Bool[Tensor, "... queries keys"] | None = None,
) -> Float[Tensor, "... queries d_v"]:
    """softmax(Q Kᵀ / sqrt(d_k)) V; where `mask` is False the attention weight is exactly 0.

    A query whose mask row is all False has nothing to attend to: its output is NaN.
    """
    scores = (Q * (1.0 / math.sqrt(Q.shape[-1]))) @ K.transpose(-2, -1)  # (..., queries, keys)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ V


def causal_mask(seq_len: int, device: Device = None) -> Bool[Tensor, "seq seq"]:
    """True on and below the diagonal: query i may attend to keys j ≤ i."""
    positions = torch.arange(seq_len, device=device)
    return positions[:, None] >= positions[None, :]


class MultiHeadSelfAttention(nn.Module):
    """Causal multi-head self-attention, W_O · Concat(head_1..head_h), d_k = d_v = d_model / h.

    With `theta` given, RoPE (shared by all heads) rotates queries and keys; with `theta=None`
    there is no position information at all (NoPE): only the causal mask tells tokens apart.
    With `qk_norm`, an RMSNorm over each head's d_head dimensions (one gain vector shared by the
    heads) normalises queries and keys before RoPE (Dehghani et al., 2023).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        max_seq_len: int | None = None,
        theta: float | None = None,
        *,
        qk_norm: bool = False,
        device: Device = None,
        dtype: DType = None,
    ) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.q_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.k_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.v_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.output_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        if theta is None:
            self.rope = None
        else:
            if max_seq_len is None:
                raise ValueError("RoPE (theta given) needs max_seq_len to precompute its rotations")
            self.rope = RotaryPositionalEmbedding(theta, self.d_head, max_seq_len, device=device)
        if qk_norm:
            self.q_norm = RMSNorm(self.d_head, device=device, dtype=dtype)
            self.k_norm = RMSNorm(self.d_head, device=device, dtype=dtype)
        else:
            self.q_norm = self.k_norm = None

    def forward(
        self,
        x: Float[Tensor, "... seq d_model"],
        token_positions: Int[Tensor, "... seq"] | None = None,
    ) -> Float[Tensor, "... seq d_model"]:
        seq_len = x.shape[-2]
        q, k, v = (
            rearrange(proj(x), "... seq (heads d) -> ... heads seq d", heads=self.num_heads)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # (..., heads, seq, d_head), each row of rms ≈ its gain
        if self.rope is not None:
            if token_positions is None:
                token_positions = torch.arange(seq_len, device=x.device)
            if seq_len > self.rope.max_seq_len:
                raise ValueError(f"sequence of {seq_len} tokens exceeds max_seq_len={self.rope.max_seq_len}")
            positions = token_positions.unsqueeze(-2)  # (..., 1, seq): the same rotation for every head
            q, k = self.rope(q, positions), self.rope(k, positions)
        heads = scaled_dot_product_attention(q, k, v, causal_mask(seq_len, device=x.device))
        return self.output_proj(rearrange(heads, "... heads seq d -> ... seq (heads d)"))
