"""The BPE tokenizer (handout §2.6, chapter 3): text -> token ids -> text, for strings, streams and whole files.

Encoding repeats training's steps on new text: split out special tokens, pre-tokenize, then apply
the merges inside each pre-token, lowest merge rank first, until none applies. Two things make it
fast in pure Python:

- **A cache per pre-token.** Natural text reuses a few tens of thousands of pre-tokens (' the',
  ' and', ...), so after a short warm-up almost every pre-token's ids are a dict lookup. Encoding a
  text is then one C-level pass: `chain.from_iterable(map(cache.__getitem__, pretokens))`.
- **A tight merge loop for cache misses** over pairs packed into ints, with the rank of each pair in
  a dict.

`encode_iterable` regroups a stream into pieces that end at safe points (see `pretokenize.py`), so
it yields exactly `encode("".join(stream))` in constant memory; `files.encode_file` encodes a whole
file in parallel into a `.npy` array.

What it does not do: no training (see `bpe.py`), no padding or truncation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

from lmbasics.atomic import atomic_write_text
from lmbasics.checks import check_positive
from lmbasics.tokenization import gpt2_bytes
from lmbasics.tokenization.pretokenize import (
    iter_chunks,
    pretokenize,
    special_token_regex,
    split_on_special_tokens,
)
from lmbasics.tokenization.vocab import PAIR_LOW as _LOW
from lmbasics.tokenization.vocab import PAIR_SHIFT as _SHIFT

_NO_MERGE = 1 << 62  # larger than any packed (rank, id)
CACHE_LIMIT = 1 << 20  # distinct pre-tokens kept; the cache is emptied when it grows past this
STREAM_PIECE_CHARS = 1 << 20  # text encoded at a time by encode_iterable

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
                raise ValueError(
                    f"merge {rank} ({left!r}, {right!r}) uses or makes a token that is not in the vocabulary"
                ) from None
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
            raise ValueError(
                f"byte 0x{byte:02x} (in {word!r}) is not in the vocabulary, so this text cannot be encoded"
            )
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
        """Token ids of `text`; special tokens in it become their single ids.

        The ids equal `reference.naive_encode`'s, which applies every merge in training order to every
        pre-token. Here each distinct pre-token is encoded once (then cached), by repeatedly merging its
        lowest-ranked pair: the work follows the pre-token's length, not the number of merges.
        """
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

    def encode_iterable(self, iterable: Iterable[str], *, piece_chars: int | None = None) -> Iterator[int]:
        """Lazily yield the ids of the concatenated strings (e.g. a file's lines) in constant memory.

        The result equals `encode("".join(iterable))`: the stream is cut only at points where that
        cannot change a pre-token or a special token. About `piece_chars` characters (default
        `STREAM_PIECE_CHARS`) are encoded at a time, which bounds the memory it holds.
        """
        piece_chars = STREAM_PIECE_CHARS if piece_chars is None else piece_chars
        check_positive(piece_chars=piece_chars)  # here, not on the first next(): a bad value fails at the call
        return self._encode_stream(iterable, piece_chars)

    def _encode_stream(self, iterable: Iterable[str], piece_chars: int) -> Iterator[int]:
        for piece in iter_chunks(iterable, piece_chars, self._special_re, self._longest_special):
            yield from self.encode(piece)

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

    @property
    def vocab_size(self) -> int:
        """One more than the largest id: the number of rows a model's embedding needs."""
        return max(self.vocab) + 1

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={len(self.vocab)}, merges={len(self.merges)}, special_tokens={self.special_tokens})"
        )
