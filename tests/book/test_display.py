"""token_view: the same pieces rendered as HTML and as text, boundaries visible."""

import pytest

from lmbasics import token_view


def test_text_rendering_marks_every_boundary_and_whitespace():
    view = token_view([b"Hello", b" world", b"\n"], title="demo")
    assert repr(view) == "demo (3 pieces) |Hello|\u2423world|\u21b5|"


def test_html_rendering_has_one_span_per_piece_and_escapes_markup():
    view = token_view(["<b>", "&", "ok"])
    html = view._repr_html_()
    assert html.count("<span") == 3
    assert "&lt;b&gt;" in html and "&amp;" in html
    assert "<b>" not in html.replace("<b>demo", "")


def test_neighbouring_pieces_get_different_colours():
    html = token_view(["a", "b"])._repr_html_()
    first, second = [part.split(";")[0] for part in html.split("background:")[1:3]]
    assert first != second


def test_partial_utf8_bytes_show_as_escapes():
    # The two bytes of 'é' as separate pieces are each invalid alone.
    assert repr(token_view([b"\xc3", b"\xa9"])) == "(2 pieces) |\\xc3|\\xa9|"


def test_a_bare_string_is_rejected():
    with pytest.raises(TypeError, match="sequence of pieces"):
        token_view("hello")
