"""Put the library's own code on the page (every chapter): `show_source(obj)`.

The chapters explain components that live in `lmbasics`; rather than retyping them, a chapter shows
the source itself, with its path and line numbers. The result renders as syntax-highlighted HTML in
JupyterLab and the built book, and prints as numbered plain text, which `pytest --nbval` compares
with the committed output: if the library changes, the page fails its test until it is re-executed,
so the book cannot drift from the code.

What it does not do: it does not show code outside `lmbasics` (a chapter that explains torch or NumPy
links to their documentation instead).
"""

from __future__ import annotations

import html
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # .../src/lmbasics
_STYLE = "default"  # a light Pygments style, readable in JupyterLab and in the book's theme


@dataclass(frozen=True)
class SourceView:
    """Lines `first`..`first + len(lines) - 1` of the library file `path` (relative to `src/`)."""

    path: str
    first: int
    lines: tuple[str, ...]

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    @property
    def header(self) -> str:
        return f"{self.path}, lines {self.first}-{self.last}"

    def __repr__(self) -> str:
        width = len(str(self.last))
        numbered = [f"{self.first + i:>{width}}  {line}".rstrip() for i, line in enumerate(self.lines)]
        return "\n".join([f"# {self.header}", *numbered])

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(style=_STYLE, noclasses=True, linenos="inline", linenostart=self.first)
        body = highlight("\n".join(self.lines), PythonLexer(), formatter)
        return (
            '<div class="lmbasics-source" style="border:1px solid #ddd;border-radius:4px;margin:0.5em 0">'
            '<div style="background:#f4f4f4;padding:2px 8px;font-family:monospace;font-size:85%;color:#555">'
            f"{html.escape(self.header)}</div>"
            f'<div style="overflow-x:auto;font-size:85%">{body}</div></div>'
        )


def show_source(obj: Any) -> SourceView:
    """The source of a function, class or method of `lmbasics`, ready to display in a notebook.

    >>> view = show_source(show_source)
    >>> view.path
    'lmbasics/book/source.py'
    >>> repr(view).splitlines()[1].split()[1:3]
    ['def', 'show_source(obj:']
    """
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    try:
        file = Path(inspect.getsourcefile(target) or "").resolve()
        lines, first = inspect.getsourcelines(target)
    except TypeError:
        raise TypeError(f"show_source needs a function, class or method, got {type(obj).__name__}") from None
    if not file.is_relative_to(_PACKAGE_ROOT):
        raise ValueError(f"show_source shows lmbasics code only; {getattr(obj, '__qualname__', obj)!r} is in {file}")
    path = file.relative_to(_PACKAGE_ROOT.parent).as_posix()
    return SourceView(path, first, tuple(line.rstrip("\n") for line in lines))
