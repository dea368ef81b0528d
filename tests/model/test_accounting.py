"""Accounting against reality: the instantiated model's parameters, FlopCounterMode, and identities
that tie the closed forms together (6·N·D, linear memory in the batch size)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lmbasics import (
    PRESETS,
    ModelConfig,
    TransformerLM,
    activation_count,
    adamw_memory,
    count_parameters,
    cross_entropy,
    forward_flops,
    max_batch_size,
    training_step_flops,
    training_time_seconds,
)

# Every switch of ModelConfig, each on its own (SiLU with d_ff = 4·d_model, as in swiglu_ablation).
ABLATIONS = {
    "handout": {},
    "post-norm": {"norm": "post"},
    "no-norm": {"norm": "none"},
    "nope": {"rope_theta": None},
    "silu": {"ffn": "silu", "d_ff": None},
}

SMALL = ModelConfig(vocab_size=97, context_length=24, d_model=32, num_layers=2, num_heads=4, d_ff=80)


def _config(base: ModelConfig, ablation: str) -> ModelConfig:
    changes = dict(ABLATIONS[ablation])
    if "d_ff" in changes:
        changes["d_ff"] = 4 * base.d_model
    return base.with_changes(**changes)


def _component(name: str) -> str:
    """Which ParameterCount field a state-dict key of TransformerLM belongs to."""
    if name.startswith(("token_embeddings.", "lm_head.")):
        return name.split(".")[0]
    if ".attn." in name:
        return "attention"
    if ".ffn." in name:
        return "ffn"
    assert ".ln" in f".{name}", name  # layers.i.ln1, layers.i.ln2, ln_final
    return "norms"


@pytest.mark.parametrize("ablation", ABLATIONS)
@pytest.mark.parametrize("preset", PRESETS)
def test_parameter_count_equals_the_instantiated_model(preset, ablation):
    config = _config(PRESETS[preset], ablation)
    model = TransformerLM.from_config(config, device="meta")
    actual = dict.fromkeys(count_parameters(config).as_dict(), 0)
    for name, p in model.named_parameters():
        actual[_component(name)] += p.numel()
    assert count_parameters(config).as_dict() == actual


def test_gpt2_xl_and_tinystories_totals():
    # Written out from the shapes: 2·V·d + L·(16·d² + 2·d) + d for SwiGLU with d_ff = 4·d.
    V, d, L = 50_257, 1_600, 48
    assert count_parameters(PRESETS["gpt2-xl"]).total == 2 * V * d + L * (16 * d * d + 2 * d) + d
    # The handout's TinyStories model has "about 17M non-embedding parameters".
    assert 17.0e6 < count_parameters(PRESETS["tinystories-17m"]).non_embedding < 18.0e6


def _measured_flops(model, token_ids, backward=False):
    with FlopCounterMode(display=False) as counter:
        logits = model(token_ids)
        if backward:
            cross_entropy(logits, token_ids).backward()
    return counter


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_forward_flops_equal_flop_counter_per_component(ablation):
    # Real tensors on the CPU, a batch of 3 and a context shorter than the config's.
    config = _config(SMALL, ablation)
    torch.manual_seed(0)
    model = TransformerLM.from_config(config)
    batch, seq = 3, 20
    counter = _measured_flops(model, torch.randint(0, config.vocab_size, (batch, seq)))
    by_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}

    def measured(suffix):  # summed over the layers' modules whose name ends with `suffix`
        in_layers = {name: v for name, v in by_module.items() if name.startswith("TransformerLM.layers.")}
        return sum(v for name, v in in_layers.items() if name.endswith(suffix))

    expected = forward_flops(config, context_length=seq, batch_size=batch)
    assert counter.get_total_flops() == expected.total
    assert measured(("q_proj", "k_proj", "v_proj")) == expected.qkv_projections
    assert measured("output_proj") == expected.output_projection
    # What the attention module does besides its four projections is QKᵀ and the weighted sum of V.
    assert measured(".attn") - measured(("_proj",)) == expected.attention_scores + expected.attention_values
    assert measured(".ffn") == expected.ffn
    assert by_module["TransformerLM.lm_head"] == expected.lm_head


@pytest.mark.parametrize("preset", ["gpt2-small", "gpt2-xl"])
def test_forward_flops_at_full_scale_on_the_meta_device(preset):
    # The meta device has shapes but no data, so FlopCounterMode can count a GPT-2 XL forward pass for free.
    config = PRESETS[preset]
    model = TransformerLM.from_config(config, device="meta")
    tokens = torch.zeros(2, config.context_length, dtype=torch.long, device="meta")
    assert _measured_flops(model, tokens).get_total_flops() == forward_flops(config, batch_size=2).total


def test_backward_costs_twice_the_forward():
    # Every matmul input needs a gradient here, so the backward pass does two matmuls per forward one.
    torch.manual_seed(0)
    model = TransformerLM.from_config(SMALL)
    counter = _measured_flops(model, torch.randint(0, SMALL.vocab_size, (2, 16)), backward=True)
    step = training_step_flops(SMALL, batch_size=2, context_length=16)
    assert counter.get_total_flops() == step.forward + step.backward == 3 * step.forward


@pytest.mark.parametrize("ablation", ABLATIONS)
@pytest.mark.parametrize("preset", PRESETS)
def test_forward_flops_are_two_per_matmul_weight_per_token_plus_attention(preset, ablation):
    # 2·N·D: each weight of a matrix (all parameters but the embedding lookup and the norm gains)
    # is used in one multiply-add per token; attention adds 4·L·T²·d per sequence.
    config = _config(PRESETS[preset], ablation)
    params = count_parameters(config)
    matmul_weights = params.total - params.token_embeddings - params.norms
    B, T = 3, 100
    expected = 2 * B * T * matmul_weights + 4 * B * config.num_layers * T * T * config.d_model
    assert forward_flops(config, context_length=T, batch_size=B).total == expected


def test_activations_follow_the_handout_formula():
    # Handout list, SiLU FFN with d_ff = 4·d, pre-norm: L·(16·B·T·d + 2·B·h·T²) + B·T·d + 2·B·T·V.
    config = PRESETS["gpt2-medium"].with_changes(ffn="silu")
    B, T, L, d, h, V = 3, 512, 24, 1024, 16, 50_257
    expected = L * (16 * B * T * d + 2 * B * h * T * T) + B * T * d + 2 * B * T * V
    assert activation_count(config, B, context_length=T).total == expected
    # SwiGLU also keeps W3's output and the gated product: 8·B·T·d more per layer.
    swiglu = activation_count(config.with_changes(ffn="swiglu"), B, context_length=T).total
    assert swiglu - expected == L * 8 * B * T * d
    # Without norms, the 2 per block and the final one disappear; post-norm only drops the final one.
    assert (
        expected - activation_count(config.with_changes(norm="none"), B, context_length=T).total
        == (2 * L + 1) * B * T * d
    )
    assert expected - activation_count(config.with_changes(norm="post"), B, context_length=T).total == B * T * d


def test_adamw_memory_is_16_bytes_per_parameter_plus_linear_activations():
    config = PRESETS["gpt2-small"]
    P = count_parameters(config).total
    one, four = adamw_memory(config, 1), adamw_memory(config, 4)
    assert one.parameters + one.gradients + one.optimizer_state == 16 * P == four.total - four.activations
    assert four.activations == 4 * one.activations == 4 * 4 * activation_count(config, 1).total
    assert adamw_memory(config, 1, bytes_per_value=2).total * 2 == one.total


@pytest.mark.parametrize("budget", [10**9, 80 * 10**9, 80 * 2**30])
def test_max_batch_size_is_the_largest_that_fits(budget):
    config = PRESETS["gpt2-large"]
    b = max_batch_size(config, budget)
    if b > 0:
        assert adamw_memory(config, b).total <= budget
    assert adamw_memory(config, b + 1).total > budget
    assert (b == 0) == (budget == 10**9)  # 1 GB cannot even hold GPT-2 large's 16 bytes/parameter


def test_training_time_is_steps_times_step_flops_over_achieved_flops():
    config = PRESETS["gpt2-small"]
    seconds = training_time_seconds(config, steps=1000, batch_size=8, peak_flops_per_second=1e14, mfu=0.5)
    assert seconds == pytest.approx(1000 * training_step_flops(config, 8).total / 5e13)
    step = training_step_flops(config, 8)
    # About 14 FLOPs per parameter against 6 per parameter and token: negligible for 8,192 tokens.
    assert step.optimizer == 14 * count_parameters(config).total < 1e-3 * step.total


def test_bad_arguments_are_named():
    config = PRESETS["gpt2-small"]
    with pytest.raises(ValueError, match="batch_size"):
        forward_flops(config, batch_size=0)
    with pytest.raises(ValueError, match="context_length"):
        activation_count(config, 1, context_length=-5)
    with pytest.raises(ValueError, match="mfu"):
        training_time_seconds(config, steps=1, batch_size=1, peak_flops_per_second=1e12, mfu=1.5)
    with pytest.raises(ValueError, match="peak_flops_per_second"):
        training_time_seconds(config, steps=1, batch_size=1, peak_flops_per_second=0, mfu=0.5)
