"""Recorded runs: training runs too long for `make test`, made once and proven in CI by replay (chapters 7-11).

A record is specified by `configs/records/<name>.toml`: a training config (`[model]`, `[optimizer]`,
`[run]`) plus a `[record]` table naming the book corpus and book tokenizer it trains on, whether to keep
the weights, and how many opening steps CI replays. `make runs NAME=<name>` (`record_run`) trains it
under the pinned kernels and writes `results/<name>/`:

- `config.json` and `metrics.jsonl`, as the trainer wrote them;
- `record.json`: the command, machine, software, pins, date, wall time, the tokenizer's fingerprint,
  the held-out loss of the final weights on the whole validation text, and a SHA-256 of every file;
- with `weights = true`: `model.pt` (the final weights in bfloat16, readable by `lmbasics.load_model`
  and `lmbasics generate`) and `tokenizer/` (readable by `Tokenizer.load`).

`verify_record` proves a record came from the current code: its files hash as recorded, its tokenizer
is the one the book trains today, and re-running its opening `replay_steps` steps under the pins gives
its logged numbers bit for bit. An edited, stale or hand-made record fails.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from lmbasics.atomic import atomic_file, atomic_write_text
from lmbasics.book.corpora import corpus_path, token_arrays, tokenizer_fingerprint
from lmbasics.book.notebook import PINNED_KERNELS, kernels_pinned
from lmbasics.book.probes import mean_window_loss
from lmbasics.book.tokenizers import BOOK_TOKENIZERS, book_tokenizer
from lmbasics.checks import check_choice
from lmbasics.tokenization.tokenizer import Tokenizer
from lmbasics.training.checkpoint import FORMAT_VERSION, load_model
from lmbasics.training.config import TrainConfig
from lmbasics.training.metrics import METRICS_NAME, read_metrics
from lmbasics.training.trainer import CONFIG_NAME, Trainer

RECORD_NAME = "record.json"
WEIGHTS_NAME = "model.pt"
TOKENIZER_DIR = "tokenizer"
# The logged numbers a replay must reproduce exactly (speed and wall time depend on the machine's load).
REPLAYED_KEYS = ("step", "tokens_seen", "lr", "train_loss", "grad_norm", "val_loss")


@dataclass(frozen=True)
class RecordSpec:
    """What `configs/records/<name>.toml` asks for: a training config and how to record it."""

    name: str
    config: TrainConfig
    corpus: str
    tokenizer: str
    weights: bool
    replay_steps: int

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecordSpec:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"record spec not found: {path}")
        values = tomllib.loads(path.read_text(encoding="utf-8"))
        record = values.pop("record", None)
        if not isinstance(record, dict):
            raise ValueError(f"{path}: a [record] table (corpus, tokenizer, weights, replay_steps) is required")
        unknown = sorted(set(record) - {"corpus", "tokenizer", "weights", "replay_steps"})
        if unknown:
            raise ValueError(f"{path}: unknown key(s) in [record]: {unknown}")
        check_choice(f"{path}: record.tokenizer", record.get("tokenizer"), BOOK_TOKENIZERS)
        if "data" in values:
            raise ValueError(f"{path}: no [data] table: the record's token arrays come from record.corpus")
        spec = cls(
            name=path.stem,
            config=TrainConfig.from_dict(values, source=str(path)),
            corpus=record.get("corpus", ""),
            tokenizer=record["tokenizer"],
            weights=bool(record.get("weights", False)),
            replay_steps=int(record.get("replay_steps", 10)),
        )
        if not 0 < spec.replay_steps <= spec.config.run.max_iters:
            raise ValueError(f"{path}: record.replay_steps must be in 1..run.max_iters, got {spec.replay_steps}")
        return spec


def root_paths(root: Path) -> tuple[Path, Path]:
    return root / "data", root / "artifacts"


def prepared_config(spec: RecordSpec, root: Path, out_dir: Path) -> tuple[TrainConfig, Tokenizer]:
    """The spec's config pointed at its corpus's token arrays (encoded if needed) and at `out_dir`."""
    data_dir, artifacts_dir = root_paths(root)
    tokenizer = book_tokenizer(spec.tokenizer, data_dir, artifacts_dir)
    if len(tokenizer) != spec.config.model.vocab_size:
        raise ValueError(
            f"record {spec.name}: model.vocab_size is {spec.config.model.vocab_size} but tokenizer "
            f"{spec.tokenizer} has {len(tokenizer)} tokens"
        )
    arrays = token_arrays(spec.corpus, tokenizer, data_dir, artifacts_dir / "tokens")
    # Paths relative to the repository root when `root` is ".", as `make runs` records them.
    config = spec.config.with_overrides(
        [f"data.train={arrays['train']}", f"data.valid={arrays['valid']}", f"run.out_dir={out_dir}"]
    )
    return config, tokenizer


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def machine_description() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "system": platform.platform()}


def heldout_scores(model: torch.nn.Module, corpus: str, tokenizer: Tokenizer, root: Path) -> dict[str, float]:
    """Loss of `model` on the whole held-out text of `corpus`, in nats/token and bits per byte."""
    data_dir, artifacts_dir = root_paths(root)
    text_path = corpus_path(corpus, "valid", data_dir, artifacts_dir)
    ids = np.load(token_arrays(corpus, tokenizer, data_dir, artifacts_dir / "tokens")["valid"])
    with torch.no_grad():
        nats = mean_window_loss(model, ids)
    bytes_per_token = text_path.stat().st_size / len(ids)
    return {
        "nats_per_token": nats,
        "bits_per_byte": nats / math.log(2) / bytes_per_token,
        "bytes_per_token": bytes_per_token,
    }


def record_run(spec_path: str | os.PathLike, root: str | os.PathLike, results_dir: str | os.PathLike) -> Path:
    """Train the run `spec_path` describes, under the pinned kernels, and write `results_dir/<name>/`."""
    if not kernels_pinned():
        pins = " ".join(f"{k}={v}" for k, v in PINNED_KERNELS.items())
        raise RuntimeError(f"recorded runs are made under the pinned kernels: set {pins} (make runs does)")
    spec, root = RecordSpec.load(spec_path), Path(root)
    work = root / "artifacts" / "records" / spec.name
    config, tokenizer = prepared_config(spec, root, work)
    start = time.perf_counter()
    trainer = Trainer(config, progress=False, overwrite=True)
    try:
        trainer.run()
    finally:
        trainer.close()
    wall = time.perf_counter() - start

    out = Path(results_dir) / spec.name
    out.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, METRICS_NAME):
        atomic_write_text(out / name, (work / name).read_text(encoding="utf-8"))
    record: dict[str, Any] = {
        "name": spec.name,
        "command": f"make runs NAME={spec.name}",
        "spec": f"configs/records/{spec.name}.toml",
        "corpus": spec.corpus,
        "tokenizer": spec.tokenizer,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "replay_steps": spec.replay_steps,
        "machine": machine_description(),
        "software": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "pins": {name: os.environ.get(name) for name in PINNED_KERNELS},
        "date": time.strftime("%Y-%m-%d"),
        "wall_time_s": round(wall, 1),
    }
    if spec.weights:
        model = trainer.model.eval()
        payload = {
            "format_version": FORMAT_VERSION,
            "iteration": trainer.iteration,
            "model": {key: value.to(torch.bfloat16) for key, value in model.state_dict().items()},
            "model_config": model.config.to_dict(),
            "rng": None,
            "extra": {"record": spec.name, "stored_dtype": "bfloat16"},
        }
        with atomic_file(out / WEIGHTS_NAME) as handle:
            torch.save(payload, handle)
        tokenizer.save(out / TOKENIZER_DIR)
        record["heldout_trained_fp32"] = heldout_scores(model, spec.corpus, tokenizer, root)
        record["heldout_stored_bf16"] = heldout_scores(load_model(out / WEIGHTS_NAME), spec.corpus, tokenizer, root)
    record["sha256"] = folder_digests(out, RECORD_NAME)
    atomic_write_text(out / RECORD_NAME, json.dumps(record, indent=1) + "\n")
    return out


def folder_digests(folder: Path, index_name: str) -> dict[str, str]:
    """SHA-256 of every file under `folder` except the index file that lists them."""
    return {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != index_name
    }


def check_digests(folder: Path, recorded: dict[str, str], index_name: str) -> None:
    """Raise unless the files under `folder` are exactly those of `recorded`, with the same SHA-256."""
    found = set(folder_digests(folder, index_name))
    if found != set(recorded):
        raise AssertionError(f"{folder}: files {sorted(found ^ set(recorded))} differ from the record's list")
    for name, digest in recorded.items():
        if sha256_file(folder / name) != digest:
            raise AssertionError(f"{folder / name} was changed after recording (SHA-256 differs)")


def check_replay(recorded_log: Path, replayed_log: Path, steps: int, label: str) -> None:
    """Raise unless the replayed metrics equal the recorded ones on every logged step up to `steps`.

    Numbers are compared exactly; a NaN (a diverged run) matches a NaN."""
    expected = [r for r in read_metrics(recorded_log) if r["step"] <= steps]
    replayed = read_metrics(replayed_log)
    if not expected:
        raise AssertionError(f"{label}: no logged step within the first {steps} to replay")
    for want, got in zip(expected, replayed, strict=True):
        for key in REPLAYED_KEYS:
            a, b = want.get(key), got.get(key)
            if a != b and not (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
                raise AssertionError(
                    f"{label}: step {want['step']}: recorded {key}={a!r}, the current code gives {b!r}"
                )


def read_index(path: Path, missing: str) -> dict[str, Any]:
    """The JSON index of a record or sweep; `missing` is the message's reason when the file is absent."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {missing}") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def read_record(record_dir: str | os.PathLike) -> dict[str, Any]:
    """`record.json` of a recorded run, with a clear error if it is missing or damaged."""
    return read_index(Path(record_dir) / RECORD_NAME, f"not a recorded run (no {RECORD_NAME})")


def verify_record(record_dir: str | os.PathLike, root: str | os.PathLike, work_dir: str | os.PathLike) -> int:
    """Check a record against the current code; returns the number of replayed steps, raises on a mismatch.

    1. every file hashes as `record.json` says, and no file is missing or extra;
    2. the book's tokenizer, trained today, has the recorded fingerprint (and equals the stored one);
    3. re-running the first `replay_steps` steps reproduces every logged number of those steps exactly.
    """
    record_dir, root = Path(record_dir), Path(root)
    record = read_record(record_dir)
    check_digests(record_dir, record["sha256"], RECORD_NAME)

    config = TrainConfig.from_dict(json.loads((record_dir / CONFIG_NAME).read_text(encoding="utf-8")))
    spec = RecordSpec(record["name"], config, record["corpus"], record["tokenizer"], False, record["replay_steps"])
    config, tokenizer = prepared_config(spec, root, Path(work_dir) / spec.name)
    if tokenizer_fingerprint(tokenizer) != record["tokenizer_fingerprint"]:
        raise AssertionError(f"{record_dir}: the book's {spec.tokenizer} tokenizer is no longer the recorded one")
    if (record_dir / TOKENIZER_DIR).is_dir():
        stored = tokenizer_fingerprint(Tokenizer.load(record_dir / TOKENIZER_DIR))
        if stored != record["tokenizer_fingerprint"]:
            raise AssertionError(f"{record_dir / TOKENIZER_DIR} is not the recorded tokenizer")

    trainer = Trainer(config, progress=False, overwrite=True)
    try:
        trainer.run(until=spec.replay_steps)
    finally:
        trainer.close()
    check_replay(record_dir / METRICS_NAME, Path(config.run.out_dir) / METRICS_NAME, spec.replay_steps, str(record_dir))
    return spec.replay_steps
