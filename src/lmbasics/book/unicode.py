"""Measurements on Unicode text and its encodings, for chapter 1 (handout §2.1–2.2).

Byte counts of a text under UTF-8/16/32, a per-character breakdown of code points and UTF-8 bytes,
and an exhaustive search for byte sequences that are not valid UTF-8.

What it does not do: no normalisation (NFC/NFKC) and no guessing of encodings; text is UTF-8.
"""

from __future__ import annotations

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
