"""Pre-tokenization (chapter 2): GPT-2's regex, special tokens split out first, and safe points.

BPE never merges across pre-token boundaries, so both training and encoding start by cutting text
into pre-tokens with GPT-2's pattern (handout §2.4). Three things make it fast and exact:

- **An ASCII fast path.** The `regex` package is needed for `\\p{L}` and `\\p{N}`, but on pure-ASCII
  text the standard `re` module runs an equivalent pattern (letters = `[A-Za-z]`, numbers = `[0-9]`)
  about twice as fast. Text is cut at *safe points* into ASCII and non-ASCII stretches and each
  stretch goes to the faster engine that is exact for it.
- **Safe points.** A position `i` where `text[i]` is a space or newline and `text[i-1]` is not
  whitespace. No pre-token crosses it (no alternative of the pattern runs from
  a non-space into a space) and the pre-token ending there does not depend on what follows, so
  pre-tokenizing the two sides separately gives exactly the pre-tokens of the whole.
- **Streams cut at safe points.** `iter_chunks` regroups a stream of strings into pieces that end at
  safe points, and `find_safe_newline` finds one in raw bytes; `files.py` cuts files there to
  pre-tokenize or encode them in parallel.

What it does not do: no merging (see `bpe.py` and `tokenizer.py`), no file I/O (see `files.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import regex

# The handout's pre-tokenizer (from tiktoken's GPT-2 encoding).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# The same pattern for ASCII-only text, where \p{L} is [A-Za-z] and \p{N} is [0-9].
ASCII_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"""

_UNICODE_FINDALL = regex.compile(GPT2_PATTERN).findall
_ASCII_FINDALL = re.compile(ASCII_PATTERN, re.ASCII).findall
_SAFE_BEFORE = frozenset(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, not space
_WHITESPACE = regex.compile(r"\s")  # the pattern's notion of whitespace


def _safe_before(ch: str) -> bool:
    """Whether a safe point may follow `ch`: it is not whitespace (for the pattern nor for Python)."""
    return ch in _SAFE_BEFORE or (not ch.isascii() and not ch.isspace() and _WHITESPACE.match(ch) is None)


def find_safe_newline(data: bytes, start: int) -> int:
    """Offset of the first '\n' at or after `start` that follows a non-whitespace character, or -1."""
    position = data.find(b"\n", start)
    while position != -1:
        first = position - 1  # walk back over UTF-8 continuation bytes to the character's first byte
        while first > 0 and position - first < 4 and data[first] & 0xC0 == 0x80:
            first -= 1
        try:
            if first >= 0 and _safe_before(data[first:position].decode("utf-8")):
                return position
        except UnicodeDecodeError:
            pass  # the window starts inside a character: not a usable cut
        position = data.find(b"\n", position + 1)
    return -1


def pretokenize(text: str) -> list[str]:
    """GPT-2 pre-tokens of `text` (no special-token handling), exactly `regex.findall(GPT2_PATTERN, text)`."""
    if text.isascii():
        return _ASCII_FINDALL(text)
    # Cut at safe newlines into stretches, each all-ASCII or not; consecutive stretches of one kind
    # are joined again so that each engine sees as few, long strings as possible.
    out: list[str] = []
    start = 0  # start of the stretch being collected
    kind: bool | None = None  # is that stretch ASCII?
    block_start = 0
    for line_end in _line_ends(text):
        if not (line_end > block_start and _safe_before(text[line_end - 1])) and line_end < len(text):
            continue  # not a safe point: the block goes on
        block_ascii = text[block_start:line_end].isascii()
        if kind is not None and block_ascii != kind:
            out += (_ASCII_FINDALL if kind else _UNICODE_FINDALL)(text[start:block_start])
            start = block_start
        kind = block_ascii
        block_start = line_end
    out += (_ASCII_FINDALL if kind else _UNICODE_FINDALL)(text[start:])
    return out


def _line_ends(text: str) -> Iterator[int]:
    """Positions of every '\\n' in `text`, then len(text)."""
    position = text.find("\n")
    while position != -1:
        yield position
        position = text.find("\n", position + 1)
    yield len(text)


def last_safe_point(text: str, end: int | None = None) -> int:
    """The largest safe point `i <= end` (see the module docstring), or 0 if there is none."""
    end = len(text) if end is None else min(end, len(text))
    if end <= 0:
        return 0
    best = 0
    for sep in ("\n", " "):
        i = text.rfind(sep, 0, end + 1)
        while i > best:
            if _safe_before(text[i - 1]):
                best = i
                break
            i = text.rfind(sep, 0, i)
    return best


def special_token_regex(special_tokens: Sequence[str] | None) -> re.Pattern[str] | None:
    """A pattern matching any special token, longest first (so overlapping tokens prefer the longer)."""
    if not special_tokens:
        return None
    for token in special_tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(f"special tokens must be non-empty strings, got {token!r}")
    ordered = sorted(set(special_tokens), key=lambda t: (-len(t), t))
    return re.compile("(" + "|".join(re.escape(t) for t in ordered) + ")")


def split_on_special_tokens(text: str, special_re: re.Pattern[str] | None) -> list[str]:
    """`[text, special, text, special, ..., text]`: even items are plain text, odd items special tokens."""
    return [text] if special_re is None else special_re.split(text)


def pretokenize_without_specials(text: str, special_re: re.Pattern[str] | None) -> list[str]:
    """Pre-tokens of the text between special tokens; the special tokens themselves are dropped.

    This is what BPE training counts: no pre-token (hence no merge) spans a document boundary.
    """
    parts = split_on_special_tokens(text, special_re)
    if len(parts) == 1:
        return pretokenize(text)
    out: list[str] = []
    for part in parts[::2]:
        if part:
            out += pretokenize(part)
    return out


def iter_chunks(
    texts: Iterable[str], target_chars: int, special_re: re.Pattern[str] | None = None, longest_special: int = 0
) -> Iterator[str]:
    """Regroup a stream of strings into pieces that end at safe points (for streaming encoders).

    Encoding the pieces one by one gives exactly the ids of encoding their concatenation: each piece
    ends at the last safe point at least one special-token length before the end of what has been
    read (so a special token still arriving, at most `longest_special` long, is never cut), and never
    inside a special token.
    """
    hold_back = longest_special
    buffer: list[str] = []
    buffered = 0
    for text in texts:
        buffer.append(text)
        buffered += len(text)
        if buffered < target_chars:
            continue
        joined = "".join(buffer)
        cut = last_safe_point(joined, len(joined) - hold_back)
        if cut > 0 and special_re is not None:
            # Only special tokens containing a space or newline can span a safe point.
            for match in special_re.finditer(joined, max(0, cut - hold_back), cut + hold_back):
                if match.start() < cut < match.end():
                    cut = match.start()
        if cut > 0:
            yield joined[:cut]
            joined = joined[cut:]
        buffer, buffered = [joined], len(joined)
    rest = "".join(buffer)
    if rest:
        yield rest
