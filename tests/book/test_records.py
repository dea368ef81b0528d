"""Recorded runs: every record under results/ replays bit for bit, and an edited one is caught."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from lmbasics import Tokenizer, generate, load_model
from lmbasics.book.bitexact import kernels_pinned
from lmbasics.book.records import RECORD_NAME, RecordSpec, record_run, sha256_file, verify_record

ROOT = Path(__file__).resolve().parents[2]
RECORDS = sorted(path.parent for path in (ROOT / "results").glob(f"*/{RECORD_NAME}"))
needs_pins = pytest.mark.skipif(
    not kernels_pinned() or os.environ.get("LMBASICS_NBVAL") == "portable",
    reason="a record replays bit for bit only under the pinned kernels on a bit-exact machine",
)

TINY = """
[record]
corpus = "tinystories-all"
tokenizer = "tinystories-all-4k"
weights = true
replay_steps = 4
[model]
vocab_size = 4096
context_length = 32
d_model = 32
num_layers = 1
num_heads = 2
d_ff = 64
[optimizer]
warmup_iters = 1
[run]
batch_size = 4
max_iters = 6
eval_interval = 3
eval_iters = 2
log_interval = 2
device = "cpu"
mixed_precision = false
num_threads = 2
"""


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory) -> Path:
    """A six-step record made by the same code as `make runs`."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.toml").write_text(TINY, encoding="utf-8")
    return record_run(folder / "tiny.toml", ROOT, folder / "results")


@needs_pins
@pytest.mark.slow
@pytest.mark.parametrize("record", RECORDS, ids=[path.name for path in RECORDS])
def test_every_committed_record_replays_bit_for_bit(record, tmp_path):
    assert verify_record(record, ROOT, tmp_path) >= 1


def test_results_holds_at_least_one_record_with_weights():
    assert any((record / "model.pt").is_file() for record in RECORDS)


@needs_pins
def test_a_fresh_record_verifies_and_rebuilds_its_model_and_tokenizer(tiny_record, tmp_path):
    assert verify_record(tiny_record, ROOT, tmp_path) == 4
    model, tokenizer = load_model(tiny_record / "model.pt"), Tokenizer.load(tiny_record / "tokenizer")
    assert model.config.vocab_size == len(tokenizer) == 4096
    ids = generate(
        model, tokenizer.encode("Once upon a time"), max_new_tokens=5, generator=torch.Generator().manual_seed(0)
    )
    assert isinstance(tokenizer.decode(ids), str)


def copy_of(record: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(record, tmp_path / "copy"))


def edit_first_loss(record: Path) -> None:
    lines = (record / "metrics.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["train_loss"] += 1e-6
    (record / "metrics.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")


def test_an_edited_file_fails_its_hash(tiny_record, tmp_path):
    record = copy_of(tiny_record, tmp_path)
    edit_first_loss(record)
    with pytest.raises(AssertionError, match="metrics.jsonl was changed after recording"):
        verify_record(record, ROOT, tmp_path / "work")


@needs_pins
def test_an_edited_loss_with_a_forged_hash_fails_the_replay(tiny_record, tmp_path):
    record = copy_of(tiny_record, tmp_path)
    edit_first_loss(record)
    meta = json.loads((record / RECORD_NAME).read_text())
    meta["sha256"]["metrics.jsonl"] = sha256_file(record / "metrics.jsonl")
    (record / RECORD_NAME).write_text(json.dumps(meta))
    with pytest.raises(AssertionError, match="step 2: recorded train_loss=.*the current code gives"):
        verify_record(record, ROOT, tmp_path / "work")


def test_a_missing_or_extra_file_is_named(tiny_record, tmp_path):
    record = copy_of(tiny_record, tmp_path)
    (record / "notes.txt").write_text("added by hand")
    with pytest.raises(AssertionError, match=r"files \['notes.txt'\] differ"):
        verify_record(record, ROOT, tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="not a recorded run"):
        verify_record(tmp_path, ROOT, tmp_path / "work")


def test_a_spec_with_a_mistake_is_refused_with_its_reason(tmp_path):
    cases = {
        "a [record] table": TINY.replace("[record]", "[recorded]"),
        "unknown key": TINY.replace("weights = true", "weights = true\nseeds = 3"),
        "no [data] table": TINY + "[data]\ntrain = 'x.npy'\n",
        "tokenizer must be": TINY.replace('tokenizer = "tinystories-all-4k"', 'tokenizer = "nope"'),
        "replay_steps must be": TINY.replace("replay_steps = 4", "replay_steps = 60"),
    }
    for message, text in cases.items():
        (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=re.escape(message)):
            RecordSpec.load(tmp_path / "bad.toml")


def test_recording_needs_the_pins(tmp_path, monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    (tmp_path / "tiny.toml").write_text(TINY, encoding="utf-8")
    with pytest.raises(RuntimeError, match="recorded runs are made under the pinned kernels"):
        record_run(tmp_path / "tiny.toml", ROOT, tmp_path / "results")
