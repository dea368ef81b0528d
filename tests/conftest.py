"""Shared fixtures: the independent references of `references.py` for RoPE and attention."""

import pytest

from references import causal_attention as _causal_attention
from references import rope_complex as _rope_complex


@pytest.fixture
def rope_complex():
    return _rope_complex


@pytest.fixture
def causal_attention():
    return _causal_attention
