"""Where ``fnn train`` computes its shards: here, a local process pool, or a Dask cluster.

``--workers N`` starts ``N`` local worker processes, each given the training split
once (:func:`functional_nn.sharding.install_dataset` as the pool's initializer);
``--scheduler ADDRESS`` connects to a running Dask scheduler and scatters the training
split to every worker once. Either way each step then sends the params and the
examples' indices. Dask needs the ``distributed`` extra.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from functional_nn.cli.config import UsageError
from functional_nn.dataloader import Dataset
from functional_nn.sharding import install_dataset

if TYPE_CHECKING:
    import distributed

CONNECT_TIMEOUT_SECONDS = 20.0
"""How long connecting to a Dask scheduler may take."""

SHARD_TIMEOUT_SECONDS = 600.0
"""How long one shard's result may take before the run stops (nothing hangs for ever)."""

MISSING_DISTRIBUTED = "--scheduler needs Dask's distributed package: pip install 'functional-nn[distributed]'"


@dataclass(frozen=True)
class Workers:
    """An executor and what stands for the training data in its workers (see fit's ``worker_data``)."""

    executor: Executor
    worker_data: object


def _client(scheduler: str) -> distributed.Client:
    """A Dask client connected to ``scheduler``; an ImportError without the extra."""
    try:
        module = importlib.import_module("distributed")
    except ImportError as error:
        raise ImportError(MISSING_DISTRIBUTED) from error
    client_type = cast("type[distributed.Client]", module.Client)
    try:
        return client_type(scheduler, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from error


def describe_workers(workers: int | None, scheduler: str | None) -> str | None:
    """How a run's headline names its workers (``2 local workers``); None for none."""
    if workers is not None:
        return f"{workers} local worker{'s' if workers > 1 else ''}"
    return None if scheduler is None else f"the Dask cluster at {scheduler}"


@contextlib.contextmanager
def open_workers(workers: int | None, scheduler: str | None, train: Dataset) -> Iterator[Workers | None]:
    """The workers the flags ask for, shut down on leaving; ``None`` to compute here."""
    if workers is not None:
        with ProcessPoolExecutor(workers, initializer=install_dataset, initargs=(train,)) as pool:
            yield Workers(pool, install_dataset(train))
        return
    if scheduler is None:
        yield None
        return
    with contextlib.closing(_client(scheduler)) as client:
        data = client.scatter(train, broadcast=True)
        yield Workers(client.get_executor(), data)


@contextlib.contextmanager
def client_executor(scheduler: str) -> Iterator[Executor]:
    """An executor over the Dask cluster of ``scheduler``, disconnected on leaving."""
    with contextlib.closing(_client(scheduler)) as client:
        yield client.get_executor()
