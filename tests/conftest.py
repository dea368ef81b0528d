"""Shared fixtures: independent references for RoPE and attention, built from torch built-ins only."""

import pytest
import torch
import torch.nn.functional as F


def _rope_complex(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as complex multiplication: pair (x[2k], x[2k+1]) is the number x[2k] + i·x[2k+1],
    rotated by exp(i · position · theta^(-2k/d))."""
    d = x.shape[-1]
    freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.to(torch.float64)[..., None] * freqs  # (..., seq, d/2)
    z = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], d // 2, 2).contiguous())
    rotated = z * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(rotated).flatten(-2).to(x.dtype)


def _causal_attention(x, q_w, k_w, v_w, o_w, num_heads, theta=None, positions=None):
    """Causal multi-head self-attention with F.linear and F.scaled_dot_product_attention."""
    *batch, seq, d_model = x.shape

    def heads(t):  # (..., seq, d_model) -> (..., heads, seq, d_head)
        return t.reshape(*batch, seq, num_heads, d_model // num_heads).transpose(-3, -2)

    q, k, v = (heads(F.linear(x, w)) for w in (q_w, k_w, v_w))
    if theta is not None:
        pos = torch.arange(seq) if positions is None else positions
        q, k = _rope_complex(q, pos, theta), _rope_complex(k, pos, theta)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.transpose(-3, -2).reshape(*batch, seq, d_model), o_w)


@pytest.fixture
def rope_complex():
    return _rope_complex


@pytest.fixture
def causal_attention():
    return _causal_attention
