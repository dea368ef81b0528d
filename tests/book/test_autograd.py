"""saved_for_backward: what autograd keeps, against functions whose saved tensors are known."""

import torch

from lmbasics import cross_entropy, minimal_cross_entropy, minimal_softmax, saved_for_backward, softmax


def test_counts_distinct_saved_tensors_relative_to_the_input():
    x = torch.randn(8, 16)
    assert saved_for_backward(lambda t: t + 1, x) == 0.0  # addition saves nothing
    assert saved_for_backward(lambda t: t.exp(), x) == 1.0  # exp saves its result
    assert saved_for_backward(lambda t: t * t.sigmoid(), x) == 2.0  # the input and sigmoid(t)
    assert saved_for_backward(lambda t: (t * t) * t, x) == 2.0  # the input once, t * t once


def test_custom_functions_save_less_than_autograd():
    x = torch.randn(32, 100)
    assert saved_for_backward(softmax, x, -1) == 1.0  # the probabilities only
    assert saved_for_backward(minimal_softmax, x, -1) > 2.0
    targets = torch.randint(0, 100, (32,))
    assert (
        saved_for_backward(cross_entropy, x, targets)
        < 1.1
        < 3.0
        < saved_for_backward(minimal_cross_entropy, x, targets)
    )
