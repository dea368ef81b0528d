"""TransformerBlock and TransformerLM: against a torch built-in reference, causality, state-dict
keys, the GPT-2 XL parameter count on the meta device, and every ablation switch."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lmbasics import RMSNorm, SiLUFFN, TransformerBlock, TransformerLM
from lmbasics.model.config import ModelConfig

from references import BuiltinLM

TINY = ModelConfig(vocab_size=50, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=48)


def _model(config: ModelConfig = TINY, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM.from_config(config)


def _ids(shape=(2, 12), seed: int = 0, vocab: int = TINY.vocab_size) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def _reference_lm(state: dict, config: ModelConfig) -> BuiltinLM:
    """The pre-norm model from torch built-ins (`references.BuiltinLM`) holding the weights in `state`."""
    reference = BuiltinLM(config)
    if next(iter(state.values())).dtype == torch.float64:
        reference.double()  # floating-point weights only: RoPE's complex table stays complex64
    reference.load_state_dict(state)
    return reference


def test_lm_matches_torch_builtin_reference():
    model = _model()
    ids = _ids()
    logits = model(ids)
    assert logits.shape == (2, 12, TINY.vocab_size)
    torch.testing.assert_close(logits, _reference_lm(model.state_dict(), TINY)(ids))


def test_lm_gradients_match_torch_builtin_reference():
    model = _model().double()
    ids = _ids()
    upstream = torch.randn(2, 12, TINY.vocab_size, dtype=torch.float64)
    names, params = zip(*model.named_parameters())
    ours = torch.autograd.grad((model(ids) * upstream).sum(), params)
    reference = _reference_lm(model.state_dict(), TINY)
    expected_params = dict(reference.named_parameters())
    expected = torch.autograd.grad((reference(ids) * upstream).sum(), [expected_params[n] for n in names])
    for name, got, want in zip(names, ours, expected):
        # RoPE's tables are stored in float32, so float64 agreement stops near 1e-7.
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


def test_state_dict_keys_are_the_handouts():
    per_layer = [
        "attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight", "attn.output_proj.weight",
        "ln1.weight", "ln2.weight", "ffn.w1.weight", "ffn.w2.weight", "ffn.w3.weight",
    ]  # fmt: skip
    expected = {"token_embeddings.weight", "ln_final.weight", "lm_head.weight"}
    expected |= {f"layers.{i}.{name}" for i in range(TINY.num_layers) for name in per_layer}
    assert set(_model().state_dict()) == expected


def test_block_matches_handout_equations():
    torch.manual_seed(0)
    block = TransformerBlock(d_model=32, num_heads=4, d_ff=48, max_seq_len=16, theta=10_000.0)
    x = torch.randn(2, 8, 32)
    z = x + block.attn(block.ln1(x))  # y = x + MHA(RMSNorm(x)), then the same with the FFN
    torch.testing.assert_close(block(x), z + block.ffn(block.ln2(z)))


def test_future_tokens_never_change_earlier_logits():
    model = _model()
    ids = _ids((1, 16))
    changed = ids.clone()
    changed[0, 9:] = (ids[0, 9:] + 1) % TINY.vocab_size
    before, after = model(ids), model(changed)
    torch.testing.assert_close(after[:, :9], before[:, :9])
    assert not torch.allclose(after[:, 9:], before[:, 9:])


def test_batch_dimensions_are_independent():
    model = _model()
    ids = _ids((3, 10))
    batched = model(ids)
    for row in range(3):
        torch.testing.assert_close(batched[row], model(ids[row]), rtol=1e-5, atol=1e-5)


def test_gpt2_xl_parameter_count_on_the_meta_device():
    config = ModelConfig.preset("gpt2-xl")
    model = TransformerLM.from_config(config, device="meta")
    assert all(p.is_meta for p in model.parameters())
    V, d, L, d_ff = config.vocab_size, config.d_model, config.num_layers, config.d_ff
    # embedding + LM head; per layer: 4 attention projections, 3 SwiGLU matrices, 2 RMSNorm gains; final norm
    expected = 2 * V * d + L * (4 * d * d + 3 * d * d_ff + 2 * d) + d
    assert sum(p.numel() for p in model.parameters()) == expected
    assert expected == 2_127_057_600  # the GPT-2 XL shape with a SwiGLU FFN at d_ff = 4·d_model


def test_from_config_keeps_the_config_and_validates_arguments():
    model = _model(TINY.with_changes(norm="post"))
    assert model.config == TINY.with_changes(norm="post")
    assert TransformerLM.from_config(model.config).config.to_dict() == model.config.to_dict()
    with pytest.raises(ValueError, match="divisible"):
        TransformerLM(100, 16, d_model=30, num_layers=1, num_heads=4, d_ff=64, rope_theta=10_000.0)
    with pytest.raises(ValueError, match="context_length=16"):
        _model()(_ids((1, 17)))


def test_forward_flops_are_the_matmuls():
    """FlopCounterMode sees exactly the matrix multiplies: 2·tokens·(weights of every Linear) plus
    QKᵀ and attention·V, 2·batch·seq²·d_model each per layer."""
    model = _model()
    batch, seq = 2, 12
    with FlopCounterMode(display=False) as counter:
        model(_ids((batch, seq)))
    c = TINY
    linear_weights = c.num_layers * (4 * c.d_model**2 + 3 * c.d_model * c.d_ff) + c.d_model * c.vocab_size
    attention = c.num_layers * 2 * (2 * batch * seq * seq * c.d_model)
    assert counter.get_total_flops() == 2 * batch * seq * linear_weights + attention


def test_runs_in_bfloat16():
    model = TransformerLM.from_config(TINY, dtype=torch.bfloat16)
    logits = model(_ids())
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()


# --- ablation switches -------------------------------------------------------------------------


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(-1).sqrt()


def test_post_norm_normalises_each_sublayer_output_and_drops_the_final_norm():
    model = _model(TINY.with_changes(norm="post"))
    assert model.ln_final is None and "ln_final.weight" not in model.state_dict()
    block = model.layers[0]
    x = 5 * torch.randn(2, 8, TINY.d_model)
    z = block.ln1(x + block.attn(x))  # z = RMSNorm(x + MHA(x)), y = RMSNorm(z + FFN(z))
    y = block(x)
    torch.testing.assert_close(y, block.ln2(z + block.ffn(z)))
    torch.testing.assert_close(_rms(y), torch.ones(2, 8), rtol=1e-3, atol=1e-3)  # gains start at 1
    assert not torch.allclose(_rms(_model().layers[0](x)), torch.ones(2, 8), atol=0.1)  # pre-norm: not


def test_no_norm_removes_every_rmsnorm():
    model = _model(TINY.with_changes(norm="none"))
    assert not any(isinstance(m, RMSNorm) for m in model.modules())
    assert not any("ln" in key for key in model.state_dict())
    block = model.layers[0]
    x = torch.randn(2, 8, TINY.d_model)
    z = x + block.attn(x)
    torch.testing.assert_close(block(x), z + block.ffn(z))


def test_nope_ignores_the_order_of_earlier_tokens_and_rope_does_not():
    """Without position information, a one-layer model's last position sees its prefix as a bag
    of tokens (with more layers, earlier positions differ because their own prefixes differ)."""
    ids = _ids((1, 10))
    shuffled = torch.cat([ids[:, :9].flip(-1), ids[:, 9:]], dim=-1)
    one_layer = TINY.with_changes(num_layers=1)
    nope = _model(one_layer.with_changes(rope_theta=None))
    assert nope.layers[0].attn.rope is None
    torch.testing.assert_close(nope(shuffled)[:, -1], nope(ids)[:, -1], rtol=1e-4, atol=1e-5)
    rope = _model(one_layer)
    assert not torch.allclose(rope(shuffled)[:, -1], rope(ids)[:, -1], rtol=1e-4, atol=1e-5)


def test_silu_ffn_switch():
    config = TINY.with_changes(ffn="silu", d_ff=4 * TINY.d_model)
    model = _model(config)
    assert all(isinstance(layer.ffn, SiLUFFN) for layer in model.layers)
    assert not any(".w3." in key for key in model.state_dict())
    ffn = model.layers[0].ffn
    x = torch.randn(3, TINY.d_model)
    torch.testing.assert_close(ffn(x), F.linear(F.silu(F.linear(x, ffn.w1.weight)), ffn.w2.weight))
    assert model(_ids()).shape == (2, 12, TINY.vocab_size)
