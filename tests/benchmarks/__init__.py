"""Benchmark: this library against hand-written pure Python, micrograd and PyTorch.

Run from the repository root::

    python -m tests.benchmarks                 # one table; about 2 minutes on a quiet machine
    python -m tests.benchmarks --quick         # under a minute
    python -m tests.benchmarks --json out.json --rounds 40
    python -m tests.benchmarks --workloads W1,W1-scalar --profile

Each workload has several implementations: this library; a hand-written
pure-Python baseline (explicit loops, hand-derived gradients, no autodiff: the
practical limit for pure Python); ``micrograd`` and PyTorch eager on CPU
(float64, one thread) when they are installed (neither is a dependency; the
``bench`` extra, ``pip install -e '.[bench]'``, installs both); and for
W2 the graph evaluated on bare floats; for W8 the library again, on scalar
Values instead of array nodes. Before anything is timed, every
implementation's result is checked against the library's. Then every round runs
each implementation once, in rotated order, timed in CPU time; the table gives
median times and, per ratio (library/baseline, micrograd/library, ...), the
median and range of the per-round ratios beside the targets, marked met or not.

Modules: :mod:`~tests.benchmarks.workloads` (data, initial params, the
library's code), :mod:`~tests.benchmarks.baseline` (hand-written), and for the
N-d workloads (W5 a CNN epoch, W6 causal self-attention, W8 an Elman RNN)
:mod:`~tests.benchmarks.nd_workloads` and :mod:`~tests.benchmarks.nd_baseline`;
:mod:`~tests.benchmarks.external` (micrograd, torch),
:mod:`~tests.benchmarks.suite` (the rows, their targets and the cross-check),
:mod:`~tests.benchmarks.measure` (rounds, tracemalloc),
:mod:`~tests.benchmarks.report` (table, JSON) and :mod:`~tests.benchmarks.run`
(command line). ``tests/test_benchmarks_smoke.py`` checks quickly that every
implementation computes the library's numbers.
"""
