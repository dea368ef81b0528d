"""The book's embedded corpora and their splits, and token arrays of them encoded once (chapters 2, 3, 7-11).

`corpus_path("tinystories-all", "valid")` is the text file of one split. A split is either one plain
file under `data/`, or a list of `Part`s: ranges of documents of plain or `.xz` files, which are joined
once into `artifacts/corpora/<corpus>/<split>.txt` (recorded, so an edited source is noticed).
`token_arrays("tinystories", tokenizer)` encodes each split into a uint16 `.npy` under
`artifacts/tokens/<corpus>/`, the files `load_tokens` memory-maps and `lmbasics train` reads; beside
each array a small JSON records which tokenizer and which source made it, so that a retrained tokenizer
or a changed corpus is noticed and the array encoded again.

What it does not do: no downloading; the full-size datasets are encoded with `lmbasics encode`.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from lmbasics.atomic import atomic_write_text
from lmbasics.checks import check_choice
from lmbasics.tokenization.files import encode_file
from lmbasics.tokenization.tokenizer import Tokenizer

# Every document of an embedded file ends with this line (the layout of the TinyStoriesV2 files).
DOCUMENT_END = "<|endoftext|>\n"


@dataclass(frozen=True)
class Part:
    """Documents `start:stop` (Python slice semantics) of one file under `data/`, plain or `.xz`."""

    file: str
    start: int | None = None
    stop: int | None = None


# The book's data, in one place: corpus -> split -> a plain file under data/, or the Parts it joins
# (see each folder's PROVENANCE.md). "valid" is held-out text: no tokenizer or model trains on it,
# except in the two older samples, whose "valid" is the tail of a training-split file (their note).
CORPORA: dict[str, dict[str, str | tuple[Part, ...]]] = {
    # The 1.3 MB sample of chapters 2-3 and 7-9: the opening 1,728 stories of TinyStoriesV2's training
    # split; its "valid" file is that split's stories 1,557-1,728, not the dataset's validation split.
    "tinystories": {
        "train": "tinystories/tinystories_train_sample.txt",
        "valid": "tinystories/tinystories_valid_sample.txt",
    },
    # All the TinyStories text the book embeds (about 6.5 MB, 8,000 stories): the sample above plus
    # 6,224 stories drawn at random; the last 400 random stories are held out for validation.
    "tinystories-all": {
        "train": (
            Part("tinystories/tinystories_train_sample.txt"),
            Part("tinystories/tinystories_valid_sample.txt"),
            Part("tinystories/tinystories_random_sample_1.txt.xz"),
            Part("tinystories/tinystories_random_sample_2.txt.xz", stop=-400),
        ),
        "valid": (Part("tinystories/tinystories_random_sample_2.txt.xz", start=-400),),
    },
    # Wikipedia summaries standing in for OpenWebText, plus a real 150 KB OWT sample for evaluation only.
    "webtext": {
        "train": "owt/webtext_substitute_train.txt",
        "valid": "owt/webtext_substitute_valid.txt",
        "owt_sample": "owt/owt_real_valid_sample.txt",
    },
    # 36,183 whole English Wikipedia articles (57.5 MB): a larger, long-document web-text stand-in;
    # the last 500 articles are held out, and the real OWT sample is kept for evaluation only.
    "wiki": {
        "train": (Part("wiki/enwiki_2021_articles.txt.xz", stop=-500),),
        "valid": (Part("wiki/enwiki_2021_articles.txt.xz", start=-500),),
        "owt_sample": "owt/owt_real_valid_sample.txt",
    },
}


# The handout's full training files, which the book only extrapolates to: corpus -> size in bytes.
# TinyStoriesV2-GPT4-train.txt is exactly this long (2.23 GB, which `ls -h` shows as 2.1G); the
# OpenWebText sample's owt_train.txt is about 11.9 GB.
FULL_TRAIN_BYTES: dict[str, int] = {"tinystories": 2_227_753_162, "webtext": 11_900_000_000}


def read_documents(path: str | os.PathLike) -> list[str]:
    """The documents of a plain or `.xz` text file, each ending with `DOCUMENT_END`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path} (run from notebooks/, or pass data_dir)")
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        text = handle.read()
    pieces = text.split(DOCUMENT_END)
    if pieces[-1]:
        raise ValueError(f"{path}: text after the last {DOCUMENT_END!r}: not a file of whole documents")
    return [piece + DOCUMENT_END for piece in pieces[:-1]]


def corpus_path(
    corpus: str,
    split: str = "train",
    data_dir: str | os.PathLike = "../data",
    artifacts_dir: str | os.PathLike = "../artifacts",
) -> Path:
    """The text file of one split of one of the book's corpora (defaults: the chapters' view from
    `notebooks/`). A split made of `Part`s is joined into `artifacts_dir/corpora/` first, once."""
    check_choice("corpus", corpus, CORPORA)
    if split not in CORPORA[corpus]:
        raise ValueError(f"corpus {corpus!r} has no split {split!r}; choose one of {sorted(CORPORA[corpus])}")
    spec = CORPORA[corpus][split]
    if isinstance(spec, str):
        return Path(data_dir) / spec
    return _joined(spec, Path(data_dir), Path(artifacts_dir) / "corpora" / corpus / f"{split}.txt")


def _joined(parts: tuple[Part, ...], data_dir: Path, out: Path) -> Path:
    """`out`, the documents of `parts` in order, rewritten when a source file or the parts change."""
    sources = {part.file: (data_dir / part.file) for part in parts}
    made_from = {
        "parts": [asdict(part) for part in parts],
        "source_bytes": {name: path.stat().st_size if path.is_file() else None for name, path in sources.items()},
    }
    record = out.with_suffix(".json")
    if out.is_file() and _read_json(record) == made_from:
        return out
    documents = {name: read_documents(path) for name, path in sources.items()}
    text = "".join("".join(documents[part.file][part.start : part.stop]) for part in parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    atomic_write_text(record, json.dumps(made_from))
    return out


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
    for split in CORPORA[corpus]:
        source = corpus_path(corpus, split, data_dir, Path(out_dir).parent)
        if not source.is_file():
            raise FileNotFoundError(f"corpus file not found: {source} (run from notebooks/, or pass data_dir)")
        array, record = folder / f"{split}.npy", folder / f"{split}.json"
        made_from = {"source": source.name, "source_bytes": source.stat().st_size, "tokenizer": fingerprint}
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
