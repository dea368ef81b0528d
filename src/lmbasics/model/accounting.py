"""Resource accounting for `TransformerLM`: parameters, FLOPs, AdamW memory and training time
(chapters 5 and 6).

Closed-form counts from a `ModelConfig` (handout problems transformer_accounting and
adamwAccounting), cheap enough to evaluate for models that would never fit on this machine. Every
count follows the architecture the config describes, including its switches: SwiGLU (w1, w2, w3)
or SiLU (w1, w2) feed-forward, RMSNorm pre/post/none (post-norm has no final norm, as in
`lmbasics.model.lm`), and RoPE or NoPE (RoPE has no parameters and no matrix multiplies, so the
switch changes no count here). Chapter 11's switches: ReLU² has two FFN matrices like SiLU; a tied
LM head adds no parameters (`lm_head` counts 0, its matrix multiply still counts as FLOPs); QK-norm
adds two gains of d_head per layer (counted with the norms); soft-capping adds no matrix multiply.

- Parameters: all trainable tensors; "non-embedding" leaves out the token embedding only (the LM
  head is untied, so it counts), which is how the handout's TinyStories model has "about 17M".
- FLOPs: matrix multiplies only, at 2·m·n·p for an (m×n)·(n×p) product, causal attention computed
  in full (the masked half of QKᵀ is still computed). Elementwise work (RMSNorm, RoPE, SiLU,
  softmax, residual adds) is left out, as `torch.utils.flop_counter.FlopCounterMode` also does.
- Training: AdamW keeps two moments per parameter; the backward pass costs twice the forward
  (Kaplan et al., 2020; Hoffmann et al., 2022); activations are counted over the handout's list of
  components (see `activation_count`).

Results are frozen dataclasses of plain ints with a `total`; `as_dict()` feeds a pandas table.
What it does not do: mixed precision, activation checkpointing, fused kernels or parallelism.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from lmbasics.checks import check_positive
from lmbasics.model.config import ModelConfig

GB = 10**9  # the unit of GPU memory on datasheets ("80 GB")
GiB = 2**30  # what most tools print as "GB"; 80 GB = 74.5 GiB

ADAMW_FLOPS_PER_PARAMETER = 14
"""FLOPs of one AdamW update per parameter, counted on Algorithm 1: m (3), v (4), the
normalised step (sqrt, +ε, divide, ×α_t, subtract: 5) and the weight decay (×αλ, subtract: 2)."""


class _Breakdown:
    """A named breakdown of a total: `as_dict()` (component → value) and `total`."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


@dataclass(frozen=True)
class ParameterCount(_Breakdown):
    """Trainable parameters by component, summed over all layers."""

    token_embeddings: int  # vocab_size · d_model
    attention: int  # W_Q, W_K, W_V, W_O: 4 · d_model² per layer
    ffn: int  # 3 (SwiGLU) or 2 (SiLU) matrices of d_model · d_ff per layer
    norms: int  # RMSNorm gains: d_model each, 2 per block (+1 final for pre-norm), + 2·d_head per block with QK-norm
    lm_head: int  # vocab_size · d_model, or 0 when tied to the embedding

    @property
    def non_embedding(self) -> int:
        return self.total - self.token_embeddings


@dataclass(frozen=True)
class ForwardFlops(_Breakdown):
    """Matrix-multiply FLOPs of one forward pass by component, summed over all layers."""

    qkv_projections: int  # x·W_Qᵀ, x·W_Kᵀ, x·W_Vᵀ: 3 · 2·B·T·d² per layer
    attention_scores: int  # Q·Kᵀ for every head: 2·B·T²·d per layer
    attention_values: int  # softmax(…)·V for every head: 2·B·T²·d per layer
    output_projection: int  # heads·W_Oᵀ: 2·B·T·d² per layer
    ffn: int  # 3 (SwiGLU) or 2 (SiLU) products of 2·B·T·d·d_ff per layer
    lm_head: int  # 2·B·T·d·V


@dataclass(frozen=True)
class ActivationCount(_Breakdown):
    """Values saved for the backward pass, per the handout's list in adamwAccounting (a)."""

    norms: int  # output of each RMSNorm: B·T·d each
    qkv_projections: int  # Q, K, V: 3·B·T·d per layer
    attention_scores: int  # QᵀK: B·h·T² per layer
    softmax: int  # attention weights: B·h·T² per layer
    attention_values: int  # weighted sum of values: B·T·d per layer
    output_projection: int  # B·T·d per layer
    ffn: int  # SiLU: W1, SiLU (B·T·d_ff each), W2 (B·T·d); SwiGLU adds W3 and the gate product
    lm_head: int  # logits ("output embedding"): B·T·V
    cross_entropy: int  # softmax of the logits: B·T·V


@dataclass(frozen=True)
class TrainingMemory(_Breakdown):
    """Bytes held at the peak of an AdamW training step."""

    parameters: int
    gradients: int  # one per parameter
    optimizer_state: int  # AdamW's m and v: two per parameter
    activations: int


@dataclass(frozen=True)
class TrainingStepFlops(_Breakdown):
    """FLOPs of one training step: forward, backward (2× forward) and the AdamW update."""

    forward: int
    backward: int
    optimizer: int


def _context(config: ModelConfig, context_length: int | None) -> int:
    """The sequence length to account for: `context_length` if given, else the config's."""
    length = config.context_length if context_length is None else context_length
    check_positive(context_length=length)
    return length


def _ffn_matrices(config: ModelConfig) -> int:
    return 3 if config.ffn == "swiglu" else 2  # SiLU and ReLU²: w1, w2


def _rmsnorms(config: ModelConfig) -> int:
    """RMSNorms in the model: 2 per block and a final one (pre-norm), 2 per block (post), none."""
    if config.norm == "none":
        return 0
    return 2 * config.num_layers + (1 if config.norm == "pre" else 0)


def count_parameters(config: ModelConfig) -> ParameterCount:
    """Trainable parameters of `TransformerLM.from_config(config)` (RoPE's cos/sin are buffers)."""
    d, layers = config.d_model, config.num_layers
    return ParameterCount(
        token_embeddings=config.vocab_size * d,
        attention=layers * 4 * d * d,
        ffn=layers * _ffn_matrices(config) * d * config.d_ff,
        norms=_rmsnorms(config) * d + (layers * 2 * config.d_head if config.qk_norm else 0),
        lm_head=0 if config.tie_embeddings else config.vocab_size * d,
    )


def forward_flops(config: ModelConfig, *, context_length: int | None = None, batch_size: int = 1) -> ForwardFlops:
    """Matrix-multiply FLOPs of a forward pass over `batch_size` sequences of `context_length`
    tokens (default: the config's context length)."""
    check_positive(batch_size=batch_size)
    seq = _context(config, context_length)
    tokens = batch_size * seq
    d, layers = config.d_model, config.num_layers
    return ForwardFlops(
        qkv_projections=layers * 3 * 2 * tokens * d * d,
        attention_scores=layers * 2 * tokens * seq * d,  # h heads × 2·T·T·d_head
        attention_values=layers * 2 * tokens * seq * d,
        output_projection=layers * 2 * tokens * d * d,
        ffn=layers * _ffn_matrices(config) * 2 * tokens * d * config.d_ff,
        lm_head=2 * tokens * d * config.vocab_size,
    )


def activation_count(config: ModelConfig, batch_size: int, *, context_length: int | None = None) -> ActivationCount:
    """Activation values (not bytes) of a forward pass, over the handout's components.

    The handout lists, per block: the RMSNorms; QKV projections, QᵀK, softmax, weighted sum of
    values, output projection; W1, SiLU, W2. Then the final RMSNorm, the output embedding (logits)
    and the cross-entropy on the logits. That FFN list is the SiLU one; for SwiGLU we also count
    its extra W3 product and the elementwise gate (two more B·T·d_ff per layer).
    """
    check_positive(batch_size=batch_size)
    seq = _context(config, context_length)
    tokens = batch_size * seq
    d, layers, heads = config.d_model, config.num_layers, config.num_heads
    ffn_hidden = 4 if config.ffn == "swiglu" else 2  # W1, SiLU or ReLU² (+ W3, gate for SwiGLU)
    return ActivationCount(
        norms=(_rmsnorms(config) + (2 * layers if config.qk_norm else 0)) * tokens * d,
        qkv_projections=layers * 3 * tokens * d,
        attention_scores=layers * batch_size * heads * seq * seq,
        softmax=layers * batch_size * heads * seq * seq,
        attention_values=layers * tokens * d,
        output_projection=layers * tokens * d,
        ffn=layers * tokens * (ffn_hidden * config.d_ff + d),
        lm_head=tokens * config.vocab_size,
        cross_entropy=tokens * config.vocab_size,
    )


def adamw_memory(
    config: ModelConfig, batch_size: int, *, context_length: int | None = None, bytes_per_value: int = 4
) -> TrainingMemory:
    """Peak bytes of an AdamW step with every tensor in one dtype (float32: 4 bytes per value)."""
    check_positive(bytes_per_value=bytes_per_value)
    params = count_parameters(config).total
    return TrainingMemory(
        parameters=params * bytes_per_value,
        gradients=params * bytes_per_value,
        optimizer_state=2 * params * bytes_per_value,
        activations=activation_count(config, batch_size, context_length=context_length).total * bytes_per_value,
    )


def max_batch_size(
    config: ModelConfig, memory_bytes: int, *, context_length: int | None = None, bytes_per_value: int = 4
) -> int:
    """The largest batch whose AdamW step fits in `memory_bytes` (0 if not even one sequence fits).

    Memory is a·batch_size + b: b (parameters, gradients, optimizer state) does not depend on the
    batch and every activation is proportional to it.
    """
    check_positive(memory_bytes=memory_bytes)
    fixed = adamw_memory(config, 1, context_length=context_length, bytes_per_value=bytes_per_value)
    per_sequence = fixed.activations
    free = memory_bytes - (fixed.total - per_sequence)
    return max(int(free // per_sequence), 0)


def training_step_flops(
    config: ModelConfig, batch_size: int, *, context_length: int | None = None
) -> TrainingStepFlops:
    """FLOPs of one AdamW training step, with backward = 2 × forward."""
    forward = forward_flops(config, context_length=context_length, batch_size=batch_size).total
    return TrainingStepFlops(
        forward=forward,
        backward=2 * forward,
        optimizer=ADAMW_FLOPS_PER_PARAMETER * count_parameters(config).total,
    )


def muon_flops(config: ModelConfig, ns_steps: int = 5) -> int:
    """Matrix-multiply FLOPs of one Muon update (chapter 11): `ns_steps` Newton–Schulz iterations on
    every hidden matrix (W_Q, W_K, W_V, W_O and the FFN's), which `training_step_flops` leaves out.

    Each iteration on an m x n matrix taken wide (m <= n) costs X·Xᵀ (2m²n), (X·Xᵀ)² (2m³) and the
    product with X (2m²n): the optimizer's cost grows with d³ per matrix where AdamW's is linear."""
    check_positive(ns_steps=ns_steps)
    d = config.d_model
    shapes = [(d, d)] * 4 + [(d, config.d_ff)] * _ffn_matrices(config)
    per_layer = sum(ns_steps * (4 * min(s) ** 2 * max(s) + 2 * min(s) ** 3) for s in shapes)
    return config.num_layers * per_layer


def training_time_seconds(
    config: ModelConfig,
    *,
    steps: int,
    batch_size: int,
    peak_flops_per_second: float,
    mfu: float,
    context_length: int | None = None,
) -> float:
    """Wall-clock seconds for `steps` AdamW steps on hardware delivering `mfu` × its peak FLOP/s."""
    check_positive(steps=steps)
    if not peak_flops_per_second > 0:
        raise ValueError(f"peak_flops_per_second must be > 0, got {peak_flops_per_second!r}")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu (model FLOPs utilization) must be in (0, 1], got {mfu!r}")
    step = training_step_flops(config, batch_size, context_length=context_length).total
    return steps * step / (mfu * peak_flops_per_second)
