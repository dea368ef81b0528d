"""Tokenizer: ids identical to tiktoken's GPT-2, round trips, special tokens, streaming, files and errors."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbasics import Tokenizer, encode_file, load_or_train_tokenizer, token_arrays, train_bpe
from lmbasics.book import tokenizers as book_tokenizers
from lmbasics.tokenization import files
from lmbasics.tokenization import tokenizer as tokenizer_module
from lmbasics.tokenization.reference import naive_encode

from references import gpt2_tiktoken

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "data"
EOT = "<|endoftext|>"
FIXTURE_TEXTS = ["address.txt", "german.txt", "tinystories_sample.txt", "corpus.en"]
CORPORA = sorted(str(p.relative_to(DATA)) for p in DATA.glob("*/*.t[xs][tv]"))


@pytest.fixture(scope="module")
def gpt2() -> Tokenizer:
    return Tokenizer.from_files(FIXTURES / "gpt2_vocab.json", FIXTURES / "gpt2_merges.txt", [EOT])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tiktoken.Encoding:
    """tiktoken's own GPT-2 encoding, built offline by tiktoken's loader from the fixture files."""
    return gpt2_tiktoken(tmp_path_factory.mktemp("tiktoken"))


# --- identical to tiktoken -------------------------------------------------------------------------


def test_corpora_are_found():
    assert len(CORPORA) >= 5


@pytest.mark.parametrize("name", FIXTURE_TEXTS)
def test_ids_equal_tiktoken_on_fixtures(name, gpt2, reference):
    text = (FIXTURES / name).read_text(encoding="utf-8")
    assert gpt2.encode(text) == reference.encode(text, allowed_special={EOT})


@pytest.mark.parametrize("name", CORPORA)
def test_ids_equal_tiktoken_on_corpora(name, gpt2, reference):
    text = (DATA / name).read_text(encoding="utf-8")
    assert gpt2.encode(text) == reference.encode(text, allowed_special={EOT})


def test_handout_encoding_example():
    # handout §2.6.1, bpe_encoding: 'the cat ate' -> [9, 7, 1, 5, 10, 3]
    vocab = {0: b" ", 1: b"a", 2: b"c", 3: b"e", 4: b"h", 5: b"t", 6: b"th", 7: b" c", 8: b" a", 9: b"the", 10: b" at"}
    merges = [(b"t", b"h"), (b" ", b"c"), (b" ", b"a"), (b"th", b"e"), (b" a", b"t")]
    tokenizer = Tokenizer(vocab, merges)
    assert tokenizer.encode("the cat ate") == [9, 7, 1, 5, 10, 3]
    with pytest.raises(ValueError, match=r"byte 0x64 \(in ' dog'\) is not in the vocabulary"):
        tokenizer.encode("the dog")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_random_text_round_trips_and_equals_tiktoken(gpt2, reference, text):
    ids = gpt2.encode(text)
    assert gpt2.decode(ids) == text
    assert ids == reference.encode_ordinary(text)


@pytest.fixture(scope="module")
def small() -> Tokenizer:
    """A tokenizer of 500 merges trained on corpus.en: the naive encoder is fast enough to be its oracle."""
    vocab, merges = train_bpe(FIXTURES / "corpus.en", 757, [EOT], progress=False)
    return Tokenizer(vocab, merges, [EOT])


@settings(max_examples=100, deadline=None)
@given(st.text(" \nabcdeilnorst'.,é中😀", max_size=60) | st.text(max_size=30))
def test_encode_equals_the_naive_encoder(small, text):
    # The naive encoder applies the merges in training order to each pre-token (handout §2.6.1).
    text = text.replace("<", "")
    assert small.encode(text) == naive_encode(text, small.vocab, small.merges, [EOT])
    joined = text + EOT + text
    assert small.encode(joined) == naive_encode(joined, small.vocab, small.merges, [EOT])


def test_encode_equals_the_naive_encoder_on_text_and_gpt2(small, gpt2):
    text = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")[:3000]
    assert small.encode(text) == naive_encode(text, small.vocab, small.merges, [EOT])
    words = " The tokenizer's merges, in order: 1234 naïve"
    assert gpt2.encode(words) == naive_encode(words, gpt2.vocab, gpt2.merges)


@pytest.mark.parametrize("name", ["german.txt", "address.txt"])
def test_round_trip_on_fixtures(name, gpt2):
    text = (FIXTURES / name).read_text(encoding="utf-8")
    assert gpt2.decode(gpt2.encode(text)) == text


def test_round_trip_on_multilingual_sample(gpt2):
    text = (DATA / "multilingual" / "udhr_article1.tsv").read_text(encoding="utf-8")
    assert gpt2.decode(gpt2.encode(text)) == text


# --- special tokens, decoding ----------------------------------------------------------------------


def test_special_token_is_one_id_and_never_split(gpt2, reference):
    text = f"Hello{EOT}world {EOT}{EOT}\n"
    ids = gpt2.encode(text)
    assert ids.count(50256) == 3 and ids == reference.encode(text, allowed_special={EOT})
    # Without the special token, its text is ordinary bytes.
    plain = Tokenizer(gpt2.vocab, gpt2.merges)
    assert 50256 not in plain.encode(text) and plain.decode(plain.encode(text)) == text


def test_overlapping_special_tokens_match_longest_first(gpt2):
    double = EOT + EOT
    tok = Tokenizer(gpt2.vocab, gpt2.merges, [EOT, double])
    ids = tok.encode(f"a{double}b{EOT}c")
    double_id = tok.special_ids[double]
    assert double_id == 50257  # appended after the largest id
    assert ids.count(double_id) == 1 and ids.count(50256) == 1
    assert tok.decode(ids) == f"a{double}b{EOT}c"
    assert [tok.decode([i]) for i in ids] == ["a", double, "b", EOT, "c"]


def test_invalid_utf8_decodes_to_replacement_character(gpt2):
    lone = next(i for i, token in gpt2.vocab.items() if token == b"\xc3")  # first byte of 'é' alone
    assert gpt2.decode([lone]) == "\ufffd"
    assert gpt2.decode([lone, *gpt2.encode("ok")]) == "\ufffdok"


def test_unknown_id_is_an_error(gpt2):
    with pytest.raises(ValueError, match="token id 99999 is not in the vocabulary"):
        gpt2.decode([1, 99999])
    with pytest.raises(ValueError, match="token id 99999 is not in the vocabulary"):
        gpt2.decode(iter([1, 99999]))


def test_decode_accepts_arrays_and_tensors(gpt2):
    torch = pytest.importorskip("torch")
    ids = gpt2.encode("Hello, world")
    assert gpt2.decode(np.array(ids, dtype=np.uint16)) == gpt2.decode(torch.tensor(ids)) == "Hello, world"


# --- streaming and files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tinystories_sample.txt", "german.txt", "corpus.en"])
def test_encode_iterable_equals_encode(name, monkeypatch, gpt2):
    monkeypatch.setattr(tokenizer_module, "STREAM_PIECE_CHARS", 500)  # many pieces
    path = FIXTURES / name
    with path.open(encoding="utf-8") as f:
        streamed = list(gpt2.encode_iterable(f))
    assert streamed == gpt2.encode(path.read_text(encoding="utf-8"))


def test_encode_iterable_is_lazy_and_bounded(tmp_path, monkeypatch, gpt2):
    monkeypatch.setattr(tokenizer_module, "STREAM_PIECE_CHARS", 1 << 15)
    story = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")
    path = tmp_path / "big.txt"
    copies = (4 << 20) // len(story.encode())
    path.write_text(story * copies, encoding="utf-8")
    per_copy = len(gpt2.encode(story))
    tracemalloc.start()
    with path.open(encoding="utf-8") as f:
        count = sum(1 for _ in gpt2.encode_iterable(f))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == copies * per_copy
    assert peak < 1 << 20, f"peak {peak / 2**20:.1f} MiB for a {path.stat().st_size / 2**20:.1f} MiB file"


@pytest.mark.parametrize("workers", [1, 2])
def test_encode_file_writes_the_ids_of_encode(tmp_path, monkeypatch, workers, gpt2, reference):
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 8192)
    monkeypatch.setattr(files, "FILE_CHUNK_BYTES", 8192)
    source = DATA / "owt" / "owt_real_valid_sample.txt"
    out = tmp_path / "ids.npy"
    count = encode_file(gpt2, source, out, num_workers=workers, progress=False)
    ids = np.load(out)
    assert ids.dtype == np.uint16 and ids.ndim == 1 and count == len(ids)
    assert ids.tolist() == reference.encode(source.read_text(encoding="utf-8"), allowed_special={EOT})
    assert not list(tmp_path.glob("*.tmp"))


def test_encode_file_uses_uint32_for_large_vocabularies(tmp_path):
    vocab = {b: bytes((b,)) for b in range(256)}
    vocab[70_000] = b"hi"
    tok = Tokenizer(vocab, [(b"h", b"i")])
    source = tmp_path / "in.txt"
    source.write_text("hi there", encoding="utf-8")
    encode_file(tok, source, tmp_path / "out.npy", num_workers=1, progress=False)
    ids = np.load(tmp_path / "out.npy")
    assert ids.dtype == np.uint32 and ids.tolist() == tok.encode("hi there") and ids[0] == 70_000


def test_encode_file_failure_keeps_the_previous_output(tmp_path, monkeypatch, gpt2):
    monkeypatch.setattr(files, "MIN_CHUNK_BYTES", 4096)
    monkeypatch.setattr(files, "FILE_CHUNK_BYTES", 4096)
    source = tmp_path / "in.txt"
    source.write_bytes((FIXTURES / "corpus.en").read_bytes()[:50_000] + b"\n\xff oops")
    out = tmp_path / "out.npy"
    np.save(out, np.arange(3, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"not valid UTF-8 at byte 50,001"):
        encode_file(gpt2, source, out, num_workers=2, progress=False)
    assert np.load(out).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.npy"]


@pytest.mark.parametrize(("content", "message"), [(None, "not found"), (b"", "empty")])
def test_encode_file_bad_input(tmp_path, content, message, gpt2):
    source = tmp_path / "in.txt"
    if content is not None:
        source.write_bytes(content)
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        encode_file(gpt2, source, tmp_path / "out.npy", progress=False)


# --- saving and loading ----------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    vocab, merges = train_bpe(FIXTURES / "corpus.en", 400, [EOT], progress=False)
    Tokenizer(vocab, merges, [EOT]).save(tmp_path / "tok")
    loaded = Tokenizer.load(tmp_path / "tok")
    assert loaded.vocab == vocab and loaded.merges == merges and loaded.special_tokens == [EOT]
    again = Tokenizer.from_files(tmp_path / "tok" / "vocab.json", tmp_path / "tok" / "merges.txt", [EOT])
    assert again.vocab == vocab
    readable = (tmp_path / "tok" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(readable) == 1 + len(vocab) and "'<|endoftext|>'" in readable[1]


def test_saved_gpt2_files_equal_the_originals(tmp_path, gpt2):
    gpt2.save(tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8")) == json.loads(
        (FIXTURES / "gpt2_vocab.json").read_text(encoding="utf-8")
    )
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").split("\n") == [
        line
        for line in (FIXTURES / "gpt2_merges.txt").read_text(encoding="utf-8").split("\n")
        if not line.startswith("#version")
    ]


def test_load_or_train_trains_once_then_loads(tmp_path, monkeypatch):
    directory = tmp_path / "tokenizers" / "small"
    first = load_or_train_tokenizer(directory, FIXTURES / "corpus.en", 300)
    assert (directory / "vocab.json").is_file() and len(first) == 300
    calls = []
    monkeypatch.setattr(book_tokenizers, "train_bpe", lambda *a, **k: calls.append(a) or train_bpe(*a, **k))
    second = load_or_train_tokenizer(directory, FIXTURES / "corpus.en", 300)
    assert calls == [] and second.vocab == first.vocab and second.merges == first.merges
    third = load_or_train_tokenizer(directory, FIXTURES / "corpus.en", 310)  # other settings: retrain
    assert len(calls) == 1 and len(third) == 310 and third.merges[:43] == first.merges


@pytest.mark.parametrize(
    ("vocab", "merges", "message"),
    [
        ({i: bytes((i,)) for i in range(256)}, [(b"a", b"bc")], "merge 0"),
    ],
)
def test_inconsistent_vocabulary_or_merges_are_named(vocab, merges, message):
    with pytest.raises(ValueError, match=message):
        Tokenizer(vocab, merges)


def test_from_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Tokenizer.from_files(tmp_path / "missing.json", FIXTURES / "gpt2_merges.txt")
    (tmp_path / "bad.txt").write_text("a b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        Tokenizer.from_files(FIXTURES / "gpt2_vocab.json", tmp_path / "bad.txt")


def test_unseen_id_share_counts_validation_targets_missing_from_training():
    train, valid = np.array([1, 2, 3, 2]), np.array([9, 1, 4, 4, 2])  # the first id is no target
    assert book_tokenizers.unseen_id_share(train, valid) == 0.5


def test_the_story_tokenizer_leaves_almost_no_validation_id_unseen():
    data, artifacts = FIXTURES.parents[1] / "data", FIXTURES.parents[1] / "artifacts"
    tokenizer = book_tokenizers.book_tokenizer("tinystories-all-4k", data, artifacts)
    arrays = token_arrays("tinystories-all", tokenizer, data, artifacts / "tokens")
    assert len(tokenizer) == 4096
    assert book_tokenizers.unseen_id_share(np.load(arrays["train"]), np.load(arrays["valid"])) < 1e-4


def test_book_tokenizers_train_on_the_corpus_registry(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(book_tokenizers, "load_or_train_tokenizer", lambda *args: calls.append(args))
    book_tokenizers.book_tokenizer("webtext-10k")
    # What chapter 10 built by hand before the registry had it: the same folder, file and size.
    assert calls == [
        (Path("../artifacts/tokenizers/webtext-10k"), Path("../data/owt/webtext_substitute_train.txt"), 10_000)
    ]
    with pytest.raises(ValueError, match="book tokenizer must be"):
        book_tokenizers.book_tokenizer("gpt2")


# --- streaming: the piece size and overlapping special tokens (chapter 3) ---------------------------


@pytest.mark.parametrize("piece_chars", [1, 7, 4096])
def test_encode_iterable_piece_chars_does_not_change_the_ids(piece_chars, gpt2):
    text = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")[:5000]
    lines = text.splitlines(keepends=True)
    assert list(gpt2.encode_iterable(lines, piece_chars=piece_chars)) == gpt2.encode(text)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_encode_iterable_rejects_a_bad_piece_size_at_the_call(bad, gpt2):
    with pytest.raises(ValueError, match="piece_chars must be a positive integer"):
        gpt2.encode_iterable(["text"], piece_chars=bad)


def test_overlapping_special_tokens_streamed_one_character_at_a_time():
    # "<|endoftext|><|endoftext|>" contains the shorter special token twice: the longest match wins,
    # even when the stream delivers it one character at a time.
    double = EOT + EOT
    tok = Tokenizer({i: bytes([i]) for i in range(256)}, [], [EOT, double])
    text = f"a{double}b{EOT}c{double}{EOT}d"
    ids = tok.encode(text)
    assert [i for i in ids if i >= 256] == [
        tok.special_ids[double],
        tok.special_ids[EOT],
        tok.special_ids[double],
        tok.special_ids[EOT],
    ]
    assert list(tok.encode_iterable(iter(text), piece_chars=1)) == ids
    assert tok.decode(ids) == text
