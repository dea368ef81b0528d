"""Token arrays of the book's embedded corpora, encoded once and reused (chapters 7 to 10).

`token_arrays("tinystories", tokenizer)` encodes each split of a corpus under `data/` into a uint16
`.npy` under `artifacts/tokens/<corpus>/`, the files `load_tokens` memory-maps and `lmbasics train`
reads. Beside each array a small JSON records which tokenizer and which source file (name and size)
made it, so a retrained tokenizer or a changed corpus file is noticed and the array encoded again.

What it does not do: no downloading; the full-size datasets are encoded with `lmbasics encode`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lmbasics.atomic import atomic_write_text
from lmbasics.checks import check_choice
from lmbasics.tokenization.files import encode_file
from lmbasics.tokenization.tokenizer import Tokenizer

# The book's data paths, in one place: corpus -> split -> text file under data/ (see each folder's
# PROVENANCE.md). The book's tokenizers, the benchmarks and the CPU configs' token arrays come from these.
CORPORA: dict[str, dict[str, str]] = {
    "tinystories": {
        "train": "tinystories/tinystories_train_sample.txt",
        "valid": "tinystories/tinystories_valid_sample.txt",
    },
    # Wikipedia summaries standing in for OpenWebText, plus a real 150 KB OWT sample for evaluation only.
    "webtext": {
        "train": "owt/webtext_substitute_train.txt",
        "valid": "owt/webtext_substitute_valid.txt",
        "owt_sample": "owt/owt_real_valid_sample.txt",
    },
}


# The handout's full training files, which the book only extrapolates to: corpus -> size in bytes.
# TinyStoriesV2-GPT4-train.txt is exactly this long (2.23 GB, which `ls -h` shows as 2.1G); the
# OpenWebText sample's owt_train.txt is about 11.9 GB.
FULL_TRAIN_BYTES: dict[str, int] = {"tinystories": 2_227_753_162, "webtext": 11_900_000_000}


def corpus_path(corpus: str, split: str = "train", data_dir: str | os.PathLike = "../data") -> Path:
    """The text file of one split of one of the book's corpora (`data_dir` defaults to the chapters' view)."""
    check_choice("corpus", corpus, CORPORA)
    if split not in CORPORA[corpus]:
        raise ValueError(f"corpus {corpus!r} has no split {split!r}; choose one of {sorted(CORPORA[corpus])}")
    return Path(data_dir) / CORPORA[corpus][split]


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """A short hash of the vocabulary, merges and special tokens: equal exactly when the ids are."""
    digest = hashlib.sha256()
    for idx in sorted(tokenizer.vocab):
        digest.update(
            idx.to_bytes(4, "little") + len(tokenizer.vocab[idx]).to_bytes(2, "little") + tokenizer.vocab[idx]
        )
    for left, right in tokenizer.merges:
        digest.update(len(left).to_bytes(2, "little") + left + len(right).to_bytes(2, "little") + right)
    digest.update(json.dumps(tokenizer.special_tokens).encode())
    return digest.hexdigest()[:16]


def token_arrays(
    corpus: str,
    tokenizer: Tokenizer,
    data_dir: str | os.PathLike = "../data",
    out_dir: str | os.PathLike = "../artifacts/tokens",
) -> dict[str, Path]:
    """Paths of `out_dir/<corpus>/<split>.npy` for every split of `corpus`, encoding those that are
    missing or stale. Defaults are relative to `notebooks/`, where the chapters run."""
    check_choice("corpus", corpus, CORPORA)
    fingerprint = tokenizer_fingerprint(tokenizer)
    folder = Path(out_dir) / corpus
    paths = {}
    for split, relative in CORPORA[corpus].items():
        source = Path(data_dir) / relative
        if not source.is_file():
            raise FileNotFoundError(f"corpus file not found: {source} (run from notebooks/, or pass data_dir)")
        array, record = folder / f"{split}.npy", folder / f"{split}.json"
        made_from = {"source": relative, "source_bytes": source.stat().st_size, "tokenizer": fingerprint}
        if not (array.is_file() and record.is_file() and _read_json(record) == made_from):
            # One process: the files are small, and forking inside a notebook kernel is best avoided.
            encode_file(tokenizer, source, array, num_workers=1, progress=False)  # written atomically
            atomic_write_text(record, json.dumps(made_from))
        paths[split] = array
    return paths


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
