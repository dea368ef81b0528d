"""What BPE training and the Tokenizer agree on (chapters 2 and 3): the byte tokens and packed pairs.

Every vocabulary starts from the 256 single bytes plus the special tokens, so that is the smallest
vocabulary size; training and encoding both store a pair of ids (a, b) as the int `a << PAIR_SHIFT | b`,
which hashes faster than a tuple.
"""

from __future__ import annotations

from collections.abc import Sequence

NUM_BYTES = 256
PAIR_SHIFT = 32  # a pair of ids (a, b) is the int a << PAIR_SHIFT | b
PAIR_LOW = (1 << PAIR_SHIFT) - 1  # mask of the pair's second id


def check_vocab_size(vocab_size: object, special_tokens: Sequence[str], name: str = "vocab_size") -> None:
    """`vocab_size` holds at least the 256 bytes and the (distinct) special tokens, else ValueError."""
    count = len(set(special_tokens))
    minimum = NUM_BYTES + count
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < minimum:
        raise ValueError(
            f"{name} must be at least {NUM_BYTES} + {count} special token(s) = {minimum}, got {vocab_size!r}"
        )
