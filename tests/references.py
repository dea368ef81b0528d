"""Independent references that the tests and the benchmarks share, built from other libraries only.

- `gpt2_tiktoken`: tiktoken's own GPT-2 encoding, built offline from `tests/fixtures/` (the Tokenizer's
  reference in `tests/tokenization/` and `benchmarks/tokenizer_encode.py`);
- `rope_complex`, `causal_attention`: RoPE as complex multiplication and attention with
  `F.scaled_dot_product_attention` (the layer tests);
- `BuiltinLM`: `TransformerLM`'s architecture from torch built-ins with the handout's parameter names,
  so a state dict moves between the two (the model tests and `benchmarks/train_step.py`).

Nothing here imports `lmbasics`. Tests import it as `references` (pytest puts `tests/` on the path for
`conftest.py`); benchmarks add `tests/` to `sys.path` first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tiktoken
import torch
import torch.nn.functional as F
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str
from torch import Tensor, nn

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EOT = "<|endoftext|>"


def gpt2_tiktoken(folder: Path) -> tiktoken.Encoding:
    """tiktoken's GPT-2 encoding (r50k) from the fixture vocabulary and merges; `folder` takes a temporary file."""
    merges = (FIXTURES / "gpt2_merges.txt").read_text(encoding="utf-8")
    (folder / "vocab.bpe").write_text("#version: 0.2\n" + merges.rstrip("\n") + "\n", encoding="utf-8")
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local files, cache nothing
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(FIXTURES / "gpt2_vocab.json"))
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous
    return tiktoken.Encoding("gpt2-offline", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={EOT: 50256}, explicit_n_vocab=50257)  # fmt: skip


def rope_complex(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as complex multiplication: pair (x[2k], x[2k+1]) is the number x[2k] + i·x[2k+1],
    rotated by exp(i · position · theta^(-2k/d))."""
    d = x.shape[-1]
    freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.to(torch.float64)[..., None] * freqs  # (..., seq, d/2)
    z = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], d // 2, 2).contiguous())
    rotated = z * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(rotated).flatten(-2).to(x.dtype)


def causal_attention(x, q_w, k_w, v_w, o_w, num_heads, theta=None, positions=None):
    """Causal multi-head self-attention with F.linear and F.scaled_dot_product_attention."""
    *batch, seq, d_model = x.shape

    def heads(t):  # (..., seq, d_model) -> (..., heads, seq, d_head)
        return t.reshape(*batch, seq, num_heads, d_model // num_heads).transpose(-3, -2)

    q, k, v = (heads(F.linear(x, w)) for w in (q_w, k_w, v_w))
    if theta is not None:
        pos = torch.arange(seq) if positions is None else positions
        q, k = rope_complex(q, pos, theta), rope_complex(k, pos, theta)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.transpose(-3, -2).reshape(*batch, seq, d_model), o_w)


class BuiltinBlock(nn.Module):
    """The pre-norm block from torch built-ins, with the handout's parameter names."""

    def __init__(self, c: Any) -> None:
        super().__init__()
        self.num_heads = c.num_heads
        self.ln1 = nn.RMSNorm(c.d_model, eps=1e-5)
        self.attn = nn.ModuleDict({name: nn.Linear(c.d_model, c.d_model, bias=False)
                                   for name in ("q_proj", "k_proj", "v_proj", "output_proj")})  # fmt: skip
        self.ln2 = nn.RMSNorm(c.d_model, eps=1e-5)
        self.ffn = nn.ModuleDict({"w1": nn.Linear(c.d_model, c.d_ff, bias=False),
                                  "w2": nn.Linear(c.d_ff, c.d_model, bias=False),
                                  "w3": nn.Linear(c.d_model, c.d_ff, bias=False)})  # fmt: skip

    def forward(self, x: Tensor, rotation: Tensor) -> Tensor:
        batch, seq, d_model = x.shape
        h = self.ln1(x)

        def heads(t: Tensor) -> Tensor:  # (batch, seq, d_model) -> (batch, heads, seq, d_head)
            return t.view(batch, seq, self.num_heads, -1).transpose(1, 2)

        q, k, v = (heads(self.attn[name](h)) for name in ("q_proj", "k_proj", "v_proj"))
        q, k = (_rotate(t, rotation) for t in (q, k))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn["output_proj"](out.transpose(1, 2).reshape(batch, seq, d_model))
        h = self.ln2(x)
        return x + self.ffn["w2"](F.silu(self.ffn["w1"](h)) * self.ffn["w3"](h))


def _rotate(x: Tensor, rotation: Tensor) -> Tensor:
    """RoPE as the LLaMA reference does it: pairs as complex numbers times exp(i·angle)."""
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(z * rotation).flatten(-2).type_as(x)


class BuiltinLM(nn.Module):
    """`TransformerLM`'s architecture from `nn.Embedding`, `nn.Linear`, `nn.RMSNorm` and F.sdpa."""

    def __init__(self, c: Any) -> None:
        super().__init__()
        self.token_embeddings = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(BuiltinBlock(c) for _ in range(c.num_layers))
        self.ln_final = nn.RMSNorm(c.d_model, eps=1e-5)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        d_head = c.d_model // c.num_heads
        inv_freq = c.rope_theta ** (-torch.arange(0, d_head, 2, dtype=torch.float64) / d_head)
        angles = torch.outer(torch.arange(c.context_length, dtype=torch.float64), inv_freq)
        self.register_buffer("rotation", torch.polar(torch.ones_like(angles), angles).to(torch.complex64),
                             persistent=False)  # fmt: skip

    def forward(self, token_ids: Tensor) -> Tensor:
        x = self.token_embeddings(token_ids)
        rotation = self.rotation[: token_ids.shape[-1]]
        for layer in self.layers:
            x = layer(x, rotation)
        return self.lm_head(self.ln_final(x))
