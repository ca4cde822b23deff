"""Data-parallel gradients: a batch split into fixed shards, computed on any executor.

A step splits its batch into ``shards`` contiguous pieces (:func:`shard_bounds`:
sizes differ by at most one, none empty; a batch smaller than ``shards`` gets one
shard per example). Each shard's mean loss, metrics and gradient are computed by
:func:`run_shard`, in a worker of a :class:`concurrent.futures.Executor` or, with no
executor, in this process: the same function either way. The results are combined in
shard order, each weighted by ``shard size / batch size``, into the batch mean
(:func:`combine`). So the result depends only on the shard count, never on the
executor, bit for bit; with one shard it is the unsharded step exactly, and for more
it equals it up to float reassociation.

The protocol with the workers, all plain data (nothing is a closure or a lambda):

- the loss function is sent once per task; it must pickle.
  :class:`~functional_nn.objective.SupervisedLoss` (the default, a frozen MLP spec and
  a task name) does, and workers rebuild the gradient computation from it (cached
  per worker);
- params are sent once per task (once per step and shard);
- the training data is sent either with every task (the shard's rows; the default),
  or once per worker: call :func:`install_dataset` in each worker (as a
  ``ProcessPoolExecutor``'s ``initializer``) and pass the :class:`InstalledDataset`
  it returns as ``worker_data``; or pass anything the engine turns into the
  :class:`~functional_nn.dataloader.Dataset` when a task runs, such as Dask's
  ``client.scatter(dataset, broadcast=True)``. Tasks then carry the batch's example
  indices only.

>>> from concurrent.futures import ProcessPoolExecutor
>>> from functional_nn import MLP, DataLoader, datasets, random
>>> from functional_nn.objective import supervised_loss
>>> train = datasets.blobs(40, centers=2, std=0.5, key=random.key(0))
>>> model = MLP(2, [4, 2])
>>> data = install_dataset(train)       # here, for the in-process check below
>>> with ProcessPoolExecutor(2, initializer=install_dataset, initargs=(train,)) as pool:
...     grad_fn = sharded_value_and_grad(supervised_loss(model, "classification"), shards=2,
...                                      executor=pool, worker_data=data)
...     batch = next(iter(DataLoader(train, 20, shuffle=False)))
...     (loss, metrics), grads = grad_fn(model.init(random.key(1)), batch, None)
>>> local = sharded_value_and_grad(supervised_loss(model, "classification"), shards=2)
>>> local(model.init(random.key(1)), batch, None)[0][0] == loss
True
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias, cast

from functional_nn import random
from functional_nn.dataloader import Batch, Dataset
from functional_nn.objective import LossFn, Metrics, Params, SupervisedLoss
from tape import value_and_grad
from tape.tree import tree_flatten, tree_unflatten

__all__ = [
    "GradFn",
    "InstalledDataset",
    "ShardError",
    "ShardResult",
    "combine",
    "dataset_fingerprint",
    "install_dataset",
    "run_shard",
    "shard_bounds",
    "shard_keys",
    "sharded_value_and_grad",
]

GradFn: TypeAlias = Callable[[Params, Batch, "random.Key | None"], "tuple[tuple[float, Metrics], Params]"]
"""``(params, batch, key) -> ((mean loss, metrics), gradient of the mean loss)``."""


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")
    return value


def shard_bounds(size: int, shards: int) -> tuple[tuple[int, int], ...]:
    """``[start, stop)`` of each shard of a batch of ``size`` examples, in order.

    ``min(shards, size)`` contiguous, non-empty shards covering the batch; sizes
    differ by at most one, the larger ones first.

    >>> shard_bounds(10, 4)
    ((0, 3), (3, 6), (6, 8), (8, 10))
    >>> shard_bounds(2, 4)
    ((0, 1), (1, 2))
    """
    _check_count(size, "the batch size")
    count = min(_check_count(shards, "shards"), size)
    base, extra = divmod(size, count)
    bounds: list[tuple[int, int]] = []
    start = 0
    for index in range(count):
        stop = start + base + (1 if index < extra else 0)
        bounds.append((start, stop))
        start = stop
    return tuple(bounds)


def shard_keys(key: random.Key | None, count: int) -> tuple[random.Key | None, ...]:
    """The key each of ``count`` shards uses: ``key`` itself for one shard, else ``fold_in(key, i)``."""
    if key is None:
        return (None,) * count
    if count == 1:
        return (key,)
    return tuple(random.fold_in(key, index) for index in range(count))


# --- datasets held by workers -------------------------------------------------------------


def dataset_fingerprint(dataset: Dataset) -> str:
    """The SHA-256 of a dataset's rows, targets and class count: the same data, the same text."""
    digest = hashlib.sha256(repr((len(dataset), dataset.num_features, dataset.num_classes)).encode())
    row_format = struct.Struct(f"<{dataset.num_features}d")
    for row in dataset.inputs:
        digest.update(row_format.pack(*row))
    digest.update(repr(tuple(dataset.targets)).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class InstalledDataset:
    """Stands in a task for a dataset that :func:`install_dataset` put in the worker."""

    fingerprint: str
    size: int


_INSTALLED: dict[str, Dataset] = {}
"""The datasets installed in this process, by fingerprint (a worker's copy of the training data)."""


def install_dataset(dataset: Dataset) -> InstalledDataset:
    """Keep ``dataset`` in this process for :func:`run_shard`; the token that names it.

    Use it as a process pool's initializer, ``ProcessPoolExecutor(n,
    initializer=install_dataset, initargs=(dataset,))``, and call it once in the
    driver for the token to pass as ``worker_data``.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"install_dataset takes a Dataset, not {type(dataset).__name__}")
    fingerprint = dataset_fingerprint(dataset)
    _INSTALLED[fingerprint] = dataset
    return InstalledDataset(fingerprint, len(dataset))


def _shard_batch(source: object, indices: Sequence[int] | None) -> Batch:
    if isinstance(source, Batch):
        return source
    if isinstance(source, InstalledDataset):
        found = _INSTALLED.get(source.fingerprint)
        if found is None:
            raise LookupError(
                f"no dataset with fingerprint {source.fingerprint[:12]}... is installed in this worker: "
                "start the workers with initializer=install_dataset, initargs=(dataset,)"
            )
        source = found
    if not isinstance(source, Dataset):
        raise TypeError(f"a shard's data must resolve to a Dataset or a Batch, not {type(source).__name__}")
    if indices is None:
        raise ValueError("a shard of a dataset held by the worker needs the examples' indices")
    inputs, targets = source.inputs, source.targets
    return Batch(tuple(inputs[i] for i in indices), tuple(targets[i] for i in indices), tuple(indices))


# --- one shard ----------------------------------------------------------------------------


class ShardResult(NamedTuple):
    """One shard's mean loss, mean metrics and gradient of the mean loss, and its size."""

    loss: float
    metrics: Metrics
    grads: Params
    size: int


def _build_loss_and_grad(loss_fn: LossFn) -> Callable[..., tuple[tuple[float, Metrics], Params]]:
    if isinstance(loss_fn, SupervisedLoss):  # the library's own: compiled when it says so
        return loss_fn.gradient_fn()
    return value_and_grad(loss_fn, has_aux=True, arrays=True)


@functools.lru_cache(maxsize=16)
def _cached_loss_and_grad(loss_fn: Hashable) -> Callable[..., tuple[tuple[float, Metrics], Params]]:
    return _build_loss_and_grad(cast(LossFn, loss_fn))


def _loss_and_grad(loss_fn: LossFn) -> Callable[..., tuple[tuple[float, Metrics], Params]]:
    """The gradient computation of ``loss_fn``, built once per process for a hashable one."""
    try:
        return _cached_loss_and_grad(cast(Hashable, loss_fn))
    except TypeError:  # an unhashable loss object
        return _build_loss_and_grad(loss_fn)


def run_shard(
    loss_fn: LossFn,
    params: Params,
    source: object,
    indices: Sequence[int] | None,
    key: random.Key | None,
) -> ShardResult:
    """Mean loss, metrics and gradient of one shard: what a worker runs.

    ``source`` is the shard itself (a Batch, ``indices`` None), or a dataset (held by
    the worker, or named by an :class:`InstalledDataset`) with the shard's ``indices``.
    """
    batch = _shard_batch(source, indices)
    (loss, metrics), grads = _loss_and_grad(loss_fn)(params, batch, key)
    return ShardResult(float(loss), dict(metrics), grads, batch.size)


def combine(results: Sequence[ShardResult]) -> tuple[tuple[float, Metrics], Params]:
    """The batch mean of shard results: each weighted by its share of the examples, in order.

    One shard is returned as it is (its weight is exactly 1).
    """
    if not results:
        raise ValueError("combine needs at least one shard result")
    first = results[0]
    if len(results) == 1:
        return (first.loss, first.metrics), first.grads
    total = sum(result.size for result in results)
    weights = [result.size / total for result in results]
    names = set(first.metrics)
    for index, result in enumerate(results):
        if set(result.metrics) != names:
            raise ValueError(
                f"shard {index + 1} reports metrics {sorted(result.metrics)}, shard 1 {sorted(names)}"
            )
    loss = weights[0] * first.loss
    metrics = {name: weights[0] * value for name, value in first.metrics.items()}
    leaves, treedef = tree_flatten(first.grads)
    summed = [weights[0] * leaf for leaf in leaves]
    for weight, result in zip(weights[1:], results[1:], strict=True):
        loss += weight * result.loss
        for name, value in result.metrics.items():
            metrics[name] += weight * value
        other, other_def = tree_flatten(result.grads)
        if other_def != treedef:
            raise ValueError("shards returned gradients of different structures")
        summed = [acc + weight * leaf for acc, leaf in zip(summed, other, strict=True)]
    return (loss, metrics), tree_unflatten(treedef, summed)


# --- a sharded step -----------------------------------------------------------------------


class ShardError(RuntimeError):
    """A shard's computation failed in its worker (the worker died, timed out or raised).

    ``shard`` (1-based) and ``shards`` say which; ``epoch`` and ``step`` (1-based, when
    known) where in training.
    """

    def __init__(
        self, reason: str, shard: int, shards: int, *, epoch: int | None = None, step: int | None = None
    ) -> None:
        self.reason, self.shard, self.shards, self.epoch, self.step = reason, shard, shards, epoch, step
        where = f"epoch {epoch}, step {step}: " if epoch is not None and step is not None else ""
        super().__init__(f"{where}shard {shard} of {shards} failed: {reason}")

    def at(self, epoch: int, step: int) -> ShardError:
        """The same error, placed at ``epoch`` and ``step`` (1-based)."""
        return ShardError(self.reason, self.shard, self.shards, epoch=epoch, step=step)


def _reason(error: BaseException, timeout: float | None) -> str:
    if isinstance(error, BrokenProcessPool):
        return f"its worker process died ({error})"
    if isinstance(error, TimeoutError):
        return f"no result within the timeout of {timeout} s"
    if isinstance(error, CancelledError):
        return "its task was cancelled"
    name = type(error).__name__
    if name == "KilledWorker":  # Dask, after the workers running the task died
        return f"its worker died ({name}: {error})"
    return f"{name}: {error}"


def sharded_value_and_grad(
    loss_fn: LossFn,
    *,
    shards: int = 1,
    executor: Executor | None = None,
    worker_data: object | None = None,
    timeout: float | None = None,
) -> GradFn:
    """``(params, batch, key) -> ((mean loss, metrics), grads)`` computed over ``shards`` shards.

    With ``executor`` each shard is a task; ``worker_data`` (see the module's
    docstring) stands for the training data in the workers, ``None`` to send each
    shard's rows. ``timeout`` bounds the wait for each shard's result, in seconds.
    A failed shard raises :class:`ShardError` (after cancelling the step's other tasks).
    """
    _check_count(shards, "shards")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if worker_data is not None and executor is None:
        raise ValueError("worker_data names the data held by an executor's workers: pass the executor too")
    loss_and_grad = _loss_and_grad(loss_fn)

    def local(params: Params, batch: Batch, key: random.Key | None) -> tuple[tuple[float, Metrics], Params]:
        bounds = shard_bounds(batch.size, shards)
        if len(bounds) == 1:
            (loss, metrics), grads = loss_and_grad(params, batch, key)
            return (float(loss), dict(metrics)), grads
        results = [
            run_shard(loss_fn, params, _slice(batch, start, stop), None, shard_key)
            for (start, stop), shard_key in zip(bounds, shard_keys(key, len(bounds)), strict=True)
        ]
        return combine(results)

    def remote(params: Params, batch: Batch, key: random.Key | None) -> tuple[tuple[float, Metrics], Params]:
        assert executor is not None
        bounds = shard_bounds(batch.size, shards)
        if worker_data is not None and batch.indices is None:
            raise ValueError("the batch has no dataset indices to look its examples up in the workers' data")
        futures: list[Future[ShardResult]] = []
        try:
            for (start, stop), shard_key in zip(bounds, shard_keys(key, len(bounds)), strict=True):
                if worker_data is None:
                    source: object = _slice(batch, start, stop)
                    indices: tuple[int, ...] | None = None
                else:
                    assert batch.indices is not None
                    source, indices = worker_data, batch.indices[start:stop]
                futures.append(executor.submit(run_shard, loss_fn, params, source, indices, shard_key))
        except (BrokenProcessPool, RuntimeError) as error:  # a pool already broken or shut down
            for future in futures:
                future.cancel()
            raise ShardError(_reason(error, timeout), len(futures) + 1, len(bounds)) from error
        results: list[ShardResult] = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result(timeout=timeout))
            except Exception as error:
                for other in futures[index + 1 :]:
                    other.cancel()
                raise ShardError(_reason(error, timeout), index + 1, len(bounds)) from error
        return combine(results)

    return local if executor is None else remote


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    indices = None if batch.indices is None else batch.indices[start:stop]
    return Batch(batch.inputs[start:stop], batch.targets[start:stop], indices)
