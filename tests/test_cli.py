"""The `lmbasics` command: train-bpe and encode end to end, and one clear line for every bad input."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmbasics import Tokenizer, train_bpe
from lmbasics.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
EOT = "<|endoftext|>"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse usage errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status != 0
    assert err.count("\n") == 1 and err.startswith("lmbasics: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def trained(tmp_path, capsys) -> Path:
    out = tmp_path / "tok"
    status, stdout, _ = run(
        capsys,
        "train-bpe",
        str(FIXTURES / "corpus.en"),
        "--vocab-size",
        "400",
        "--special-token",
        EOT,
        "--out",
        str(out),
        "--no-progress",
    )
    assert status == 0 and "400 tokens" in stdout and "MB/s" in stdout
    return out


def test_train_bpe_saves_what_train_bpe_returns(trained):
    vocab, merges = train_bpe(FIXTURES / "corpus.en", 400, [EOT], progress=False)
    loaded = Tokenizer.load(trained)
    assert loaded.vocab == vocab and loaded.merges == merges and loaded.special_tokens == [EOT]


def test_encode_writes_the_ids_of_the_tokenizer(trained, tmp_path, capsys):
    out = tmp_path / "ids.npy"
    status, stdout, _ = run(
        capsys,
        "encode",
        "--tokenizer",
        str(trained),
        str(FIXTURES / "tinystories_sample.txt"),
        str(out),
        "--no-progress",
    )
    text = (FIXTURES / "tinystories_sample.txt").read_text(encoding="utf-8")
    expected = Tokenizer.load(trained).encode(text)
    assert status == 0 and f"{len(expected):,} tokens" in stdout
    ids = np.load(out)
    assert ids.dtype == np.uint16 and ids.tolist() == expected and expected.count(0) == text.count(EOT)


def test_existing_outputs_need_force(trained, tmp_path, capsys):
    status, _, err = run(
        capsys, "train-bpe", str(FIXTURES / "corpus.en"), "--vocab-size", "300", "--out", str(trained), "--no-progress"
    )
    assert_one_line_error(status, err, "vocab.json", "already exists", "--force")
    status, _, _ = run(
        capsys,
        "train-bpe",
        str(FIXTURES / "corpus.en"),
        "--vocab-size",
        "300",
        "--out",
        str(trained),
        "--no-progress",
        "--force",
    )
    assert status == 0 and len(Tokenizer.load(trained)) == 300

    out = tmp_path / "ids.npy"
    np.save(out, np.zeros(2, dtype=np.uint16))
    args = ["encode", "--tokenizer", str(trained), str(FIXTURES / "german.txt"), str(out), "--no-progress"]
    status, _, err = run(capsys, *args)
    assert_one_line_error(status, err, "ids.npy", "--force")
    assert np.load(out).tolist() == [0, 0]
    status, _, _ = run(capsys, *args, "--force")
    assert status == 0 and len(np.load(out)) > 2


def bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.txt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "latin1":
        path.write_bytes("na\u00efve caf\u00e9\n".encode("latin-1"))  # 0xEF at byte 2
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("command", ["train-bpe", "encode"])
@pytest.mark.parametrize(
    ("kind", "fragments"),
    [
        ("missing", ["not found", "missing.txt"]),
        ("empty", ["empty", "empty.txt"]),
        ("latin1", ["latin1.txt", "not valid UTF-8 at byte 2"]),
        ("folder", ["not a file", "folder.txt"]),
    ],
)
def test_bad_input_files(trained, tmp_path, capsys, command, kind, fragments):
    source = str(bad_file(tmp_path, kind))
    if command == "train-bpe":
        argv = ["train-bpe", source, "--vocab-size", "300", "--out", str(tmp_path / "new"), "--no-progress"]
    else:
        argv = ["encode", "--tokenizer", str(trained), source, str(tmp_path / "ids.npy"), "--no-progress"]
    status, _, err = run(capsys, *argv)
    assert_one_line_error(status, err, *fragments)
    assert not (tmp_path / "ids.npy").exists() and not (tmp_path / "new" / "vocab.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path, capsys):
    path = tmp_path / "secret.txt"
    path.write_text("hello", encoding="utf-8")
    path.chmod(0)
    status, _, err = run(capsys, "train-bpe", str(path), "--vocab-size", "300", "--out", str(tmp_path / "t"))
    assert_one_line_error(status, err, "cannot read", "secret.txt")


def test_vocab_size_below_bytes_and_specials(tmp_path, capsys):
    status, _, err = run(
        capsys,
        "train-bpe",
        str(FIXTURES / "german.txt"),
        "--vocab-size",
        "256",
        "--special-token",
        EOT,
        "--out",
        str(tmp_path / "t"),
    )
    assert_one_line_error(status, err, "--vocab-size", "257", "got 256")


def test_special_token_not_in_vocabulary(trained, tmp_path, capsys):
    status, _, err = run(
        capsys,
        "encode",
        "--tokenizer",
        str(trained),
        "--special-token",
        "<|pad|>",
        str(FIXTURES / "german.txt"),
        str(tmp_path / "ids.npy"),
    )
    assert_one_line_error(status, err, "'<|pad|>'", "not in the vocabulary")
    status, _, _ = run(
        capsys,
        "encode",
        "--tokenizer",
        str(trained),
        "--special-token",
        EOT,
        "--no-progress",
        str(FIXTURES / "german.txt"),
        str(tmp_path / "ids.npy"),
    )
    assert status == 0


def test_missing_tokenizer_and_usage_errors(tmp_path, capsys):
    status, _, err = run(
        capsys, "encode", "--tokenizer", str(tmp_path), str(FIXTURES / "german.txt"), str(tmp_path / "ids.npy")
    )
    assert_one_line_error(status, err, "no tokenizer in", "vocab.json")
    status, _, err = run(capsys, "train-bpe", str(FIXTURES / "german.txt"), "--out", str(tmp_path / "t"))
    assert_one_line_error(status, err, "--vocab-size")
    status, _, err = run(capsys, "frobnicate")
    assert_one_line_error(status, err, "frobnicate")
    status, _, err = run(capsys, "encode", "--tokenizer", str(tmp_path), str(FIXTURES / "german.txt"), "ids.bin")
    assert_one_line_error(status, err, ".npy")


@pytest.mark.slow
def test_installed_command_runs(tmp_path):
    exe = shutil.which("lmbasics", path=str(Path(sys.executable).parent))
    assert exe is not None, "the lmbasics entry point is not installed in this environment"
    done = subprocess.run(
        [
            exe,
            "train-bpe",
            str(FIXTURES / "german.txt"),
            "--vocab-size",
            "270",
            "--out",
            str(tmp_path / "t"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "270 tokens" in done.stdout
    done = subprocess.run(
        [exe, "encode", "--tokenizer", str(tmp_path / "nothing"), "x.txt", "y.npy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and done.stderr.startswith("lmbasics: error:") and "Traceback" not in done.stderr


# --- train and generate --------------------------------------------------------------------------


@pytest.mark.slow
def test_train_then_generate_end_to_end(tmp_path, capsys):
    tokenizer_dir, tokens = tmp_path / "tok", tmp_path / "tokens.npy"
    assert (
        main(
            [
                "train-bpe",
                str(FIXTURES / "tinystories_sample.txt"),
                "--vocab-size",
                "300",
                "--special-token",
                "<|endoftext|>",
                "--out",
                str(tokenizer_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "encode",
                "--tokenizer",
                str(tokenizer_dir),
                str(FIXTURES / "tinystories_sample.txt"),
                str(tokens),
                "--no-progress",
            ]
        )
        == 0
    )
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[model]\nvocab_size = 300\ncontext_length = 16\nd_model = 32\nnum_layers = 1\nnum_heads = 2\nd_ff = 64\n"
        f'[data]\ntrain = "{tokens}"\nvalid = "{tokens}"\n'
        f"[run]\nbatch_size = 4\nmax_iters = 6\neval_interval = 3\neval_iters = 1\nlog_interval = 3\n"
        f'out_dir = "{tmp_path / "run"}"\ndevice = "cpu"\n'
        "[optimizer]\nwarmup_iters = 2\n"
    )
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--no-progress"]) == 0
    assert "finished at step 6" in capsys.readouterr().out
    assert main(["train", "--config", str(config), "--no-progress"]) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(tmp_path / "run" / "checkpoint.pt"),
                "--tokenizer",
                str(tokenizer_dir),
                "Once upon a time",
                "--max-new-tokens",
                "5",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("Once upon a time")


def test_generate_names_a_missing_checkpoint(tmp_path, capsys):
    tokenizer_dir = tmp_path / "tok"
    assert (
        main(
            [
                "train-bpe",
                str(FIXTURES / "german.txt"),
                "--vocab-size",
                "260",
                "--out",
                str(tokenizer_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["generate", "--checkpoint", str(tmp_path / "none.pt"), "--tokenizer", str(tokenizer_dir), "x"]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
