"""The unigram reference loss and the bits-per-byte conversion."""

import math

import numpy as np
import pytest

from lmbasics.book.baselines import bits_per_byte, unigram_cross_entropy


def test_unigram_cross_entropy_is_the_smoothed_frequencies_cross_entropy():
    train, heldout = np.array([0, 0, 0, 1]), np.array([1, 0, 2])  # targets 0 and 2
    # counts + 1 = [4, 2, 1] of 7: target 0 costs -ln(4/7), target 2 -ln(1/7)
    assert unigram_cross_entropy(train, heldout, 3) == pytest.approx((-math.log(4 / 7) - math.log(1 / 7)) / 2)


def test_a_uniform_training_text_gives_ln_v():
    assert unigram_cross_entropy(np.arange(8), np.arange(8)[::-1], 8) == pytest.approx(math.log(8))


def test_ids_beyond_the_vocabulary_are_refused():
    with pytest.raises(ValueError, match="beyond vocab_size 3"):
        unigram_cross_entropy(np.array([5]), np.array([0, 1]), 3)


def test_bits_per_byte():
    assert bits_per_byte(math.log(2) * 4, 4.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bytes_per_token must be positive"):
        bits_per_byte(1.0, 0)
