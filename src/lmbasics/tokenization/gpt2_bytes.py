"""GPT-2's files for a byte-level BPE: `vocab.json` and `merges.txt`, read and written (chapters 2 and 3).

Tokens are arbitrary byte strings, but JSON and text files hold text. GPT-2 solved this with a fixed
table (`bytes_to_unicode`) that maps each of the 256 byte values to one printable character: the 188
printable Latin-1 bytes map to themselves, the other 68 (control characters, space, ...) to U+0100 and
up, so the space byte becomes 'Ġ' and the newline 'Ċ'. A token's bytes spelled with that table
never contain a space, which is why `merges.txt` can separate the two halves of a merge by a space.
The files written here are the ones GPT-2, tiktoken's educational code and HuggingFace read.

What it does not do: it knows nothing about training or encoding; `Tokenizer.save` and
`Tokenizer.from_files` call it.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from lmbasics.atomic import atomic_write_text


@cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: byte value -> one printable character (a bijection over all 256 bytes)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@cache
def unicode_to_bytes() -> dict[str, int]:
    """The inverse table: printable character -> byte value."""
    return {ch: b for b, ch in bytes_to_unicode().items()}


def token_to_text(token: bytes) -> str:
    """A token's bytes spelled with GPT-2's printable characters (b' the' -> 'Ġthe')."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def text_to_token(text: str) -> bytes:
    """Inverse of `token_to_text`; a string with characters outside the table is taken as UTF-8.

    The fallback lets hand-written vocabularies list special tokens literally (e.g. '<|end of text|>'
    with real spaces), as some published vocab.json files do.
    """
    table = unicode_to_bytes()
    try:
        return bytes(table[ch] for ch in text)
    except KeyError:
        return text.encode("utf-8")


def write_vocab_json(vocab: dict[int, bytes], path: str | os.PathLike) -> None:
    """Write `{printable token: id}` as GPT-2's vocab.json, in id order."""
    items = {token_to_text(token): idx for idx, token in sorted(vocab.items())}
    if len(items) != len(vocab):
        raise ValueError("vocabulary holds the same byte string under two ids; vocab.json cannot represent that")
    atomic_write_text(path, json.dumps(items, ensure_ascii=False, indent=1) + "\n")


def write_merges_txt(merges: list[tuple[bytes, bytes]], path: str | os.PathLike) -> None:
    """Write one merge per line, 'left right', in creation order."""
    lines = [f"{token_to_text(a)} {token_to_text(b)}\n" for a, b in merges]
    atomic_write_text(path, "".join(lines))


def write_vocab_txt(vocab: dict[int, bytes], path: str | os.PathLike) -> None:
    """A human-readable view: id, length in bytes and the token as a Python string literal."""
    lines = ["# id\tbytes\ttoken (UTF-8, undecodable bytes as \\xNN)\n"]
    for idx, token in sorted(vocab.items()):
        lines.append(f"{idx}\t{len(token)}\t{token.decode('utf-8', errors='backslashreplace')!r}\n")
    atomic_write_text(path, "".join(lines))


def read_vocab_json(path: str | os.PathLike) -> dict[int, bytes]:
    """Read GPT-2's vocab.json into `{id: token bytes}`."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(items, dict) or not all(isinstance(v, int) for v in items.values()):
        raise ValueError(f"{path} must hold a JSON object mapping token strings to integer ids")
    vocab = {idx: text_to_token(text) for text, idx in items.items()}
    if len(vocab) != len(items):
        raise ValueError(f"{path} gives the same id to two tokens")
    return vocab


def read_merges_txt(path: str | os.PathLike) -> list[tuple[bytes, bytes]]:
    """Read merges.txt (an optional '#version' first line is skipped) into byte pairs."""
    path = Path(path)
    merges = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or (number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{path}, line {number}: expected 'left right', got {line!r}")
            merges.append((text_to_token(parts[0]), text_to_token(parts[1])))
    return merges
