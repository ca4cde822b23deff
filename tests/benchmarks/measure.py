"""Timing in interleaved rounds (CPU time) and memory per recorded node (tracemalloc).

Every round runs each implementation of a workload once, in rotated order:
round ``r`` starts with implementation ``r mod k`` and goes on cyclically. Each
run is timed with :func:`time.process_time`, the CPU time of this process (all its
threads), so time the machine gives to other processes is not charged to it. Ratios
between implementations are taken per round, between runs made seconds apart, so a
slow spell of the shared machine moves both sides of a ratio together.

Each timed run starts from the same state: ``prepare()`` (untimed) resets it and
gives the thunk to time. The garbage collector stays enabled while timing, as it
is in real use, but everything alive before the rounds start (imported modules such
as torch, the data sets) is moved out of its reach with :func:`gc.freeze`: a full
collection would otherwise walk those objects too, and the workloads that allocate
many container objects would be charged for whatever else the process holds. Each
timed run ends with a :func:`gc.collect`, so a run pays for freeing what it built
even when that is cyclic garbage (micrograd's closures reference their own Values),
as it does in a training loop's steady state.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tape import Tape
from tests.benchmarks.workloads import GraphProblem, replay

__all__ = [
    "Clock",
    "Memory",
    "Rounds",
    "Spread",
    "library_memory",
    "rotation",
    "run_rounds",
    "traced_bytes",
]

Clock = Callable[[], float]
"""Seconds from an arbitrary origin; :func:`time.process_time` by default."""


@dataclass(frozen=True)
class Spread:
    """The median and range of a set of per-round figures."""

    median: float
    low: float
    high: float

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        """The spread of ``values`` (at least one)."""
        if not values:
            raise ValueError("a spread needs at least one value")
        return Spread(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Rounds:
    """Seconds of every timed run: ``seconds[r][i]`` is implementation ``names[i]`` in round ``r``."""

    names: tuple[str, ...]
    seconds: tuple[tuple[float, ...], ...]

    def samples(self, name: str) -> tuple[float, ...]:
        """Seconds of ``name``'s run in each round, in round order."""
        i = self.names.index(name)
        return tuple(row[i] for row in self.seconds)

    def median(self, name: str) -> float:
        """``name``'s median run time in seconds."""
        return statistics.median(self.samples(name))

    def ratios(self, top: str, bottom: str) -> tuple[float, ...]:
        """``top / bottom`` in each round (rounds where ``bottom`` took no measurable time are left out)."""
        return tuple(a / b for a, b in zip(self.samples(top), self.samples(bottom), strict=True) if b > 0.0)


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """The order of round ``round_index``: ``names`` rotated to start at ``round_index mod len(names)``."""
    start = round_index % len(names)
    return [*names[start:], *names[:start]]


def run_rounds(
    prepares: Mapping[str, Callable[[], Callable[[], object]]],
    *,
    rounds: int,
    min_time: float = 0.0,
    max_rounds: int = 200,
    warmup_rounds: int = 1,
    clock: Clock = time.process_time,
) -> Rounds:
    """Time every implementation once per round, in rotated order, after ``warmup_rounds`` untimed rounds.

    Runs at least ``rounds`` timed rounds, and more, up to ``max_rounds``, until the
    timed runs add up to ``min_time`` seconds; the count is rounded up to a multiple
    of the number of implementations, so each one leads a round equally often.
    """
    names = tuple(prepares)
    if not names:
        raise ValueError("run_rounds needs at least one implementation")
    if rounds < 1 or max_rounds < rounds or min_time < 0.0 or warmup_rounds < 0:
        raise ValueError(
            "need 1 <= rounds <= max_rounds, min_time >= 0 and warmup_rounds >= 0, got "
            f"rounds={rounds}, max_rounds={max_rounds}, min_time={min_time}, warmup_rounds={warmup_rounds}"
        )
    k = len(names)
    table: list[tuple[float, ...]] = []
    spent = 0.0
    gc.collect()
    gc.freeze()
    try:
        for r in range(warmup_rounds):
            for name in rotation(names, r):
                prepares[name]()()
        while len(table) < rounds or (spent < min_time and len(table) < max_rounds) or len(table) % k:
            seconds: dict[str, float] = {}
            for name in rotation(names, len(table)):
                thunk = prepares[name]()
                gc.collect()
                start = clock()
                thunk()  # its output is dropped at once: freeing it is timed too
                gc.collect()
                seconds[name] = clock() - start
                del thunk
            table.append(tuple(seconds[name] for name in names))
            spent += sum(seconds.values())
    finally:
        gc.unfreeze()
    gc.collect()
    return Rounds(names, tuple(table))


def traced_bytes(record: Callable[[], Sequence[object]]) -> tuple[int, int]:
    """``(bytes held, objects returned)`` by what ``record()`` returns, measured with tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = record()
        held = tracemalloc.get_traced_memory()[0] - before
        count = len(kept)
        del kept
    finally:
        tracemalloc.stop()
    gc.collect()
    return held, count


@dataclass(frozen=True)
class Memory:
    """What recording W2 holds, per recorded node (leaves included)."""

    nodes: int
    tape_bytes: int
    """Held by the tape itself: measured after the Values are dropped (they only point into it)."""
    total_bytes: int
    """Tape plus every Value handle and the list holding them, while they are alive."""

    @property
    def tape_per_node(self) -> float:
        """Bytes the tape holds per recorded node."""
        return self.tape_bytes / self.nodes

    @property
    def total_per_node(self) -> float:
        """Bytes per node with the Value handles counted too."""
        return self.total_bytes / self.nodes


def library_memory(problem: GraphProblem) -> Memory:
    """Record W2 on a tape under tracemalloc and measure what the tape and its Values hold."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with Tape() as t:
            values = replay(problem.program, [t.watch(x) for x in problem.leaves])
        total = tracemalloc.get_traced_memory()[0] - before
        del values
        gc.collect()
        tape_only = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    nodes = len(t.nodes)
    del t
    gc.collect()
    return Memory(nodes, tape_only, total)
