"""The model in its smallest correct form (chapter 4): what each component computes, and nothing else.

Chapter 4 shows these before the library's versions in `layers.py`, `attention.py` and `lm.py`, which
compute the same thing (the tests check it, weight for weight) and add what a reader does not need
on a first reading: argument checks with clear messages, float32 arithmetic inside RMSNorm,
hand-written backward passes that save memory (`_SiLU`, `_Softmax`), the ablation and leaderboard
switches of chapters 9 and 11 (`norm`, `ffn`, NoPE, `qk_norm`, `tie_embeddings`, `logit_softcap`),
and guards for the meta device and `torch.compile`.

Parameter names are the library's (and the handout's), so `minimal.load_state_dict(library.state_dict())`
moves weights between the two. Shapes are noted on the lines that make them:
`(..., seq, d_model)` is any number of batch dimensions, then the sequence, then the features.

Attention is built in the chapter's steps: `minimal_attention_weights` (softmax of scaled dot
products, optionally masked) is the whole idea; `minimal_attention` averages the values with those
weights; `MinimalMultiHeadSelfAttention` adds learned projections, RoPE, the causal mask and heads.

What it does not do: no argument checks, no dtype care (a float16 input overflows RMSNorm's square),
no switches; autograd differentiates everything. Use the library's classes to train.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def minimal_softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x) / Σ exp(x) along `dim`, shifted by the maximum first so that exp never overflows."""
    exps = (x - x.amax(dim=dim, keepdim=True)).exp()  # the largest entry becomes exp(0) = 1
    return exps / exps.sum(dim=dim, keepdim=True)


def minimal_silu(x: Tensor) -> Tensor:
    """SiLU(x) = x · σ(x)."""
    return x * torch.sigmoid(x)


def minimal_attention_weights(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q kᵀ / sqrt(d_k)) over the keys: row i says how much query i takes from each key.

    q: (..., queries, d_k), k: (..., keys, d_k); `mask` (queries, keys) is True where a query may look.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., queries, keys)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: no weight at all
    return minimal_softmax(scores, dim=-1)


def minimal_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Scaled dot-product attention: each query's output is an average of the values v (..., keys, d_v)."""
    return minimal_attention_weights(q, k, mask) @ v  # (..., queries, d_v)


class MinimalLinear(nn.Module):
    """y = x Wᵀ with W (out_features, in_features) ~ N(0, 2 / (d_in + d_out)), truncated at ±3σ."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        std = math.sqrt(2.0 / (in_features + out_features))
        self.weight = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(out_features, in_features), 0, std, -3 * std, 3 * std)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.T  # (..., in_features) -> (..., out_features)


class MinimalEmbedding(nn.Module):
    """Row `token_id` of a (num_embeddings, embedding_dim) table ~ N(0, 1), truncated at ±3."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(num_embeddings, embedding_dim), 0, 1, -3, 3))

    def forward(self, token_ids: Tensor) -> Tensor:
        return self.weight[token_ids]  # (...) -> (..., embedding_dim)


class MinimalRMSNorm(nn.Module):
    """a / sqrt(mean(a²) + eps) · g over the last dimension, with the gain g starting at ones."""

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        rms = (x.pow(2).mean(dim=-1, keepdim=True) + self.eps).sqrt()  # (..., 1)
        return x / rms * self.weight  # (..., d_model)


class MinimalSwiGLU(nn.Module):
    """W2 (SiLU(W1 x) ⊙ W3 x): SiLU(W1 x) is the gate, W3 x the value it scales."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w1 = MinimalLinear(d_model, d_ff)
        self.w2 = MinimalLinear(d_ff, d_model)
        self.w3 = MinimalLinear(d_model, d_ff)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = minimal_silu(self.w1(x)), self.w3(x)  # (..., d_ff) each
        return self.w2(gate * value)  # (..., d_model)


class MinimalRoPE(nn.Module):
    """Rotate the pair (x[2k], x[2k+1]) of a vector at position i by the angle i · theta^(-2k/d_k).

    Pairs are 0-indexed and interleaved (dimensions 0 and 1, 2 and 3, ...), as in the handout, whose
    1-indexed formula pairs (2k-1, 2k) for k = 1..d/2: the same pairs and angles, counted from 1.
    """

    def __init__(self, theta: float, d_k: int, max_seq_len: int) -> None:
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, d_k, 2, dtype=torch.float64) / d_k)  # (d_k/2,): one speed per pair
        angles = torch.arange(max_seq_len, dtype=torch.float64)[:, None] * inv_freq  # (max_seq_len, d_k/2)
        self.register_buffer("cos", angles.cos().float(), persistent=False)  # tables, not parameters
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: Tensor, token_positions: Tensor) -> Tensor:
        cos, sin = self.cos[token_positions], self.sin[token_positions]  # (..., seq, d_k/2)
        even, odd = x[..., 0::2], x[..., 1::2]  # (..., seq, d_k/2): the two members of every pair
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)  # (..., seq, d_k/2, 2)
        return rotated.flatten(-2)  # (..., seq, d_k), pairs interleaved again


class MinimalMultiHeadSelfAttention(nn.Module):
    """Causal self-attention with `num_heads` heads of d_model / num_heads dimensions and RoPE."""

    def __init__(self, d_model: int, num_heads: int, max_seq_len: int, theta: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = MinimalLinear(d_model, d_model)
        self.k_proj = MinimalLinear(d_model, d_model)
        self.v_proj = MinimalLinear(d_model, d_model)
        self.output_proj = MinimalLinear(d_model, d_model)
        self.rope = MinimalRoPE(theta, d_model // num_heads, max_seq_len)

    def split_heads(self, x: Tensor) -> Tensor:
        """(..., seq, d_model) -> (..., heads, seq, d_head): head j gets features j·d_head to (j+1)·d_head - 1."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(-3, -2)

    def forward(self, x: Tensor) -> Tensor:
        seq = x.shape[-2]
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        positions = torch.arange(seq, device=x.device)  # (seq,): the same rotation for every head
        q, k = self.rope(q, positions), self.rope(k, positions)  # (..., heads, seq, d_head)
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()  # query i sees keys j <= i
        heads = minimal_attention(q, k, v, causal)  # (..., heads, seq, d_head)
        return self.output_proj(heads.transpose(-3, -2).flatten(-2))  # heads side by side: (..., seq, d_model)


class MinimalTransformerBlock(nn.Module):
    """Pre-norm block: x + attention(RMSNorm(x)), then the same with the feed-forward network."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, max_seq_len: int, theta: float) -> None:
        super().__init__()
        self.ln1 = MinimalRMSNorm(d_model)
        self.attn = MinimalMultiHeadSelfAttention(d_model, num_heads, max_seq_len, theta)
        self.ln2 = MinimalRMSNorm(d_model)
        self.ffn = MinimalSwiGLU(d_model, d_ff)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))  # (..., seq, d_model): the residual stream
        return x + self.ffn(self.ln2(x))


class MinimalTransformerLM(nn.Module):
    """Token ids (..., seq) -> next-token logits (..., seq, vocab_size)."""

    def __init__(
        self, vocab_size: int, context_length: int, d_model: int, num_layers: int, num_heads: int, d_ff: int,
        rope_theta: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.token_embeddings = MinimalEmbedding(vocab_size, d_model)
        self.layers = nn.ModuleList(
            MinimalTransformerBlock(d_model, num_heads, d_ff, context_length, rope_theta) for _ in range(num_layers)
        )
        self.ln_final = MinimalRMSNorm(d_model)
        self.lm_head = MinimalLinear(d_model, vocab_size)

    def forward(self, token_ids: Tensor) -> Tensor:
        x = self.token_embeddings(token_ids)  # (..., seq, d_model)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.ln_final(x))  # (..., seq, vocab_size)
