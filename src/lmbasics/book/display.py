"""Show token (or byte, or character) boundaries as coloured spans in notebooks and the HTML book (chapters 1 to 3).

`token_view(pieces)` returns an object that Jupyter renders as HTML (`_repr_html_`) and that prints
as plain text (`repr`), so the same cell reads well in JupyterLab, in the built book and under
`pytest --nbval`, which compares both renderings.

What it does not do: it does not tokenize anything; callers pass the pieces.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

# Light backgrounds that keep black text readable; neighbours always differ.
PALETTE: tuple[str, ...] = ("#fde2a8", "#c8e6f5", "#d5f0c8", "#f7c9d4", "#e0d4f5", "#f5e0c8")

# Invisible characters made visible inside a piece.
_VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5"}


def piece_text(piece: bytes | str) -> str:
    """A piece as text: bytes that are not valid UTF-8 on their own show as `\\xNN` escapes."""
    if isinstance(piece, str):
        return piece
    return piece.decode("utf-8", errors="backslashreplace")


def _visible(text: str) -> str:
    return "".join(_VISIBLE.get(ch, ch) for ch in text)


@dataclass(frozen=True)
class TokenView:
    """A sequence of pieces shown with alternating colours; see `token_view`."""

    pieces: tuple[bytes | str, ...]
    title: str | None = None

    def __repr__(self) -> str:
        body = "|".join(_visible(piece_text(p)) for p in self.pieces)
        head = f"{self.title} " if self.title else ""
        return f"{head}({len(self.pieces)} pieces) |{body}|"

    def _repr_html_(self) -> str:
        spans = []
        for i, piece in enumerate(self.pieces):
            colour = PALETTE[i % len(PALETTE)]
            text = html.escape(_visible(piece_text(piece)))
            tooltip = html.escape(repr(piece))
            spans.append(
                f'<span title="{tooltip}" style="background:{colour};padding:1px 0;'
                f'border-right:1px solid #999">{text}</span>'
            )
        caption = f"<div><b>{html.escape(self.title)}</b> ({len(self.pieces)} pieces)</div>" if self.title else ""
        return (
            f'<div class="lmbasics-token-view">{caption}'
            '<div style="font-family:monospace;line-height:1.9;white-space:pre-wrap;word-break:break-all">'
            f"{''.join(spans)}</div></div>"
        )


def token_view(pieces: Sequence[bytes | str], title: str | None = None) -> TokenView:
    """Display `pieces` (tokens as bytes, characters, or any strings) with their boundaries coloured.

    Spaces, newlines and tabs are drawn as ␣, ↵ and ⇥ so that a reader sees where they fall.
    """
    if isinstance(pieces, (str, bytes)):
        raise TypeError("token_view expects a sequence of pieces, not a single str/bytes; wrap it in a list")
    return TokenView(tuple(pieces), title)
