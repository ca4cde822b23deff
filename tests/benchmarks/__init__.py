"""Benchmark of issue 6: this library against hand-written pure Python, micrograd and PyTorch.

Run from the repository root::

    python -m tests.benchmarks                 # one table; well under 3 minutes
    python -m tests.benchmarks --quick         # about 30 s
    python -m tests.benchmarks --json out.json --repeat 15
    python -m tests.benchmarks --workloads W1,W3 --profile

It times, per workload, the median of repeated runs after a warm-up of: this
library; a hand-written pure-Python baseline (explicit loops, hand-derived
gradients, no autodiff: the practical limit for pure Python); ``micrograd``
and PyTorch eager on CPU (float64, one thread) when they are installed (neither
is a dependency). It prints the ratios library/baseline, micrograd/library and
library/torch beside the issue's targets, marked met or not.

Modules: :mod:`~tests.benchmarks.workloads` (data, initial params, the
library's code), :mod:`~tests.benchmarks.baseline` (hand-written),
:mod:`~tests.benchmarks.external` (micrograd, torch),
:mod:`~tests.benchmarks.measure` (timing, tracemalloc),
:mod:`~tests.benchmarks.report` (table, JSON) and :mod:`~tests.benchmarks.run`
(command line). ``tests/test_benchmarks_smoke.py`` checks quickly that every
implementation computes the library's numbers.
"""
