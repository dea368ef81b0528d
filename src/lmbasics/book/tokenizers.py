"""The book's tokenizers (chapters 2, 3 and 7 to 10): trained once, saved under `artifacts/`, reused.

`book_tokenizer("tinystories-10k")` loads the tokenizer saved in `artifacts/tokenizers/<name>/`, or
trains it on its corpus (see `corpora.py`) and saves it first; training is deterministic, so a
deleted folder comes back identical. `load_or_train_tokenizer` does the same for any directory and
training file: `training.json` beside the files records the settings and a stale folder is retrained.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lmbasics.atomic import atomic_write_text
from lmbasics.book.corpora import corpus_path
from lmbasics.checks import check_choice
from lmbasics.tokenization.bpe import train_bpe
from lmbasics.tokenization.tokenizer import Tokenizer

TRAINING_FILE = "training.json"

BOOK_TOKENIZERS: dict[str, tuple[str, int]] = {
    # name: (corpus whose train split it is trained on, vocab_size); special token <|endoftext|> for all.
    "tinystories-10k": ("tinystories", 10_000),
    "webtext-32k": ("webtext", 32_000),
    "webtext-10k": ("webtext", 10_000),  # chapter 10: the TinyStories vocabulary size on web text
    # The story model's (chapter 7): 4,096 tokens leave almost no id unseen in its 6.2 MB of training text.
    "tinystories-all-4k": ("tinystories-all", 4_096),
    "wiki-32k": ("wiki", 32_000),  # chapter 10 on the Wikipedia articles, the handout's OWT vocabulary size
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


def book_tokenizer(
    name: str, data_dir: str | os.PathLike = "../data", artifacts_dir: str | os.PathLike = "../artifacts"
) -> Tokenizer:
    """One of the book's tokenizers (`BOOK_TOKENIZERS`), loaded from `artifacts_dir/tokenizers/<name>/`
    or trained there first. Defaults are relative to `notebooks/`, where the chapters run."""
    check_choice("book tokenizer", name, BOOK_TOKENIZERS)
    corpus, vocab_size = BOOK_TOKENIZERS[name]
    return load_or_train_tokenizer(
        Path(artifacts_dir) / "tokenizers" / name, corpus_path(corpus, "train", data_dir, artifacts_dir), vocab_size
    )


def unseen_id_share(train_ids: np.ndarray, valid_ids: np.ndarray) -> float:
    """Share of validation targets (every id after the first) whose id never occurs in the training ids.

    A model cannot learn such an id except as "never": its loss there is far above ln V, so even a small
    share poisons the mean validation loss. A tokenizer trained on exactly the model's text leaves such ids
    (tokens of words seen once, or parts always merged further), which is why the book reports this share."""
    seen = np.zeros(int(max(train_ids.max(), valid_ids.max())) + 1, dtype=bool)
    seen[np.asarray(train_ids)] = True
    return float((~seen[np.asarray(valid_ids[1:])]).mean())
