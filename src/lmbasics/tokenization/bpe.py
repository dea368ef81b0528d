"""Byte-level BPE training (handout §2.4, chapter 2): count pre-tokens, then merge the most frequent pair, repeatedly.

`train_bpe` is the handout's API. Its two phases:

1. **Pre-token counts** (`pretokenize.count_pretokens`): parallel over chunks of the file, streaming.
2. **Merges** (`bpe_merges`): each distinct pre-token is a "word", a list of token ids with a count.
   Pair counts live in a dict and in a heap ordered by (count, pair bytes), so the next merge is a pop
   rather than a scan. An index from each pair to the words containing it means a merge only touches
   those words, and only the pairs next to each merged occurrence change count. Heap entries are not
   removed when a count changes: a fresh entry is pushed, and a popped entry whose count is no longer
   current is skipped ("lazy deletion").

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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from lmbasics.tokenization.files import count_pretokens
from lmbasics.tokenization.gpt2_bytes import bytes_to_unicode
from lmbasics.tokenization.pretokenize import special_token_regex
from lmbasics.tokenization.vocab import PAIR_LOW as _LOW
from lmbasics.tokenization.vocab import PAIR_SHIFT as _SHIFT
from lmbasics.tokenization.vocab import check_vocab_size


def _reverse_order_key(token: bytes) -> bytes:
    """A byte string whose order is the reverse of `token`'s (x < y exactly when key(x) > key(y)).

    Each byte c becomes the two bytes (1, 255 - c) and the key ends with 0xFF, so a proper prefix
    (which sorts first) gets the larger key.
    """
    return b"".join(bytes((1, 255 - c)) for c in token) + b"\xff"


def bpe_merges(
    word_counts: Mapping[bytes, int], num_merges: int, *, progress: bool = False
) -> list[tuple[bytes, bytes]]:
    """Up to `num_merges` BPE merges learned from `{pre-token bytes: count}`, in creation order.

    Fewer merges come back when no pair is left (every word is a single token).
    """
    token_bytes: list[bytes] = [bytes((b,)) for b in range(256)]
    order_key: list[bytes] = [_reverse_order_key(t) for t in token_bytes]
    words: list[list[int]] = []
    counts: list[int] = []
    for word, count in word_counts.items():
        if len(word) > 1 and count > 0:
            words.append(list(word))
            counts.append(count)

    pair_counts: defaultdict[int, int] = defaultdict(int)
    pair_words: defaultdict[int, set[int]] = defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts)):
        for a, b in zip(word, word[1:]):
            pair = a << _SHIFT | b
            pair_counts[pair] += count
            pair_words[pair].add(index)
    heap = [(-count, order_key[p >> _SHIFT], order_key[p & _LOW], p) for p, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    with tqdm(total=num_merges, desc="merge", unit="merge", disable=not progress) as bar:
        while len(merges) < num_merges and heap:
            negative_count, _, _, pair = heapq.heappop(heap)
            if pair_counts.get(pair, 0) != -negative_count:
                continue  # stale entry: this pair's count changed after it was pushed
            a, b = pair >> _SHIFT, pair & _LOW
            new = len(token_bytes)
            token_bytes.append(token_bytes[a] + token_bytes[b])
            order_key.append(order_key[a][:-1] + order_key[b])
            merges.append((token_bytes[a], token_bytes[b]))
            changed = _apply_merge(a, b, new, pair_words.pop(pair), words, counts, pair_counts, pair_words)
            del pair_counts[pair]
            changed.discard(pair)
            for p in changed:
                count = pair_counts.get(p, 0)
                if count > 0:
                    heapq.heappush(heap, (-count, order_key[p >> _SHIFT], order_key[p & _LOW], p))
                elif count == 0 and p in pair_counts:
                    del pair_counts[p]
            bar.update(1)
    return merges


def _apply_merge(
    a: int,
    b: int,
    new: int,
    word_indices: Iterable[int],
    words: list[list[int]],
    counts: list[int],
    pair_counts: defaultdict[int, int],
    pair_words: defaultdict[int, set[int]],
) -> set[int]:
    """Replace (a, b) by `new` in the given words, updating neighbouring pair counts in place.

    Returns the pairs whose counts changed. For an occurrence x a b y becoming x new y, the pairs
    (x, a) and (b, y) lose the word's count and (x, new) and (new, y) gain it. Back-to-back
    occurrences (a b a b -> new new) are handled so that the shared middle pair is counted once.
    """
    changed: set[int] = set()
    mark = changed.add
    new_high = new << _SHIFT
    for index in word_indices:
        word = words[index]
        try:
            i = word.index(a)
        except ValueError:
            continue
        n = len(word)
        count = counts[index]
        out: list[int] = []
        start = 0
        merged_before = -2  # position in `out` of the last new token
        while True:
            # Move i to the next occurrence of (a, b).
            while i < n - 1 and word[i + 1] != b:
                try:
                    i = word.index(a, i + 1)
                except ValueError:
                    i = n
            if i >= n - 1:
                break
            if i > start:
                out += word[start:i]
            if out:
                if merged_before == len(out) - 1:
                    # new a b: the old pair (b, a) was removed as the previous occurrence's right neighbour.
                    pair = new_high | new
                else:
                    x = out[-1]
                    pair = x << _SHIFT | a
                    pair_counts[pair] -= count
                    mark(pair)
                    pair = x << _SHIFT | new
                pair_counts[pair] += count
                mark(pair)
                pair_words[pair].add(index)
            if i + 2 < n:
                y = word[i + 2]
                pair = b << _SHIFT | y
                pair_counts[pair] -= count
                mark(pair)
                if not (y == a and i + 3 < n and word[i + 3] == b):
                    pair = new_high | y
                    pair_counts[pair] += count
                    mark(pair)
                    pair_words[pair].add(index)
            merged_before = len(out)
            out.append(new)
            start = i + 2
            if start >= n:
                break
            try:
                i = word.index(a, start)
            except ValueError:
                break
        if start:
            if start < n:
                out += word[start:]
            words[index] = out
    return changed


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
    word_counts = {word.encode("utf-8"): count for word, count in counts.items()}
    del counts
    merges = bpe_merges(word_counts, vocab_size - 256 - len(special_tokens), progress=progress)
    return build_vocab(special_tokens, merges), merges
