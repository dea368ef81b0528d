"""Building blocks against torch built-ins: Linear, Embedding, RMSNorm, SiLU/SwiGLU, RoPE, softmax, attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmbasics import (
    Embedding,
    Linear,
    MultiHeadSelfAttention,
    RMSNorm,
    RotaryPositionalEmbedding,
    SiLUFFN,
    SwiGLU,
    scaled_dot_product_attention,
    silu,
    softmax,
)

# --- Linear and Embedding ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 3)])
def test_linear_matches_f_linear(batch_shape):
    torch.manual_seed(0)
    layer = Linear(7, 11)
    assert layer.weight.shape == (11, 7)  # stored (out, in), like nn.Linear
    x = torch.randn(*batch_shape, 7)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight))


def test_linear_init_is_truncated_normal_with_the_handouts_std():
    torch.manual_seed(0)
    d_in, d_out = 384, 640
    w = Linear(d_in, d_out).weight.detach()
    sigma = math.sqrt(2 / (d_in + d_out))
    assert w.abs().max() <= 3 * sigma
    # A normal truncated at ±3σ has std 0.9866σ; 245,760 draws pin it to well under 1 %.
    assert w.std().item() == pytest.approx(0.9866 * sigma, rel=0.01)
    assert abs(w.mean().item()) < 0.01 * sigma


def test_embedding_matches_f_embedding_and_init():
    torch.manual_seed(0)
    emb = Embedding(1000, 64)
    ids = torch.randint(0, 1000, (3, 9))
    torch.testing.assert_close(emb(ids), F.embedding(ids, emb.weight), rtol=0, atol=0)
    w = emb.weight.detach()
    assert w.shape == (1000, 64) and w.abs().max() <= 3.0
    assert w.std().item() == pytest.approx(0.9866, rel=0.02)


def test_embedding_rejects_bad_ids():
    emb = Embedding(10, 4)
    with pytest.raises(IndexError, match=r"token id 10 is outside the vocabulary \[0, 10\)"):
        emb(torch.tensor([1, 10]))
    with pytest.raises(IndexError, match="token id -1"):
        emb(torch.tensor([-1, 3]))
    with pytest.raises(TypeError, match="integer"):
        emb(torch.tensor([1.0, 2.0]))


def test_layers_accept_device_and_dtype_and_reject_bad_sizes():
    assert Linear(3, 4, device="meta", dtype=torch.bfloat16).weight.dtype == torch.bfloat16
    assert Embedding(3, 4, device="meta").weight.is_meta
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Linear(0, 4)


# --- RMSNorm ----------------------------------------------------------------------------------


def test_rmsnorm_matches_f_rms_norm():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    assert torch.equal(norm.weight, torch.ones(16))  # gains start at 1
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(norm(x), F.rms_norm(x, (16,), norm.weight, eps=1e-5))


def test_rmsnorm_computes_in_float32_and_returns_the_input_dtype():
    # In float16, 1000² = 1e6 overflows (max 65504); the float32 computation does not.
    x = torch.full((4, 8), 1000.0, dtype=torch.float16)
    x[:, ::2] = -1000.0
    out = RMSNorm(8, dtype=torch.float16)(x)
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.sign(x))


# --- feed-forward -----------------------------------------------------------------------------


def test_silu_matches_f_silu_and_is_finite_far_out():
    x = torch.linspace(-100, 100, 1001)
    torch.testing.assert_close(silu(x), F.silu(x))
    assert torch.isfinite(silu(torch.tensor([-1e4, 1e4]))).all()


def test_silu_gradient_matches_f_silu_and_gradcheck():
    x = torch.linspace(-30, 30, 301, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(301, dtype=torch.float64)
    (ours,) = torch.autograd.grad(silu(x), x, grad_out)
    (reference,) = torch.autograd.grad(F.silu(x), x, grad_out)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(silu, (torch.randn(5, 7, dtype=torch.float64, requires_grad=True),))


def test_swiglu_matches_its_formula_with_built_ins():
    torch.manual_seed(0)
    ffn = SwiGLU(d_model=12, d_ff=32)
    assert {k: tuple(v.shape) for k, v in ffn.state_dict().items()} == {
        "w1.weight": (32, 12),
        "w2.weight": (12, 32),
        "w3.weight": (32, 12),
    }
    x = torch.randn(3, 4, 12)
    expected = F.linear(F.silu(F.linear(x, ffn.w1.weight)) * F.linear(x, ffn.w3.weight), ffn.w2.weight)
    torch.testing.assert_close(ffn(x), expected)


def test_silu_ffn_has_no_gate():
    torch.manual_seed(0)
    ffn = SiLUFFN(d_model=12, d_ff=48)
    assert set(ffn.state_dict()) == {"w1.weight", "w2.weight"}
    x = torch.randn(3, 12)
    torch.testing.assert_close(ffn(x), F.linear(F.silu(F.linear(x, ffn.w1.weight)), ffn.w2.weight))


# --- RoPE -------------------------------------------------------------------------------------


def test_rope_matches_complex_multiplication(rope_complex):
    torch.manual_seed(0)
    rope = RotaryPositionalEmbedding(theta=10_000.0, d_k=16, max_seq_len=64)
    x = torch.randn(2, 3, 10, 16)
    positions = torch.randint(0, 64, (10,))
    torch.testing.assert_close(rope(x, positions), rope_complex(x, positions, 10_000.0))


def test_rope_with_batched_positions(rope_complex):
    torch.manual_seed(0)
    rope = RotaryPositionalEmbedding(theta=500.0, d_k=8, max_seq_len=32)
    x = torch.randn(4, 6, 8)
    positions = torch.randint(0, 32, (4, 6))  # one position sequence per batch element
    torch.testing.assert_close(rope(x, positions), rope_complex(x, positions, 500.0))


def test_rope_keeps_norms_and_makes_scores_depend_on_offsets_only():
    torch.manual_seed(0)
    rope = RotaryPositionalEmbedding(theta=10_000.0, d_k=32, max_seq_len=128)
    q, k = torch.randn(32), torch.randn(32)

    def score(m, n):
        return rope(q[None], torch.tensor([m])) @ rope(k[None], torch.tensor([n]))[0]

    torch.testing.assert_close(rope(q[None], torch.tensor([77])).norm(), q.norm())
    torch.testing.assert_close(score(3, 1), score(103, 101), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(score(3, 1), score(1, 3))  # the sign of the offset matters


def test_rope_has_no_state_dict_and_checks_its_input():
    rope = RotaryPositionalEmbedding(theta=10_000.0, d_k=8, max_seq_len=16)
    assert rope.state_dict() == {}  # cos/sin are non-persistent buffers
    assert {name for name, _ in rope.named_buffers()} == {"cos", "sin"}
    with pytest.raises(IndexError, match=r"positions must lie in \[0, 16\)"):
        rope(torch.randn(17, 8), torch.arange(17))
    with pytest.raises(ValueError, match="d_k=8"):
        rope(torch.randn(4, 6), torch.arange(4))
    with pytest.raises(ValueError, match="even"):
        RotaryPositionalEmbedding(theta=10_000.0, d_k=7, max_seq_len=16)


# --- softmax and attention --------------------------------------------------------------------


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_torch(dim):
    torch.manual_seed(0)
    x = torch.randn(4, 5, 6)
    torch.testing.assert_close(softmax(x, dim), torch.softmax(x, dim))


@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_gradient_matches_torch_and_gradcheck(dim):
    torch.manual_seed(0)
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(4, 6, dtype=torch.float64)
    (ours,) = torch.autograd.grad(softmax(x, dim), x, grad_out)
    (reference,) = torch.autograd.grad(torch.softmax(x, dim), x, grad_out)
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: softmax(t, dim), (x,))


def test_softmax_is_stable_for_huge_inputs():
    x = torch.tensor([[1e4, 1e4 + 1.0, -1e4], [0.0, 1.0, -float("inf")]])
    out = softmax(x, dim=-1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.softmax(x.double(), -1).float())
    torch.testing.assert_close(softmax(x[:1] + 1e6, -1), softmax(x[:1], -1))


@pytest.mark.parametrize("batch_shape", [(3,), (2, 3)])
def test_attention_matches_torch_with_a_mask(batch_shape):
    torch.manual_seed(0)
    q = torch.randn(*batch_shape, 5, 8)
    k = torch.randn(*batch_shape, 7, 8)
    v = torch.randn(*batch_shape, 7, 4)
    mask = torch.rand(5, 7) > 0.4
    mask[:, 0] = True  # every query may attend somewhere
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # also True = may attend
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask), expected)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v))


def test_masked_keys_get_exactly_zero_weight():
    torch.manual_seed(0)
    q, k = torch.randn(1, 4), torch.randn(3, 4)
    v = torch.eye(3)  # the output is then the attention weights themselves
    weights = scaled_dot_product_attention(q, k, v, torch.tensor([[True, True, False]]))
    assert weights[0, 2] == 0.0
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("theta", [None, 10_000.0])
def test_multihead_self_attention_matches_built_ins(theta, causal_attention):
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(d_model=32, num_heads=4, max_seq_len=16, theta=theta)
    assert set(mha.state_dict()) == {f"{p}_proj.weight" for p in ("q", "k", "v", "output")}
    x = torch.randn(2, 10, 32)
    weights = (mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight, mha.output_proj.weight)
    torch.testing.assert_close(mha(x), causal_attention(x, *weights, num_heads=4, theta=theta))
    # Explicit positions (e.g. a window that starts at position 5) are used as given.
    positions = torch.arange(5, 15)
    torch.testing.assert_close(
        mha(x, positions), causal_attention(x, *weights, num_heads=4, theta=theta, positions=positions)
    )


def test_multihead_self_attention_is_causal():
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(d_model=16, num_heads=2, max_seq_len=8, theta=10_000.0)
    x = torch.randn(1, 8, 16)
    changed = x.clone()
    changed[0, 5] += 1.0
    a, b = mha(x), mha(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_multihead_self_attention_errors():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(d_model=10, num_heads=3)
    with pytest.raises(ValueError, match="max_seq_len"):
        MultiHeadSelfAttention(d_model=8, num_heads=2, theta=10_000.0)
    mha = MultiHeadSelfAttention(d_model=8, num_heads=2, max_seq_len=4, theta=10_000.0)
    with pytest.raises(ValueError, match="exceeds max_seq_len=4"):
        mha(torch.randn(5, 8))


def test_multihead_self_attention_gradients_match_built_ins(causal_attention):
    """The backward pass too: softmax's hand-written backward, the mask and RoPE's pair swap."""
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(d_model=16, num_heads=2, max_seq_len=8, theta=10_000.0).double()
    weights = [mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight, mha.output_proj.weight]
    x = torch.randn(2, 8, 16, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 8, 16, dtype=torch.float64)
    ours = torch.autograd.grad((mha(x) * upstream).sum(), [x, *weights])
    reference = causal_attention(x, *weights, num_heads=2, theta=10_000.0)
    expected = torch.autograd.grad((reference * upstream).sum(), [x, *weights])
    # RoPE's cos/sin tables are stored in float32 (exact to ~1e-7) even in a float64 module, so the
    # gradients agree to that precision, not float64's; on torch 2.11 they differed by 1.8e-7.
    for got, want in zip(ours, expected):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
