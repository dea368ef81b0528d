"""Recorded sweeps: many runs of one protocol, trained once by `make runs` and proven in CI by replay
(chapters 8, 9 and 11).

A sweep is specified by `configs/sweeps/<name>.toml`: a base training config (`[model]`, `[optimizer]`,
`[run]`, or a file named by `sweep.base` that these tables update), a `[sweep]` table (the book corpus
and tokenizer, the seeds, how many opening steps CI replays) and a `[settings]` table mapping each
setting's name to its overrides of the base config. Every setting is trained at every seed, and each
finished run is scored on the **whole held-out text** of the corpus (`mean_window_loss`), the same text
for every run. `record_sweep` writes
`results/<name>/`:

- `sweep.json`: the spec, command, machine, software, pins, date and wall time, and per run its setting,
  seed, overrides, held-out loss (nats/token and bits/byte), wall time and whether it `diverged`, plus a
  SHA-256 of every file;
- `runs/<setting>/seed<k>/metrics.jsonl`: each run's metrics log, as the trainer wrote it.

Weights are not kept: a sweep answers its question with its losses. Runs finished earlier are reused
from `artifacts/sweeps/`, so an interrupted sweep continues where it stopped and sweeps share runs.
`verify_sweep` checks the hashes and the tokenizer, and replays the opening steps of every run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from lmbasics.atomic import atomic_write_text
from lmbasics.book.corpora import corpus_path, token_arrays, tokenizer_fingerprint
from lmbasics.book.experiments import Run
from lmbasics.book.notebook import PINNED_KERNELS, kernels_pinned
from lmbasics.book.probes import mean_window_loss
from lmbasics.book.protocol import diverged
from lmbasics.book.records import (
    check_digests,
    check_replay,
    folder_digests,
    machine_description,
    read_index,
    root_paths,
    sha256_file,
)
from lmbasics.book.tokenizers import BOOK_TOKENIZERS, book_tokenizer
from lmbasics.checks import check_choice
from lmbasics.training.config import TrainConfig
from lmbasics.training.metrics import METRICS_NAME, read_metrics
from lmbasics.training.trainer import Trainer

SWEEP_NAME = "sweep.json"
_SWEEP_KEYS = {"base", "corpus", "tokenizer", "seeds", "replay_steps"}


@dataclass(frozen=True)
class SweepSpec:
    """What `configs/sweeps/<name>.toml` asks for: a base config, settings as overrides, and seeds."""

    name: str
    base: TrainConfig
    corpus: str
    tokenizer: str
    seeds: tuple[int, ...]
    replay_steps: int
    settings: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: str | os.PathLike, root: str | os.PathLike = ".") -> SweepSpec:
        """Read a spec; `sweep.base`, if given, is a training config whose tables the spec's own update."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sweep spec not found: {path}")
        values = tomllib.loads(path.read_text(encoding="utf-8"))
        sweep, settings = values.pop("sweep", None), values.pop("settings", None)
        if not isinstance(sweep, dict) or not isinstance(settings, dict) or not settings:
            raise ValueError(
                f"{path}: a [sweep] table ({', '.join(sorted(_SWEEP_KEYS))}) and a non-empty [settings] table "
                "are required"
            )
        unknown = sorted(set(sweep) - _SWEEP_KEYS)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) in [sweep]: {unknown}")
        check_choice(f"{path}: sweep.tokenizer", sweep.get("tokenizer"), BOOK_TOKENIZERS)
        if "base" in sweep:  # a training config file (relative to the repository root), its [data] left out
            base_path = Path(root) / sweep["base"]
            if not base_path.is_file():
                raise FileNotFoundError(f"{path}: sweep.base {sweep['base']!r} not found under {root}")
            tables = tomllib.loads(base_path.read_text(encoding="utf-8"))
            tables.pop("data", None)
            for table, entries in values.items():
                tables.setdefault(table, {}).update(entries)
            values = tables
        if "data" in values:
            raise ValueError(f"{path}: no [data] table: the sweep's token arrays come from sweep.corpus")
        for name, overrides in settings.items():
            if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
                raise ValueError(f"{path}: setting {name!r} must be a list of 'section.key=value' strings")
        seeds = tuple(int(s) for s in sweep.get("seeds", ()))
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"{path}: sweep.seeds must be a non-empty list of distinct seeds, got {list(seeds)}")
        spec = cls(
            name=path.stem,
            base=TrainConfig.from_dict(values, source=str(path)),
            corpus=sweep.get("corpus", ""),
            tokenizer=sweep["tokenizer"],
            seeds=seeds,
            replay_steps=int(sweep.get("replay_steps", 3)),
            settings={name: tuple(overrides) for name, overrides in settings.items()},
        )
        for name in spec.settings:  # every override must apply, and leave a run that records replay steps
            config = spec.config(name, seeds[0])
            if not 0 < spec.replay_steps <= config.run.max_iters:
                raise ValueError(f"{path}: sweep.replay_steps must be in 1..run.max_iters for setting {name!r}")
        return spec

    def config(self, setting: str, seed: int) -> TrainConfig:
        """The base config changed by `setting`'s overrides, at `seed`."""
        return self.base.with_overrides([*self.settings[setting], f"run.seed={seed}"])


def run_slug(setting: str) -> str:
    """A file-name-safe folder name for a setting (its words, plus a short hash so names stay distinct)."""
    words = re.sub(r"[^a-z0-9]+", "-", setting.lower()).strip("-")[:40]
    return f"{words}-{hashlib.sha256(setting.encode()).hexdigest()[:6]}"


def config_digest(config: TrainConfig) -> str:
    """A short digest of what a run trains: its whole config except where it writes (`run.out_dir`)."""
    settings = config.to_dict()
    settings["run"].pop("out_dir", None)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_folder(config: TrainConfig, artifacts_dir: Path) -> Path:
    """Where a sweep trains `config`: one folder per distinct config, so sweeps that share a run (the
    baseline of one is a rate of another) train it once."""
    return artifacts_dir / "sweeps" / config_digest(config)


def _arrays(spec: SweepSpec, root: Path) -> tuple[dict[str, Path], Any]:
    data_dir, artifacts_dir = root_paths(root)
    tokenizer = book_tokenizer(spec.tokenizer, data_dir, artifacts_dir)
    if len(tokenizer) != spec.base.model.vocab_size:
        raise ValueError(
            f"sweep {spec.name}: model.vocab_size is {spec.base.model.vocab_size} "
            f"but {spec.tokenizer} has {len(tokenizer)} tokens"
        )
    return token_arrays(spec.corpus, tokenizer, data_dir, artifacts_dir / "tokens"), tokenizer


def _train(config: TrainConfig, until: int | None = None) -> Trainer:
    trainer = Trainer(config, progress=False, overwrite=True)
    try:
        trainer.run(until=until)
    finally:
        trainer.close()
    return trainer


def _scored_run(config: TrainConfig, settings: dict[str, Any], valid_ids: np.ndarray, label: str) -> float:
    """The held-out loss of the run `config` describes: trained and scored now, or read from its folder.

    A lock file lets two sweeps that share a run (started side by side on the two cores) train it once:
    the second waits for the first's score instead of training into the same folder."""
    work = Path(config.run.out_dir)
    done, lock = work / "scored.json", work / "training.lock"
    work.mkdir(parents=True, exist_ok=True)
    waiting = False
    while True:
        previous = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
        if previous is not None and previous["settings"] == settings:
            return previous["heldout_nats"]
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            if not waiting:
                print(f"  {label}: waiting for {lock} (another sweep trains it; delete the file if none does)")
                waiting = True
            time.sleep(5)
    try:
        print(f"  {label} ...", flush=True)
        trainer = _train(config)
        with torch.no_grad():
            nats = mean_window_loss(trainer.model.eval(), valid_ids)
        atomic_write_text(done, json.dumps({"settings": settings, "heldout_nats": nats}))
    finally:
        lock.unlink()
    return nats


def record_sweep(spec_path: str | os.PathLike, root: str | os.PathLike, results_dir: str | os.PathLike) -> Path:
    """Train every setting at every seed under the pinned kernels, score each on the held-out text, and
    write `results_dir/<name>/`. Runs already finished with the same config are reused."""
    if not kernels_pinned():
        pins = " ".join(f"{k}={v}" for k, v in PINNED_KERNELS.items())
        raise RuntimeError(f"recorded sweeps are made under the pinned kernels: set {pins} (make runs does)")
    spec, root = SweepSpec.load(spec_path, root), Path(root)
    arrays, tokenizer = _arrays(spec, root)
    data_dir, artifacts_dir = root_paths(root)
    valid_ids = np.load(arrays["valid"])
    bytes_per_token = corpus_path(spec.corpus, "valid", data_dir, artifacts_dir).stat().st_size / len(valid_ids)
    out = Path(results_dir) / spec.name
    runs: list[dict[str, Any]] = []
    start = time.perf_counter()
    for setting in spec.settings:
        for seed in spec.seeds:
            config = spec.config(setting, seed).with_overrides(
                [f"data.train={arrays['train']}", f"data.valid={arrays['valid']}"]
            )
            work = run_folder(config, artifacts_dir)
            config = config.with_overrides([f"run.out_dir={work}"])
            settings_now = {"config": config.to_dict(), "torch": torch.__version__}
            nats = _scored_run(config, settings_now, valid_ids, f"{setting}, seed {seed}")
            log = read_metrics(work / METRICS_NAME)
            file = f"runs/{run_slug(setting)}/seed{seed}/{METRICS_NAME}"
            (out / file).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / file, (work / METRICS_NAME).read_text(encoding="utf-8"))
            runs.append(
                {
                    "setting": setting,
                    "seed": seed,
                    "overrides": list(spec.settings[setting]),
                    "file": file,
                    "heldout_nats": nats,
                    "heldout_bits_per_byte": nats / math.log(2) / bytes_per_token,
                    "wall_time_s": round(log[-1]["wall_time_s"], 1),
                    "diverged": diverged(nats, config.model.vocab_size),
                }
            )
    sweep = {
        "name": spec.name,
        "command": f"make runs NAME={spec.name}",
        "spec": f"configs/sweeps/{spec.name}.toml",
        "corpus": spec.corpus,
        "tokenizer": spec.tokenizer,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "heldout_tokens": int(len(valid_ids)),
        "bytes_per_token": bytes_per_token,
        "replay_steps": spec.replay_steps,
        "machine": machine_description(),
        "software": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "pins": {name: os.environ.get(name) for name in PINNED_KERNELS},
        "date": time.strftime("%Y-%m-%d"),
        "wall_time_s": round(sum(r["wall_time_s"] for r in runs), 1),
        "this_invocation_s": round(time.perf_counter() - start, 1),
        "base": spec.base.to_dict(),
        "runs": runs,
    }
    sweep["sha256"] = folder_digests(out, SWEEP_NAME)
    atomic_write_text(out / SWEEP_NAME, json.dumps(sweep, indent=1) + "\n")
    return out


@dataclass(frozen=True)
class Sweep:
    """A recorded sweep, read back: `losses(setting)` per seed, `log(setting, seed)` per run."""

    folder: Path
    meta: dict[str, Any]

    @property
    def settings(self) -> list[str]:
        return list(dict.fromkeys(r["setting"] for r in self.meta["runs"]))

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r["seed"] for r in self.meta["runs"]))

    def _run(self, setting: str, seed: int) -> dict[str, Any]:
        for run in self.meta["runs"]:
            if run["setting"] == setting and run["seed"] == seed:
                return run
        raise KeyError(f"sweep {self.meta['name']} has no run of {setting!r} at seed {seed}; settings: {self.settings}")

    def losses(self, setting: str, key: str = "heldout_nats") -> list[float]:
        """Held-out loss of `setting` at each seed, in seed order (nats/token; or another run key)."""
        return [self._run(setting, seed)[key] for seed in self.seeds]

    def log(self, setting: str, seed: int) -> list[dict[str, Any]]:
        """The metrics log of one run."""
        return read_metrics(self.folder / self._run(setting, seed)["file"])

    def logs(self, setting: str) -> list[list[dict[str, Any]]]:
        """The metrics logs of `setting`, one per seed."""
        return [self.log(setting, seed) for seed in self.seeds]

    def runs(self, setting: str) -> list[Run]:
        """The runs of `setting`, one per seed, as `Run`s (config, folder of the log, log): what
        `log_experiment` records and `plot_seed_bands` draws."""
        base = TrainConfig.from_dict(self.meta["base"])
        runs = []
        for seed in self.seeds:
            run = self._run(setting, seed)
            folder = self.folder / Path(run["file"]).parent
            runs.append(Run(base.with_overrides([*run["overrides"], f"run.seed={seed}"]), folder, read_metrics(folder)))
        return runs

    def replay(
        self,
        setting: str,
        seed: int,
        steps: int,
        arrays: dict[str, Path],
        out_dir: str | os.PathLike,
        run_seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Train the first `steps` steps of one recorded run again, into `out_dir`, and return their log.

        `arrays` are the sweep's token arrays (`token_arrays` of its corpus and tokenizer). The run keeps its
        recorded seed unless `run_seed` is given: the chapters pass `book_seed(seed)`, which differs from it
        only under a seed offset, where there is nothing to compare."""
        config = self.run_config(setting, seed, arrays, run_seed).with_overrides([f"run.out_dir={out_dir}"])
        _train(config, until=steps)
        return read_metrics(Path(out_dir) / METRICS_NAME)

    def run_config(self, setting: str, seed: int, arrays: dict[str, Path], run_seed: int | None = None) -> TrainConfig:
        """The config of one recorded run, reading the token `arrays` (see `replay` for `run_seed`)."""
        run = self._run(setting, seed)
        return TrainConfig.from_dict(self.meta["base"]).with_overrides(
            [
                *run["overrides"],
                f"run.seed={seed if run_seed is None else run_seed}",
                f"data.train={arrays['train']}",
                f"data.valid={arrays['valid']}",
            ]
        )


def read_sweep(folder: str | os.PathLike) -> Sweep:
    """The recorded sweep in `folder` (`results/<name>/`), with a clear error if it is missing or damaged."""
    meta = read_index(Path(folder) / SWEEP_NAME, f"not a recorded sweep (no {SWEEP_NAME}; make runs NAME=...)")
    return Sweep(Path(folder), meta)


def verify_sweep(
    folder: str | os.PathLike,
    root: str | os.PathLike,
    work_dir: str | os.PathLike,
    verified: set[tuple[str, int, str]] | None = None,
) -> int:
    """Check a recorded sweep against the current code; returns the number of runs checked.

    1. every file hashes as `sweep.json` says, and no file is missing or extra;
    2. the book's tokenizer, trained today, has the recorded fingerprint;
    3. each run's first `replay_steps` steps, re-run under the pins, reproduce its logged numbers exactly.

    `verified` (config digest, steps, digest of the recorded log) collects the runs replayed so far. Calls
    that share it replay a run that several sweeps share, with the same config and the same recorded log,
    once: its replay could only give the same numbers again."""
    verified = set() if verified is None else verified
    sweep = read_sweep(folder)
    meta, root = sweep.meta, Path(root)
    check_digests(sweep.folder, meta["sha256"], SWEEP_NAME)
    base = TrainConfig.from_dict(meta["base"])
    spec = SweepSpec(
        meta["name"], base, meta["corpus"], meta["tokenizer"], tuple(sweep.seeds), meta["replay_steps"], {}
    )
    arrays, tokenizer = _arrays(spec, root)
    if tokenizer_fingerprint(tokenizer) != meta["tokenizer_fingerprint"]:
        raise AssertionError(f"{sweep.folder}: the book's {spec.tokenizer} tokenizer is no longer the recorded one")
    for run in meta["runs"]:
        recorded = sweep.folder / run["file"]
        # At least `replay_steps`, and at least up to the run's first logged step (its log_interval).
        steps = max(spec.replay_steps, read_metrics(recorded)[0]["step"])
        key = (config_digest(sweep.run_config(run["setting"], run["seed"], arrays)), steps, sha256_file(recorded))
        if key in verified:
            continue
        work = Path(work_dir) / spec.name / Path(run["file"]).parent
        sweep.replay(run["setting"], run["seed"], steps, arrays, work)
        check_replay(recorded, work / METRICS_NAME, steps, f"{sweep.folder}: {run['file']}")
        verified.add(key)
    return len(meta["runs"])
