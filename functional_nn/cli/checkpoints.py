"""What ``fnn train`` stores beside the library's training state, and reading back any release's.

A run checkpoint is a :mod:`functional_nn.training_state` checkpoint whose metadata
also holds ``kind`` (``"fnn-train"``), ``run_format`` (:data:`RUN_FORMAT`), the
``config``, the ``standardizer`` fitted on the training split and ``columns``: for a
run on a data file, ``{"features": [names], "labels": [class labels] or null}``
(the target and task are in the config), else ``null``.

Run formats:

1. release 0.1.0 (no ``run_format`` key): the config without ``data``, ``data_sha256``,
   ``model``, ``shards`` and ``compile``; ``key`` held ``key(seed)``; an early-stopped
   run had ``restored_best_epoch``; no ``training_version`` or ``stopped_early``.
2. the config's new fields; the training state as :mod:`functional_nn.training_state`
   writes it (``key`` is the training key, see :func:`~functional_nn.cli.assembly.run_keys`).
3. the config's ``target`` and ``task``; ``columns``.
4. the config's ``channels`` (the conv blocks of ``--model cnn``, which format 4 brought).

A file of an earlier format is read by upgrading its metadata to the current format in memory; nothing on
disk is rewritten until the run saves again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from pyrsistent import PMap, PVector, pvector

from functional_nn import random
from functional_nn.activations import ActivationName
from functional_nn.cli.assembly import run_keys
from functional_nn.cli.config import Config
from functional_nn.csv_data import CsvSchema, Task
from functional_nn.datasets import Standardizer
from functional_nn.mlp import MLP
from functional_nn.serialization import Checkpoint, CheckpointError, Json, load_checkpoint
from functional_nn.training_state import RESERVED_KEYS, TRAINING_VERSION

KIND = "fnn-train"
RUN_FORMAT = 4
"""The version of the run metadata ``fnn train`` writes (see the module's docstring)."""

_FIELDS_ADDED = {
    1: frozenset({"data", "data_sha256", "model", "shards", "compile", "target", "task", "channels"}),
    2: frozenset({"target", "task", "channels"}),
    3: frozenset({"channels"}),
    4: frozenset(),
}
"""The config fields each format lacks: they take their defaults."""
_KEYS_2 = frozenset({"kind", "run_format", "config", "standardizer"}) | RESERVED_KEYS
_KEYS = _KEYS_2 | {"columns"}
_V1_KEYS = frozenset({"kind", "config", "epochs_done", "key", "standardizer", "history", "early_stopping"})


def run_metadata(
    config: Config, standardizer: Standardizer, schema: CsvSchema | None = None
) -> dict[str, Json]:
    """The metadata ``fnn train`` stores beside the training state (``schema``: a data file's columns)."""
    columns: Json = None
    if schema is not None:
        labels: Json = None if schema.labels is None else list(schema.labels)
        columns = {"features": list(schema.features), "labels": labels}
    return {
        "kind": KIND,
        "run_format": RUN_FORMAT,
        "config": config.to_json(),
        "standardizer": {"mean": list(standardizer.mean), "scale": list(standardizer.scale)},
        "columns": columns,
    }


@dataclass(frozen=True)
class SavedRun:
    """A run checkpoint as read back: its config and standardizer, and the checkpoint itself
    with its metadata upgraded to the current :data:`RUN_FORMAT`."""

    config: Config
    standardizer: Standardizer
    checkpoint: Checkpoint
    run_format: int
    schema: CsvSchema | None = None
    """The data file's columns, for a run on one (``None`` for an embedded dataset)."""


def _names(value: object, what: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) != len(value)
    ):
        raise CheckpointError(f"the checkpoint's {what} are not a list of distinct non-empty names")
    return tuple(cast("list[str]", value))


def _schema(raw: object, config: Config) -> CsvSchema | None:
    """The data file's columns in a checkpoint, checked against its config."""
    if config.data is None or config.target is None or config.task is None:
        if raw is not None:
            raise CheckpointError("the checkpoint names data columns but its config no data file")
        return None
    if not isinstance(raw, dict) or set(raw) != {"features", "labels"}:
        raise CheckpointError("the checkpoint's columns are not an object with features and labels")
    features = _names(raw["features"], "feature columns")
    if not features or config.target in features:
        raise CheckpointError("the checkpoint's feature columns are empty or hold the target")
    if config.task == "regression":
        if raw["labels"] is not None:
            raise CheckpointError("the checkpoint has class labels for a regression run")
        return CsvSchema(features, config.target, "regression", None)
    labels = _names(raw["labels"], "class labels")
    if len(labels) < 2:
        raise CheckpointError("the checkpoint's class labels are fewer than two")
    return CsvSchema(features, config.target, cast(Task, config.task), labels)


def _standardizer(raw: object) -> Standardizer:
    if not isinstance(raw, dict) or set(raw) != {"mean", "scale"}:
        raise CheckpointError("the checkpoint's standardizer is not an object with mean and scale")
    columns: list[list[float]] = []
    for name in ("mean", "scale"):
        values = raw[name]
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise CheckpointError(f"the checkpoint's standardizer {name} is not a list of numbers")
        try:
            columns.append([float(v) for v in values])
        except OverflowError:
            raise CheckpointError(f"the checkpoint's standardizer {name} is too large for floats") from None
    try:
        return Standardizer(pvector(columns[0]), pvector(columns[1]))
    except ValueError as error:
        raise CheckpointError(f"the checkpoint's standardizer is invalid: {error}") from error


def _upgrade_from_1(meta: Mapping[str, Json], config: Config) -> dict[str, Json]:
    """Format 1 metadata in format 2's layout (checking what format 2 no longer stores)."""
    extra = sorted(set(meta) - _V1_KEYS - {"restored_best_epoch"})
    missing = sorted(_V1_KEYS - set(meta))
    if extra or missing:
        raise CheckpointError(f"the checkpoint's metadata has unexpected {extra} and lacks {missing}")
    if meta["key"] != random.key(config.seed).data:
        raise CheckpointError("the checkpoint's key is not the one its seed gives")
    restored = meta.get("restored_best_epoch")
    if restored is not None and (not isinstance(restored, int) or isinstance(restored, bool)):
        raise CheckpointError(f"the checkpoint's restored_best_epoch is {restored!r}, not an epoch")
    out = {name: value for name, value in meta.items() if name != "restored_best_epoch"}
    out.update(
        run_format=RUN_FORMAT,
        training_version=TRAINING_VERSION,
        key=run_keys(config.seed).train.data,
        stopped_early=restored is not None,
    )
    return out


def read_run(path: str | os.PathLike[str], checkpoint: Checkpoint | None = None) -> SavedRun:
    """The run checkpoint at ``path`` (``checkpoint``, if it is loaded already), of any run format.

    Raises a CheckpointError naming what is wrong. The training state itself is checked
    against the model when it is used (:func:`functional_nn.training_state.read_training_state`).
    """
    where = os.fspath(path)
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(where)
    meta = checkpoint.metadata
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{where} was not written by `fnn train`")
    version = meta.get("run_format", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in _FIELDS_ADDED:
        raise CheckpointError(
            f"{where} has run format {version!r}; this fnn reads formats 1 to {RUN_FORMAT}: "
            "a newer fnn wrote it?"
        )
    if version == 1 and "run_format" in meta:
        raise CheckpointError(f"{where} names run format 1, which never named itself")
    keys = {2: _KEYS_2, 3: _KEYS, RUN_FORMAT: _KEYS}.get(version)
    if keys is not None and set(meta) != keys:
        raise CheckpointError(f"{where} has run metadata keys {sorted(meta)}, expected {sorted(keys)}")
    try:
        config = Config.from_json(meta.get("config"), fields_added=_FIELDS_ADDED[version])
        standardizer = _standardizer(meta.get("standardizer"))
        upgraded = dict(meta) if version != 1 else _upgrade_from_1(meta, config)
        if version != RUN_FORMAT:
            upgraded.update(run_format=RUN_FORMAT, config=config.to_json())
        if version < 3:
            upgraded.update(columns=None)
        schema = _schema(upgraded["columns"], config)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from error
    return SavedRun(
        config, standardizer, Checkpoint(checkpoint.params, checkpoint.opt_state, upgraded), version, schema
    )


def _rows(value: object) -> list[int] | None:
    """The row lengths of a vector of vectors, or None if it is not one."""
    if not isinstance(value, PVector) or not all(isinstance(row, PVector) for row in value):
        return None
    return [len(row) for row in value]


def infer_mlp(params: object, activation: str) -> MLP:
    """The MLP whose parameters ``params`` are, read from the weight shapes.

    ``activation`` cannot be read from numbers: it is given (``fnn`` takes it from
    ``--activation``, default relu). A CheckpointError says what does not look like an MLP.
    """
    if not isinstance(params, PMap) or set(params) != {"layers"} or not isinstance(params["layers"], PVector):
        raise CheckpointError("its params are not an MLP's (a map with one key, 'layers', holding a list)")
    layers = params["layers"]
    if not layers:
        raise CheckpointError("its params hold no layers")
    sizes: list[int] = []
    n_in = -1
    for i, layer in enumerate(layers):
        rows = _rows(layer.get("weight")) if isinstance(layer, PMap) else None
        bias = layer.get("bias") if isinstance(layer, PMap) else None
        if rows is None or not rows or not isinstance(bias, PVector) or set(layer) != {"weight", "bias"}:
            raise CheckpointError(f"its layer {i} is not a map of a weight matrix and a bias vector")
        fan_in = rows[0]
        if i == 0:
            n_in = fan_in
        if (
            fan_in != (n_in if i == 0 else sizes[-1])
            or any(r != fan_in for r in rows)
            or len(bias) != len(rows)
        ):
            raise CheckpointError(f"its layer {i}'s weight and bias shapes do not chain to the layer before")
        sizes.append(len(rows))
    if n_in < 1:
        raise CheckpointError("its first layer takes no inputs")
    try:
        model = MLP(n_in, sizes, activation=cast(ActivationName, activation))
        model.check_params(params)
    except ValueError as error:
        raise CheckpointError(f"its params do not fit an MLP: {error}") from error
    return model
