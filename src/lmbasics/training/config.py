"""Typed training configuration read from TOML, with `section.key=value` overrides (chapter 7).

A config file has four tables: `[model]` (a `ModelConfig`), `[optimizer]`, `[data]` and `[run]`.
Every key is checked against the dataclasses below: an unknown key or a value of the wrong type is
an error that names the key, never silently ignored. TOML has no null, so an optional field is set to
None with the string "none" (e.g. `rope_theta = "none"` for the NoPE ablation).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib

from lmbasics.checks import check_choice
from lmbasics.model.config import ModelConfig

OptimizerKind = Literal["adamw", "muon"]
ScheduleKind = Literal["cosine", "wsd"]


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with linear warm-up, cosine decay and gradient clipping (handout §4), and chapter 11's
    switches (the defaults are the handout's recipe, bit for bit)."""

    max_learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_iters: int = 100
    # Length of warm-up plus cosine decay; None means the whole run (max_iters).
    cosine_cycle_iters: int | None = None
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    max_grad_norm: float | None = 1.0
    # "cosine" (the handout's), or "wsd": warm-up, the peak rate, then a linear decay over the last
    # decay_iters steps (None: the last 20% of the run) to min_learning_rate.
    schedule: ScheduleKind = "cosine"
    decay_iters: int | None = None
    # Coefficient of PaLM's z-loss, mean((log Z)²), added to the training loss (0: not computed).
    z_loss: float = 0.0
    # "adamw", or "muon": Muon on the hidden matrices at muon_learning_rate (scaled by the schedule
    # like the AdamW rate), AdamW at max_learning_rate on embeddings, LM head and gains.
    optimizer: OptimizerKind = "adamw"
    muon_learning_rate: float = 0.02
    muon_momentum: float = 0.95

    def __post_init__(self) -> None:
        check_choice("OptimizerConfig.schedule", self.schedule, typing.get_args(ScheduleKind))
        check_choice("OptimizerConfig.optimizer", self.optimizer, typing.get_args(OptimizerKind))
        if self.decay_iters is not None and self.decay_iters < 1:
            raise ValueError(f"OptimizerConfig.decay_iters must be >= 1 or None, got {self.decay_iters}")
        if self.z_loss < 0:
            raise ValueError(f"OptimizerConfig.z_loss must be >= 0, got {self.z_loss}")


@dataclass(frozen=True)
class DataConfig:
    """Token arrays (uint16/uint32 `.npy` from `lmbasics encode`)."""

    train: str = ""
    valid: str = ""


@dataclass(frozen=True)
class RunConfig:
    """Length of the run, batch, logging and checkpointing, and where it runs."""

    batch_size: int = 32  # sequences per step, over all processes
    max_iters: int = 1_000
    # Every how many steps to evaluate (on eval_iters batches), log and save a checkpoint.
    eval_interval: int = 100
    eval_iters: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 500
    out_dir: str = "runs/default"
    seed: int = 0
    # "auto" picks cuda, then mps, then cpu.
    device: str = "auto"
    # bf16 autocast and TF32 matmuls, applied only on CUDA.
    mixed_precision: bool = True
    compile: bool = False
    num_threads: int | None = None
    # Also write TensorBoard event files to out_dir/tensorboard (`tensorboard --logdir out_dir`).
    tensorboard: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Everything `lmbasics train` needs; see `configs/*.toml` for examples."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def tokens_per_iter(self) -> int:
        return self.run.batch_size * self.model.context_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from nested dicts (as TOML parses), checking every key and type."""
        unknown = sorted(set(values) - set(_SECTIONS))
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {unknown}; expected model, optimizer, data, run")
        sections = {}
        for name, section_class in _SECTIONS.items():
            table = values.get(name, {})
            if not isinstance(table, dict):
                raise ValueError(f"{source}: [{name}] must be a table, got {table!r}")
            for key in table:
                if (name, key) in _REMOVED_KEYS:
                    raise ValueError(f"{source}: {name}.{key} was removed ({_REMOVED_KEYS[name, key]})")
            sections[name] = _build(section_class, table, f"{source}: {name}")
        return cls(**sections)

    def with_overrides(self, assignments: list[str]) -> TrainConfig:
        """Apply `section.key=value` strings (value parsed as TOML, else taken as a string)."""
        values = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ValueError(f"--set {assignment!r}: expected section.key=value, e.g. run.max_iters=200")
            if section not in values:
                raise ValueError(f"--set {assignment!r}: unknown section {section!r}")
            values[section][name] = _parse_value(raw.strip())
        return TrainConfig.from_dict(values, source="--set")


# Keys that configs once had and that nothing reads any more: named in the error, with what to do.
_REMOVED_KEYS = {("data", "tokenizer"): "nothing ever read it; delete the line"}

# The TOML tables and the dataclass each one fills, in TrainConfig's field order.
_SECTIONS: dict[str, type] = {"model": ModelConfig, "optimizer": OptimizerConfig, "data": DataConfig, "run": RunConfig}


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether `value` fits a field annotation (ints are accepted for floats; bools are not ints)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
    table = {k: None if v == "none" and _accepts(hints[k], None) else v for k, v in table.items()}
    for key, value in table.items():
        if not _accepts(hints[key], value):
            raise ValueError(f"{where}.{key}: expected {hints[key]}, got {value!r} ({type(value).__name__})")
    values = {k: float(v) if hints[k] is float else v for k, v in table.items()}
    return cls(**values)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML training config and apply `--set` overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from error
    config = TrainConfig.from_dict(values, source=str(path))
    return config.with_overrides(overrides) if overrides else config


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` command's arguments (shared by `lmbasics train` and `python -m lmbasics.training`)."""
    parser.add_argument("--config", required=True, help="TOML training config (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set run.max_iters=200 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from run.out_dir/checkpoint.pt")
    parser.add_argument("--force", action="store_true", help="start over even if run.out_dir holds a run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--tensorboard",
        dest="overrides",
        action="append_const",
        const="run.tensorboard=true",
        help="also write TensorBoard event files to run.out_dir/tensorboard (same as --set run.tensorboard=true)",
    )
