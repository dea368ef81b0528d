"""The teaching versions of `lmbasics.model.minimal` against the library's modules (same weights, same
outputs and gradients) and against torch built-ins and the independent references of `references.py`."""

import pytest
import torch
import torch.nn.functional as F

from lmbasics import (
    Embedding,
    Linear,
    MinimalEmbedding,
    MinimalLinear,
    MinimalMultiHeadSelfAttention,
    MinimalRMSNorm,
    MinimalRoPE,
    MinimalSwiGLU,
    MinimalTransformerBlock,
    MinimalTransformerLM,
    ModelConfig,
    MultiHeadSelfAttention,
    RMSNorm,
    RotaryPositionalEmbedding,
    SwiGLU,
    TransformerBlock,
    TransformerLM,
    causal_mask,
    minimal_attention,
    minimal_attention_weights,
    minimal_silu,
    minimal_softmax,
    scaled_dot_product_attention,
    silu,
    softmax,
)
from lmbasics.model.attention import _Softmax
from lmbasics.model.layers import _SiLU

from references import BuiltinLM

CONFIG = ModelConfig(vocab_size=50, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=48)
SHAPE = {
    name: getattr(CONFIG, name)
    for name in ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff", "rope_theta")
}  # the minimal LM's arguments: no switches


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _same_weights(minimal: torch.nn.Module, library: torch.nn.Module) -> torch.nn.Module:
    """`minimal` holding `library`'s weights; strict loading proves the parameter names are the same."""
    minimal.load_state_dict(library.state_dict(), strict=True)
    return minimal


# --- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, -1])
def test_minimal_softmax_matches_the_library_exactly_and_torch(dim):
    x = 20 * _randn(4, 9)
    assert torch.equal(minimal_softmax(x, dim), softmax(x, dim))
    torch.testing.assert_close(minimal_softmax(x, dim), torch.softmax(x, dim))
    assert torch.isfinite(minimal_softmax(torch.tensor([1e4, 0.0, -1e4]), 0)).all()


def test_minimal_softmax_gradient_matches_the_custom_backward():
    x = _randn(3, 7, dtype=torch.float64).requires_grad_()
    upstream = _randn(3, 7, seed=1, dtype=torch.float64)
    (plain,) = torch.autograd.grad(minimal_softmax(x, -1), x, upstream)
    (custom,) = torch.autograd.grad(_Softmax.apply(x, -1), x, upstream)
    torch.testing.assert_close(plain, custom, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: _Softmax.apply(t, 1), (x,))


def test_minimal_silu_matches_the_library_and_torch_and_gradcheck():
    x = torch.linspace(-20, 20, 401, dtype=torch.float64, requires_grad=True)
    assert torch.equal(minimal_silu(x), silu(x))
    torch.testing.assert_close(minimal_silu(x), F.silu(x))
    upstream = _randn(401, dtype=torch.float64)
    (plain,) = torch.autograd.grad(minimal_silu(x), x, upstream)
    (custom,) = torch.autograd.grad(_SiLU.apply(x), x, upstream)
    torch.testing.assert_close(plain, custom, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(_SiLU.apply, (_randn(4, 5, dtype=torch.float64).requires_grad_(),))


def test_minimal_attention_matches_the_library_and_torch():
    q, k, v = _randn(3, 2, 4, 6, 8).unbind(0)  # (batch, heads, seq, d)
    mask = causal_mask(6)
    ours = minimal_attention(q, k, v, mask)
    torch.testing.assert_close(ours, scaled_dot_product_attention(q, k, v, mask))
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.testing.assert_close(minimal_attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    weights = minimal_attention_weights(q, k, mask)
    assert torch.equal(weights.triu(1), torch.zeros_like(weights))  # masked keys get exactly 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6))


# --- layers -----------------------------------------------------------------------------------


def test_minimal_linear_and_embedding_equal_the_library_and_torch():
    torch.manual_seed(0)
    linear, embedding = Linear(8, 5), Embedding(11, 8)
    plain_linear, plain_embedding = (
        _same_weights(MinimalLinear(8, 5), linear),
        _same_weights(MinimalEmbedding(11, 8), embedding),
    )
    ids = torch.randint(0, 11, (2, 3))
    x = plain_embedding(ids)
    assert torch.equal(x, embedding(ids)) and torch.equal(x, F.embedding(ids, embedding.weight))
    assert torch.equal(plain_linear(x), linear(x))
    torch.testing.assert_close(plain_linear(x), F.linear(x, linear.weight))


def test_minimal_inits_follow_the_handout():
    torch.manual_seed(0)
    w = MinimalLinear(512, 512).weight.detach()
    sigma = (2 / 1024) ** 0.5
    assert w.abs().max() <= 3 * sigma and abs(w.std().item() / sigma - 0.987) < 0.01
    e = MinimalEmbedding(1000, 64).weight.detach()
    assert e.abs().max() <= 3 and abs(e.std().item() - 0.987) < 0.01
    assert torch.equal(MinimalRMSNorm(7).weight.detach(), torch.ones(7))


def test_minimal_rmsnorm_matches_the_library_and_f_rms_norm():
    norm = RMSNorm(16)
    with torch.no_grad():
        norm.weight.copy_(1 + _randn(16, seed=2))
    plain = _same_weights(MinimalRMSNorm(16), norm)
    x = 3 * _randn(2, 5, 16)
    torch.testing.assert_close(plain(x), norm(x))
    torch.testing.assert_close(plain(x), F.rms_norm(x, (16,), norm.weight, eps=1e-5))


def test_minimal_rmsnorm_overflows_in_float16_where_the_library_does_not():
    x = (300 * _randn(3, 16)).half()
    assert (MinimalRMSNorm(16).half()(x) == 0).all()  # 300² > 65,504: the mean square is inf
    out = RMSNorm(16).half()(x)
    torch.testing.assert_close(out.float().pow(2).mean(-1).sqrt(), torch.ones(3), rtol=1e-2, atol=1e-2)


def test_minimal_swiglu_equals_the_library_and_its_formula():
    torch.manual_seed(0)
    ffn = SwiGLU(12, 32)
    plain = _same_weights(MinimalSwiGLU(12, 32), ffn)
    x = _randn(3, 4, 12)
    assert torch.equal(plain(x), ffn(x))
    expected = F.linear(F.silu(F.linear(x, ffn.w1.weight)) * F.linear(x, ffn.w3.weight), ffn.w2.weight)
    torch.testing.assert_close(plain(x), expected)


def test_minimal_rope_equals_the_library_and_complex_multiplication(rope_complex):
    positions = torch.tensor([[0, 3, 7, 15], [2, 2, 9, 1]])
    x = _randn(2, 4, 16)
    plain, library = MinimalRoPE(10_000.0, 16, 16), RotaryPositionalEmbedding(10_000.0, 16, 16)
    assert torch.equal(plain(x, positions), library(x, positions))
    torch.testing.assert_close(plain(x, positions), rope_complex(x, positions, 10_000.0))
    assert dict(plain.state_dict()) == {}


def test_minimal_rope_rotates_pairs_by_the_handouts_block_matrix():
    d, theta, i = 8, 100.0, 5
    x = _randn(d, dtype=torch.float64)
    rotation = torch.zeros(d, d, dtype=torch.float64)
    for k in range(d // 2):  # the handout's R^i_k, 0-indexed: pair (2k, 2k+1) turns by i · theta^(-2k/d)
        angle = torch.tensor(i * theta ** (-2 * k / d), dtype=torch.float64)
        rotation[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = torch.stack(
            [torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])]
        )
    torch.testing.assert_close(MinimalRoPE(theta, d, 8)(x.float(), torch.tensor(i)), (rotation @ x).float())


# --- attention, block, model --------------------------------------------------------------------


def test_minimal_multihead_attention_equals_the_library(causal_attention):
    torch.manual_seed(0)
    library = MultiHeadSelfAttention(32, 4, max_seq_len=16, theta=10_000.0)
    plain = _same_weights(MinimalMultiHeadSelfAttention(32, 4, 16, 10_000.0), library)
    x = _randn(2, 9, 32)
    torch.testing.assert_close(plain(x), library(x))
    weights = [library.q_proj.weight, library.k_proj.weight, library.v_proj.weight, library.output_proj.weight]
    torch.testing.assert_close(plain(x), causal_attention(x, *weights, num_heads=4, theta=10_000.0))


def test_minimal_block_and_lm_equal_the_library_in_outputs_and_gradients():
    torch.manual_seed(0)
    block = TransformerBlock(32, 4, 48, max_seq_len=16, theta=10_000.0)
    plain_block = _same_weights(MinimalTransformerBlock(32, 4, 48, 16, 10_000.0), block)
    x = _randn(2, 7, 32)
    torch.testing.assert_close(plain_block(x), block(x))

    lm = TransformerLM.from_config(CONFIG)
    plain = _same_weights(MinimalTransformerLM(**SHAPE), lm)
    ids = torch.randint(0, CONFIG.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, CONFIG.vocab_size, (2, 12), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(plain(ids), lm(ids))
    reference = BuiltinLM(CONFIG)
    reference.load_state_dict(lm.state_dict())
    torch.testing.assert_close(plain(ids), reference(ids))
    for model in (plain, lm):
        F.cross_entropy(model(ids).flatten(0, 1), targets.flatten()).backward()
    for (name, p), q in zip(plain.named_parameters(), lm.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_minimal_lm_is_causal():
    torch.manual_seed(0)
    model = MinimalTransformerLM(**SHAPE)
    ids = torch.randint(0, CONFIG.vocab_size, (1, 10))
    changed = ids.clone()
    changed[0, 6] = (changed[0, 6] + 1) % CONFIG.vocab_size
    diff = (model(changed) - model(ids)).abs().amax(-1)[0]
    assert (diff[:6] == 0).all() and (diff[6:] > 0).all()
