"""The state of a training run, and its place in a checkpoint file.

A :class:`TrainingState` is everything :func:`functional_nn.train.fit` needs to
continue a run exactly where it stopped: params, optimizer state, the number of
epochs done, the run's key, the early-stopping bookkeeping and the history so far.
:func:`save_training_state` writes it with :func:`~functional_nn.serialization.save_checkpoint`
(atomic, checksummed) under these metadata keys, next to whatever metadata the
application adds:

``training_version``
    :data:`TRAINING_VERSION`, the layout of the keys below.
``epochs_done``, ``key``, ``stopped_early``
    an int, the key's 128-bit int, a bool.
``history``
    one object per epoch: ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy``, ``seconds`` (``null`` stands for ``nan``).
``early_stopping``
    ``best_loss`` (``null`` for none yet), ``best_epoch``, ``waited`` and ``best_params``
    (a state dict, or ``null``).

:func:`read_training_state` checks every one of them and raises
:class:`~functional_nn.serialization.CheckpointError` naming the first thing wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from functional_nn import random
from functional_nn.objective import Params
from functional_nn.serialization import (
    Checkpoint,
    CheckpointError,
    Json,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    state_dict,
)
from optimizers.state import OptState, state_to_json

__all__ = [
    "RESERVED_KEYS",
    "TRAINING_VERSION",
    "Checkpointing",
    "EarlyStopping",
    "EpochLog",
    "TrainingState",
    "read_training_state",
    "save_training_state",
]

TRAINING_VERSION = 1
"""The layout of the training keys in a checkpoint's metadata."""

RESERVED_KEYS = frozenset(
    {"training_version", "epochs_done", "key", "stopped_early", "history", "early_stopping"}
)
"""Metadata keys the training state owns; an application's own metadata must use others."""

_HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
_LARGEST_COUNT = 2**53
"""Counts in an optimizer state above this cannot be a real run's (and overflow float math)."""


@dataclass(frozen=True)
class EpochLog:
    """Metrics of one finished epoch (validation ones are ``nan`` without validation data)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class EarlyStopping:
    """Early-stopping bookkeeping: best validation loss so far, its epoch and params."""

    best_loss: float = math.inf
    best_epoch: int = -1
    best_params: Params | None = None
    waited: int = 0

    def update(self, epoch: int, val_loss: float, params: Params) -> EarlyStopping:
        """The state after an epoch with validation loss ``val_loss``."""
        if val_loss < self.best_loss:
            return EarlyStopping(val_loss, epoch, params, 0)
        return EarlyStopping(self.best_loss, self.best_epoch, self.best_params, self.waited + 1)


@dataclass(frozen=True)
class TrainingState:
    """A run after ``epochs_done`` epochs: what a checkpoint holds and a resumed run continues from.

    ``params`` are those after the last epoch, except when ``stopped_early``: then they
    are the best epoch's, as :func:`~functional_nn.train.fit` returns them.
    """

    params: Params
    opt_state: OptState
    epochs_done: int
    key: random.Key
    early_stopping: EarlyStopping
    history: tuple[EpochLog, ...]
    stopped_early: bool = False


@dataclass(frozen=True)
class Checkpointing:
    """Where :func:`~functional_nn.train.fit` writes a checkpoint after every epoch.

    ``metadata`` is the application's own (a config, say), stored beside the training
    state; it may not use the keys in :data:`RESERVED_KEYS`.
    """

    path: str | os.PathLike[str]
    metadata: Mapping[str, Json] | None = None

    def __post_init__(self) -> None:
        clash = sorted(RESERVED_KEYS & set(self.metadata or {}))
        if clash:
            raise ValueError(f"checkpoint metadata may not use the training state's keys {clash}")


def _number(value: float) -> Json:
    return None if math.isnan(value) else value


def _state_metadata(state: TrainingState) -> dict[str, Json]:
    stop = state.early_stopping
    return {
        "training_version": TRAINING_VERSION,
        "epochs_done": state.epochs_done,
        "key": state.key.data,
        "stopped_early": state.stopped_early,
        "history": [{name: _number(getattr(log, name)) for name in _HISTORY_FIELDS} for log in state.history],
        "early_stopping": {
            "best_loss": None if math.isinf(stop.best_loss) else stop.best_loss,
            "best_epoch": stop.best_epoch,
            "waited": stop.waited,
            "best_params": None if stop.best_params is None else cast(Json, state_dict(stop.best_params)),
        },
    }


def save_training_state(
    path: str | os.PathLike[str], state: TrainingState, metadata: Mapping[str, Json] | None = None
) -> None:
    """Write ``state`` (and the application's ``metadata``) to ``path``, atomically and checksummed."""
    extra = dict(Checkpointing(path, metadata).metadata or {})
    save_checkpoint(path, state.params, state.opt_state, {**extra, **_state_metadata(state)})


# --- reading back -------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(meta: Mapping[str, object], name: str, low: int, high: int) -> int:
    value = meta.get(name)
    if not _is_int(value) or not low <= cast(int, value) <= high:
        raise CheckpointError(
            f"the checkpoint's {name} is {_shown(value)}, not an integer in [{low}, {high}]"
        )
    return cast(int, value)


def _shown(value: object) -> str:
    text = repr(value) if not _is_int(value) or abs(cast(int, value)) < 10**30 else "a huge integer"
    return text if len(text) <= 60 else f"{text[:57]}..."


def _float(value: object, where: str, *, allow_none: bool, minimum: float | None = None) -> float:
    if value is None and allow_none:
        return math.nan
    if not (_is_int(value) or isinstance(value, float)):
        raise CheckpointError(f"the checkpoint's {where} is {_shown(value)}, not a number")
    try:
        number = float(cast(float, value))
    except OverflowError:
        raise CheckpointError(f"the checkpoint's {where} is too large for a float") from None
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise CheckpointError(f"the checkpoint's {where} is {number!r}, not a finite number{bound}")
    return number


def _history(raw: object, epochs_done: int) -> tuple[EpochLog, ...]:
    if not isinstance(raw, list):
        raise CheckpointError("the checkpoint's history is not a list")
    if len(raw) > epochs_done:
        raise CheckpointError(f"the checkpoint's history has {len(raw)} epochs but {epochs_done} are done")
    first = epochs_done - len(raw)
    out: list[EpochLog] = []
    for index, item in enumerate(raw):
        where = f"history[{index}]"
        if not isinstance(item, dict) or set(item) != set(_HISTORY_FIELDS):
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise CheckpointError(f"the checkpoint's {where} has {keys}, expected {list(_HISTORY_FIELDS)}")
        if item["epoch"] != first + index or not _is_int(item["epoch"]):
            raise CheckpointError(
                f"the checkpoint's {where} is for epoch {_shown(item['epoch'])}, expected {first + index}"
            )
        losses = [_float(item[name], f"{where}.{name}", allow_none=True) for name in _HISTORY_FIELDS[1:5]]
        for name, value in zip(("train_accuracy", "val_accuracy"), (losses[1], losses[3]), strict=True):
            if not (math.isnan(value) or 0.0 <= value <= 1.0):
                raise CheckpointError(f"the checkpoint's {where}.{name} is {value!r}, not in [0, 1]")
        seconds = _float(item["seconds"], f"{where}.seconds", allow_none=False, minimum=0.0)
        train_loss, train_accuracy, val_loss, val_accuracy = losses
        out.append(EpochLog(first + index, train_loss, train_accuracy, val_loss, val_accuracy, seconds))
    return tuple(out)


def _early_stopping(raw: object, epochs_done: int, like: Params) -> EarlyStopping:
    if not isinstance(raw, dict) or set(raw) != {"best_loss", "best_epoch", "waited", "best_params"}:
        raise CheckpointError(
            "the checkpoint's early_stopping is not an object with best_loss, best_epoch, waited, best_params"
        )
    best_epoch = _count(raw, "best_epoch", -1, epochs_done - 1)
    waited = _count(raw, "waited", 0, epochs_done)
    none_yet = best_epoch == -1
    if none_yet != (raw["best_loss"] is None) or (none_yet and raw["best_params"] is not None):
        raise CheckpointError(
            f"the checkpoint's early_stopping is inconsistent: best_epoch {best_epoch} "
            f"with best_loss {_shown(raw['best_loss'])}"
        )
    best_loss = math.inf if none_yet else _float(raw["best_loss"], "best_loss", allow_none=False)
    best_params = None
    if raw["best_params"] is not None:
        if not isinstance(raw["best_params"], dict):
            raise CheckpointError("the checkpoint's best_params is not a state dict")
        try:
            best_params = cast(Params, load_state_dict(raw["best_params"], like))
        except CheckpointError as error:
            raise CheckpointError(f"the checkpoint's best_params: {error}") from error
    return EarlyStopping(best_loss, best_epoch, best_params, waited)


def _layout(value: Json, init: Json, where: str) -> None:
    """Raise CheckpointError unless a loaded optimizer state (as JSON) has the layout of a fresh one."""
    wrong = f"the checkpoint's optimizer state does not fit the optimizer at {where}"
    if isinstance(init, dict):
        if not isinstance(value, dict) or set(value) != set(init):
            raise CheckpointError(wrong)
        for name in init:
            _layout(value[name], init[name], f"{where}.{name}")
    elif isinstance(init, list):
        if not isinstance(value, list) or len(value) != len(init):
            raise CheckpointError(wrong)
        for index, (a, b) in enumerate(zip(value, init, strict=True)):
            _layout(a, b, f"{where}.{index}")
    elif isinstance(init, (bool, str)) or init is None:
        if value != init or type(value) is not type(init):
            raise CheckpointError(f"{wrong}: {_shown(value)} instead of {_shown(init)}")
    elif _is_int(init):
        if not _is_int(value) or not 0 <= cast(int, value) <= _LARGEST_COUNT:
            raise CheckpointError(
                f"the checkpoint's optimizer state has the count {_shown(value)} at {where}"
            )
    elif not isinstance(value, float):
        raise CheckpointError(f"the checkpoint's optimizer state has {_shown(value)} at {where}, not a float")


def read_training_state(
    checkpoint: Checkpoint | str | os.PathLike[str], like: Params, fresh_opt_state: OptState | None = None
) -> TrainingState:
    """The training state in ``checkpoint`` (a loaded one or a path), every part checked.

    ``like`` gives the params' structure and shapes (its values are ignored);
    ``fresh_opt_state`` (the optimizer's ``init(params)``), when given, the optimizer
    state's layout. Anything missing, mistyped, out of range or inconsistent raises
    :class:`~functional_nn.serialization.CheckpointError`.
    """
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    meta = loaded.metadata
    if meta.get("training_version") != TRAINING_VERSION or not _is_int(meta.get("training_version")):
        raise CheckpointError(
            f"the checkpoint holds training state version {_shown(meta.get('training_version'))}; "
            f"this library reads {TRAINING_VERSION}"
        )
    try:
        params = cast(Params, load_state_dict(state_dict(loaded.params), like))
    except CheckpointError as error:
        raise CheckpointError(f"the checkpoint's params: {error}") from error
    if loaded.opt_state is None:
        raise CheckpointError("the checkpoint holds no optimizer state to resume from")
    if fresh_opt_state is not None:
        fresh = cast(Json, state_to_json(fresh_opt_state))
        _layout(cast(Json, state_to_json(loaded.opt_state)), fresh, "the root")
    epochs_done = _count(meta, "epochs_done", 0, _LARGEST_COUNT)
    raw_key = meta.get("key")
    if not _is_int(raw_key) or not 0 <= cast(int, raw_key) < 1 << 128:
        raise CheckpointError(f"the checkpoint's key is {_shown(raw_key)}, not a 128-bit key")
    stopped = meta.get("stopped_early")
    if not isinstance(stopped, bool):
        raise CheckpointError(f"the checkpoint's stopped_early is {_shown(stopped)}, not true or false")
    history = _history(meta.get("history"), epochs_done)
    stopper = _early_stopping(meta.get("early_stopping"), epochs_done, like)
    if stopped and (
        stopper.waited < 1
        or stopper.best_params is None
        or state_dict(stopper.best_params) != state_dict(params)
    ):
        raise CheckpointError(
            "the checkpoint says the run stopped early, but it has not waited for a better epoch "
            "or its params are not the best epoch's"
        )
    return TrainingState(
        params, loaded.opt_state, epochs_done, random.Key(cast(int, raw_key)), stopper, history, stopped
    )
