"""The BPE tokenizer (handout §2.6): text -> token ids -> text, for strings, streams and whole files.

Encoding repeats training's steps on new text: split out special tokens, pre-tokenize, then apply
the merges inside each pre-token, lowest merge rank first, until none applies. Two things make it
fast in pure Python:

- **A cache per pre-token.** Natural text reuses a few tens of thousands of pre-tokens (' the',
  ' and', ...), so after a short warm-up almost every pre-token's ids are a dict lookup. Encoding a
  text is then one C-level pass: `chain.from_iterable(map(cache.__getitem__, pretokens))`.
- **A tight merge loop for cache misses** over pairs packed into ints, with the rank of each pair in
  a dict.

`encode_iterable` regroups a stream into pieces that end at safe points (see `pretokenize.py`), so
it yields exactly `encode("".join(stream))` in constant memory. `encode_file` does the same for a
file in parallel and writes a `.npy` array.

What it does not do: no training (see `bpe.py`), no padding or truncation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lmbasics.tokenization import gpt2_bytes
from lmbasics.atomic import atomic_file, atomic_write_text
from lmbasics.tokenization.bpe import train_bpe
from lmbasics.tokenization.pretokenize import (
    chunk_size_for,
    find_chunk_boundaries,
    iter_chunks,
    map_chunks,
    pretokenize,
    read_chunk,
    resolve_workers,
    special_token_regex,
    split_on_special_tokens,
)

_SHIFT = 32  # a pair of ids (a, b) is the int a << _SHIFT | b
_LOW = (1 << _SHIFT) - 1
_NO_MERGE = 1 << 62  # larger than any packed (rank, id)
CACHE_LIMIT = 1 << 20  # distinct pre-tokens kept; the cache is emptied when it grows past this
STREAM_PIECE_CHARS = 1 << 20  # text encoded at a time by encode_iterable
FILE_CHUNK_BYTES = 4 << 20  # at most this much text per encode_file task (bounds worker memory)

VOCAB_FILE, MERGES_FILE, SPECIALS_FILE, READABLE_FILE = "vocab.json", "merges.txt", "special_tokens.json", "vocab.txt"


class _PretokenCache(dict[str, tuple[int, ...]]):
    """pre-token -> its ids; a missing key is encoded by `encode_word` and remembered."""

    def __init__(self, encode_word):
        super().__init__()
        self._encode_word = encode_word

    def __missing__(self, word: str) -> tuple[int, ...]:
        ids = self[word] = self._encode_word(word)
        return ids


class Tokenizer:
    """Byte-level BPE tokenizer from a vocabulary `{id: bytes}` and a list of merges (the handout's API).

    Special tokens (strings) are never split; any that are not in `vocab` are appended with new ids.
    When special tokens overlap (one is a prefix of another), the longest match wins.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: Sequence[tuple[bytes, bytes]],
        special_tokens: Sequence[str] | None = None,
    ):
        self.vocab: dict[int, bytes] = dict(vocab)
        self.merges: list[tuple[bytes, bytes]] = [tuple(m) for m in merges]  # type: ignore[misc]
        self.special_tokens: list[str] = list(dict.fromkeys(special_tokens or ()))
        self._special_re = special_token_regex(self.special_tokens)
        self._longest_special = max((len(t) for t in self.special_tokens), default=0)

        # bytes -> id; if two ids share bytes, the lower id is used.
        self._ids: dict[bytes, int] = {}
        for idx, token in sorted(self.vocab.items(), reverse=True):
            self._ids[token] = idx
        self.special_ids: dict[str, int] = {}
        for token in self.special_tokens:
            raw = token.encode("utf-8")
            if raw not in self._ids:
                idx = max(self.vocab, default=-1) + 1
                self.vocab[idx] = raw
                self._ids[raw] = idx
            self.special_ids[token] = self._ids[raw]

        # A vocabulary normally holds all 256 single bytes; small examples (like the handout's) may not,
        # and then only text made of the bytes it has can be encoded.
        self._byte_ids: list[int | None] = [self._ids.get(bytes((b,))) for b in range(256)]
        # pair -> rank << _SHIFT | merged id: the lowest value is the first merge to apply.
        self._merge_value: dict[int, int] = {}
        for rank, (left, right) in enumerate(self.merges):
            try:
                a, b, merged = self._ids[left], self._ids[right], self._ids[left + right]
            except KeyError:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) uses or makes a token that is not in "
                                 "the vocabulary") from None
            self._merge_value.setdefault(a << _SHIFT | b, rank << _SHIFT | merged)
        self._cache = _PretokenCache(self._encode_word)

    # --- files -------------------------------------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        vocab_filepath: str | os.PathLike,
        merges_filepath: str | os.PathLike,
        special_tokens: Sequence[str] | None = None,
    ) -> Tokenizer:
        """Read GPT-2-style `vocab.json` and `merges.txt` (as written by `save`)."""
        for path in (vocab_filepath, merges_filepath):
            if not Path(path).is_file():
                raise FileNotFoundError(f"tokenizer file not found: {path}")
        vocab = gpt2_bytes.read_vocab_json(vocab_filepath)
        merges = gpt2_bytes.read_merges_txt(merges_filepath)
        return cls(vocab, merges, special_tokens)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer saved by `save` (vocabulary, merges and its special tokens)."""
        directory = Path(directory)
        if not (directory / VOCAB_FILE).is_file():
            raise FileNotFoundError(f"no tokenizer in {directory}: {VOCAB_FILE} not found")
        specials_path = directory / SPECIALS_FILE
        specials = json.loads(specials_path.read_text(encoding="utf-8")) if specials_path.is_file() else None
        return cls.from_files(directory / VOCAB_FILE, directory / MERGES_FILE, specials)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write vocab.json and merges.txt (GPT-2's format), special_tokens.json and a readable vocab.txt."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        gpt2_bytes.write_vocab_json(self.vocab, directory / VOCAB_FILE)
        gpt2_bytes.write_merges_txt(self.merges, directory / MERGES_FILE)
        gpt2_bytes.write_vocab_txt(self.vocab, directory / READABLE_FILE)
        atomic_write_text(directory / SPECIALS_FILE, json.dumps(self.special_tokens) + "\n")
        return directory

    # --- encoding ------------------------------------------------------------------------------------

    def _encode_word(self, word: str) -> tuple[int, ...]:
        """BPE on one pre-token: merge the adjacent pair of lowest merge rank (leftmost first), repeat.

        `values[i]` is the packed (rank, merged id) of the pair at i, so `min` finds the next merge
        and only the two neighbours of a merge need a new lookup.
        """
        raw = word.encode("utf-8")
        ids = [self._byte_ids[b] for b in raw]
        if None in ids:
            byte = raw[ids.index(None)]
            raise ValueError(f"byte 0x{byte:02x} (in {word!r}) is not in the vocabulary, so this text cannot be encoded")
        if len(ids) < 2:
            return tuple(ids)  # type: ignore[arg-type]
        get, none = self._merge_value.get, _NO_MERGE
        values = [get(ids[i] << _SHIFT | ids[i + 1], none) for i in range(len(ids) - 1)]
        while True:
            value = min(values)
            if value == none:
                break
            i = values.index(value)
            new = value & _LOW
            ids[i] = new
            del ids[i + 1], values[i]
            if not values:
                break
            if i > 0:
                values[i - 1] = get(ids[i - 1] << _SHIFT | new, none)
            if i < len(values):
                values[i] = get(new << _SHIFT | ids[i + 1], none)
        return tuple(ids)  # type: ignore[arg-type]

    def _encode_ordinary(self, text: str) -> list[int]:
        """Ids of text that holds no special tokens."""
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        return list(chain.from_iterable(map(self._cache.__getitem__, pretokenize(text))))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special tokens in it become their single ids."""
        parts = split_on_special_tokens(text, self._special_re)
        if len(parts) == 1:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2:
                ids.append(self.special_ids[part])
            elif part:
                ids += self._encode_ordinary(part)
        return ids

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Lazily yield the ids of the concatenated strings (e.g. a file's lines) in constant memory.

        The result equals `encode("".join(iterable))`: the stream is cut only at points where that
        cannot change a pre-token or a special token.
        """
        for piece in iter_chunks(iterable, STREAM_PIECE_CHARS, self._special_re, self._longest_special):
            yield from self.encode(piece)

    def encode_file(
        self,
        input_path: str | os.PathLike,
        output_path: str | os.PathLike,
        num_workers: int | None = None,
        *,
        progress: bool = True,
    ) -> int:
        """Encode a UTF-8 text file to a 1-D `.npy` of ids; see `encode_file`. Returns the token count."""
        return encode_file(self, input_path, output_path, num_workers, progress=progress)

    # --- decoding ------------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a sequence of ids (a list, or a NumPy array or tensor); invalid UTF-8 becomes U+FFFD."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()  # NumPy arrays and torch tensors hold ids that are not plain ints
        ids = ids if isinstance(ids, (list, tuple)) else list(ids)
        try:
            raw = b"".join(map(self.vocab.__getitem__, ids))
        except (KeyError, TypeError):
            bad = next(i for i in ids if not isinstance(i, int) or i not in self.vocab)
            raise ValueError(f"token id {bad!r} is not in the vocabulary (size {len(self.vocab)})") from None
        return raw.decode("utf-8", errors="replace")

    def id_to_token(self, idx: int) -> bytes:
        """The bytes of one token id."""
        return self.vocab[idx]

    @property
    def vocab_size(self) -> int:
        """One more than the largest id: the number of rows a model's embedding needs."""
        return max(self.vocab) + 1

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={len(self.vocab)}, merges={len(self.merges)}, special_tokens={self.special_tokens})"


# --- whole files -----------------------------------------------------------------------------------

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


# --- the book's tokenizers -------------------------------------------------------------------------

TRAINING_FILE = "training.json"

BOOK_TOKENIZERS: dict[str, tuple[str, int]] = {
    # name: (training text under data/, vocab_size); special token <|endoftext|> for both.
    "tinystories-10k": ("tinystories/tinystories_train_sample.txt", 10_000),
    "webtext-32k": ("owt/webtext_substitute_train.txt", 32_000),
}


# Version of train_bpe's id layout; a saved tokenizer from another layout is retrained.
# 2: the 256 single bytes in GPT-2's order.
VOCAB_LAYOUT = 2


def load_or_train_tokenizer(
    directory: str | os.PathLike,
    input_path: str | os.PathLike,
    vocab_size: int,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
    *,
    num_workers: int | None = None,
    progress: bool = False,
) -> Tokenizer:
    """The tokenizer saved in `directory` if it was trained with these settings, else train and save it.

    Training is deterministic, so a missing folder is regenerated identically. `training.json` records
    the settings (training file name and size, vocab_size, special tokens) to detect a stale folder.
    """
    directory, input_path = Path(directory), Path(input_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"training file not found: {input_path}")
    settings = {
        "vocab_layout": VOCAB_LAYOUT,
        "input_file": input_path.name,
        "input_bytes": input_path.stat().st_size,
        "vocab_size": vocab_size,
        "special_tokens": list(special_tokens),
    }
    record = directory / TRAINING_FILE
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")) == settings:
        return Tokenizer.load(directory)
    vocab, merges = train_bpe(input_path, vocab_size, special_tokens, num_workers=num_workers, progress=progress)
    tokenizer = Tokenizer(vocab, merges, special_tokens)
    tokenizer.save(directory)
    atomic_write_text(record, json.dumps(settings, indent=1) + "\n")
    return tokenizer


def book_tokenizer(name: str, data_dir: str | os.PathLike = "../data", artifacts_dir: str | os.PathLike = "../artifacts") -> Tokenizer:
    """One of the book's tokenizers (`BOOK_TOKENIZERS`), loaded from `artifacts_dir/tokenizers/<name>/`
    or trained there first. Defaults are relative to `notebooks/`, where the chapters run."""
    if name not in BOOK_TOKENIZERS:
        raise ValueError(f"unknown book tokenizer {name!r}; choose one of {sorted(BOOK_TOKENIZERS)}")
    relative_path, vocab_size = BOOK_TOKENIZERS[name]
    return load_or_train_tokenizer(Path(artifacts_dir) / "tokenizers" / name, Path(data_dir) / relative_path, vocab_size)
