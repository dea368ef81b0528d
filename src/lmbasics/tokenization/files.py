"""Whole files in parallel (chapters 2 and 3): cut at safe places, processed in worker processes.

A file is cut into chunks at special tokens or safe newlines (see `pretokenize.py`); each worker
process reads only its own byte range, so memory grows with the number of distinct pre-tokens, not
with the file. Two jobs run over such chunks: counting pre-tokens for BPE training
(`count_pretokens`) and encoding a file into a `.npy` array of ids (`encode_file`); each chunk gives
exactly what the whole file would.

What it does not do: no pre-tokenizing or merging of its own (see `pretokenize.py`, `bpe.py`,
`tokenizer.py`).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from tqdm import tqdm

from lmbasics.atomic import atomic_file
from lmbasics.checks import check_positive
from lmbasics.tokenization.pretokenize import (
    find_safe_newline,
    iter_chunks,
    pretokenize_without_specials,
    special_token_regex,
)

if TYPE_CHECKING:
    from lmbasics.tokenization.tokenizer import Tokenizer

# Chunk sizes for file work: big enough that per-chunk overhead vanishes, small enough to bound memory.
MIN_CHUNK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 32 << 20
COUNT_PIECE_CHARS = 4 << 20  # text pre-tokenized at once while counting (bounds the pre-token list)
FILE_CHUNK_BYTES = 4 << 20  # at most this much text per encode_file task (bounds worker memory)


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
                if newline_cuts and (newline := find_safe_newline(data, 1)) != -1:
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
    check_positive(num_workers=num_workers)
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


# --- encoding a file --------------------------------------------------------------------------------

_file_job: tuple[Tokenizer, str, np.dtype] | None = None


def _init_file_job(tokenizer: Tokenizer, path: str, dtype: np.dtype) -> None:
    global _file_job
    _file_job = (tokenizer, path, dtype)


def _encode_chunk(span: tuple[int, int]) -> tuple[bytes, int]:
    assert _file_job is not None
    tokenizer, path, dtype = _file_job
    ids = tokenizer.encode(read_chunk(path, *span))
    return np.array(ids, dtype=dtype).tobytes(), span[1] - span[0]


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocabularies up to 65,536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def encode_file(
    tokenizer: Tokenizer,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    num_workers: int | None = None,
    *,
    progress: bool = True,
) -> int:
    """Encode a UTF-8 text file into a 1-D `.npy` array of token ids, in parallel; returns the token count.

    The array is uint16 when the vocabulary fits (uint32 otherwise). Chunks are cut at special tokens
    or safe newlines, so the ids equal `tokenizer.encode(whole text)`. They are streamed into a
    temporary file beside `output_path` that is renamed into place only when complete.
    """
    path, output = Path(input_path), Path(output_path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"input file is empty: {path}")
    if output.exists() and output.resolve() == path.resolve():
        raise ValueError(f"output {output} would overwrite the input file")
    workers = resolve_workers(num_workers)
    dtype = token_dtype(tokenizer.vocab_size)
    chunk = min(FILE_CHUNK_BYTES, chunk_size_for(size, workers))
    boundaries = find_chunk_boundaries(path, chunk, tokenizer.special_tokens)

    with atomic_file(output) as f:
        # numpy pads the header so that the length can be rewritten in place once known.
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (0,)}
        np.lib.format.write_array_header_1_0(f, header)
        data_start = f.tell()
        count = 0
        with tqdm(total=size, unit="B", unit_scale=True, desc="encode", disable=not progress) as bar:
            jobs = map_chunks(_encode_chunk, boundaries, workers, _init_file_job, (tokenizer, str(path), dtype))
            for data, nbytes in jobs:
                f.write(data)
                count += len(data) // dtype.itemsize
                bar.update(nbytes)
        f.seek(0)
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (count,)})
        if f.tell() != data_start:
            raise RuntimeError("numpy header changed length; cannot finish the .npy in place")
    return count
