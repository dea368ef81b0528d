"""Model shapes: one frozen dataclass shared by the model, the accounting module and training
(chapter 4; its switches are chapter 9's ablations).

`ModelConfig` holds the handout's Transformer hyperparameters plus the switches used by the
ablation experiments (handout §7.3). Named presets cover the GPT-2 family (the shapes of
transformer_accounting) and the handout's ~17M-parameter TinyStories model.

What it does not do: it holds no optimizer or training settings (those live with training).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

import torch

from lmbasics.checks import check_choice, check_positive

# Where a module's parameters live and their dtype, as torch's own modules take them.
Device = torch.device | str | None
DType = torch.dtype | None

NormPlacement = Literal["pre", "post", "none"]
FeedForwardKind = Literal["swiglu", "silu", "relu2"]
NORM_PLACEMENTS: tuple[str, ...] = get_args(NormPlacement)
FEED_FORWARD_KINDS: tuple[str, ...] = get_args(FeedForwardKind)


@dataclass(frozen=True)
class ModelConfig:
    """Shape and architecture switches of a `TransformerLM`.

    The defaults are the handout's TinyStories model (§7.2): about 17M non-embedding parameters,
    small enough to train in minutes on a GPU.
    """

    vocab_size: int = 10_000
    context_length: int = 256
    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 16
    # Handout: d_ff ≈ 8/3 · d_model rounded to a multiple of 64 for SwiGLU (512 · 8/3 ≈ 1365 → 1344).
    d_ff: int = 1344
    # RoPE base; None removes position information entirely (NoPE ablation, no_pos_emb).
    rope_theta: float | None = 10_000.0
    # Where RMSNorm sits: "pre" (the handout's block), "post" (pre_norm_ablation), "none" (layer_norm_ablation).
    norm: NormPlacement = "pre"
    # "swiglu" (the handout's FFN), "silu" (swiglu_ablation: W2·SiLU(W1 x), usually d_ff = 4·d_model) or
    # "relu2" (W2·ReLU(W1 x)², So et al. 2021; two matrices, so d_ff = 1.5x SwiGLU's for equal parameters).
    ffn: FeedForwardKind = "swiglu"
    # Chapter 11's leaderboard switches; the defaults are the handout's model, bit for bit.
    # One matrix for the token embedding and the LM head (Press and Wolf, 2017), initialised with
    # std 1/sqrt(d_model) so that the first logits have unit scale.
    tie_embeddings: bool = False
    # RMSNorm (with a learned gain per head dimension) on every head's queries and keys before RoPE
    # (Dehghani et al., 2023): attention logits cannot grow without bound.
    qk_norm: bool = False
    # If set, logits become cap · tanh(logits / cap) (Gemma 2's soft-capping): |logit| < cap.
    logit_softcap: float | None = None

    def __post_init__(self) -> None:
        names = ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff")
        check_positive(**{f"ModelConfig.{name}": getattr(self, name) for name in names})
        if self.d_model % self.num_heads != 0:
            raise ValueError(f"ModelConfig.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.rope_theta is not None:
            if self.rope_theta <= 0:
                raise ValueError(f"ModelConfig.rope_theta must be positive or None, got {self.rope_theta!r}")
            if self.d_head % 2 != 0:
                raise ValueError(f"RoPE needs an even head dimension, got d_model/num_heads = {self.d_head}")
        check_choice("ModelConfig.norm", self.norm, NORM_PLACEMENTS)
        check_choice("ModelConfig.ffn", self.ffn, FEED_FORWARD_KINDS)
        if self.logit_softcap is not None and not self.logit_softcap > 0:
            raise ValueError(f"ModelConfig.logit_softcap must be positive or None, got {self.logit_softcap!r}")

    @property
    def d_head(self) -> int:
        """Width of one attention head (d_k = d_v = d_model / num_heads)."""
        return self.d_model // self.num_heads

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A copy with some fields replaced (validated like a new config)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for checkpoints and logs."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; an unknown key is an error rather than silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> ModelConfig:
        """A named preset (see `PRESETS`), optionally with some fields changed."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return base.with_changes(**changes) if changes else base


def _gpt2(num_layers: int, d_model: int, num_heads: int) -> ModelConfig:
    """GPT-2 shapes as the handout's transformer_accounting uses them (d_ff = 4 · d_model)."""
    return ModelConfig(
        vocab_size=50_257,
        context_length=1_024,
        d_model=d_model,
        num_layers=num_layers,
        num_heads=num_heads,
        d_ff=4 * d_model,
        rope_theta=10_000.0,
    )


PRESETS: dict[str, ModelConfig] = {
    "tinystories-17m": ModelConfig(),
    "gpt2-small": _gpt2(12, 768, 12),
    "gpt2-medium": _gpt2(24, 1_024, 16),
    "gpt2-large": _gpt2(36, 1_280, 20),
    "gpt2-xl": _gpt2(48, 1_600, 25),
}
