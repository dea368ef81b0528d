"""Sampling: temperature, nucleus filtering, stopping, context window and reproducibility."""

from types import SimpleNamespace

import pytest
import torch

from lmbasics.training.generate import generate, next_token_distribution, top_p_filter


class Bigram(torch.nn.Module):
    """Stand-in language model: the logits for the next token depend only on the current one."""

    def __init__(self, table: torch.Tensor, context_length: int = 8):
        super().__init__()
        self.table = torch.nn.Parameter(table)
        self.config = SimpleNamespace(context_length=context_length)
        self.seen_lengths: list[int] = []

    def forward(self, ids):
        self.seen_lengths.append(ids.shape[-1])
        return self.table[ids]


def test_top_p_keeps_the_smallest_head_reaching_the_mass():
    probs = torch.tensor([0.1, 0.5, 0.3, 0.1])
    assert torch.allclose(top_p_filter(probs, 0.5), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(top_p_filter(probs, 0.6), torch.tensor([0.0, 0.625, 0.375, 0.0]))
    assert torch.equal(top_p_filter(probs, 1.0), probs)
    with pytest.raises(ValueError, match="top_p must be in"):
        top_p_filter(probs, 0.0)


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    base = next_token_distribution(logits, 1.0)
    assert torch.allclose(base, torch.softmax(logits, -1))
    assert next_token_distribution(logits, 0.5)[0] > base[0] > next_token_distribution(logits, 2.0)[0]
    assert torch.equal(next_token_distribution(logits, 0.0), torch.tensor([1.0, 0.0, 0.0]))
    huge = next_token_distribution(torch.tensor([1e4, 0.0]), 1.0)
    assert torch.isfinite(huge).all() and huge[0] == 1.0


def test_greedy_generation_follows_the_chain_and_stops_at_eos():
    # 0 -> 1 -> 2 -> 3 (eos) deterministically.
    table = torch.full((4, 4), -1e9)
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 0)]:
        table[a, b] = 0.0
    model = Bigram(table)
    assert generate(model, [0], max_new_tokens=10, temperature=0.0, eos_id=3) == [1, 2, 3]
    assert generate(model, [0], max_new_tokens=2, temperature=0.0) == [1, 2]


def test_history_is_cut_to_the_context_length():
    model = Bigram(torch.zeros(5, 5), context_length=4)
    generate(model, [0, 1, 2], max_new_tokens=5, generator=torch.Generator().manual_seed(0))
    assert model.seen_lengths == [3, 4, 4, 4, 4]


def test_seeded_samples_repeat_and_model_mode_is_restored():
    model = Bigram(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))
    a = generate(model, [0], 20, generator=torch.Generator().manual_seed(7))
    b = generate(model, [0], 20, generator=torch.Generator().manual_seed(7))
    assert a == b and len(a) == 20
    assert model.training


def test_bad_arguments():
    model = Bigram(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="prompt_ids is empty"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate(model, [0], 3, temperature=-1.0)
