"""Chapter 11's model switches: weight tying, QK-norm, logit soft-capping and the ReLU² FFN each do
what they say, the defaults build exactly the handout's model, and the accounting follows them."""

import math

import pytest
import torch

from lmbasics import AdamW, TransformerLM, count_parameters, forward_flops
from lmbasics.model.attention import MultiHeadSelfAttention
from lmbasics.model.config import ModelConfig
from lmbasics.model.layers import ReLUSquaredFFN
from lmbasics.training.checkpoint import load_checkpoint, save_checkpoint
from lmbasics.training.loss import cross_entropy

TINY = ModelConfig(vocab_size=50, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=48)


def _model(config: ModelConfig = TINY, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM.from_config(config)


def _ids(shape=(2, 12), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, TINY.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_defaults_are_off_and_old_config_dicts_still_load():
    old = {k: v for k, v in TINY.to_dict().items() if k not in {"tie_embeddings", "qk_norm", "logit_softcap"}}
    config = ModelConfig.from_dict(old)  # a config.json written before chapter 11
    assert config == TINY
    assert (config.tie_embeddings, config.qk_norm, config.logit_softcap, config.ffn) == (False, False, None, "swiglu")
    model = _model(config)
    assert model.lm_head.weight is not model.token_embeddings.weight
    assert all(layer.attn.q_norm is None for layer in model.layers)


def test_tied_model_shares_one_matrix_and_has_v_times_d_fewer_parameters():
    tied_config = TINY.with_changes(tie_embeddings=True)
    untied, tied = _model(), _model(tied_config)
    assert tied.lm_head.weight is tied.token_embeddings.weight
    assert _n_params(untied) - _n_params(tied) == TINY.vocab_size * TINY.d_model
    assert count_parameters(tied_config).total == _n_params(tied)
    assert count_parameters(tied_config).lm_head == 0
    # Same matmul work: the LM head still multiplies by the (shared) matrix.
    assert forward_flops(tied_config) == forward_flops(TINY)
    # Smaller init for the shared matrix: std about 1/sqrt(d), so the first logits are of order 1.
    assert tied.token_embeddings.weight.std().item() == pytest.approx(TINY.d_model**-0.5, rel=0.1)
    assert untied.token_embeddings.weight.std().item() == pytest.approx(1.0, rel=0.1)


def test_tied_gradient_is_the_sum_of_the_embedding_and_head_gradients():
    tied = _model(TINY.with_changes(tie_embeddings=True))
    ids, targets = _ids(), _ids(seed=1)
    cross_entropy(tied(ids), targets).backward()
    shared_grad = tied.token_embeddings.weight.grad.clone()
    # The same weights as two separate matrices: their gradients must add up to the shared one.
    untied = _model(TINY)
    state = tied.state_dict()
    untied.load_state_dict({k: v.clone() for k, v in state.items()})
    assert untied.lm_head.weight is not untied.token_embeddings.weight
    cross_entropy(untied(ids), targets).backward()
    torch.testing.assert_close(shared_grad, untied.token_embeddings.weight.grad + untied.lm_head.weight.grad)
    assert untied.lm_head.weight.grad.abs().sum() > 0 and untied.token_embeddings.weight.grad.abs().sum() > 0


def test_tied_model_survives_a_checkpoint_still_tied(tmp_path):
    model = _model(TINY.with_changes(tie_embeddings=True))
    save_checkpoint(model, AdamW(model.parameters()), 3, tmp_path / "c.pt")
    restored = TransformerLM.from_config(model.config)
    load_checkpoint(tmp_path / "c.pt", restored)
    assert restored.lm_head.weight is restored.token_embeddings.weight
    torch.testing.assert_close(restored(_ids()), model(_ids()))


def test_qk_norm_normalises_each_heads_queries_and_keys():
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(32, 4, 16, 10_000.0, qk_norm=True)
    assert attn.q_norm.weight.shape == (8,) and attn.k_norm.weight.shape == (8,)
    captured = []
    attn.rope.register_forward_pre_hook(lambda module, args: captured.append(args[0]))  # returns None
    x = 50 * torch.randn(2, 10, 32)  # large activations: without the norm, queries would be large too
    attn(x)
    assert len(captured) == 2
    for rotated_input in captured:  # q then k, shape (2, heads, 10, d_head), before RoPE
        rms = rotated_input.pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)


def test_qk_norm_changes_the_output_and_is_counted():
    config = TINY.with_changes(qk_norm=True)
    plain, normed = _model(), _model(config)
    assert _n_params(normed) - _n_params(plain) == TINY.num_layers * 2 * TINY.d_head
    assert count_parameters(config).total == _n_params(normed)
    # Same random weights except the extra gains: the outputs must still differ.
    assert not torch.allclose(plain(_ids()), normed(_ids()))


def test_logit_softcap_bounds_logits_and_is_tanh_of_the_raw_logits():
    raw = _model()
    capped = _model(TINY.with_changes(logit_softcap=2.0))
    capped.load_state_dict(raw.state_dict())
    raw_logits, capped_logits = raw(_ids()), capped(_ids())
    assert raw_logits.abs().max() > 2.0  # the cap has something to do
    assert capped_logits.abs().max() < 2.0
    torch.testing.assert_close(capped_logits, 2.0 * torch.tanh(raw_logits / 2.0))


def test_relu_squared_ffn_matches_its_formula_and_accounting():
    torch.manual_seed(0)
    ffn = ReLUSquaredFFN(8, 12)
    x = torch.randn(3, 8, dtype=torch.float32)
    expected = torch.relu(x @ ffn.w1.weight.T) ** 2 @ ffn.w2.weight.T
    torch.testing.assert_close(ffn(x), expected)
    config = TINY.with_changes(ffn="relu2", d_ff=72)  # 1.5 x 48: as many FFN parameters as SwiGLU's
    model = _model(config)
    assert isinstance(model.layers[0].ffn, ReLUSquaredFFN)
    assert count_parameters(config).total == _n_params(model) == _n_params(_model())
    assert forward_flops(config).ffn == forward_flops(TINY).ffn


def test_bad_switch_values_are_rejected():
    with pytest.raises(ValueError, match="logit_softcap"):
        TINY.with_changes(logit_softcap=0.0)
    with pytest.raises(ValueError, match="ffn"):
        TINY.with_changes(ffn="gelu")


def test_switches_leave_the_default_forward_bit_identical():
    # A model built with every switch spelled out at its default equals the plain one bit for bit.
    explicit = TINY.with_changes(tie_embeddings=False, qk_norm=False, logit_softcap=None, ffn="swiglu")
    assert torch.equal(_model(explicit)(_ids()), _model()(_ids()))
    with torch.no_grad():
        assert math.isclose(float(cross_entropy(_model()(_ids()), _ids(seed=1))), math.log(50), rel_tol=0.5)


def test_muon_flops_count_the_newton_schulz_matrix_multiplies():
    from torch.utils.flop_counter import FlopCounterMode

    from lmbasics.model.accounting import muon_flops
    from lmbasics.training.optim import newton_schulz

    for config in (TINY, TINY.with_changes(ffn="relu2", d_ff=72)):
        model = _model(config)
        hidden = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith(("token_", "lm_"))]
        with FlopCounterMode(display=False) as counter:
            for p in hidden:
                newton_schulz(p.detach())
        assert counter.get_total_flops() == muon_flops(config)
