"""The `lmbasics` command: the book's full-scale runs from a shell (chapters 2, 3 and 7).

    lmbasics train-bpe INPUT --vocab-size N --special-token '<|endoftext|>' --out DIR
    lmbasics encode --tokenizer DIR INPUT OUTPUT.npy
    lmbasics train --config configs/NAME.toml [--set section.key=value ...] [--resume]
    lmbasics generate --checkpoint RUN/checkpoint.pt --tokenizer DIR "prompt"

Each subcommand is two functions: `add_<name>(subparsers)` declares its arguments and
`run_<name>(args) -> int` does the work; adding a subcommand means writing both and listing the
`add_` function in `SUBCOMMANDS`. Expected failures (bad paths, bad input, bad settings) raise
`CommandError`, `OSError` or `ValueError` and are printed as one line `lmbasics: error: ...` with a
non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lmbasics.tokenization.tokenizer import MERGES_FILE, VOCAB_FILE, Tokenizer
from lmbasics.tokenization.vocab import check_vocab_size


class CommandError(Exception):
    """A bad input to a subcommand, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line too (the usage itself is under --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"lmbasics: error: {message} (see '{self.prog} --help')\n")


# --- checks shared by subcommands ---------------------------------------------------------------


def _input_file(path: str) -> Path:
    """An existing, readable, non-empty file."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"input file not found: {file}")
    if not file.is_file():
        raise CommandError(f"input is not a file: {file}")
    try:
        with file.open("rb") as f:
            f.read(1)
    except OSError as error:
        raise CommandError(f"cannot read {file}: {error.strerror}") from None
    if file.stat().st_size == 0:
        raise CommandError(f"input file is empty: {file}")
    return file


def _refuse_overwrite(paths: Sequence[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise CommandError(f"{', '.join(existing)} already exists; pass --force to overwrite")


def _add_special_tokens(p: argparse.ArgumentParser, default: list[str] | None, help: str) -> None:
    p.add_argument("--special-token", action="append", default=default, metavar="TOKEN", help=help)


def _add_file_job_options(p: argparse.ArgumentParser, workers: str, force: str) -> None:
    """--workers, --force and --no-progress, for the subcommands that work through a file in parallel."""
    p.add_argument("--workers", type=int, default=None, help=f"{workers} (default: all cores)")
    p.add_argument("--force", action="store_true", help=force)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.1f} MB"


# --- train-bpe ----------------------------------------------------------------------------------


def add_train_bpe(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-bpe", help="train a byte-level BPE tokenizer on a UTF-8 text file")
    p.add_argument("input", help="training text (UTF-8)")
    p.add_argument("--vocab-size", type=int, required=True, help="final vocabulary size (bytes + specials + merges)")
    _add_special_tokens(p, [], "a special token such as '<|endoftext|>' (repeat for several)")
    p.add_argument("--out", required=True, help="directory for vocab.json, merges.txt, special_tokens.json, vocab.txt")
    _add_file_job_options(p, "pre-tokenization processes", "overwrite a tokenizer already in --out")
    p.set_defaults(run=run_train_bpe)


def run_train_bpe(args: argparse.Namespace) -> int:
    from lmbasics.tokenization.bpe import train_bpe

    source = _input_file(args.input)
    check_vocab_size(args.vocab_size, args.special_token, name="--vocab-size")  # before any work
    out = Path(args.out)
    _refuse_overwrite([out / VOCAB_FILE, out / MERGES_FILE], args.force)
    start = time.perf_counter()
    vocab, merges = train_bpe(
        source, args.vocab_size, args.special_token, num_workers=args.workers, progress=not args.no_progress
    )
    seconds = time.perf_counter() - start
    tokenizer = Tokenizer(vocab, merges, args.special_token)
    tokenizer.save(out)
    size = source.stat().st_size
    longest = max(vocab.values(), key=len)
    print(
        f"trained {len(vocab):,} tokens ({len(merges):,} merges) on {_megabytes(size)} in {seconds:.1f} s "
        f"({size / 1e6 / seconds:.1f} MB/s); longest token {longest.decode('utf-8', 'replace')!r} "
        f"({len(longest)} bytes); saved to {out}"
    )
    return 0


# --- encode -------------------------------------------------------------------------------------


def add_encode(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("encode", help="encode a UTF-8 text file into a .npy array of token ids")
    p.add_argument("--tokenizer", required=True, help="directory written by train-bpe")
    p.add_argument("input", help="text to encode (UTF-8)")
    p.add_argument("output", help="output .npy (uint16 when the vocabulary fits, else uint32)")
    _add_special_tokens(
        p, None, "special tokens to use instead of the tokenizer's own (each must be in its vocabulary)"
    )
    _add_file_job_options(p, "processes", "overwrite OUTPUT if it exists")
    p.set_defaults(run=run_encode)


def run_encode(args: argparse.Namespace) -> int:
    from lmbasics.tokenization.files import encode_file

    source = _input_file(args.input)
    output = Path(args.output)
    if output.suffix != ".npy":
        raise CommandError(f"output must be a .npy file, got {output}")
    _refuse_overwrite([output], args.force)
    directory = Path(args.tokenizer)
    if not (directory / VOCAB_FILE).is_file() or not (directory / MERGES_FILE).is_file():
        raise CommandError(f"no tokenizer in {directory}: expected {VOCAB_FILE} and {MERGES_FILE} there")
    tokenizer = Tokenizer.load(directory)
    if args.special_token is not None:
        known = set(tokenizer.vocab.values())
        unknown = [t for t in args.special_token if t.encode("utf-8") not in known]
        if unknown:
            raise CommandError(f"special token {unknown[0]!r} is not in the vocabulary of {directory}")
        tokenizer = Tokenizer(tokenizer.vocab, tokenizer.merges, args.special_token)
    start = time.perf_counter()
    count = encode_file(tokenizer, source, output, args.workers, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    size = source.stat().st_size
    print(
        f"encoded {_megabytes(size)} into {count:,} tokens ({size / count:.2f} bytes/token) in {seconds:.1f} s "
        f"({size / 1e6 / seconds:.1f} MB/s); saved to {output}"
    )
    return 0


# --- train --------------------------------------------------------------------------------------


def add_train(subparsers: argparse._SubParsersAction) -> None:
    from lmbasics.training.config import add_train_arguments

    p = subparsers.add_parser("train", help="train a Transformer LM from a TOML config (see configs/)")
    add_train_arguments(p)
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    import os

    from lmbasics.training.config import load_train_config
    from lmbasics.training.trainer import train

    config = load_train_config(args.config, args.overrides)
    result = train(config, resume=args.resume, progress=not args.no_progress, overwrite=args.force)
    if int(os.environ.get("RANK", "0")) == 0:  # Ctrl-C saved a checkpoint and ended the run normally
        losses = f"train loss {result.final_train_loss:.4f}" if result.final_train_loss is not None else "no steps"
        if result.final_val_loss is not None:
            losses += f", val loss {result.final_val_loss:.4f}"
        state = "interrupted" if result.interrupted else "finished"
        print(f"{state} at step {result.iteration}: {losses}; run directory {result.out_dir}")
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    """`python -m lmbasics.training`: the train subcommand alone, for torchrun."""
    from lmbasics.training.config import add_train_arguments

    parser = argparse.ArgumentParser(prog="python -m lmbasics.training", description="Train a Transformer LM.")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


# --- generate -----------------------------------------------------------------------------------


def add_generate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="continue a prompt with a trained model")
    p.add_argument("prompt", help="text to continue")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `lmbasics train`")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory the model was trained with")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--end-token", default="<|endoftext|>", help="stop when the model produces this token")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), or a torch device name")
    p.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from lmbasics.training.checkpoint import load_model
    from lmbasics.training.device import resolve_device
    from lmbasics.training.generate import generate

    directory = Path(args.tokenizer)
    if not (directory / VOCAB_FILE).is_file():
        raise CommandError(f"no tokenizer in {directory}: expected {VOCAB_FILE} and {MERGES_FILE} there")
    tokenizer = Tokenizer.load(directory)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device=device)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise CommandError(
            f"the tokenizer in {directory} has {tokenizer.vocab_size:,} tokens but the model only "
            f"{model.config.vocab_size:,}: wrong tokenizer for this checkpoint?"
        )
    end = tokenizer.encode(args.end_token) if args.end_token else []
    eos_id = end[0] if len(end) == 1 else None
    generator = torch.Generator(device=device).manual_seed(args.seed)
    ids = generate(
        model,
        tokenizer.encode(args.prompt),
        args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        eos_id=eos_id,
        generator=generator,
    )
    print(args.prompt + tokenizer.decode(ids))
    return 0


# --- entry point --------------------------------------------------------------------------------

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_train_bpe, add_encode, add_train, add_generate]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmbasics", description="Language models from scratch: command-line tools.")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        print(f"lmbasics: error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (CommandError, OSError, ValueError) as error:
        print(f"lmbasics: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lmbasics: interrupted", file=sys.stderr)
        return 130


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
