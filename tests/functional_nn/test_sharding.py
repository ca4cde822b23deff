"""Data-parallel gradients: shard bounds, the same result on every executor, and dying workers."""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import distributed
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import optimizers
from functional_nn import MLP, datasets, random
from functional_nn.dataloader import Batch, DataLoader
from functional_nn.mlp import Params
from functional_nn.objective import Metrics, SupervisedLoss, supervised_loss
from functional_nn.sharding import (
    InstalledDataset,
    ShardError,
    ShardResult,
    combine,
    install_dataset,
    run_shard,
    shard_bounds,
    sharded_value_and_grad,
)
from functional_nn.train import BatchEnd, Event, FitResult, fit, train_step
from functional_nn.training_state import read_training_state
from tape import Scalar
from tape.tree import tree_leaves

TRAIN = datasets.blobs(60, centers=3, std=0.6, key=random.key(0))
MODEL = MLP(2, [8, 3], activation="tanh", dropout=0.2)
PARAMS = MODEL.init(random.key(1))
LOSS = SupervisedLoss(MODEL, "classification")


def _fit(
    shards: int,
    executor: Executor | None = None,
    worker_data: object | None = None,
    epochs: int = 2,
    **options: object,
) -> FitResult:
    return fit(
        MODEL,
        PARAMS,
        optimizers.adam(0.05),
        TRAIN,
        epochs=epochs,
        batch_size=25,  # batches of 25, 25 and 10 examples
        key=random.key(2),
        shards=shards,
        executor=executor,
        worker_data=worker_data,
        **options,  # type: ignore[arg-type]
    )


def _leaves(result: FitResult) -> list[float]:
    return tree_leaves((result.params, result.opt_state))


# --- shard bounds -------------------------------------------------------------------------


@given(st.integers(1, 300), st.integers(1, 40))
@example(3, 4)
@example(1, 1)
def test_shards_are_contiguous_non_empty_and_differ_by_at_most_one(size: int, shards: int) -> None:
    bounds = shard_bounds(size, shards)
    assert len(bounds) == min(size, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("size, shards", [(0, 1), (3, 0), (3, -2)])
def test_shard_bounds_refuse_empty_batches_and_counts_below_one(size: int, shards: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        shard_bounds(size, shards)


def test_combine_weights_each_shard_by_its_share_of_the_examples() -> None:
    small = ShardResult(1.0, {"accuracy": 0.0}, PARAMS, 1)
    large = ShardResult(4.0, {"accuracy": 1.0}, PARAMS, 3)
    (loss, metrics), grads = combine([small, large])
    assert loss == 0.25 * 1.0 + 0.75 * 4.0 and metrics == {"accuracy": 0.75}
    assert tree_leaves(grads) == pytest.approx(tree_leaves(PARAMS), rel=1e-15)
    with pytest.raises(ValueError, match="metrics"):
        combine([small, ShardResult(1.0, {}, PARAMS, 1)])


# --- the same result for any executor -------------------------------------------------------


def test_one_shard_is_the_unsharded_step_exactly() -> None:
    batch = Batch(tuple(TRAIN.inputs[:20]), tuple(TRAIN.targets[:20]))
    (loss, metrics), grads = sharded_value_and_grad(LOSS, shards=1)(PARAMS, batch, random.key(5))
    alone = run_shard(LOSS, PARAMS, batch, None, random.key(5))
    assert (loss, metrics, tree_leaves(grads)) == (alone.loss, alone.metrics, tree_leaves(alone.grads))


def test_four_shards_equal_one_up_to_reassociation() -> None:
    plain = MLP(2, [8, 3], activation="tanh")  # no dropout: its masks are drawn per shard
    start = plain.init(random.key(1))

    def run(shards: int) -> list[float]:
        result = fit(
            plain,
            start,
            optimizers.adam(0.05),
            TRAIN,
            epochs=2,
            batch_size=25,
            key=random.key(2),
            shards=shards,
        )
        return tree_leaves(result.params)

    one, four = run(1), run(4)
    assert one != four  # a different summation order...
    assert four == pytest.approx(one, abs=1e-9, rel=0)  # ...of the same mean


def test_more_shards_than_examples_gives_one_shard_per_example() -> None:
    batch = Batch(tuple(TRAIN.inputs[:3]), tuple(TRAIN.targets[:3]))
    (loss, _), _ = sharded_value_and_grad(LOSS, shards=8)(PARAMS, batch, None)
    (three, _), _ = sharded_value_and_grad(LOSS, shards=3)(PARAMS, batch, None)
    assert loss == three


def test_a_process_pool_gives_the_in_process_result_bit_for_bit() -> None:
    local = _leaves(_fit(2))
    data = install_dataset(TRAIN)
    with ProcessPoolExecutor(2, initializer=install_dataset, initargs=(TRAIN,)) as pool:
        installed = _leaves(_fit(2, pool, data))
        shipped = _leaves(_fit(2, pool))  # each shard's rows sent with its task
    assert installed == local and shipped == local
    assert local != _leaves(_fit(1))  # dropout masks are drawn per shard: the count matters


def test_a_worker_without_the_installed_dataset_is_reported() -> None:
    token = InstalledDataset("0" * 64, len(TRAIN))
    with ThreadPoolExecutor(1) as pool:
        step = train_step(LOSS, optimizers.sgd(0.1), shards=1, executor=pool, worker_data=token)
        batch = Batch(tuple(TRAIN.inputs[:4]), tuple(TRAIN.targets[:4]), (0, 1, 2, 3))
        with pytest.raises(ShardError, match=r"shard 1 of 1 failed: LookupError: .*install_dataset"):
            step(PARAMS, optimizers.sgd(0.1).init(PARAMS), batch, None)


def test_fit_refuses_worker_data_of_another_dataset() -> None:
    other = install_dataset(datasets.blobs(30, centers=3, std=0.6, key=random.key(9)))
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="other than the training data"):
        _fit(2, pool, other)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_a_dask_cluster_gives_the_process_pool_result_bit_for_bit(dask_client: distributed.Client) -> None:
    with ProcessPoolExecutor(2) as pool:
        expected = _leaves(_fit(3, pool))
    executor = dask_client.get_executor()
    scattered = dask_client.scatter(TRAIN, broadcast=True)
    assert _leaves(_fit(3, executor, scattered, timeout=60.0)) == expected
    assert _leaves(_fit(3, executor, timeout=60.0)) == expected


# --- a worker that dies -----------------------------------------------------------------------


@dataclass(frozen=True)
class DiesWhenTriggered:
    """The supervised loss, except that a worker process exits when the trigger file exists."""

    inner: SupervisedLoss
    trigger: str
    driver: int

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]:
        if os.getpid() != self.driver:
            try:
                os.remove(self.trigger)  # one worker wins the removal, and dies
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        return self.inner(params, batch, key)


def test_a_dead_worker_names_shard_and_step_and_the_run_resumes(tmp_path: Path) -> None:
    trigger = tmp_path / "die"
    checkpoint = tmp_path / "run.json"
    loss = DiesWhenTriggered(LOSS, str(trigger), os.getpid())

    def arm(event: Event) -> None:  # after epoch 2's first step, the next task kills its worker
        if isinstance(event, BatchEnd) and (event.epoch, event.step) == (1, 0):
            trigger.touch()

    with ProcessPoolExecutor(2) as pool, pytest.raises(ShardError) as raised:
        _fit(2, pool, epochs=3, loss_fn=loss, callbacks=[arm], checkpoint=checkpoint, timeout=60.0)
    error = raised.value
    assert (error.epoch, error.step, error.shards) == (2, 2, 2)
    assert "worker process died" in str(error) and str(error).startswith("epoch 2, step 2: shard ")
    assert read_training_state(checkpoint, PARAMS).epochs_done == 1
    with ProcessPoolExecutor(2) as pool:
        resumed = _fit(2, pool, epochs=3, loss_fn=loss, checkpoint=checkpoint, resume=checkpoint)
    assert _leaves(resumed) == _leaves(_fit(2, epochs=3))
    assert len(resumed.history) == 3


def test_a_broken_pool_is_reported_before_any_task_runs() -> None:
    pool = ProcessPoolExecutor(1)
    pool.shutdown()
    batch = Batch(tuple(TRAIN.inputs[:4]), tuple(TRAIN.targets[:4]))
    grad_fn = sharded_value_and_grad(LOSS, shards=2, executor=pool)
    with pytest.raises(ShardError, match="shard 1 of 2 failed"):
        grad_fn(PARAMS, batch, None)


def test_worker_data_needs_an_executor_and_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="pass the executor"):
        sharded_value_and_grad(LOSS, worker_data=install_dataset(TRAIN))
    with pytest.raises(ValueError, match="timeout"):
        sharded_value_and_grad(LOSS, timeout=0.0)


@pytest.mark.parametrize(
    "owner, name, keywords",
    [
        (distributed.LocalCluster, "__init__", {"n_workers", "threads_per_worker", "processes", "host"}),
        (distributed.Client, "__init__", {"address", "timeout"}),
        (distributed.Client, "scatter", {"data", "broadcast"}),
        (distributed.Client, "get_executor", set()),
        (distributed.Client, "close", {"timeout"}),
        (distributed.Client, "wait_for_workers", {"n_workers", "timeout"}),
    ],
)
def test_the_distributed_stub_declares_what_the_package_has(
    owner: type, name: str, keywords: set[str]
) -> None:
    parameters = inspect.signature(getattr(owner, name)).parameters
    assert keywords <= set(parameters)
    assert issubclass(distributed.KilledWorker, Exception) and hasattr(distributed, "Future")


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_compiled_step_trains_to_the_interpreted_params_bit_for_bit(dropout: float) -> None:
    data = datasets.moons(96, noise=0.1, key=random.key(3))
    model = MLP(2, [8, 8, 2], dropout=dropout)
    results = {}
    for compile in (False, True):
        results[compile] = fit(
            model,
            model.init(random.key(1)),
            optimizers.adam(0.05),
            data,
            epochs=2,
            batch_size=20,
            key=random.key(2),
            shards=2,
            compile=compile,
        )
    assert results[True].params == results[False].params
    logs = [
        [(log.train_loss, log.train_accuracy) for log in r.history] for r in (results[True], results[False])
    ]
    assert logs[0] == logs[1]  # losses and accuracies too


def test_the_compiled_gradient_equals_the_tape_on_every_batch() -> None:
    model = MLP(2, [4, 2])
    loss = supervised_loss(model, "classification")
    gradient = loss.gradient_fn()
    params = model.init(random.key(0))
    data = datasets.moons(30, key=random.key(1))
    loader = DataLoader(data, 10, shuffle=False)
    for batch in loader:
        (value, metrics), grads = gradient(params, batch, None)
        (want, want_metrics), want_grads = supervised_loss(
            model, "classification", compile=False
        ).gradient_fn()(params, batch, None)
        assert (value, metrics, grads) == (want, want_metrics, want_grads)
