"""W7: data-parallel training on local worker processes, in wall-clock time.

Three epochs of the digits (the 80% training split, standardised), an MLP
64-128-128-10 (relu), batch 256, Adam (lr 1e-3), trained by :func:`functional_nn.train.fit`:

- ``here``: one shard, computed in this process;
- ``1 worker``: one shard, on a process pool of one worker;
- ``2 workers``: two shards, on a process pool of two workers.

Each pool is started once, with the training split installed in its workers
(:func:`functional_nn.sharding.install_dataset`), so a step sends the params and
the batch's indices. The executor's own cost per step is measured apart, on a
batch of 4 examples (:func:`step_overhead`). Before timing, ``1 worker`` must give ``here``'s params bit for
bit and ``2 workers`` them within 1e-9. Every round runs the three once, in rotated
order, timed by the wall clock (``time.perf_counter``: the workers' time is the
point); the table gives medians, the per-round speed-up of 2 workers over 1 with its
range, and the executor's overhead per step, ``(1 worker - here) / steps``.

Run from the repository root::

    python -m tests.benchmarks.parallel            # 5 rounds, about 4 minutes here
    python -m tests.benchmarks.parallel --rounds 3 --epochs 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import optimizers
from functional_nn import random
from functional_nn.dataloader import DataLoader, Dataset
from functional_nn.mlp import MLP, Params
from functional_nn.objective import SupervisedLoss
from functional_nn.sharding import install_dataset, sharded_value_and_grad
from functional_nn.train import fit
from tape.tree import tree_leaves
from tests.benchmarks.measure import rotation
from tests.benchmarks.workloads import digits_problem

TARGET_SPEEDUP = 1.6
"""2 workers should train at least this many times faster than 1."""

NAMES = ("here", "1 worker", "2 workers")


@dataclass(frozen=True)
class ParallelProblem:
    """W7's data, model, initial params and training length."""

    train: Dataset
    model: MLP
    params: Params
    epochs: int
    batch_size: int

    @property
    def steps(self) -> int:
        """Optimizer steps in one training run."""
        return self.epochs * math.ceil(len(self.train) / self.batch_size)


def parallel_problem(
    *, epochs: int = 3, train_size: int | None = None, sizes: Sequence[int] = (128, 128, 10)
) -> ParallelProblem:
    """The digits split of W3 with a wider MLP (He-initialised from ``key(7)``), batch 256."""
    base = digits_problem(train_size=train_size)
    model = MLP(64, tuple(sizes), activation="relu")
    return ParallelProblem(base.train, model, model.init(random.key(7)), epochs, 256)


def train_once(problem: ParallelProblem, shards: int, pool: ProcessPoolExecutor | None) -> Params:
    """One training run: ``shards`` shards on ``pool`` (or here); the final params."""
    data = install_dataset(problem.train) if pool is not None else None
    result = fit(
        problem.model,
        problem.params,
        optimizers.adam(1e-3),
        problem.train,
        epochs=problem.epochs,
        batch_size=problem.batch_size,
        key=random.key(3),
        shards=shards,
        executor=pool,
        worker_data=data,
    )
    return result.params


def check(problem: ParallelProblem, one: ProcessPoolExecutor, two: ProcessPoolExecutor) -> None:
    """Raise AssertionError unless the three implementations train to the same params."""
    here = tree_leaves(train_once(problem, 1, None))
    single = tree_leaves(train_once(problem, 1, one))
    double = tree_leaves(train_once(problem, 2, two))
    if single != here:
        raise AssertionError("1 worker did not give the in-process params bit for bit")
    worst = max(abs(a - b) for a, b in zip(double, here, strict=True))
    if worst > 1e-9:
        raise AssertionError(f"2 workers' params differ from 1 shard's by {worst:.3g} (> 1e-9)")


def step_overhead(problem: ParallelProblem, pool: ProcessPoolExecutor, steps: int = 20) -> float:
    """Median seconds a step's gradient takes on ``pool`` more than here, on a batch of 4 examples.

    The batch is tiny, so the difference is the executor's cost (sending params and
    indices, the worker's wake-up, the gradient's return), not the arithmetic.
    """
    loss = SupervisedLoss(problem.model, "classification")
    batch = next(iter(DataLoader(problem.train, 4, shuffle=False)))
    remote = sharded_value_and_grad(loss, executor=pool, worker_data=install_dataset(problem.train))
    local = sharded_value_and_grad(loss)
    differences = []
    for _ in range(steps):
        started = time.perf_counter()
        remote(problem.params, batch, None)
        middle = time.perf_counter()
        local(problem.params, batch, None)
        differences.append((middle - started) - (time.perf_counter() - middle))
    return statistics.median(differences)


def _pool(workers: int, train: Dataset) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, initializer=install_dataset, initargs=(train,))


def measure(problem: ParallelProblem, rounds: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    """Seconds of each implementation in each round (rotated order), after the check.

    ``"overhead"`` holds the executor's cost per step (:func:`step_overhead`), once per round.
    """
    times: dict[str, list[float]] = {name: [] for name in (*NAMES, "overhead")}
    with _pool(1, problem.train) as one, _pool(2, problem.train) as two:
        check(problem, one, two)  # also warms the workers up
        runs: dict[str, Callable[[], Params]] = {
            "here": lambda: train_once(problem, 1, None),
            "1 worker": lambda: train_once(problem, 1, one),
            "2 workers": lambda: train_once(problem, 2, two),
        }
        for index in range(rounds):
            for name in rotation(NAMES, index):
                started = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - started)
            times["overhead"].append(step_overhead(problem, one))
            log(f"round {index + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in NAMES))
    return times


def report(problem: ParallelProblem, times: dict[str, list[float]]) -> str:
    """The W7 table: median seconds, the 1/2-worker speed-up per round, the overhead per step."""
    speedups = [a / b for a, b in zip(times["1 worker"], times["2 workers"], strict=True)]
    per_round = [(a - b) / problem.steps for a, b in zip(times["1 worker"], times["here"], strict=True)]
    overheads = times["overhead"]
    median = statistics.median(speedups)
    verdict = "met" if median >= TARGET_SPEEDUP else "NOT MET"
    sizes = "-".join(str(s) for s in (problem.model.n_in, *problem.model.sizes))
    lines = [
        f"W7 digits {sizes}, batch {problem.batch_size}, {problem.epochs} epochs "
        f"({problem.steps} steps), wall clock, {len(speedups)} rounds",
        *(f"    {name:<10} {statistics.median(times[name]):7.2f} s" for name in NAMES),
        f"    1w/2w      {median:.2f}x  ({min(speedups):.2f}x..{max(speedups):.2f}x)   "
        f"target >= {TARGET_SPEEDUP}x: {verdict}",
        f"    executor overhead per step, batch of 4: {1000 * statistics.median(overheads):.1f} ms "
        f"({1000 * min(overheads):.1f}..{1000 * max(overheads):.1f})",
        f"    (1 worker - here) / steps: {1000 * statistics.median(per_round):.1f} ms "
        f"({1000 * min(per_round):.1f}..{1000 * max(per_round):.1f})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run W7 and print its table."""
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.parallel", description=__doc__)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    problem = parallel_problem(epochs=args.epochs)
    times = measure(problem, args.rounds, lambda line: print(line, file=sys.stderr, flush=True))
    print(report(problem, times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
