"""The decoder-only Transformer language model of handout §3.6, with the §7.3 ablation switches
(chapters 4 and 9).

`TransformerBlock` is the handout's pre-norm block (y = x + MHA(RMSNorm(x)), then the same with
the FFN) or one of its ablations; `TransformerLM` stacks blocks between a token embedding and an
LM head and returns logits (no softmax: `cross_entropy` works on logits, stably).

Ablation switches (fields of `ModelConfig`):
- `norm="pre"` (handout): RMSNorm before each sublayer, plus `ln_final` before the LM head.
- `norm="post"` (pre_norm_ablation): z = RMSNorm(x + MHA(x)), y = RMSNorm(z + FFN(z)); the
  blocks' outputs are already normalised, so there is no `ln_final`.
- `norm="none"` (layer_norm_ablation): no RMSNorm anywhere (no `ln1`, `ln2`, `ln_final`).
- `rope_theta=None` (no_pos_emb): NoPE, attention without any position information.
- `ffn="silu"` (swiglu_ablation): `SiLUFFN` (w1, w2) instead of `SwiGLU` (w1, w2, w3).

Leaderboard switches (chapter 11), all off by default:
- `ffn="relu2"`: `ReLUSquaredFFN` (w1, w2).
- `tie_embeddings=True`: `lm_head.weight` *is* `token_embeddings.weight` (one parameter, counted once).
- `qk_norm=True`: RMSNorm on each head's queries and keys (see `MultiHeadSelfAttention`).
- `logit_softcap=c`: logits c · tanh(logits / c).

What it does not do: no dropout or KV cache; generation lives in its own module.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from lmbasics.checks import check_choice
from lmbasics.model.attention import MultiHeadSelfAttention
from lmbasics.model.config import (
    FEED_FORWARD_KINDS,
    NORM_PLACEMENTS,
    Device,
    DType,
    FeedForwardKind,
    ModelConfig,
    NormPlacement,
)
from lmbasics.model.layers import Embedding, Linear, ReLUSquaredFFN, RMSNorm, SiLUFFN, SwiGLU

_FFNS = {"swiglu": SwiGLU, "silu": SiLUFFN, "relu2": ReLUSquaredFFN}


class TransformerBlock(nn.Module):
    """One Transformer block: causal self-attention then a feed-forward network, each with a
    residual connection; `norm` places the RMSNorms (see the module docstring)."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        max_seq_len: int,
        theta: float | None,
        *,
        norm: NormPlacement = "pre",
        ffn: FeedForwardKind = "swiglu",
        qk_norm: bool = False,
        device: Device = None,
        dtype: DType = None,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, NORM_PLACEMENTS)
        check_choice("ffn", ffn, FEED_FORWARD_KINDS)
        self.norm = norm
        factory = {"device": device, "dtype": dtype}
        self.ln1 = RMSNorm(d_model, **factory) if norm != "none" else None
        self.attn = MultiHeadSelfAttention(d_model, num_heads, max_seq_len, theta, qk_norm=qk_norm, **factory)
        self.ln2 = RMSNorm(d_model, **factory) if norm != "none" else None
        self.ffn = _FFNS[ffn](d_model, d_ff, **factory)

    def forward(
        self,
        x: Float[Tensor, "... seq d_model"],
        token_positions: Int[Tensor, "... seq"] | None = None,
    ) -> Float[Tensor, "... seq d_model"]:
        if self.norm == "pre":
            x = x + self.attn(self.ln1(x), token_positions)
            return x + self.ffn(self.ln2(x))
        if self.norm == "post":
            x = self.ln1(x + self.attn(x, token_positions))
            return self.ln2(x + self.ffn(x))
        x = x + self.attn(x, token_positions)
        return x + self.ffn(x)


class TransformerLM(nn.Module):
    """Token ids → next-token logits: embedding, `num_layers` blocks, (final norm), LM head.

    The model keeps its `ModelConfig` as `model.config` (checkpoints store it to rebuild the model).
    """

    def __init__(
        self, vocab_size: int, context_length: int, d_model: int, num_layers: int, num_heads: int, d_ff: int,
        rope_theta: float | None, *, norm: NormPlacement = "pre", ffn: FeedForwardKind = "swiglu",
        tie_embeddings: bool = False, qk_norm: bool = False, logit_softcap: float | None = None,
        device: Device = None, dtype: DType = None,
    ) -> None:  # fmt: skip
        super().__init__()
        # Validates every argument with a clear message (and is what checkpoints store).
        arguments = locals()
        self.config = ModelConfig(**{field.name: arguments[field.name] for field in fields(ModelConfig)})
        factory = {"device": device, "dtype": dtype}
        # A tied matrix is also the output layer: std 1/sqrt(d) gives logits of about unit scale.
        embedding_std = d_model**-0.5 if tie_embeddings else 1.0
        self.token_embeddings = Embedding(vocab_size, d_model, **factory, std=embedding_std)
        self.layers = nn.ModuleList(
            TransformerBlock(
                d_model, num_heads, d_ff, context_length, rope_theta, norm=norm, ffn=ffn, qk_norm=qk_norm, **factory
            )
            for _ in range(num_layers)
        )
        self.ln_final = RMSNorm(d_model, **factory) if norm == "pre" else None
        self.lm_head = Linear(d_model, vocab_size, **factory)
        if tie_embeddings:
            # One Parameter in two places: parameters() yields it once, its gradient sums both uses.
            self.lm_head.weight = self.token_embeddings.weight

    @classmethod
    def from_config(cls, config: ModelConfig, device: Device = None, dtype: DType = None) -> TransformerLM:
        """Build the model a `ModelConfig` describes (e.g. `ModelConfig.preset("gpt2-xl")`)."""
        return cls(**config.to_dict(), device=device, dtype=dtype)

    def forward(self, token_ids: Int[Tensor, "... seq"]) -> Float[Tensor, "... seq vocab_size"]:
        seq_len = token_ids.shape[-1]
        if seq_len > self.config.context_length:
            raise ValueError(
                f"sequence of {seq_len} tokens exceeds the model's context_length={self.config.context_length}"
            )
        token_positions = torch.arange(seq_len, device=token_ids.device)
        x = self.token_embeddings(token_ids)  # (..., seq, d_model)
        for layer in self.layers:
            x = layer(x, token_positions)
        if self.ln_final is not None:
            x = self.ln_final(x)
        logits = self.lm_head(x)  # (..., seq, vocab_size)
        if self.config.logit_softcap is not None:
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)  # smooth clamp to (-cap, cap)
        return logits
