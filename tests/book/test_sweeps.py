"""Recorded sweeps: every committed sweep replays bit for bit, each run is scored on the same held-out text,
and an edited sweep is caught."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lmbasics import load_model
from lmbasics.book.bitexact import kernels_pinned
from lmbasics.book.probes import mean_window_loss
from lmbasics.book.records import sha256_file
from lmbasics.book.sweeps import (
    SWEEP_NAME,
    Sweep,
    SweepSpec,
    read_sweep,
    record_sweep,
    run_folder,
    run_slug,
    verify_sweep,
)

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted(path.parent for path in (ROOT / "results").glob(f"*/{SWEEP_NAME}"))
needs_pins = pytest.mark.skipif(
    not kernels_pinned() or os.environ.get("LMBASICS_NBVAL") == "portable",
    reason="a sweep replays bit for bit only under the pinned kernels on a bit-exact machine",
)

TINY = """
[sweep]
corpus = "tinystories-all"
tokenizer = "tinystories-all-4k"
seeds = [0, 1]
replay_steps = 2
[settings]
"baseline" = []
"no RMSNorm" = ["model.norm=none"]
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
max_iters = 4
eval_interval = 2
eval_iters = 2
log_interval = 1
device = "cpu"
mixed_precision = false
num_threads = 2
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> Path:
    """A two-setting, two-seed sweep of four steps each, made by the same code as `make runs`."""
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "tiny.toml").write_text(TINY, encoding="utf-8")
    return record_sweep(folder / "tiny.toml", ROOT, folder / "results")


REPLAYED: set[tuple[str, int, str]] = set()  # a run that committed sweeps share is replayed once


@needs_pins
@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS, ids=[path.name for path in SWEEPS])
def test_every_committed_sweep_replays_bit_for_bit(sweep, tmp_path):
    assert verify_sweep(sweep, ROOT, tmp_path, REPLAYED) == len(read_sweep(sweep).meta["runs"])


@needs_pins
def test_a_fresh_sweep_verifies_and_reads_back(tiny_sweep, tmp_path):
    sweep = read_sweep(tiny_sweep)
    assert sweep.settings == ["baseline", "no RMSNorm"] and sweep.seeds == [0, 1]
    assert verify_sweep(tiny_sweep, ROOT, tmp_path) == 4
    losses = sweep.losses("baseline")
    assert len(losses) == 2 and losses[0] != losses[1]  # the seeds differ
    assert [r["step"] for r in sweep.log("no RMSNorm", 1)] == [1, 2, 3, 4]
    runs = sweep.runs("no RMSNorm")
    assert [run.config.run.seed for run in runs] == [0, 1] and runs[1].config.model.norm == "none"
    assert runs[1].log == sweep.log("no RMSNorm", 1) and runs[1].out_dir.is_dir()
    with pytest.raises(KeyError, match="no run of 'post-norm' at seed 0"):
        sweep.log("post-norm", 0)


@needs_pins
def test_the_held_out_score_is_the_whole_validation_text(tiny_sweep, tmp_path):
    """Scoring a run's final model with mean_window_loss on the whole held-out array gives the recorded number."""
    sweep = read_sweep(tiny_sweep)
    run = sweep.meta["runs"][0]
    spec = SweepSpec.load(tiny_sweep.parent.parent / "tiny.toml", ROOT)
    valid = ROOT / "artifacts" / "tokens" / "tinystories-all" / "valid.npy"
    config = spec.config(run["setting"], run["seed"]).with_overrides(
        [f"data.train={valid.with_name('train.npy')}", f"data.valid={valid}"]
    )
    model = load_model(run_folder(config, ROOT / "artifacts") / "checkpoint.pt")
    valid = np.load(valid)
    with torch.no_grad():
        assert mean_window_loss(model.eval(), valid) == run["heldout_nats"]


@needs_pins
def test_a_run_replayed_once_is_not_replayed_again_by_a_call_that_shares_the_set(tiny_sweep, tmp_path, monkeypatch):
    replayed: set[tuple[str, int, str]] = set()
    assert verify_sweep(tiny_sweep, ROOT, tmp_path / "first", replayed) == 4
    assert len(replayed) == 4  # two settings x two seeds, all distinct

    def no_replay(*args, **kwargs):
        raise AssertionError("replayed again")

    monkeypatch.setattr(Sweep, "replay", no_replay)
    assert verify_sweep(tiny_sweep, ROOT, tmp_path / "second", replayed) == 4  # every run known: none replayed
    with pytest.raises(AssertionError, match="replayed again"):
        verify_sweep(tiny_sweep, ROOT, tmp_path / "third")  # a call without the set replays every run


def copy_of(sweep: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(sweep, tmp_path / "copy"))


def test_an_edited_log_fails_its_hash_and_a_forged_hash_fails_the_replay(tiny_sweep, tmp_path):
    sweep = copy_of(tiny_sweep, tmp_path)
    log = sweep / read_sweep(sweep).meta["runs"][1]["file"]
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    first["train_loss"] += 1e-6
    log.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(AssertionError, match="seed1/metrics.jsonl was changed after recording"):
        verify_sweep(sweep, ROOT, tmp_path / "work")
    if not kernels_pinned():
        return
    meta = json.loads((sweep / SWEEP_NAME).read_text())
    meta["sha256"][str(log.relative_to(sweep))] = sha256_file(log)
    (sweep / SWEEP_NAME).write_text(json.dumps(meta))
    with pytest.raises(AssertionError, match="step 1: recorded train_loss=.*the current code gives"):
        verify_sweep(sweep, ROOT, tmp_path / "work")


def test_a_spec_with_a_mistake_is_refused_with_its_reason(tmp_path):
    cases = {
        "a [sweep] table": TINY.replace("[sweep]", "[swept]"),
        "unknown key(s) in [sweep]": TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nweights = true"),
        "distinct seeds": TINY.replace("seeds = [0, 1]", "seeds = [1, 1]"),
        "must be a list": TINY.replace('"baseline" = []', '"baseline" = "model.norm=none"'),
        "replay_steps must be": TINY.replace("replay_steps = 2", "replay_steps = 60"),
        "sweep.base 'nope.toml' not found": TINY.replace("[sweep]", '[sweep]\nbase = "nope.toml"'),
    }
    for message, text in cases.items():
        (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
        with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
            SweepSpec.load(tmp_path / "bad.toml", ROOT)


def test_a_base_file_is_updated_by_the_specs_own_tables(tmp_path):
    (tmp_path / "base.toml").write_text(
        TINY.split("[model]")[0].replace("[sweep]", "[ignored]").split("[ignored]")[0]
        + "[model]"
        + TINY.split("[model]")[1],
        encoding="utf-8",
    )
    spec_text = TINY.split("[model]")[0].replace("[sweep]", '[sweep]\nbase = "base.toml"') + "[run]\nmax_iters = 3\n"
    (tmp_path / "spec.toml").write_text(spec_text, encoding="utf-8")
    spec = SweepSpec.load(tmp_path / "spec.toml", tmp_path)
    assert spec.base.run.max_iters == 3 and spec.base.run.batch_size == 4 and spec.base.model.d_model == 32
    assert spec.config("no RMSNorm", 1).model.norm == "none" and spec.config("no RMSNorm", 1).run.seed == 1


def test_run_folders_are_distinct_and_safe():
    names = ["lr 1e-2", "lr 1e-2 ", "no RMSNorm, lr 3e-2", "SiLU FFN, d_ff = 4·d_model"]
    slugs = [run_slug(name) for name in names]
    assert len(set(slugs)) == len(names) and all(re.fullmatch(r"[a-z0-9-]+", s) for s in slugs)
