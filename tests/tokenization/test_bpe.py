"""BPE training: reference fixtures, the handout's example, the naive trainer as oracle, pre-tokenization, chunking."""

import json
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbasics import train_bpe
from lmbasics.tokenization import files
from lmbasics.tokenization.bpe import Words, bpe_merges, build_vocab
from lmbasics.tokenization.files import count_pretokens, find_chunk_boundaries
from lmbasics.tokenization.pretokenize import (
    iter_chunks,
    last_safe_point,
    pretokenize,
    special_token_regex,
)
from lmbasics.tokenization.reference import (
    count_words,
    incremental_merges,
    merge_steps,
    naive_merges,
    naive_train_bpe,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "data"
HANDOUT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


def gpt2_printable_to_bytes() -> dict[str, int]:
    """GPT-2's bytes_to_unicode table (openai/gpt-2, src/encoder.py), inverted; independent of lmbasics."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def read_reference():
    table = gpt2_printable_to_bytes()
    merges = []
    for line in (FIXTURES / "train-bpe-reference-merges.txt").read_text(encoding="utf-8").splitlines():
        left, right = line.split(" ")
        merges.append((bytes(table[c] for c in left), bytes(table[c] for c in right)))
    vocab = json.loads((FIXTURES / "train-bpe-reference-vocab.json").read_text(encoding="utf-8"))
    vocab = {idx: bytes(table[c] for c in text) for text, idx in vocab.items()}
    return vocab, merges


# --- training --------------------------------------------------------------------------------------


def test_reproduces_reference_merges_and_vocabulary():
    vocab, merges = train_bpe(FIXTURES / "corpus.en", 500, [EOT], progress=False)
    ref_vocab, ref_merges = read_reference()
    assert merges == ref_merges
    assert vocab == ref_vocab  # same tokens under the same ids
    assert len(vocab) == 500 and vocab[0] == EOT.encode()


def test_many_chunks_and_workers_give_the_same_result(monkeypatch):
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 4096)  # corpus.en (133 KB) becomes ~30 chunks
    assert len(find_chunk_boundaries(FIXTURES / "corpus.en", 4096, [EOT])) > 20
    _, ref_merges = read_reference()
    _, merges = train_bpe(FIXTURES / "corpus.en", 500, [EOT], num_workers=2, progress=True)
    assert merges == ref_merges


def test_handout_example_merges():
    # handout §2.4, bpe_example: whitespace pre-tokenization, {low: 5, lower: 2, widest: 3, newest: 6}
    counts = {b"low": 5, b"lower": 2, b"widest": 3, b"newest": 6}
    expected = "s t, e st, o w, l ow, w est, n e, ne west, w i, wi d, wid est, low e, lowe r".split(", ")
    assert [f"{a.decode()} {b.decode()}" for a, b in bpe_merges(counts, 12)] == expected
    vocab = build_vocab([EOT], bpe_merges(counts, 6))
    assert [vocab[i] for i in range(257, 263)] == [b"st", b"est", b"ow", b"low", b"west", b"ne"]


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.text("abc", min_size=1, max_size=9).map(str.encode), st.integers(1, 6), max_size=12),
    st.integers(1, 25),
)
def test_incremental_merging_equals_naive_recounting(word_counts, num_merges):
    # A three-letter alphabet makes repeated and overlapping pairs (aaaa, abab) common.
    assert bpe_merges(word_counts, num_merges) == naive_merges(word_counts, num_merges)


def test_naive_trainer_reproduces_the_reference_fixture_and_checks_its_size():
    # The oracle itself is checked against the reference merges that train_bpe must reproduce.
    _, ref_merges = read_reference()
    text = (FIXTURES / "corpus.en").read_text(encoding="utf-8")
    assert naive_train_bpe(text, 300, [EOT])[1] == ref_merges[:43]
    assert naive_merges({"ab": 0, "cd": 2}, 5) == [(b"c", b"d")]  # words that never occur are ignored
    with pytest.raises(ValueError, match="at least 257"):
        naive_train_bpe(text, 256, [EOT])


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.text("abc", min_size=0, max_size=9).map(str.encode), st.integers(0, 6), max_size=12),
    st.integers(1, 25),
)
def test_the_dict_trainer_equals_naive_recounting(word_counts, num_merges):
    # The chapter's incremental trainer (pair counts in a dict, updated per rewritten word, a lazy heap)
    # against the recounting definition; runs like aaaa and abab, empty and zero-count words included.
    assert incremental_merges(word_counts, num_merges) == naive_merges(word_counts, num_merges)


def test_the_dict_trainer_reproduces_the_reference_fixture():
    # corpus.en until the reference's 243 merges: the same list as train_bpe and the fixture, in order.
    _, ref_merges = read_reference()
    counts = count_words((FIXTURES / "corpus.en").read_text(encoding="utf-8"), [EOT])
    assert incremental_merges(counts, len(ref_merges)) == ref_merges
    assert incremental_merges({"ab": 0, "cd": 2}, 5) == [(b"c", b"d")]  # words that never occur are ignored


def test_merge_steps_report_each_merge_with_its_count():
    # The handout's example until every word is one token: the counts it lists, then its 12 merges.
    steps = list(merge_steps({b"low": 5, b"lower": 2, b"widest": 3, b"newest": 6}))
    assert [n for _, n in steps] == [9, 9, 7, 7, 6, 6, 6, 3, 3, 3, 2, 2]
    assert [f"{a.decode()} {b.decode()}" for (a, b), _ in steps] == (
        "s t, e st, o w, l ow, w est, n e, ne west, w i, wi d, wid est, low e, lowe r".split(", ")
    )


def test_the_dict_trainer_equals_the_fast_engine_until_no_pair_is_left():
    # Every merge of the multilingual text (ties between rare pairs at the end) and of a TinyStories fixture.
    stories = count_words((FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8"), [EOT])
    for counts in (real_text_counts("multilingual/udhr_article1.tsv"), stories):
        counts = {w.encode("utf-8") if isinstance(w, str) else w: c for w, c in counts.items()}
        merges = incremental_merges(counts, 100_000)
        assert merges == bpe_merges(counts, 100_000)
        assert len(merges) < 100_000  # it ran out of pairs: every word is one token


def real_text_counts(name: str) -> Counter:
    """Pre-token counts of an embedded corpus, document by document, with the handout's regex (no lmbasics)."""
    text = (DATA / name).read_text(encoding="utf-8")
    return Counter(w for doc in text.split(EOT) for w in regex.findall(HANDOUT_PATTERN, doc))


def test_merges_equal_naive_recounting_on_real_web_text():
    # Real OpenWebText documents: long tail of rare words, numbers, punctuation and non-ASCII quotes.
    # Keys as str (what train_bpe passes, encoded inside) and as bytes give the same merges.
    counts = real_text_counts("owt/owt_real_valid_sample.txt")
    as_bytes = {w.encode("utf-8"): c for w, c in counts.items()}
    merges = bpe_merges(counts, 60)
    assert merges == bpe_merges(as_bytes, 60) == naive_merges(as_bytes, 60)


def test_every_merge_equals_naive_recounting_on_multilingual_text():
    # Until no pair is left: late merges are mostly ties between rare pairs (broken by bytes), and
    # multi-byte UTF-8 characters are merged byte by byte. Also crosses every heap refill threshold.
    counts = {w.encode("utf-8"): c for w, c in real_text_counts("multilingual/udhr_article1.tsv").items()}
    merges = bpe_merges(counts, 5000)
    assert len(merges) < 5000  # it ran out of pairs
    assert merges == naive_merges(counts, 5000)


def test_words_arrays_follow_merges():
    words = Words.from_counts({"aaaa": 2, "ab": 1, "b": 7, "": 3, "zz": 0})  # one-byte, empty, zero: dropped
    assert words.symbols.tolist() == [97, 97, 97, 97, 97, 98] and words.counts.tolist() == [2, 1]
    assert words.next.tolist() == [1, 2, 3, -1, 5, -1] and words.prev.tolist() == [-1, 0, 1, 2, -1, 4]
    assert bpe_merges(words, 3) == [(b"a", b"a"), (b"aa", b"aa"), (b"a", b"b")]
    assert words.symbols.tolist() == [257, -1, -1, -1, 258, -1]  # aaaa is one token, ab another


def test_special_tokens_split_documents_and_are_never_merged(tmp_path):
    # Reference: the naive trainer on the same text (it counts pre-tokens document by document).
    text = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")
    vocab, merges = train_bpe(FIXTURES / "tinystories_sample.txt", 256 + 1 + 150, [EOT], progress=False)
    assert (vocab, merges) == naive_train_bpe(text, 256 + 1 + 150, [EOT])
    counts = Counter(w.encode() for doc in text.split(EOT) for w in regex.findall(HANDOUT_PATTERN, doc))
    assert merges == naive_merges(counts, 150)
    assert vocab[0] == EOT.encode()
    assert not any(b"<|" in token or b"|>" in token for idx, token in vocab.items() if idx != 0)


def test_stops_when_no_pair_is_left(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("ab ab ab", encoding="utf-8")
    vocab, merges = train_bpe(path, 1000, [], progress=False)
    # Pre-tokens: 'ab' once, ' ab' twice. (a, b) occurs 3 times, then ( , ab) twice; then nothing is left.
    assert merges == [(b"a", b"b"), (b" ", b"ab")]
    assert len(vocab) == 256 + 2


@pytest.mark.parametrize(
    ("content", "vocab_size", "specials", "error", "message"),
    [
        (b"hello", 255, [], ValueError, "vocab_size must be at least 256"),
        (b"hello", 256, [EOT], ValueError, "257"),
        (b"", 300, [], ValueError, "empty"),
        (b"ok \xff\xfe", 300, [], ValueError, "not valid UTF-8 at byte 3"),
        (b"hello", 300, [""], ValueError, "non-empty"),
    ],
)
def test_bad_input_is_named(tmp_path, content, vocab_size, specials, error, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        train_bpe(path, vocab_size, specials, progress=False)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train_bpe(tmp_path / "missing.txt", 300, [])


# --- pre-tokenization ------------------------------------------------------------------------------

TRICKY = " \n\t\x0b\x1c\u3000\xa0aZ9é中½²'s.,!-_😀"


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.text(TRICKY, max_size=40)))
def test_pretokenize_equals_the_handout_regex(text):
    assert pretokenize(text) == regex.findall(HANDOUT_PATTERN, text)


@settings(max_examples=300, deadline=None)
@given(st.text(TRICKY, max_size=40), st.integers(0, 40))
def test_cutting_at_a_safe_point_keeps_the_pretokens(text, end):
    cut = last_safe_point(text, end)
    assert 0 <= cut <= end
    assert regex.findall(HANDOUT_PATTERN, text[:cut]) + regex.findall(HANDOUT_PATTERN, text[cut:]) == (
        regex.findall(HANDOUT_PATTERN, text)
    )


@pytest.mark.parametrize(
    "name",
    ["owt/webtext_substitute_valid.txt", "owt/owt_real_valid_sample.txt", "tinystories/tinystories_valid_sample.txt"],
)
def test_pretokenize_equals_the_handout_regex_on_corpora(name):
    text = (DATA / name).read_text(encoding="utf-8")
    assert pretokenize(text) == regex.findall(HANDOUT_PATTERN, text)


def test_iter_chunks_regroups_without_changing_pretokens_or_cutting_specials():
    specials = ["<|end of text|>", EOT]  # one with a space, which a safe point could fall inside
    text = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8").replace(EOT, "<|end of text|>")
    lines = text.splitlines(keepends=True)
    pieces = list(iter_chunks(lines, 200, special_token_regex(specials), max(map(len, specials))))
    assert len(pieces) > 5 and "".join(pieces) == text
    assert not any(p.count("<|end of text|>") != p.count("<|end") for p in pieces)
    assert [w for p in pieces for w in regex.findall(HANDOUT_PATTERN, p)] == regex.findall(HANDOUT_PATTERN, text)


def test_chunk_boundaries_fall_on_special_tokens_or_safe_newlines():
    path = DATA / "owt" / "webtext_substitute_valid.txt"
    raw = path.read_bytes()
    for specials in ([EOT], []):
        bounds = find_chunk_boundaries(path, 10_000, specials)
        assert bounds[0] == 0 and bounds[-1] == len(raw) and bounds == sorted(set(bounds)) and len(bounds) > 20
        for cut in bounds[1:-1]:
            at_special = raw.startswith(EOT.encode(), cut) and specials
            before = raw[max(0, cut - 4) : cut].decode("utf-8", errors="ignore")[-1:]
            assert at_special or (raw[cut : cut + 1] == b"\n" and not before.isspace())


def test_files_without_special_tokens_or_ascii_line_ends_are_still_split(tmp_path, monkeypatch):
    # Lines ending in non-ASCII letters or punctuation must still offer cuts, or an 11 GB file of them
    # would become one chunk: no parallelism and the whole file in memory.
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 4096)
    path = tmp_path / "lines.txt"
    text = "这是一个句子。\nSchöne Grüße aus Köln, schön\n  indented ö \n" * 2000
    path.write_text(text, encoding="utf-8")
    bounds = find_chunk_boundaries(path, 4096, [])
    assert len(bounds) > 20
    expected = Counter(regex.findall(HANDOUT_PATTERN, text))
    assert count_pretokens(path, [], num_workers=2, progress=False) == expected


def test_iter_chunks_never_cuts_inside_a_special_token_on_short_buffers():
    special = "<|end of text|>"
    texts = ["a", " b", special, " c", "d ", special] * 20
    pieces = list(iter_chunks(texts, 1, special_token_regex([special]), len(special)))
    assert "".join(pieces) == "".join(texts)
    assert all(p.count("<|end") == p.count(special) for p in pieces)


def test_count_pretokens_matches_whole_file_counting(monkeypatch):
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 8192)
    path = DATA / "owt" / "webtext_substitute_valid.txt"
    text = path.read_text(encoding="utf-8")
    expected = Counter(w for doc in text.split(EOT) for w in regex.findall(HANDOUT_PATTERN, doc))
    assert count_pretokens(path, [EOT], num_workers=2, progress=False) == expected


def test_counting_streams_in_bounded_memory(tmp_path, monkeypatch):
    # 4 MB of text in 256 KB chunks: memory must follow the chunk and the distinct pre-tokens, not the file.
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 1 << 18)
    monkeypatch.setattr(files, "MAX_CHUNK_BYTES", 1 << 18)
    monkeypatch.setattr(files, "COUNT_PIECE_CHARS", 1 << 16)
    story = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")
    path = tmp_path / "big.txt"
    copies = (4 << 20) // len(story.encode())
    path.write_text(story * copies, encoding="utf-8")
    tracemalloc.start()
    counts = count_pretokens(path, [EOT], num_workers=1, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counts[" the"] == copies * Counter(regex.findall(HANDOUT_PATTERN, story))[" the"]
    assert peak < 3 << 20, f"peak {peak / 2**20:.1f} MiB for a {path.stat().st_size / 2**20:.1f} MiB file"
