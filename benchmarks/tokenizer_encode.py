"""Benchmark: encoding throughput of lmbasics.Tokenizer against tiktoken and HF `tokenizers`, GPT-2 vocabulary.

All three use GPT-2's vocabulary and merges from tests/fixtures (tiktoken and HF are built from those
files offline) and must produce identical ids, which is checked. The text is the book's corpora
concatenated (TinyStories sample, web-text stand-in, real OpenWebText sample; 6.1 MB).

- 1 thread: `encode` on the whole text. lmbasics is measured twice: "first pass" with an empty
  pre-token cache (every distinct pre-token is merged once) and "steady state" (the cache warm, as it
  is after the first few MB of any large file).
- all cores: lmbasics `encode_file` (processes over chunks of a file, writes .npy) against tiktoken's
  `encode_batch` over a few large pieces and HF's `encode_batch` over the documents (both threads), on
  the text repeated to ~30 MB (--quick: one copy).

    .venv/bin/python benchmarks/tokenizer_encode.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from lmbasics import Tokenizer, encode_file
from lmbasics.book.corpora import corpus_path

from _timing import best_time  # benchmarks/ is on sys.path when a script runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from references import gpt2_tiktoken  # noqa: E402  (tests/references.py: shared with the tokenizer tests)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SOURCES = [
    corpus_path("tinystories", "train", ROOT / "data"),
    corpus_path("webtext", "train", ROOT / "data"),
    corpus_path("webtext", "owt_sample", ROOT / "data"),
]
EOT = "<|endoftext|>"
TARGET = 0.5  # the target: lmbasics single-threaded MB/s at least this fraction of tiktoken's


def build_hf() -> HFTokenizer:
    hf = HFTokenizer(models.BPE.from_file(str(FIXTURES / "gpt2_vocab.json"), str(FIXTURES / "gpt2_merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's regex built in
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken(EOT, special=True)])
    return hf


def join_with_eot(parts: list[list[int]]) -> list[int]:
    """Ids of pieces that were separated by <|endoftext|>, joined with its id."""
    joined = parts[0][:]
    for part in parts[1:]:
        joined += [50256, *part]
    return joined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one copy of the text for the all-cores rows")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    text = "".join(p.read_text(encoding="utf-8") for p in SOURCES)
    megabytes = len(text.encode("utf-8")) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tik, hf = gpt2_tiktoken(tmp), build_hf()
        ours = Tokenizer.from_files(FIXTURES / "gpt2_vocab.json", FIXTURES / "gpt2_merges.txt", [EOT])
        rows = []
        t_tik, ref = best_time(lambda: tik.encode(text, allowed_special={EOT}), repeats=3)
        t_cold, ids = best_time(lambda: ours.encode(text))  # once: afterwards the cache is warm
        t_warm, ids_warm = best_time(lambda: ours.encode(text), repeats=3)
        t_hf, hf_ids = best_time(lambda: hf.encode(text).ids)
        rows += [
            ("tiktoken", "1 thread", megabytes / t_tik, ref == ref),
            ("lmbasics, first pass (empty cache)", "1 thread", megabytes / t_cold, ids == ref),
            ("lmbasics, steady state (warm cache)", "1 thread", megabytes / t_warm, ids_warm == ref),
            ("HF tokenizers", "1 thread", megabytes / t_hf, hf_ids == ref),
        ]

        copies = 1 if args.quick else 5
        big = tmp / "big.txt"
        big.write_text(text * copies, encoding="utf-8")
        big_mb = big.stat().st_size / 1e6
        documents = (text * copies).split(EOT)
        expected = ref * copies
        fresh = Tokenizer(ours.vocab, ours.merges, [EOT])
        t_file, _ = best_time(lambda: encode_file(fresh, big, tmp / "ids.npy", workers, progress=False))
        file_ok = np.load(tmp / "ids.npy").tolist() == expected
        # tiktoken: a few large pieces (cut at <|endoftext|>), one per thread task; HF: its batch of documents.
        step = -(-len(documents) // (4 * workers))
        pieces = [EOT.join(documents[i : i + step]) for i in range(0, len(documents), step)]
        t_tik_batch, tik_batch = best_time(lambda: tik.encode_batch(pieces, num_threads=workers, allowed_special={EOT}))
        t_hf_batch, hf_batch = best_time(lambda: hf.encode_batch(documents))
        tik_ok = join_with_eot(tik_batch) == expected
        batch_ok = join_with_eot([e.ids for e in hf_batch]) == expected
        rows += [
            ("tiktoken encode_batch", f"{workers} threads", big_mb / t_tik_batch, tik_ok),
            ("lmbasics encode_file (.npy, first pass)", f"{workers} processes", big_mb / t_file, file_ok),
            ("HF tokenizers encode_batch", f"{workers} threads", big_mb / t_hf_batch, batch_ok),
        ]

    print(
        f"text: {', '.join(p.name for p in SOURCES)} = {megabytes:.1f} MB (x{copies} = {big_mb:.1f} MB "
        f"for the all-cores rows); {workers} CPU cores"
    )
    print()
    print("| encoder | parallelism | MB/s | vs tiktoken (same parallelism) | ids identical to tiktoken |")
    print("|---|---|---:|---:|---|")
    baseline = {"1 thread": rows[0][2]}
    for name, mode, speed, same in rows:
        base = baseline.setdefault(mode.split(" ")[0], speed) if mode != "1 thread" else baseline["1 thread"]
        print(f"| {name} | {mode} | {speed:.1f} | {speed / base:.2f}× | {'yes' if same else 'NO'} |")
    ratio = rows[2][2] / rows[0][2]
    print(
        "\nSingle-thread rows: best of 3 runs (first pass: one run).\n"
        "HF encodes one 6 MB string slowly, documents in batches faster. Wall-clock timings on a\n"
        "shared machine: compare rows of one run, not across runs."
    )
    print(
        f"\ntarget: lmbasics single-threaded ≥ {TARGET}× tiktoken with identical ids: steady state {ratio:.2f}× "
        f"({'met' if ratio >= TARGET and rows[2][3] else 'MISSED'}); first pass {rows[1][2] / rows[0][2]:.2f}×"
    )


if __name__ == "__main__":
    main()
