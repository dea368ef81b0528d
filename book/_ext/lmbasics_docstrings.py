"""Sphinx extension: render lmbasics' docstrings, which are written in Markdown-flavoured plain text.

The library's docstrings mark code with single backticks (`x`) and sometimes hold text that reStructuredText
reads as markup (`|x|`, an indented formula). autodoc parses docstrings as reStructuredText, so this hook
turns single-backtick spans into literals, escapes the other `|`, and, if a docstring still does not parse
cleanly, shows it as preformatted text: the API reference never fails the build on a docstring, and the
docstrings stay as they are.
"""

from __future__ import annotations

import io
import re

from docutils.core import publish_doctree

_SPAN = re.compile(r"(?<![`\w])`([^`\n]+)`(?!`)")
_LITERAL = re.compile(r"(``[^`]+``)")


def _convert(line: str) -> str:
    """Single-backtick spans become literals; a `|` outside them is escaped (no substitutions)."""
    # a literal followed by a letter (`Parameter`s) needs reStructuredText's escaped space after it
    line = _SPAN.sub(lambda m: f"``{m.group(1)}``" + ("\\ " if line[m.end() : m.end() + 1].isalnum() else ""), line)
    parts = _LITERAL.split(line)
    return "".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def _parses_cleanly(text: str) -> bool:
    errors = io.StringIO()
    publish_doctree(text, settings_overrides={"warning_stream": errors, "report_level": 2, "halt_level": 5})
    return not errors.getvalue()


def _process(app, what, name, obj, options, lines: list[str]) -> None:
    if not lines:
        return
    converted = [_convert(line) for line in lines]
    if not _parses_cleanly("\n".join(converted)):
        converted = [".. code-block:: text", "", *(f"    {line}" for line in lines), ""]
    lines[:] = converted


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
