"""Byte-level BPE training (handout §2.4, chapter 2): count pre-tokens, then merge the most frequent pair, repeatedly.

`train_bpe` is the handout's API. `reference.py` holds the same algorithm written plainly
(`naive_train_bpe`, `naive_merges`): it gives the same merges and vocabulary (the tests compare them),
but recounts every pair of every word before each merge, so each merge costs a pass over all the words.
Here a merge costs work in proportion to the occurrences of the merged pair, which are few for most merges.
Its two phases:

1. **Pre-token counts** (`files.count_pretokens`): parallel over chunks of the file, streaming.
2. **Merges** (`bpe_merges`): each distinct pre-token is a "word" of token ids with a count. On web text
   there are millions of words, so they live in flat NumPy arrays (`Words`), not one Python list each:
   the symbols of all words end to end, a doubly linked list over them (`next`, `prev`: a merge unlinks
   the right symbol instead of rebuilding the word) and each position's word. Per token, an array of the
   positions where it may occur (`where`; stale entries are checked and dropped when read) finds a pair's
   occurrences: those of its rarer token whose neighbour is the other one. A merge then rewrites all its
   occurrences in a few vectorized steps, and the pair counts that change (the neighbours of each
   occurrence) are summed in NumPy before the Python dict of pair counts is touched once per pair.
   Memory: about 20 bytes per symbol plus the dict of live pairs, instead of a Python list per word and a
   set of word ids per pair.
   The next merge is a pop from a heap ordered by (count, pair bytes). Heap entries are not removed when a
   count changes: a fresh entry is pushed, and a popped entry whose count is no longer current is skipped
   ("lazy deletion"). Only pairs counted at least `threshold` times are pushed; when the heap runs dry the
   threshold drops and the heap is refilled from the dict, so the many rare pairs of a large corpus never
   enter it.

Ties are broken as the handout says, by the lexicographically greater pair of byte strings. The heap
is a min-heap, so each token carries a key whose byte order is the reverse of its bytes' order.

Vocabulary ids: the special tokens first, then the 256 single bytes in GPT-2's order (the printable
characters first, as in GPT-2's own vocab.json and the reference vocabulary of the handout's tests),
then one id per merge in creation order.

What it does not do: encoding (see `tokenizer.py`).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lmbasics.tokenization.files import count_pretokens
from lmbasics.tokenization.gpt2_bytes import bytes_to_unicode
from lmbasics.tokenization.pretokenize import special_token_regex
from lmbasics.tokenization.vocab import PAIR_LOW as _LOW
from lmbasics.tokenization.vocab import PAIR_SHIFT as _SHIFT
from lmbasics.tokenization.vocab import check_vocab_size

# The heap holds pairs counted at least `threshold` times; it starts at the top count over this and drops
# by this factor when the heap runs dry (a handful of refills over a whole training run).
_THRESHOLD_STEP = 16


def _reverse_order_key(token: bytes) -> bytes:
    """A byte string whose order is the reverse of `token`'s (x < y exactly when key(x) > key(y)).

    Each byte c becomes the two bytes (1, 255 - c) and the key ends with 0xFF, so a proper prefix
    (which sorts first) gets the larger key.
    """
    return b"".join(bytes((1, 255 - c)) for c in token) + b"\xff"


@dataclass
class Words:
    """Distinct pre-tokens of two or more bytes as flat arrays, for the merges (see the module docstring).

    `symbols[i]` is the token at position i (-1 once merged away); `next[i]` and `prev[i]` are the next and
    previous live positions of the same word (-1 at its ends); `word_of[i]` is the word of position i and
    `counts[w]` how often word w occurs.
    """

    symbols: np.ndarray  # int32, one per byte of every word
    next: np.ndarray  # int32
    prev: np.ndarray  # int32
    word_of: np.ndarray  # int32
    counts: np.ndarray  # int64, one per word

    @classmethod
    def from_counts(cls, word_counts: Mapping[bytes, int] | Mapping[str, int]) -> Words:
        """Words of `{pre-token: count}`, keys as bytes or as str (encoded as UTF-8); words of one byte are dropped."""
        keys = [w if isinstance(w, bytes) else w.encode("utf-8") for w, c in word_counts.items() if c > 0]
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        keep = lengths > 1
        counts = np.fromiter((c for c in word_counts.values() if c > 0), dtype=np.int64, count=len(keys))[keep]
        symbols = np.frombuffer(b"".join(keys), dtype=np.uint8)[np.repeat(keep, lengths)].astype(np.int32)
        del keys
        lengths = lengths[keep]
        ends = np.cumsum(lengths)
        n = len(symbols)
        next_ = np.arange(1, n + 1, dtype=np.int32)
        next_[ends - 1] = -1
        prev = np.arange(-1, n - 1, dtype=np.int32)
        prev[ends - lengths] = -1
        word_of = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
        return cls(symbols, next_, prev, word_of, counts)


def _sum_by_pair(pairs: np.ndarray, deltas: np.ndarray) -> tuple[list[int], list[int]]:
    """The distinct packed pairs and the sum of `deltas` for each, as Python lists (for the dict updates)."""
    if len(pairs) == 0:
        return [], []
    order = np.argsort(pairs, kind="stable")
    pairs, deltas = pairs[order], deltas[order]
    starts = np.flatnonzero(np.concatenate(([True], pairs[1:] != pairs[:-1])))
    return pairs[starts].tolist(), np.add.reduceat(deltas, starts).tolist()


def _occurrences(words: Words, where: list[np.ndarray], a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (p, q) of the occurrences of pair (a, b) that a left-to-right merge rewrites, in order.

    Found from the positions of the rarer of the two tokens (whose stale entries are dropped on the way).
    For a == b, in a run a a a only the first pair merges: occurrences overlapping the previous one go.
    """
    if a == b or len(where[a]) <= len(where[b]):
        p, q = _linked_to(words, where, a, words.next, b)
        if a == b and len(p) > 1:
            overlaps = np.zeros(len(p), dtype=bool)
            overlaps[1:] = p[1:] == q[:-1]  # this occurrence starts where the previous one ends
            if overlaps.any():
                index = np.arange(len(p))
                run_start = np.maximum.accumulate(np.where(overlaps, 0, index))
                keep = (index - run_start) % 2 == 0  # runs of overlapping occurrences: every other one
                p, q = p[keep], q[keep]
    else:
        q, p = _linked_to(words, where, b, words.prev, a)
    return p, q


def _linked_to(
    words: Words, where: list[np.ndarray], token: int, link: np.ndarray, other: int
) -> tuple[np.ndarray, np.ndarray]:
    """The live positions i of `token` whose neighbour `link[i]` (next or prev) holds `other`, and those neighbours.

    Drops the stale entries of `where[token]` (positions merged away or rewritten since) on the way.
    """
    symbols = words.symbols
    positions = where[token] = where[token][symbols[where[token]] == token]
    neighbours = link[positions]
    found = neighbours >= 0
    found[found] = symbols[neighbours[found]] == other
    return positions[found], neighbours[found]


def _merge_pair(words: Words, p: np.ndarray, q: np.ndarray, a: int, b: int, new: int) -> tuple[np.ndarray, np.ndarray]:
    """Rewrite the occurrences (p, q) of (a, b) as `new`; returns the changes of pair counts (packed pairs, deltas).

    For x a b y becoming x new y, the pairs (x, a), (a, b) and (b, y) lose the word's count and (x, new)
    and (new, y) gain it. Back-to-back occurrences (a b a b -> new new) share the middle pair: it is
    counted once, as the right neighbour of the first occurrence.
    """
    symbols, next_, prev = words.symbols, words.next, words.prev
    count = words.counts[words.word_of[p]]
    left, right = prev[p], next_[q]
    follows = np.zeros(len(p), dtype=bool)
    follows[1:] = left[1:] == q[:-1]  # x is the previous occurrence's b
    has_left = (left >= 0) & ~follows
    has_right = right >= 0
    x, y = left[has_left], right[has_right]
    count_x, count_y = count[has_left], count[has_right]
    x_high = symbols[x].astype(np.int64) << _SHIFT
    y_before = symbols[y].astype(np.int64)
    symbols[p] = new
    symbols[q] = -1
    next_[p] = right
    prev[y] = p[has_right]
    y_after = symbols[y].astype(np.int64)  # `new` where y was the next occurrence's a
    pairs = np.concatenate(
        (
            np.full(len(p), a << _SHIFT | b, dtype=np.int64),
            x_high | a,
            (b << _SHIFT) | y_before,
            x_high | new,
            (new << _SHIFT) | y_after,
        )
    )
    return pairs, np.concatenate((-count, -count_x, -count_y, count_x, count_y))


def bpe_merges(
    word_counts: Mapping[bytes, int] | Mapping[str, int] | Words, num_merges: int, *, progress: bool = False
) -> list[tuple[bytes, bytes]]:
    """Up to `num_merges` BPE merges learned from `{pre-token: count}` (bytes or str keys) or `Words`, in order.

    Fewer merges come back when no pair is left (every word is a single token). `Words` are consumed.
    The merges equal `reference.naive_merges`'s; instead of recounting all pairs per merge, it finds the
    merged pair's occurrences through `where` and updates only the counts of their neighbouring pairs.

    >>> merges = bpe_merges({b"low": 5, b"lower": 2, b"widest": 3, b"newest": 6}, 6)
    >>> [(a + b" " + b).decode() for a, b in merges]
    ['s t', 'e st', 'o w', 'l ow', 'w est', 'n e']
    """
    words = word_counts if isinstance(word_counts, Words) else Words.from_counts(word_counts)
    symbols = words.symbols
    token_bytes: list[bytes] = [bytes((t,)) for t in range(256)]
    order_key: list[bytes] = [_reverse_order_key(t) for t in token_bytes]

    # Initial pairs are two bytes: count them with bincount on a * 256 + b (float64 is exact below 2**53).
    starts = np.flatnonzero(words.next >= 0)
    byte_pairs = symbols[starts] * 256 + symbols[starts + 1]
    totals = np.bincount(byte_pairs, weights=words.counts[words.word_of[starts]], minlength=65536)
    del starts, byte_pairs
    pair_counts: dict[int, int] = {
        (int(ab) >> 8) << _SHIFT | (int(ab) & 255): int(totals[ab]) for ab in np.flatnonzero(totals)
    }
    order = np.argsort(symbols.astype(np.uint8), kind="stable").astype(np.int32)
    bounds = np.searchsorted(symbols[order], np.arange(257))
    where: list[np.ndarray] = [order[bounds[t] : bounds[t + 1]] for t in range(256)]
    del order

    def fill_heap(threshold: int) -> list[tuple[int, bytes, bytes, int]]:
        heap = [(-c, order_key[p >> _SHIFT], order_key[p & _LOW], p) for p, c in pair_counts.items() if c >= threshold]
        heapq.heapify(heap)
        return heap

    threshold = max(1, max(pair_counts.values(), default=0) // _THRESHOLD_STEP)
    heap = fill_heap(threshold)
    get, push, pop = pair_counts.get, heapq.heappush, heapq.heappop
    merges: list[tuple[bytes, bytes]] = []
    with tqdm(total=num_merges, desc="merge", unit="merge", disable=not progress) as bar:
        while len(merges) < num_merges:
            if not heap:  # every pair counted >= threshold is merged or stale: lower the bar
                if threshold == 1 or not pair_counts:
                    break
                threshold = max(1, threshold // _THRESHOLD_STEP)
                heap = fill_heap(threshold)
                continue
            negative_count, _, _, pair = pop(heap)
            if get(pair, 0) != -negative_count:
                continue  # stale entry: this pair's count changed after it was pushed
            a, b = pair >> _SHIFT, pair & _LOW
            new = len(token_bytes)
            token_bytes.append(token_bytes[a] + token_bytes[b])
            order_key.append(order_key[a][:-1] + order_key[b])
            merges.append((token_bytes[a], token_bytes[b]))
            p, q = _occurrences(words, where, a, b)
            where.append(p)
            for changed, delta in zip(*_sum_by_pair(*_merge_pair(words, p, q, a, b, new))):
                if delta:
                    count = get(changed, 0) + delta
                    if count:
                        pair_counts[changed] = count
                        if count >= threshold:
                            push(heap, (-count, order_key[changed >> _SHIFT], order_key[changed & _LOW], changed))
                    else:
                        del pair_counts[changed]
            bar.update(1)
    return merges


def build_vocab(special_tokens: Sequence[str], merges: Sequence[tuple[bytes, bytes]]) -> dict[int, bytes]:
    """Special tokens, then the 256 bytes in GPT-2's order, then each merge's result."""
    vocab = {i: token.encode("utf-8") for i, token in enumerate(special_tokens)}
    offset = len(vocab)
    vocab.update({offset + i: bytes((b,)) for i, b in enumerate(bytes_to_unicode())})
    offset += 256
    vocab.update({offset + i: left + right for i, (left, right) in enumerate(merges)})
    return vocab


def train_bpe(
    input_path: str | os.PathLike,
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    *,
    num_workers: int | None = None,
    progress: bool = True,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train a byte-level BPE tokenizer on a UTF-8 text file (the handout's `train_bpe`).

    `vocab_size` counts everything: 256 bytes, the special tokens and the merges. Special tokens are
    cut out of the text before pre-tokenization (no pre-token or merge spans one) and get the first
    ids. Pre-tokenization runs in `num_workers` processes (default: all cores). Returns
    `(vocab, merges)`: `{id: token bytes}` and the merges in the order they were learned.
    """
    special_tokens = list(dict.fromkeys(special_tokens))  # drop repeats, keep order
    special_token_regex(special_tokens)  # validates them
    check_vocab_size(vocab_size, special_tokens)
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"training file is empty: {path}")
    counts = count_pretokens(path, special_tokens, num_workers=num_workers, progress=progress)
    words = Words.from_counts(counts)
    del counts  # the arrays hold what the merges need; the dict of strings is most of the memory
    merges = bpe_merges(words, vocab_size - 256 - len(special_tokens), progress=progress)
    return build_vocab(special_tokens, merges), merges
