"""Token arrays of the embedded corpora: the right ids, reused when fresh, re-encoded when stale."""

import json
import lzma
import os
from pathlib import Path

import numpy as np
import pytest

from lmbasics import Tokenizer, load_tokens, train_bpe
from lmbasics.book.corpora import CORPORA, corpus_path, read_documents, token_arrays, tokenizer_fingerprint

DATA = Path(__file__).resolve().parents[2] / "data"
EOT = "<|endoftext|>"


def small_tokenizer(tmp_path: Path, vocab_size: int) -> Tokenizer:
    text = "the cat sat on the mat.\n" + EOT + "\nthe dog ran to the cat.\n" + EOT + "\n"
    (tmp_path / "bpe.txt").write_text(text * 20, encoding="utf-8")
    vocab, merges = train_bpe(tmp_path / "bpe.txt", vocab_size, [EOT], progress=False)
    return Tokenizer(vocab, merges, [EOT])


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A copy of the corpus layout with short files (the first stories of each real split)."""
    root = tmp_path / "data"
    for relative in CORPORA["tinystories"].values():  # plain files
        text = (DATA / relative).read_text(encoding="utf-8")
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(EOT.join(text.split(EOT)[:5]), encoding="utf-8")
    return root


def test_the_shipped_corpus_files_exist():
    for splits in CORPORA.values():
        for spec in splits.values():
            for relative in [spec] if isinstance(spec, str) else [part.file for part in spec]:
                assert (DATA / relative).is_file(), relative


@pytest.mark.parametrize("corpus", ["tinystories-all", "wiki"])
def test_held_out_documents_are_not_in_the_training_split(corpus, tmp_path):
    train = read_documents(corpus_path(corpus, "train", DATA, tmp_path))
    valid = read_documents(corpus_path(corpus, "valid", DATA, tmp_path))
    assert len(valid) in (400, 500) and len(train) > 10 * len(valid)
    assert not set(valid) & set(train)


def test_a_joined_split_is_rebuilt_when_a_source_changes(tmp_path):
    data = tmp_path / "data" / "tinystories"
    data.mkdir(parents=True)
    stories = [f"story {i}\n{EOT}\n" for i in range(500)]
    for part in {part.file for part in CORPORA["tinystories-all"]["valid"]}:
        with lzma.open(tmp_path / "data" / part, "wt", encoding="utf-8") as handle:
            handle.write("".join(stories))
    path = corpus_path("tinystories-all", "valid", tmp_path / "data", tmp_path / "artifacts")
    assert read_documents(path) == stories[-400:]
    with lzma.open(data / "tinystories_random_sample_2.txt.xz", "wt", encoding="utf-8") as handle:
        handle.write("".join(stories[:450]))
    assert (
        read_documents(corpus_path("tinystories-all", "valid", tmp_path / "data", tmp_path / "artifacts"))
        == (stories[50:450])
    )


def test_a_file_that_is_not_whole_documents_is_refused(tmp_path):
    (tmp_path / "cut.txt").write_text(f"one\n{EOT}\ntwo, cut off", encoding="utf-8")
    with pytest.raises(ValueError, match="text after the last"):
        read_documents(tmp_path / "cut.txt")
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        read_documents(tmp_path / "missing.txt.xz")


def test_arrays_hold_the_tokenizers_ids_of_each_split(tmp_path, data_dir):
    tokenizer = small_tokenizer(tmp_path, 300)
    paths = token_arrays("tinystories", tokenizer, data_dir, tmp_path / "tokens")
    assert set(paths) == {"train", "valid"}
    for split, path in paths.items():
        text = (data_dir / CORPORA["tinystories"][split]).read_text(encoding="utf-8")
        ids = load_tokens(path, vocab_size=len(tokenizer))
        assert ids.dtype == np.uint16
        assert ids.tolist() == tokenizer.encode(text)
        assert tokenizer.decode(ids.tolist()) == text


def test_fresh_arrays_are_reused_and_stale_ones_reencoded(tmp_path, data_dir):
    first = small_tokenizer(tmp_path, 300)
    path = token_arrays("tinystories", first, data_dir, tmp_path / "tokens")["train"]
    os.utime(path, (0, 0))  # mark the file; rewriting it would reset the time
    token_arrays("tinystories", first, data_dir, tmp_path / "tokens")
    assert path.stat().st_mtime == 0

    second = small_tokenizer(tmp_path, 270)  # fewer merges: different ids for the same text
    assert tokenizer_fingerprint(second) != tokenizer_fingerprint(first)
    token_arrays("tinystories", second, data_dir, tmp_path / "tokens")
    text = (data_dir / CORPORA["tinystories"]["train"]).read_text(encoding="utf-8")
    assert np.load(path).tolist() == second.encode(text)

    with open(data_dir / CORPORA["tinystories"]["train"], "a", encoding="utf-8") as handle:
        handle.write("One more line.\n")  # an edited corpus is noticed too
    token_arrays("tinystories", second, data_dir, tmp_path / "tokens")
    assert np.load(path).tolist() == second.encode(text + "One more line.\n")


def test_a_damaged_record_means_reencoding(tmp_path, data_dir):
    tokenizer = small_tokenizer(tmp_path, 300)
    path = token_arrays("tinystories", tokenizer, data_dir, tmp_path / "tokens")["valid"]
    np.save(path, np.zeros(3, dtype=np.uint16))  # as if the array were half written by hand
    path.with_suffix(".json").write_text("{not json")
    token_arrays("tinystories", tokenizer, data_dir, tmp_path / "tokens")
    text = (data_dir / CORPORA["tinystories"]["valid"]).read_text(encoding="utf-8")
    assert np.load(path).tolist() == tokenizer.encode(text)
    assert json.loads(path.with_suffix(".json").read_text())["tokenizer"] == tokenizer_fingerprint(tokenizer)


def test_bad_input_is_named(tmp_path, data_dir):
    tokenizer = small_tokenizer(tmp_path, 300)
    with pytest.raises(ValueError, match="corpus must be .*got 'wikipedia'"):
        token_arrays("wikipedia", tokenizer, data_dir, tmp_path / "tokens")
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        token_arrays("webtext", tokenizer, data_dir, tmp_path / "tokens")
