"""Pre-tokenization: GPT-2's regex, special tokens split out first, and files cut into chunks.

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
- **Chunks for parallel, streaming work.** A file is cut into chunks at special tokens or safe
  newlines; each worker process reads only its own byte range, so memory grows with the number of
  distinct pre-tokens, not with the file.

What it does not do: no merging (see `bpe.py` and `tokenizer.py`).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import regex
from tqdm import tqdm

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


def _find_safe_newline(data: bytes, start: int) -> int:
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

# Chunk sizes for file work: big enough that per-chunk overhead vanishes, small enough to bound memory.
MIN_CHUNK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 32 << 20
COUNT_PIECE_CHARS = 4 << 20  # text pre-tokenized at once while counting (bounds the pre-token list)


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


# --- files: chunk boundaries and parallel work over chunks ---------------------------------------


def find_chunk_boundaries(
    path: str | os.PathLike, chunk_bytes: int, special_tokens: Sequence[str] | None = None
) -> list[int]:
    """Byte offsets `[0, ..., file size]` cutting the file into chunks of about `chunk_bytes`.

    Each cut is the first safe place at or after a multiple of `chunk_bytes`: the start of a special
    token, or a newline after a non-whitespace character (a safe point). Processing the chunks separately
    therefore gives exactly the pre-tokens of the whole file. Only small windows are read.
    """
    specials = [t.encode("utf-8") for t in special_tokens or ()]
    newline_cuts = not any(b"\n" in t for t in specials)  # a newline inside a special token is no cut
    size = os.path.getsize(path)
    boundaries = [0]
    window = 1 << 16
    with open(path, "rb") as f:
        guess = chunk_bytes
        while guess < size:
            cut = None
            position = guess
            while cut is None and position < size:
                f.seek(position)
                data = f.read(window + max((len(t) for t in specials), default=0))
                candidates = [i for t in specials if (i := data.find(t)) != -1]
                if newline_cuts and (newline := _find_safe_newline(data, 1)) != -1:
                    candidates.append(newline)
                if candidates:
                    cut = position + min(candidates)
                position += window
            if cut is None or cut >= size:
                break
            boundaries.append(cut)
            guess = cut + chunk_bytes
    boundaries.append(size)
    return boundaries


def chunk_size_for(size: int, num_workers: int) -> int:
    """Chunk size giving each worker several chunks (for balance), within the min/max bounds."""
    return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, size // max(1, 4 * num_workers) + 1))


def read_chunk(path: str | os.PathLike, start: int, end: int) -> str:
    """Bytes [start, end) of a file as text; invalid UTF-8 is an error naming its byte offset."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        raise ValueError(
            f"{path}: not valid UTF-8 at byte {offset:,} (byte 0x{data[error.start]:02x}); "
            "convert the file to UTF-8 first"
        ) from None


def resolve_workers(num_workers: int | None) -> int:
    """`None` means all cores; otherwise a positive count."""
    if num_workers is None:
        return os.cpu_count() or 1
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer or None, got {num_workers!r}")
    return num_workers


T = TypeVar("T")


def map_chunks(
    func: Callable[[tuple[int, int]], T],
    boundaries: Sequence[int],
    num_workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[T]:
    """`func((start, end))` for consecutive chunks, in order, in `num_workers` processes.

    Processes are forked where the platform allows (workers inherit the imported modules instead of
    re-importing torch), and only when there is more than one chunk to share.
    """
    spans = list(zip(boundaries[:-1], boundaries[1:]))
    if num_workers == 1 or len(spans) < 2:
        if initializer is not None:
            initializer(*initargs)
        yield from map(func, spans)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    with context.Pool(min(num_workers, len(spans)), initializer=initializer, initargs=initargs) as pool:
        yield from pool.imap(func, spans)


_count_job: tuple[str, re.Pattern[str] | None, int] | None = None


def _init_count_job(path: str, special_tokens: Sequence[str] | None) -> None:
    global _count_job
    longest = max((len(t) for t in special_tokens or ()), default=0)
    _count_job = (path, special_token_regex(special_tokens), longest)


def _count_chunk(span: tuple[int, int]) -> tuple[Counter[str], int]:
    assert _count_job is not None
    path, special_re, longest = _count_job
    text = read_chunk(path, *span)
    counts: Counter[str] = Counter()
    # Count a few MB of pre-tokens at a time, so the list of pre-tokens never holds a whole chunk.
    for piece in iter_chunks(text.splitlines(keepends=True), COUNT_PIECE_CHARS, special_re, longest):
        counts.update(pretokenize_without_specials(piece, special_re))
    return counts, span[1] - span[0]


def count_pretokens(
    input_path: str | os.PathLike,
    special_tokens: Sequence[str] | None = None,
    *,
    num_workers: int | None = None,
    progress: bool = True,
) -> Counter[str]:
    """How often each pre-token occurs in a file, special tokens split out (parallel, streaming)."""
    path = Path(input_path)
    workers = resolve_workers(num_workers)
    size = path.stat().st_size
    boundaries = find_chunk_boundaries(path, chunk_size_for(size, workers), special_tokens)
    counts: Counter[str] = Counter()
    with tqdm(total=size, unit="B", unit_scale=True, desc="pre-tokenize", disable=not progress) as bar:
        results = map_chunks(_count_chunk, boundaries, workers, _init_count_job, (str(path), special_tokens))
        for chunk_counts, nbytes in results:
            if counts:
                counts.update(chunk_counts)
            else:
                counts = chunk_counts
            bar.update(nbytes)
    return counts


def iter_chunks(
    texts: Iterable[str], target_chars: int, special_re: re.Pattern[str] | None = None, longest_special: int = 0
) -> Iterator[str]:
    """Regroup a stream of strings into pieces that end at safe points (for streaming encoders).

    Encoding the pieces one by one gives exactly the ids of encoding their concatenation: each piece
    ends at the last safe point at least one special-token length before the end of what has been
    read (so a special token still arriving, at most `longest_special` long, is never cut), and never inside a special token.
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
