"""Timing (median of repeated runs after a warm-up) and memory per recorded node (tracemalloc).

Each timed run starts from the same state: ``prepare()`` (untimed) resets it and
gives the thunk to time. The garbage collector stays enabled while timing, as it
is in real use, but everything alive before a cell starts (imported modules such
as torch, the data sets) is moved out of its reach with :func:`gc.freeze`: a full
collection would otherwise walk those objects too, and the workloads that
allocate many container objects would be charged for whatever else the process
happens to hold. Each timed run ends with a :func:`gc.collect`, so a run pays for
freeing what it built even when that is cyclic garbage (micrograd's closures
reference their own Values), as it does in a training loop's steady state.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tape import Tape
from tests.benchmarks.workloads import GraphProblem, replay

__all__ = ["Memory", "Timing", "library_memory", "time_runs", "traced_bytes"]


@dataclass(frozen=True)
class Timing:
    """Seconds of each timed run (the warm-up run is not among them)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median run time in seconds."""
        return statistics.median(self.samples)


def time_runs(
    prepare: Callable[[], Callable[[], object]],
    *,
    repeat: int,
    min_time: float,
    max_runs: int = 200,
) -> tuple[Timing, object]:
    """Warm up once, then time ``repeat`` runs, and more (up to ``max_runs``) until ``min_time`` seconds pass.

    Returns the timings and the warm-up run's output (for checking results).
    """
    output = prepare()()
    samples: list[float] = []
    clock = time.perf_counter
    gc.collect()
    gc.freeze()
    try:
        began = clock()
        while len(samples) < repeat or (clock() - began < min_time and len(samples) < max_runs):
            thunk = prepare()
            gc.collect()
            start = clock()
            thunk()  # its output is dropped at once: freeing it is timed too
            gc.collect()
            samples.append(clock() - start)
            del thunk
    finally:
        gc.unfreeze()
    gc.collect()
    return Timing(tuple(samples)), output


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
        nodes = len(t)
        del t
    finally:
        tracemalloc.stop()
    gc.collect()
    return Memory(nodes, tape_only, total)
