"""Text generation from a trained language model: temperature and top-p (nucleus) sampling (handout §6,
chapter 7).

`generate` feeds the model its own samples one token at a time, keeping at most the model's
context length of history. It works with any module that maps token ids of shape (batch, seq) to
logits of shape (batch, seq, vocab).

What it does not do: no key/value cache (each step recomputes the whole window, which is fine for
the book's small models) and no beam search.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor


def top_p_filter(probs: Float[Tensor, " vocab"], top_p: float) -> Float[Tensor, " vocab"]:
    """Keep the smallest set of most likely tokens whose total probability reaches `top_p`; renormalise.

    Ties at the boundary are broken by token order, so the result is deterministic.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_p == 1.0:
        return probs
    sorted_probs, order = torch.sort(probs, descending=True, stable=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    keep_sorted = mass_before < top_p  # a token is kept if the mass before it has not reached top_p
    kept = torch.zeros_like(probs).scatter(-1, order, torch.where(keep_sorted, sorted_probs, 0.0))
    return kept / kept.sum()


def next_token_distribution(
    logits: Float[Tensor, " vocab"], temperature: float = 1.0, top_p: float = 1.0
) -> Float[Tensor, " vocab"]:
    """softmax(logits / temperature), then nucleus filtering; temperature 0 puts all mass on the argmax."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if temperature == 0:
        greedy = torch.zeros_like(logits)
        greedy[logits.argmax()] = 1.0
        return greedy
    scaled = logits / temperature
    probs = torch.exp(scaled - scaled.max())
    return top_p_filter(probs / probs.sum(), top_p)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Sample up to `max_new_tokens` continuation ids for `prompt_ids`.

    Stops early after producing `eos_id` (which is then the last returned id). Pass a seeded
    `generator` (on the model's device) for reproducible samples.
    """
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: give at least one token (e.g. the end-of-text token)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    config = getattr(model, "config", None)
    context_length = config.context_length if config is not None else None
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids = list(prompt_ids)
    new: list[int] = []
    try:
        for _ in range(max_new_tokens):
            window = ids[-context_length:] if context_length else ids
            logits = model(torch.tensor([window], device=device))[0, -1]  # (vocab,)
            probs = next_token_distribution(logits, temperature, top_p)
            token = int(torch.multinomial(probs, 1, generator=generator))
            ids.append(token)
            new.append(token)
            if token == eos_id:
                break
    finally:
        model.train(was_training)
    return new
