"""show_source: the library's code, numbered as in its file, as text and as highlighted HTML."""

import inspect

import pytest

from lmbasics import AdamW, RMSNorm, show_source
from lmbasics.model import layers


def test_text_form_numbers_the_lines_as_the_file_does():
    view = show_source(RMSNorm)
    file_lines = inspect.getsource(layers).splitlines()
    text = repr(view).splitlines()
    assert text[0] == f"# lmbasics/model/layers.py, lines {view.first}-{view.last}"
    for line in text[1:]:
        number, _, code = line.strip().partition("  ")
        assert file_lines[int(number) - 1].rstrip() == code
    assert "class RMSNorm" in text[1]


def test_a_method_is_shown_alone():
    view = show_source(AdamW.step)
    assert view.lines[0].lstrip().startswith(("def step", "@"))
    assert not any(line.startswith("class ") for line in view.lines)
    assert view.path == "lmbasics/training/optim.py"


def test_html_form_is_highlighted_and_keeps_the_numbers():
    view = show_source(RMSNorm)
    page = view._repr_html_()
    assert "lmbasics/model/layers.py" in page
    assert "<span" in page and "RMSNorm" in page
    assert str(view.first) in page and str(view.last) in page


def test_code_outside_the_library_is_refused():
    with pytest.raises(ValueError, match="lmbasics code only"):
        show_source(inspect.getsource)
    with pytest.raises(TypeError, match="function, class or method"):
        show_source(42)
