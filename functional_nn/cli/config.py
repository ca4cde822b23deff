"""The training config: its fields, defaults and checks, and its JSON form in a checkpoint."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import cast

from functional_nn.csv_data import TASKS
from functional_nn.datasets import DATASET_NAMES
from functional_nn.serialization import CheckpointError, Json

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "exponential", "warmup-cosine")
MODELS = ("mlp", "cnn")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
DATA_FILE = "csv"
"""The ``dataset`` of a run trained on a data file (``fnn train --data FILE.csv``)."""
LARGEST_COUNT = 2**31 - 1
"""The largest epoch count, batch size, patience, hidden size or shard count a config takes."""

_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


@dataclass(frozen=True)
class Config:
    """Everything that determines a training run (saved in every checkpoint).

    ``data`` and ``data_sha256`` name a CSV file (its absolute path) and its SHA-256,
    ``target`` its target column and ``task`` its task, as resolved when the run started
    (all ``None``: the embedded ``dataset``; with a file, ``dataset`` is :data:`DATA_FILE`).
    ``model`` names the architecture: ``"mlp"`` (``hidden`` sizes its layers) or
    ``"cnn"``, a :class:`~functional_nn.models.ConvNet` of 8x8 images with a conv block
    per ``channels`` entry and then dense layers of the ``hidden`` sizes. ``shards`` is
    how many pieces a batch's gradient is split into (used: the result depends on it)
    and ``compile`` whether the training step is compiled with :func:`tape.jit`.
    """

    dataset: str = "digits"
    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    epochs: int = 12
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 0.0
    dropout: float = 0.0
    clip: float | None = None
    schedule: str = "constant"
    patience: int | None = None
    seed: int = 0
    data: str | None = None
    data_sha256: str | None = None
    model: str = "mlp"
    shards: int = 1
    compile: bool = True
    target: str | None = None
    task: str | None = None
    channels: tuple[int, ...] = (8,)

    def learning_rate(self) -> float:
        """The learning rate, defaulting by optimizer (0.1 for SGD-like, 0.01 for Adam-like,
        0.003 for Adam-like on ``--model cnn``)."""
        if self.lr is not None:
            return self.lr
        if self.optimizer in ("sgd", "momentum"):
            return 0.1
        return 0.003 if self.model == "cnn" else 0.01

    def to_json(self) -> dict[str, Json]:
        """The config as JSON values."""
        out = cast(dict[str, Json], asdict(self))
        out["hidden"] = list(self.hidden)
        out["channels"] = list(self.channels)
        return out

    @staticmethod
    def from_json(obj: object, *, fields_added: frozenset[str] = frozenset()) -> Config:
        """A config from :meth:`to_json`'s output; a CheckpointError naming what does not fit.

        ``fields_added`` are fields a checkpoint of an earlier release lacks: they take
        their defaults.
        """
        if not isinstance(obj, dict):
            raise CheckpointError("the checkpoint holds no training config")
        names = {f.name for f in fields(Config)}
        if set(obj) != names - fields_added:
            raise CheckpointError(
                f"the checkpoint's config has keys {sorted(obj)}, expected {sorted(names - fields_added)}"
            )
        values = {name: _checked(name, value) for name, value in obj.items()}
        try:
            config = Config(**cast(dict[str, object], values))  # type: ignore[arg-type]  # checked above
            validate(config)
        except (TypeError, UsageError) as error:
            raise CheckpointError(f"the checkpoint's config is invalid: {error}") from error
        return config


_KINDS: dict[str, type] = {
    "dataset": str,
    "activation": str,
    "epochs": int,
    "batch_size": int,
    "optimizer": str,
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "dropout": float,
    "clip": float,
    "schedule": str,
    "patience": int,
    "seed": int,
    "data": str,
    "data_sha256": str,
    "model": str,
    "shards": int,
    "compile": bool,
    "target": str,
    "task": str,
}
_SIZES = frozenset({"hidden", "channels"})
"""The fields holding a non-empty list of sizes."""
_OPTIONAL = frozenset({"lr", "momentum", "clip", "patience", "data", "data_sha256", "target", "task"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    if _is_int(value) and abs(cast(int, value)) >= 10**30:
        return "a huge integer"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _checked(name: str, value: object) -> object:
    """A config value read from JSON, as the field wants it; a CheckpointError if it is not one."""
    bad = f"the checkpoint's config has {name} = {_shown(value)}"
    if name in _SIZES:
        if not isinstance(value, list) or not value or not all(_is_int(h) for h in value):
            raise CheckpointError(f"{bad}, not a list of positive integers")
        return tuple(cast("list[int]", value))
    if value is None and name in _OPTIONAL:
        return None
    kind = _KINDS[name]
    if kind is str and not isinstance(value, str):
        raise CheckpointError(f"{bad}, not a string")
    if kind is bool and not isinstance(value, bool):
        raise CheckpointError(f"{bad}, not true or false")
    if kind is int:
        if not _is_int(value):
            raise CheckpointError(f"{bad}, not an integer")
        if name != "seed" and abs(cast(int, value)) > LARGEST_COUNT:
            raise CheckpointError(f"{bad}, too large")
    if kind is float:
        if not (_is_int(value) or isinstance(value, float)):
            raise CheckpointError(f"{bad}, not a number")
        try:
            return float(cast(float, value))
        except OverflowError:
            raise CheckpointError(f"{bad}, too large for a float") from None
    return value


def validate(config: Config) -> None:
    """Raise :class:`UsageError` for a config no run can use."""
    datasets = DATASET_NAMES if config.data is None else (DATA_FILE,)
    choices = [
        ("dataset", config.dataset, datasets),
        ("activation", config.activation, ACTIVATIONS),
        ("optimizer", config.optimizer, OPTIMIZERS),
        ("schedule", config.schedule, SCHEDULES),
        ("model", config.model, MODELS),
    ]
    for name, value, allowed in choices:
        if value not in allowed:
            raise UsageError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
    checks: list[tuple[bool, str]] = [
        (
            1 <= config.epochs <= LARGEST_COUNT,
            f"--epochs must be in [1, {LARGEST_COUNT}], got {config.epochs}",
        ),
        (
            1 <= config.batch_size <= LARGEST_COUNT,
            f"--batch-size must be in [1, {LARGEST_COUNT}], got {config.batch_size}",
        ),
        (config.learning_rate() > 0, f"--lr must be > 0, got {config.lr}"),
        (
            config.momentum is None or 0.0 <= config.momentum < 1.0,
            f"--momentum must be in [0, 1), got {config.momentum}",
        ),
        (
            config.momentum is None or config.optimizer in ("sgd", "momentum"),
            f"--momentum applies to --optimizer sgd or momentum, not {config.optimizer}",
        ),
        (config.weight_decay >= 0.0, f"--weight-decay must be >= 0, got {config.weight_decay}"),
        (0.0 <= config.dropout < 1.0, f"--dropout must be in [0, 1), got {config.dropout}"),
        (config.clip is None or config.clip > 0, f"--clip must be > 0, got {config.clip}"),
        (
            config.patience is None or 1 <= config.patience <= LARGEST_COUNT,
            f"--patience must be in [1, {LARGEST_COUNT}], got {config.patience}",
        ),
        (
            bool(config.hidden) and all(1 <= h <= LARGEST_COUNT for h in config.hidden),
            f"--hidden sizes must be in [1, {LARGEST_COUNT}], got {config.hidden}",
        ),
        (
            bool(config.channels) and all(1 <= c <= LARGEST_COUNT for c in config.channels),
            f"--channels must be in [1, {LARGEST_COUNT}], got {config.channels}",
        ),
        (
            1 <= config.shards <= LARGEST_COUNT,
            f"--shards must be in [1, {LARGEST_COUNT}], got {config.shards}",
        ),
        (
            (config.data is None) == (config.data_sha256 is None),
            "a data file and its sha256 go together",
        ),
        (
            config.data_sha256 is None or bool(_SHA256.match(config.data_sha256)),
            f"data_sha256 must be 64 lowercase hex digits, got {config.data_sha256!r}",
        ),
        (config.data is None or bool(config.data), "the data file's path is empty"),
        (
            (config.data is None) == (config.target is None) == (config.task is None),
            "a data file, its target column and its task go together",
        ),
        (config.target is None or bool(config.target), "the target column's name is empty"),
        (
            config.task is None or config.task in TASKS,
            f"--task must be one of {', '.join(TASKS)}, got {config.task!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    for number in (config.lr, config.momentum, config.weight_decay, config.dropout, config.clip):
        if number is not None and not math.isfinite(number):
            raise UsageError(f"numeric flags must be finite, got {number}")
