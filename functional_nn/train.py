"""Training as pure functions: one step, one epoch, and a ``fit`` loop with early stopping.

``train_step(loss_fn, optimizer)`` maps ``(params, opt_state, batch, key)`` to
``(params, opt_state, metrics)``; nothing is mutated and every random choice comes
from the key, so the same seed gives bit-identical runs. Epoch ``e`` draws its
keys from ``fold_in(key, e)``, so a run resumed at epoch ``e`` continues exactly
as an uninterrupted one: ``fit(..., checkpoint=path)`` saves the run's
:class:`TrainingState` after every epoch and ``fit(..., resume=path)`` continues it.

>>> from functional_nn import datasets, random
>>> from functional_nn.mlp import MLP
>>> import optimizers
>>> data = datasets.blobs(90, centers=3, std=0.5, key=random.key(0))
>>> model = MLP(2, [8, 3], activation="tanh")
>>> result = fit(model, model.init(random.key(1)), optimizers.adam(0.05), data,
...              epochs=15, batch_size=16, key=random.key(2))
>>> result.history[-1].train_loss < result.history[0].train_loss
True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TypeAlias

from functional_nn import random
from functional_nn.dataloader import Batch, DataLoader, Dataset
from functional_nn.functional import argmax
from functional_nn.loss import cross_entropy_with_logits, mse_loss
from functional_nn.mlp import MLP
from functional_nn.objective import LossFn, Metrics, Model, Params, SupervisedLoss, as_model, supervised_loss
from functional_nn.serialization import Checkpoint, CheckpointError
from functional_nn.sharding import InstalledDataset, ShardError, dataset_fingerprint, sharded_value_and_grad
from functional_nn.training_state import (
    Checkpointing,
    EarlyStopping,
    EpochLog,
    TrainingState,
    read_training_state,
    save_training_state,
)
from optimizers import Optimizer
from optimizers.state import OptState
from tape import Array
from tape.tree import tree_leaves, tree_map

__all__ = [
    "BatchEnd",
    "Callback",
    "Checkpointing",
    "EarlyStopping",
    "EpochEnd",
    "EpochLog",
    "Event",
    "FitResult",
    "LossFn",
    "Metrics",
    "Model",
    "NonFiniteTrainingError",
    "ShardError",
    "SupervisedLoss",
    "TrainingState",
    "epoch_key",
    "evaluate",
    "fit",
    "outputs",
    "regression_errors",
    "run_epoch",
    "supervised_loss",
    "train_step",
]

StepFn: TypeAlias = Callable[[Params, OptState, Batch, "random.Key | None"], tuple[Params, OptState, Metrics]]


class NonFiniteTrainingError(ArithmeticError):
    """The loss or a gradient became ``inf`` or ``nan``; the message names where."""


def _finite_tree(tree: object) -> bool:
    return all(math.isfinite(leaf) for leaf in tree_leaves(tree))


def train_step(
    loss_fn: LossFn,
    optimizer: Optimizer,
    *,
    shards: int = 1,
    executor: Executor | None = None,
    worker_data: object | None = None,
    timeout: float | None = None,
) -> StepFn:
    """A pure step: ``(params, opt_state, batch, key) -> (params, opt_state, metrics)``.

    ``metrics`` holds ``loss`` and whatever the loss function reports. Raises
    :class:`NonFiniteTrainingError` before updating anything if the loss or a
    gradient is not finite.

    The gradient is computed over ``shards`` contiguous shards of the batch, on
    ``executor``'s workers when given (``loss_fn`` must then pickle), else here: the
    result depends on the shard count only (:mod:`functional_nn.sharding`, which also
    says what ``worker_data`` and ``timeout`` do). A failed worker raises
    :class:`ShardError` naming the shard.
    """
    loss_and_grad = sharded_value_and_grad(
        loss_fn, shards=shards, executor=executor, worker_data=worker_data, timeout=timeout
    )

    def step(
        params: Params, opt_state: OptState, batch: Batch, key: random.Key | None
    ) -> tuple[Params, OptState, Metrics]:
        (loss, metrics), grads = loss_and_grad(params, batch, key)
        if not math.isfinite(loss):
            raise NonFiniteTrainingError(f"the loss is {loss!r}")
        if not _finite_tree(grads):
            raise NonFiniteTrainingError("a gradient is not finite")
        new_params, new_state = optimizer.step(params, grads, opt_state)
        return new_params, new_state, {"loss": float(loss), **metrics}

    return step


@dataclass(frozen=True)
class BatchEnd:
    """Sent to callbacks after every step."""

    epoch: int
    step: int
    steps: int
    metrics: Metrics


@dataclass(frozen=True)
class EpochEnd:
    """Sent to callbacks after every epoch, with the state to checkpoint."""

    log: EpochLog
    params: Params
    opt_state: OptState
    best: EarlyStopping
    state: TrainingState
    """The whole run after this epoch, as a checkpoint holds it (``fit`` has saved it already)."""


Event: TypeAlias = "BatchEnd | EpochEnd"
Callback: TypeAlias = Callable[[Event], None]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns."""

    params: Params
    opt_state: OptState
    history: tuple[EpochLog, ...]
    stopped_early: bool
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)


EVALUATION_BATCH = 256
"""How many examples :func:`outputs` gives a batched model at once."""


def outputs(model: Model | MLP, params: Params, rows: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """The model's outputs for each row of ``rows``, as floats (no tape).

    An MLP is applied one row at a time (:meth:`MLP.apply`); another model to batches
    of up to :data:`EVALUATION_BATCH` rows, in evaluation mode (``train=False``).
    """
    if isinstance(model, MLP):
        return [model.apply(params, x) for x in rows]
    batched = as_model(model)
    out: list[tuple[float, ...]] = []
    for start in range(0, len(rows), EVALUATION_BATCH):
        result = batched.apply(params, rows[start : start + EVALUATION_BATCH])
        data = result.data if isinstance(result, Array) else result
        out.extend(tuple(float(v) for v in row) for row in data)
    return out


def evaluate(model: Model | MLP, params: Params, dataset: Dataset) -> tuple[float, float]:
    """Mean loss and accuracy (``nan`` for regression) on floats, no tape."""
    classify = dataset.num_classes is not None
    total = 0.0
    correct = 0
    predicted = outputs(model, params, dataset.inputs)
    for out, target in zip(predicted, dataset.targets, strict=True):
        if classify:
            total += float(cross_entropy_with_logits(out, int(target)))
            correct += argmax(out) == int(target)
        else:
            total += float(mse_loss(out[0], float(target)))
    n = len(dataset)
    return total / n, (correct / n if classify else math.nan)


def regression_errors(model: Model | MLP, params: Params, dataset: Dataset) -> tuple[float, float]:
    """Root mean squared error and mean absolute error of a one-output model on a regression
    ``dataset`` (floats, no tape); the square of the first is :func:`evaluate`'s loss.

    >>> from functional_nn.dataloader import Dataset
    >>> from pyrsistent import pmap, pvector
    >>> model = MLP(1, [1], activation="identity")
    >>> layer = pmap({"weight": pvector([pvector([1.0])]), "bias": pvector([0.0])})
    >>> params = pmap({"layers": pvector([layer])})
    >>> regression_errors(model, params, Dataset.from_rows([[1.0], [2.0]], [4.0, 2.0]))
    (2.1213203435596424, 1.5)
    """
    if dataset.num_classes is not None:
        raise TypeError(
            f"dataset {dataset.name!r} is a classification dataset; regression errors need targets"
        )
    errors = [
        float(out[0]) - float(t)
        for out, t in zip(outputs(model, params, dataset.inputs), dataset.targets, strict=True)
    ]
    n = len(errors)
    return math.sqrt(math.fsum(e * e for e in errors) / n), math.fsum(abs(e) for e in errors) / n


def epoch_key(key: random.Key, epoch: int) -> random.Key:
    """The key epoch ``epoch`` uses: independent of how many epochs ran before."""
    return random.fold_in(key, epoch)


def run_epoch(
    step: StepFn,
    params: Params,
    opt_state: OptState,
    loader: DataLoader,
    key: random.Key,
    *,
    epoch: int = 0,
    use_key: bool = True,
    callbacks: Sequence[Callback] = (),
) -> tuple[Params, OptState, Metrics]:
    """One pass over ``loader``; returns params, state and example-weighted mean metrics."""
    shuffle_key, step_key = random.split(key)
    totals: dict[str, float] = {}
    seen = 0
    steps = len(loader)
    batches: Iterator[Batch] = loader.epoch(shuffle_key if loader.shuffle else None)
    for index, batch in enumerate(batches):
        k = random.fold_in(step_key, index) if use_key else None
        try:
            params, opt_state, metrics = step(params, opt_state, batch, k)
        except NonFiniteTrainingError as error:
            raise NonFiniteTrainingError(f"epoch {epoch + 1}, step {index + 1}: {error}") from error
        except ShardError as error:
            raise error.at(epoch + 1, index + 1) from error.__cause__
        for name, value in metrics.items():
            totals[name] = totals.get(name, 0.0) + value * batch.size
        seen += batch.size
        for callback in callbacks:
            callback(BatchEnd(epoch, index, steps, metrics))
    return params, opt_state, {name: value / seen for name, value in totals.items()}


def _resume_state(
    resume: str | os.PathLike[str] | Checkpoint | TrainingState,
    params: Params,
    optimizer: Optimizer,
    key: random.Key,
    epochs: int,
) -> TrainingState:
    """The checked state a run resumes from; a CheckpointError if it is not this run's."""
    state = (
        resume
        if isinstance(resume, TrainingState)
        else read_training_state(resume, params, optimizer.init(params))
    )
    if state.key != key:
        raise CheckpointError("the checkpoint was written by a run with another key; pass that run's key")
    try:  # a step with zero gradients: the state must work with this optimizer
        trial, _ = optimizer.step(state.params, tree_map(lambda _: 0.0, state.params), state.opt_state)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise CheckpointError(
            f"the checkpoint's optimizer state does not work with the optimizer: {error}"
        ) from error
    if not _finite_tree(trial):
        raise CheckpointError("the checkpoint's optimizer state makes the next step's params non-finite")
    if state.epochs_done > epochs and not state.stopped_early:
        raise CheckpointError(
            f"the checkpoint has {state.epochs_done} epochs done, more than epochs={epochs}"
        )
    return state


def fit(
    model: Model | MLP,
    params: Params,
    optimizer: Optimizer,
    train: Dataset | DataLoader,
    *,
    epochs: int,
    batch_size: int = 32,
    key: random.Key,
    validation: Dataset | None = None,
    opt_state: OptState | None = None,
    start_epoch: int = 0,
    patience: int | None = None,
    early_stopping: EarlyStopping | None = None,
    callbacks: Sequence[Callback] = (),
    loss_fn: LossFn | None = None,
    clock: Callable[[], float] | None = None,
    checkpoint: str | os.PathLike[str] | Checkpointing | None = None,
    resume: str | os.PathLike[str] | Checkpoint | TrainingState | None = None,
    shards: int = 1,
    executor: Executor | None = None,
    worker_data: object | None = None,
    timeout: float | None = None,
    compile: bool = True,
) -> FitResult:
    """Train ``model`` for epochs ``start_epoch .. epochs - 1`` and return the final state.

    ``model`` is any batched init/apply :class:`Model` (layers, their ``serial``
    composition, your own) or an :class:`MLP`; ``params`` are its params.

    ``train`` is a :class:`Dataset` (batched by ``batch_size``, shuffled each epoch)
    or your own :class:`DataLoader`. ``loss_fn`` defaults to :func:`supervised_loss`
    for the data's task, its gradient compiled with :func:`tape.jit` unless
    ``compile=False`` (the same numbers either way, bit for bit); pass your own
    ``loss_fn(params, batch, key)`` (e.g. with a penalty) to train on it instead. With
    ``validation`` data each epoch is evaluated on it; with ``patience``, training
    stops after that many epochs without a better validation loss and the best params
    are returned. ``callbacks`` receive a
    :class:`BatchEnd` after every step and an :class:`EpochEnd` after every epoch.

    With ``checkpoint`` (a path, or a :class:`Checkpointing` with metadata of your
    own) the run's :class:`TrainingState` is written there atomically after every
    epoch (before the callbacks hear of it), and once more with the best params if it
    stops early; a Ctrl-C leaves the last finished epoch there. ``resume`` (such a
    checkpoint, loaded or not, or a :class:`TrainingState`) continues that run: call
    ``fit`` as the run was first called (same ``params`` structure, optimizer and
    ``key``; not ``opt_state``, ``start_epoch`` or ``early_stopping``) and the
    result, history included, is the one the uninterrupted run gives. A checkpoint
    of another key or shape, or with anything damaged, raises CheckpointError.

    ``shards``, ``executor``, ``worker_data`` and ``timeout`` split each step's
    gradient into shards computed in parallel (see :func:`train_step`). A worker that
    dies raises :class:`ShardError` naming the epoch, step and shard; the checkpoint of
    the last finished epoch is left as it was, so ``resume`` continues from it.
    """
    if epochs < 0 or start_epoch < 0:
        raise ValueError(f"epochs ({epochs}) and start_epoch ({start_epoch}) must be >= 0")
    if patience is not None and (validation is None or patience < 1):
        raise ValueError("early stopping needs validation data and patience >= 1")
    if resume is not None and (opt_state is not None or start_epoch or early_stopping is not None):
        raise ValueError(
            "resume continues from the checkpoint's state: drop opt_state, start_epoch, early_stopping"
        )
    saving = Checkpointing(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    now = clock or time.perf_counter
    loader = train if isinstance(train, DataLoader) else DataLoader(train, batch_size, shuffle=True)
    task = "classification" if loader.dataset.num_classes is not None else "regression"
    if isinstance(worker_data, InstalledDataset) and worker_data.fingerprint != dataset_fingerprint(
        loader.dataset
    ):
        raise ValueError("worker_data names a dataset other than the training data given to fit")
    step = train_step(
        loss_fn or supervised_loss(model, task, compile=compile),
        optimizer,
        shards=shards,
        executor=executor,
        worker_data=worker_data,
        timeout=timeout,
    )
    if resume is not None:
        last = _resume_state(resume, params, optimizer, key, epochs)
    else:
        state = optimizer.init(params) if opt_state is None else opt_state
        last = TrainingState(params, state, start_epoch, key, early_stopping or EarlyStopping(), ())
    if last.stopped_early:
        return FitResult(last.params, last.opt_state, last.history, True, last.early_stopping)
    saved = True  # nothing new to save until an epoch finishes
    params, state, stopper = last.params, last.opt_state, last.early_stopping
    try:
        for epoch in range(last.epochs_done, epochs):
            started = now()
            params, state, metrics = run_epoch(
                step, params, state, loader, epoch_key(key, epoch), epoch=epoch, callbacks=callbacks
            )
            val_loss, val_accuracy = (
                evaluate(model, params, validation) if validation else (math.nan, math.nan)
            )
            if validation is not None and not math.isfinite(val_loss):
                raise NonFiniteTrainingError(f"epoch {epoch + 1}: the validation loss is {val_loss!r}")
            log = EpochLog(
                epoch,
                metrics.get("loss", math.nan),
                metrics.get("accuracy", math.nan),
                val_loss,
                val_accuracy,
                now() - started,
            )
            if validation is not None:
                stopper = stopper.update(epoch, val_loss, params)
            last = TrainingState(params, state, epoch + 1, key, stopper, (*last.history, log))
            saved = False
            if saving is not None:
                save_training_state(saving.path, last, saving.metadata)
                saved = True
            for callback in callbacks:
                callback(EpochEnd(log, params, state, stopper, last))
            if patience is not None and stopper.waited >= patience:
                best = stopper.best_params if stopper.best_params is not None else params
                last = TrainingState(best, state, epoch + 1, key, stopper, last.history, True)
                if saving is not None:
                    save_training_state(saving.path, last, saving.metadata)
                break
    except KeyboardInterrupt:
        if saving is not None and not saved and last.epochs_done > 0:
            save_training_state(saving.path, last, saving.metadata)
        raise
    return FitResult(last.params, last.opt_state, last.history, last.stopped_early, last.early_stopping)
