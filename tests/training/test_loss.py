"""cross_entropy against torch's F.cross_entropy: values, gradients, stability, errors."""

import pytest
import torch
import torch.nn.functional as F

from lmbasics import cross_entropy


@pytest.mark.parametrize("batch_shape", [(), (7,), (2, 3), (2, 3, 4)])
def test_matches_torch_for_any_number_of_batch_dims(batch_shape):
    g = torch.Generator().manual_seed(0)
    vocab = 11
    logits = 3 * torch.randn(*batch_shape, vocab, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, batch_shape, generator=g)
    expected = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    torch.testing.assert_close(cross_entropy(logits, targets), expected, rtol=1e-12, atol=1e-12)


def test_gradient_matches_torch():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 5, 13, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (4, 5), generator=g)
    (grad,) = torch.autograd.grad(cross_entropy(logits, targets), logits)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1)), logits)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


def test_gradcheck_and_bfloat16_gradient_dtype():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 4, 9, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 9, (3, 4), generator=g)
    assert torch.autograd.gradcheck(lambda o: cross_entropy(o, targets), (logits,))
    low = logits.detach().to(torch.bfloat16).requires_grad_()
    (grad,) = torch.autograd.grad(cross_entropy(low, targets), low)
    assert grad.dtype == torch.bfloat16
    (expected,) = torch.autograd.grad(F.cross_entropy(logits.reshape(-1, 9), targets.reshape(-1)), logits)
    torch.testing.assert_close(grad.double(), expected, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("scale", [1e4, 1e8, 1e30])
def test_huge_logits_stay_finite_and_exact(scale):
    g = torch.Generator().manual_seed(2)
    logits = scale * torch.randn(6, 50, generator=g)
    targets = torch.randint(0, 50, (6,), generator=g)
    loss = cross_entropy(logits, targets)
    assert torch.isfinite(loss)
    # A naive softmax overflows here (exp(1e4) = inf in float32), but torch's fused kernel does not.
    assert torch.isinf(torch.exp(logits).sum(-1)).any()
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets), rtol=1e-6, atol=0.0)


def test_shifting_all_logits_changes_nothing():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(8, 20, generator=g)
    targets = torch.randint(0, 20, (8,), generator=g)
    torch.testing.assert_close(cross_entropy(logits + 1e4, targets), cross_entropy(logits, targets), atol=2e-3, rtol=0)


def test_bfloat16_logits_are_computed_in_float32():
    g = torch.Generator().manual_seed(4)
    logits = (4 * torch.randn(16, 1000, generator=g)).to(torch.bfloat16)
    targets = torch.randint(0, 1000, (16,), generator=g)
    loss = cross_entropy(logits, targets)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, F.cross_entropy(logits.float(), targets), rtol=1e-6, atol=1e-6)


def test_bad_inputs_are_named():
    logits = torch.randn(2, 3, 5)
    with pytest.raises(ValueError, match="targets shape"):
        cross_entropy(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids"):
        cross_entropy(logits, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="vocabulary dimension"):
        cross_entropy(torch.tensor(1.0), torch.tensor(0))
