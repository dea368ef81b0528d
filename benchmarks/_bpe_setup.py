"""What the BPE training benchmarks share: the embedded corpora and HF's trainer set up like `train_bpe`.

It imports neither lmbasics nor torch: `bpe_scale.py` runs HF in a child process that imports this module, and
torch's memory must not count against HF.

HF is set up with the handout's regex (Split, isolated) followed by a ByteLevel mapping without its own
regex, the 256-byte initial alphabet and `<|endoftext|>` as special token. Its merges still differ slightly
from lmbasics' (HF breaks count ties by token id, the handout by bytes; HF does not cut out the special
token when pre-tokenizing), so the benchmarks print the shared fraction of the two vocabularies.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The book's embedded training text: the TinyStories sample and the web-text stand-in (5.9 MB).
SOURCES = [ROOT / "data/tinystories/tinystories_train_sample.txt", ROOT / "data/owt/webtext_substitute_train.txt"]
EOT = "<|endoftext|>"
# The handout's pre-tokenizer, as in lmbasics.tokenization.pretokenize (copied: see the module docstring).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def gpt2_unicode_to_bytes() -> dict[str, int]:
    """GPT-2's byte-to-character table, inverted (openai/gpt-2 encoder.py)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(c): b for c, b in zip([*printable, *range(256, 256 + len(others))], [*printable, *others])}


def hf_train(path: str | Path, vocab_size: int) -> set[bytes]:
    """Train HF's byte-level BPE on the file like `train_bpe`; returns the vocabulary as byte strings."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=0,
    )
    tokenizer.train([str(path)], trainer)
    table = gpt2_unicode_to_bytes()
    return {bytes(table[c] for c in token) if token != EOT else EOT.encode() for token in tokenizer.get_vocab()}
