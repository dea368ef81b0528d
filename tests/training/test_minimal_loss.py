"""`minimal_cross_entropy` (the two-line version autograd differentiates) against the library's
`cross_entropy` with its hand-written backward, and against torch's F.cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

from lmbasics import cross_entropy, minimal_cross_entropy
from lmbasics.training.loss import _MeanCrossEntropy


@pytest.mark.parametrize("batch_shape", [(7,), (2, 3)])
def test_minimal_cross_entropy_matches_the_library_and_torch(batch_shape):
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(*batch_shape, 13, generator=g, dtype=torch.float64)
    targets = torch.randint(0, 13, batch_shape, generator=g)
    plain = minimal_cross_entropy(logits, targets)
    torch.testing.assert_close(plain, cross_entropy(logits, targets), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        plain, F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1)), rtol=1e-12, atol=1e-12
    )


def test_minimal_cross_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([[1e4, 0.0, -1e4], [0.0, 5e3, 1e4]])
    targets = torch.tensor([1, 1])
    torch.testing.assert_close(minimal_cross_entropy(logits, targets), torch.tensor(7500.0))


def test_minimal_gradient_equals_the_custom_backward_and_gradcheck():
    g = torch.Generator().manual_seed(1)
    logits = (3 * torch.randn(6, 10, generator=g, dtype=torch.float64)).requires_grad_()
    targets = torch.randint(0, 10, (6,), generator=g)
    (plain,) = torch.autograd.grad(minimal_cross_entropy(logits, targets), logits)
    (custom,) = torch.autograd.grad(_MeanCrossEntropy.apply(logits, targets), logits)
    torch.testing.assert_close(plain, custom, rtol=1e-12, atol=1e-12)
    textbook = (torch.softmax(logits, -1) - F.one_hot(targets, 10)) / 6
    torch.testing.assert_close(custom, textbook, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda o: _MeanCrossEntropy.apply(o, targets), (logits,))
