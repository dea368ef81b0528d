"""The examples in the library's docstrings run and print what they say (doctest)."""

import doctest
import importlib
import pkgutil

import pytest

import lmbasics

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(lmbasics.__path__, prefix="lmbasics.")
    if not info.name.endswith("__main__")  # `python -m` entry points run when imported
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run: python -m doctest -v)"
