"""Benchmark: lmbasics.train_bpe against HuggingFace `tokenizers`' BpeTrainer, same corpus, same settings.

The corpus is the book's embedded training text (TinyStories sample + web-text stand-in, 5.9 MB)
repeated to ~41 MB, written to a temporary file. Repetition multiplies every count by the same
factor, so both trainers learn the merges of the 5.9 MB text while reading 41 MB: the pre-tokenization
phase sees realistic volume, the merge phase sees ~57k distinct pre-tokens (a real 41 MB corpus has
more). HF is set up like train_bpe (see `_bpe_setup.py`).

    .venv/bin/python benchmarks/bpe_train.py          # ~41 MB, vocab 10,000 and 32,000
    .venv/bin/python benchmarks/bpe_train.py --quick  # one copy (5.9 MB), small vocabularies
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _bpe_setup import EOT, SOURCES, hf_train  # benchmarks/ is on sys.path when a script runs

from lmbasics import train_bpe

from _timing import best_time

TARGETS = {10_000: 1.0, 32_000: 1.5}  # the targets: lmbasics time / HF time at most this


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one copy of the corpus, small vocabularies")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    copies, sizes = (1, [1_000, 3_000]) if args.quick else (7, [10_000, 32_000])
    text = "".join(p.read_text(encoding="utf-8") for p in SOURCES)
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text * copies, encoding="utf-8")
        megabytes = corpus.stat().st_size / 1e6
        print(
            f"corpus: {', '.join(p.name for p in SOURCES)} x {copies} = {megabytes:.1f} MB; "
            f"{workers} CPU cores; best of {args.repeats} runs"
        )
        rows = []
        for vocab_size in sizes:
            ours, (vocab, _) = best_time(lambda v=vocab_size: train_bpe(corpus, v, [EOT], progress=False), args.repeats)
            theirs, hf_vocab = best_time(lambda v=vocab_size: hf_train(corpus, v), args.repeats)
            shared = len(set(vocab.values()) & hf_vocab) / len(hf_vocab)
            rows.append((vocab_size, len(vocab), ours, theirs, shared))
    print()
    print("| vocab | lmbasics (s) | HF tokenizers (s) | ratio | target | MB/s (lmbasics) | shared tokens |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for vocab_size, got, ours, theirs, shared in rows:
        target = TARGETS.get(vocab_size)
        verdict = "" if target is None else f"≤ {target:.1f}× {'met' if ours / theirs <= target else 'MISSED'}"
        print(
            f"| {vocab_size:,} ({got:,}) | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}× | {verdict} | "
            f"{megabytes / ours:.1f} | {shared:.1%} |"
        )
    print(
        "\nshared tokens: fraction of HF's vocabulary also in lmbasics'. They differ because HF breaks ties\n"
        "between equally frequent pairs by token id (the handout: by bytes), reads the file line by line and\n"
        "does not cut out <|endoftext|> while pre-tokenizing; late merges (at 32k) are mostly ties.\n"
        "Timings are wall-clock on a shared machine: compare the two columns of one run, not across runs."
    )


if __name__ == "__main__":
    main()
