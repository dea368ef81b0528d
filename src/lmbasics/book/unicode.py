"""Measurements on Unicode text and its encodings, for chapter 1 (handout §2.1–2.2).

Byte counts of a text under UTF-8/16/32, a per-character breakdown of code points, UTF-8 bytes and
UTF-16 code units, a picture of UTF-8's bit layout (`utf8_layout`), and an exhaustive search for byte
sequences that are not valid UTF-8.

What it does not do: no normalisation (NFC/NFKC) and no guessing of encodings; text is UTF-8.
"""

from __future__ import annotations

import html
import itertools
import unicodedata
from dataclasses import dataclass

# Without a byte-order mark, so that the counts are the characters' own cost.
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-16-le", "utf-32-le")


def encoded_sizes(text: str, encodings: tuple[str, ...] = ENCODINGS) -> dict[str, int]:
    """Number of bytes `text` takes in each encoding (BOM-less variants by default)."""
    return {name: len(text.encode(name)) for name in encodings}


@dataclass(frozen=True)
class CharInfo:
    """One character: its code point, Unicode name and category, and its UTF-8 bytes."""

    char: str
    code_point: str  # "U+00E9"
    name: str
    category: str  # Unicode general category, e.g. "Ll" (lower-case letter), "Cc" (control)
    utf8: bytes

    @property
    def utf8_hex(self) -> str:
        return " ".join(f"{b:02x}" for b in self.utf8)

    @property
    def utf16_units(self) -> tuple[int, ...]:
        """The 16-bit code units of UTF-16: one, or two (a surrogate pair) above U+FFFF."""
        raw = self.char.encode("utf-16-le", errors="surrogatepass")
        return tuple(int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2))

    @property
    def utf16_hex(self) -> str:
        return " ".join(f"{u:04x}" for u in self.utf16_units)


def describe_chars(text: str) -> list[CharInfo]:
    """A `CharInfo` for each character of `text`, in order.

    Control characters have no Unicode name; they get their `repr` in angle brackets instead.
    """
    infos = []
    for ch in text:
        name = unicodedata.name(ch, f"<control {ch!r}>")
        infos.append(CharInfo(ch, f"U+{ord(ch):04X}", name, unicodedata.category(ch), ch.encode("utf-8")))
    return infos


def is_valid_utf8(data: bytes) -> bool:
    """Whether `data` decodes as UTF-8 as a whole."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def undecodable_sequences(length: int) -> list[bytes]:
    """Every byte sequence of `length` bytes that is not valid UTF-8, in increasing order.

    Exhaustive, so only small lengths are allowed (256**length candidates).
    """
    if not 1 <= length <= 2:
        raise ValueError(f"length must be 1 or 2 (256**length sequences are enumerated), got {length}")
    return [bytes(seq) for seq in itertools.product(range(256), repeat=length) if not is_valid_utf8(bytes(seq))]


# UTF-8's byte templates: (largest code point, number of payload bits per byte). The lead byte's marker
# says how many bytes follow; each continuation byte is 10xxxxxx.
_UTF8_TEMPLATES: tuple[tuple[int, tuple[int, ...]], ...] = (
    (0x7F, (7,)),
    (0x7FF, (5, 6)),
    (0xFFFF, (4, 6, 6)),
    (0x10FFFF, (3, 6, 6, 6)),
)
_MARKERS = {1: ("0",), 2: ("110", "10"), 3: ("1110", "10", "10"), 4: ("11110", "10", "10", "10")}
# Payload bits of byte i of every character share a colour, so the eye follows them into the bytes.
_BIT_COLOURS = ("#fde2a8", "#c8e6f5", "#d5f0c8", "#f7c9d4")


@dataclass(frozen=True)
class Utf8Bits:
    """One character's UTF-8 encoding split into each byte's marker bits and code-point (payload) bits."""

    char: str
    code_point: int
    markers: tuple[str, ...]  # per byte: "0", "110", "10", ...
    payloads: tuple[str, ...]  # per byte: the code point's bits it carries, most significant first

    @property
    def bytes(self) -> bytes:
        return bytes(int(m + p, 2) for m, p in zip(self.markers, self.payloads))


def utf8_bits(ch: str) -> Utf8Bits:
    """Place the bits of `ch`'s code point into UTF-8's byte templates (0xxxxxxx, 110xxxxx 10xxxxxx, ...)."""
    if not isinstance(ch, str) or len(ch) != 1:
        raise ValueError(f"utf8_bits expects one character, got {ch!r}")
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        raise ValueError(f"U+{cp:04X} is a surrogate code point, which UTF-8 cannot encode")
    widths = next(w for limit, w in _UTF8_TEMPLATES if cp <= limit)
    bits = format(cp, f"0{sum(widths)}b")
    payloads, start = [], 0
    for width in widths:
        payloads.append(bits[start : start + width])
        start += width
    return Utf8Bits(ch, cp, _MARKERS[len(widths)], tuple(payloads))


@dataclass(frozen=True)
class Utf8Layout:
    """`utf8_bits` of several characters as a table: HTML in notebooks and the book, text for nbval."""

    rows: tuple[Utf8Bits, ...]

    def __repr__(self) -> str:
        lines = [f"{'char':<6}{'code point':<12}{'code point in binary':<26}{'UTF-8 bytes':<13}marker|payload"]
        for r in self.rows:
            layout = " ".join(f"{m}|{p}" for m, p in zip(r.markers, r.payloads))
            hexes = " ".join(f"{b:02x}" for b in r.bytes)
            lines.append(f"{r.char:<6}{f'U+{r.code_point:04X}':<12}{' '.join(r.payloads):<26}{hexes:<13}{layout}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cell = "padding:2px 6px;border:1px solid #ccc;font-family:monospace"
        head = "".join(
            f'<th style="{cell}">{h}</th>'
            for h in ("char", "code point", "code point in binary", "byte 1", "byte 2", "byte 3", "byte 4")
        )
        body = []
        for r in self.rows:
            binary = "".join(f'<span style="background:{_BIT_COLOURS[i]}">{p}</span>' for i, p in enumerate(r.payloads))
            byte_cells = [
                f'<td style="{cell}"><span style="color:#999">{m}</span>'
                f'<span style="background:{_BIT_COLOURS[i]}">{p}</span><br><small>0x{b:02x}</small></td>'
                for i, (m, p, b) in enumerate(zip(r.markers, r.payloads, r.bytes))
            ]
            byte_cells += [f'<td style="{cell}"></td>'] * (4 - len(byte_cells))
            body.append(
                f'<tr><td style="{cell}">{html.escape(r.char)}</td><td style="{cell}">U+{r.code_point:04X}</td>'
                f'<td style="{cell}">{binary}</td>{"".join(byte_cells)}</tr>'
            )
        return (
            '<table class="lmbasics-utf8-layout" style="border-collapse:collapse">'
            f"<tr>{head}</tr>{''.join(body)}</table>"
            '<div style="font-size:85%;color:#555">grey: the template\'s marker bits; '
            "colours: the code point's bits, byte by byte</div>"
        )


def utf8_layout(text: str) -> Utf8Layout:
    """How UTF-8 stores each character of `text`: its code point's bits placed into the byte templates."""
    return Utf8Layout(tuple(utf8_bits(ch) for ch in text))
