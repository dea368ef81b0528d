"""The readable BPE (chapter 2): a naive trainer and a naive encoder, written after the handout's description.

This module is the definition; `bpe.py` and `tokenizer.py` are the fast versions. Like tiktoken's
`_educational.py`, it favours plain code over speed. `naive_merges` recounts every pair of every word for
every merge, and encoding tries every merge on every pre-token. `merge_steps` (`incremental_merges` takes
its first n merges) is the same trainer with the one idea that makes BPE training practical: keep the
pair counts from merge to merge and update only those of the words that a merge rewrites. The tests use
these as the oracle for the fast code (same merges, same ids), and chapters 2 and 3 walk through them.

- **Training** (handout §2.4): cut the text into pre-tokens (special tokens removed first, so no pair
  spans two documents), count them, write each as a tuple of single bytes, then repeat: count the
  adjacent pairs (weighted by the word's count), take the most frequent one (ties: the
  lexicographically greater pair), and replace it in every word by the merged token.
- **Encoding** (handout §2.6.1): cut the text the same way (special tokens become their ids), then
  apply the merges to each pre-token in the order they were learned.

What it does not do: files, streams, parallelism, or anything fast; use `train_bpe` and `Tokenizer`.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import regex

from lmbasics.tokenization.bpe import build_vocab
from lmbasics.tokenization.pretokenize import GPT2_PATTERN

Word = tuple[bytes, ...]  # a pre-token as a sequence of tokens, each a byte string
Pair = tuple[bytes, bytes]


def split_specials(text: str, special_tokens: Sequence[str]) -> list[str]:
    """`[text, special, text, ..., text]`, cut at the special tokens (the longest first where they overlap).

    >>> split_specials("a<|e|>b", ["<|e|>"])
    ['a', '<|e|>', 'b']
    """
    if not special_tokens:
        return [text]
    longest_first = sorted(special_tokens, key=len, reverse=True)
    return re.split("(" + "|".join(map(re.escape, longest_first)) + ")", text)


def count_words(text: str, special_tokens: Sequence[str] = ()) -> Counter[bytes]:
    """How often each pre-token (as UTF-8 bytes) occurs in `text`; special tokens only separate documents.

    >>> count_words("low low lower<|e|>low", ["<|e|>"])
    Counter({b'low': 2, b' low': 1, b' lower': 1})
    """
    counts: Counter[bytes] = Counter()
    for document in split_specials(text, special_tokens)[::2]:
        counts.update(word.encode("utf-8") for word in regex.findall(GPT2_PATTERN, document))
    return counts


def count_pairs(words: Mapping[Word, int]) -> Counter[Pair]:
    """How often each pair of adjacent tokens occurs, summed over the words (weighted by their counts).

    >>> count_pairs({(b"l", b"o", b"w"): 5, (b"o", b"w"): 1})
    Counter({(b'o', b'w'): 6, (b'l', b'o'): 5})
    """
    pairs: Counter[Pair] = Counter()
    for word, count in words.items():
        for pair in zip(word, word[1:]):
            pairs[pair] += count
    return pairs


def most_frequent(pairs: Mapping[Pair, int]) -> Pair:
    """The most frequent pair; ties go to the lexicographically greater pair (the handout's rule).

    >>> most_frequent({(b"e", b"s"): 9, (b"s", b"t"): 9, (b"o", b"w"): 7})
    (b's', b't')
    """
    return max(pairs, key=lambda pair: (pairs[pair], pair))


def merge_word(word: Word, pair: Pair) -> Word:
    """`word` with every occurrence of `pair` replaced by one token, scanning left to right.

    >>> merge_word((b"a", b"a", b"a", b"b"), (b"a", b"a"))
    (b'aa', b'a', b'b')
    """
    out: list[bytes] = []
    i = 0
    while i < len(word):
        if word[i : i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def naive_merges(word_counts: Mapping[bytes, int] | Mapping[str, int], num_merges: int) -> list[Pair]:
    """Up to `num_merges` merges learned from `{pre-token: count}` (bytes or str keys), recounting every time.

    The handout's example (bpe_example), with whitespace pre-tokenization:

    >>> merges = naive_merges({b"low": 5, b"lower": 2, b"widest": 3, b"newest": 6}, 6)
    >>> [(a + b" " + b).decode() for a, b in merges]
    ['s t', 'e st', 'o w', 'l ow', 'w est', 'n e']
    """
    words: dict[Word, int] = {}
    for word, count in word_counts.items():
        raw = word.encode("utf-8") if isinstance(word, str) else word
        if count > 0:
            words[tuple(bytes((b,)) for b in raw)] = count
    merges: list[Pair] = []
    while len(merges) < num_merges:
        pairs = count_pairs(words)
        if not pairs:
            break  # every word is a single token
        best = most_frequent(pairs)
        merges.append(best)
        words = {merge_word(word, best): count for word, count in words.items()}
    return merges


@dataclass(frozen=True)
class _Candidate:
    """A heap entry: `heapq` pops the smallest, so "smaller" here means more frequent, then the greater pair."""

    count: int
    pair: Pair

    def __lt__(self, other: _Candidate) -> bool:
        return (self.count, self.pair) > (other.count, other.pair)


def incremental_merges(word_counts: Mapping[bytes, int] | Mapping[str, int], num_merges: int) -> list[Pair]:
    """The merges of `naive_merges`, without recounting: the first `num_merges` of `merge_steps`.

    >>> merges = incremental_merges({b"low": 5, b"lower": 2, b"widest": 3, b"newest": 6}, 6)
    >>> [(a + b" " + b).decode() for a, b in merges]
    ['s t', 'e st', 'o w', 'l ow', 'w est', 'n e']
    """
    return [pair for pair, _ in itertools.islice(merge_steps(word_counts), num_merges)]


def merge_steps(word_counts: Mapping[bytes, int] | Mapping[str, int]) -> Iterator[tuple[Pair, int]]:
    """Each merge and its count, in order, until no pair is left; only the words a merge rewrites are recounted.

    `pairs` holds every pair's count and `has_pair` the words it occurs in. Merging a pair rewrites just
    those words; each one takes its old pairs' counts away and adds its new pairs', so a pair that no
    rewritten word touches keeps its count. The next merge comes from a heap of (count, pair): a count
    that changed is pushed again, and a popped entry whose count is out of date is skipped.

    >>> [(a + b" " + b).decode() + f" x{n}" for (a, b), n in merge_steps({b"low": 5, b"lower": 2})]
    ['o w x7', 'l ow x7', 'low e x2', 'lowe r x2']
    """
    words: list[Word] = []  # each distinct pre-token as a tuple of tokens
    counts: list[int] = []  # how often it occurs
    pairs: Counter[Pair] = Counter()  # (a, b) -> occurrences, summed over the words
    has_pair: defaultdict[Pair, set[int]] = defaultdict(set)  # (a, b) -> indices of words that hold it (or did)
    for word, count in word_counts.items():
        raw = word.encode("utf-8") if isinstance(word, str) else word
        if count > 0:
            words.append(tuple(bytes((b,)) for b in raw))
            counts.append(count)
            for pair in zip(words[-1], words[-1][1:]):
                pairs[pair] += count
                has_pair[pair].add(len(words) - 1)
    heap = [_Candidate(count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    while heap:
        top = heapq.heappop(heap)
        if pairs.get(top.pair) != top.count:
            continue  # stale: the pair's count changed since this entry was pushed
        best = top.pair
        yield best, top.count
        change: Counter[Pair] = Counter()
        for i in has_pair.pop(best):
            old = words[i]
            words[i] = new = merge_word(old, best)
            for pair in zip(old, old[1:]):
                change[pair] -= counts[i]
            for pair in zip(new, new[1:]):
                change[pair] += counts[i]
                has_pair[pair].add(i)
        for pair, delta in change.items():
            if delta:  # pairs of a rewritten word that the merge did not touch cancel out
                pairs[pair] += delta
                if pairs[pair]:
                    heapq.heappush(heap, _Candidate(pairs[pair], pair))
                else:
                    del pairs[pair]


def naive_train_bpe(
    text: str, vocab_size: int, special_tokens: Sequence[str] = ()
) -> tuple[dict[int, bytes], list[Pair]]:
    """`train_bpe` on a string: the same `(vocab, merges)`, ids in the same order (see `bpe.build_vocab`).

    >>> vocab, merges = naive_train_bpe("low low lower", 256 + 1 + 2, ["<|endoftext|>"])
    >>> merges, vocab[257], vocab[258]
    ([(b'o', b'w'), (b'l', b'ow')], b'ow', b'low')
    """
    specials = list(dict.fromkeys(special_tokens))
    num_merges = vocab_size - 256 - len(specials)
    if num_merges < 0:
        raise ValueError(f"vocab_size must be at least {256 + len(specials)}, got {vocab_size}")
    merges = naive_merges(count_words(text, specials), num_merges)
    return build_vocab(specials, merges), merges


def encode_word(word: bytes, merges: Sequence[Pair]) -> Word:
    """The tokens of one pre-token: its bytes, then each merge applied in the order it was learned.

    >>> encode_word(b"the", [(b"t", b"h"), (b" ", b"c"), (b"th", b"e")])
    (b'the',)
    """
    tokens: Word = tuple(bytes((b,)) for b in word)
    for pair in merges:
        if len(tokens) == 1:
            break
        tokens = merge_word(tokens, pair)
    return tokens


def naive_encode(
    text: str, vocab: Mapping[int, bytes], merges: Sequence[Pair], special_tokens: Sequence[str] = ()
) -> list[int]:
    """Token ids of `text`, the handout's way (the same ids as `Tokenizer(vocab, merges, special_tokens).encode`).

    The handout's example (bpe_encoding):

    >>> vocab = {0: b" ", 1: b"a", 2: b"c", 3: b"e", 4: b"h", 5: b"t", 6: b"th", 7: b" c", 8: b" a", 9: b"the",
    ...          10: b" at"}
    >>> naive_encode("the cat ate", vocab, [(b"t", b"h"), (b" ", b"c"), (b" ", b"a"), (b"th", b"e"), (b" a", b"t")])
    [9, 7, 1, 5, 10, 3]
    """
    ids_of: dict[bytes, int] = {}
    for idx, token in sorted(vocab.items(), reverse=True):
        ids_of[token] = idx  # if two ids share bytes, the lower one wins
    ids: list[int] = []
    for i, part in enumerate(split_specials(text, special_tokens)):
        if i % 2:  # a special token
            if part.encode("utf-8") not in ids_of:
                raise ValueError(f"special token {part!r} is not in the vocabulary")
            ids.append(ids_of[part.encode("utf-8")])
            continue
        for word in regex.findall(GPT2_PATTERN, part):
            for token in encode_word(word.encode("utf-8"), merges):
                if token not in ids_of:
                    raise ValueError(f"token {token!r} (in {word!r}) is not in the vocabulary")
                ids.append(ids_of[token])
    return ids
