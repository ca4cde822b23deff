"""Smoke test of the benchmark (``python -m tests.benchmarks``): every workload once, at tiny size.

What makes the benchmark's hand-written baseline trustworthy is that it computes
the library's numbers: from the same initial params and data, the same loss and
the same updated params (W1, W3), the same output and gradients (W2), the same
logits (W4). micrograd and PyTorch, when installed, are held to the same check
through the very rows the benchmark times (:func:`tests.benchmarks.suite.check`).
Nothing is timed here: the round scheduler runs on a counting clock, and the
table is rendered from made-up seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import cast

import pytest

from functional_nn.sharding import install_dataset
from tape.tree import tree_leaves
from tests.benchmarks import baseline, external, parallel, suite
from tests.benchmarks.measure import Rounds, Spread, library_memory, rotation, run_rounds, traced_bytes
from tests.benchmarks.report import MemoryRow, Row, render, to_json, write_json
from tests.benchmarks.run import main
from tests.benchmarks.suite import TOLERANCE, Implementation, Mismatch, Target, Workload, discrepancy
from tests.benchmarks.workloads import (
    DigitsProblem,
    GraphProblem,
    RegressionProblem,
    digits_problem,
    graph_problem,
    library_w1_scalar_step,
    library_w1_step,
    library_w2,
    library_w3_epoch,
    library_w4,
    regression_problem,
)


@pytest.fixture(scope="module")
def regression() -> RegressionProblem:
    return regression_problem(12)


@pytest.fixture(scope="module")
def graph() -> GraphProblem:
    return graph_problem(2_000, leaves=20)


@pytest.fixture(scope="module")
def digits() -> DigitsProblem:
    return digits_problem(train_size=80, test_size=25)  # batches of 32, 32 and 16


def assert_close(expected: object, actual: object) -> None:
    """Same number of floats, each within ``TOLERANCE`` (relative to the expected values' scale, >= 1)."""
    a, b = tree_leaves(expected), tree_leaves(actual)
    assert len(a) == len(b) > 0
    assert all(math.isfinite(float(x)) for x in a)
    assert discrepancy(expected, actual) <= TOLERANCE, discrepancy(expected, actual)


# --- the library's own ways agree with the baseline ------------------------------------------


@pytest.mark.parametrize("way", ["array-nodes", "batch-on-values", "per-example-values"])
def test_w1_baseline_matches_library(regression: RegressionProblem, way: str) -> None:
    if way == "per-example-values":
        step = library_w1_scalar_step(regression)
    else:
        step = library_w1_step(regression, arrays=way == "array-nodes")
    loss, params = step(regression.params)
    base_loss, net = baseline.mse_step(
        baseline.from_params(regression.params), regression.inputs, regression.targets, regression.lr
    )
    assert base_loss == pytest.approx(loss, rel=1e-12)
    assert discrepancy(regression.params, params) > 1e-6  # the step moved the params
    assert_close(params, baseline.to_params(net))


def test_w2_graph_is_as_described(graph: GraphProblem) -> None:
    kinds = {kind for kind, _, _ in graph.program}
    assert kinds == {0, 1, 2} and 1_900 <= len(graph.program) <= 2_000
    assert graph == graph_problem(2_000, leaves=20)  # deterministic


def test_w2_baseline_and_floats_match_library(graph: GraphProblem) -> None:
    out, grads = library_w2(graph)
    assert all(g != 0.0 for g in grads)
    assert_close((out, grads), baseline.graph_gradient(graph))
    assert baseline.graph_output(graph) == pytest.approx(out, rel=1e-12)


def test_w2_memory_is_measured(graph: GraphProblem) -> None:
    memory = library_memory(graph)
    assert memory.nodes == graph.num_nodes
    assert 0 < memory.tape_bytes <= memory.total_bytes
    record = external.micrograd_w2_bytes(graph)
    if record is not None:
        held, count = traced_bytes(record)
        assert count == graph.num_nodes and held > 0


@pytest.mark.parametrize("arrays", [True, False], ids=["array-nodes", "scalar-values"])
def test_w3_baseline_matches_library(digits: DigitsProblem, arrays: bool) -> None:
    losses, params = library_w3_epoch(digits, arrays=arrays)(digits.params)
    batches = [([list(x) for x in b.inputs], list(b.labels())) for b in digits.batches()]
    base_losses, net = baseline.cross_entropy_epoch(baseline.from_params(digits.params), batches, digits.lr)
    assert len(losses) == len(base_losses) == 3
    assert base_losses == pytest.approx(losses, rel=1e-12)
    assert_close(params, baseline.to_params(net))


def test_w4_baseline_matches_library(digits: DigitsProblem) -> None:
    params = suite.trained_params(digits)
    logits = library_w4(digits, params)
    assert len(logits) == 25 and len(logits[0]) == 10
    net = baseline.from_params(params)
    assert_close(logits, [baseline.forward_one(net, list(x)) for x in digits.test.inputs])


# --- every row the benchmark times passes its cross-check -----------------------------------------

BUILDERS: dict[str, Callable[[RegressionProblem, GraphProblem, DigitsProblem], Workload]] = {
    "W1": lambda r, g, d: suite.w1(r),
    "W1 jit": lambda r, g, d: suite.w1_jit(r),
    "W1 scalar": lambda r, g, d: suite.w1_scalar(r),
    "W1 scalar jit": lambda r, g, d: suite.w1_scalar_jit(r),
    "W2": lambda r, g, d: suite.w2(g),
    "W2 jit": lambda r, g, d: suite.w2_jit(g),
    "W3": lambda r, g, d: suite.w3(d),
    "W4": lambda r, g, d: suite.w4(d),
}


@pytest.mark.parametrize("key", list(BUILDERS))
def test_every_implementation_agrees_with_the_library(
    key: str, regression: RegressionProblem, graph: GraphProblem, digits: DigitsProblem
) -> None:
    workload = BUILDERS[key](regression, graph, digits)
    assert workload.key == key and next(iter(workload.implementations)) == "library"
    found = suite.check(workload)
    runnable = set(workload.runnable())
    assert {"library", "baseline"} <= runnable
    assert set(found) == runnable - {"library"}
    assert all(0.0 <= d <= TOLERANCE for d in found.values())
    for name, reason in workload.skipped().items():
        if reason.endswith("is not installed"):
            assert external.package_version(name) is None, f"{name} is installed but {key} did not run it"
    for which in workload.ratios:
        assert all(side in suite.IMPLEMENTATIONS for side in suite.RATIOS[which])


def _toy(result: Callable[[], object], *, expected: Callable[[object], object] = lambda r: r) -> Workload:
    return Workload(
        "W9",
        "toy",
        "one call",
        {
            "library": Implementation(lambda: lambda: (1.0, [2.0, 3.0])),
            "other": Implementation(lambda: result, expected=expected),
        },
        (),
    )


def _first(result: object) -> object:
    return cast("tuple[float, list[float]]", result)[0]


def test_check_stops_on_a_mismatch() -> None:
    assert suite.check(_toy(lambda: (1.0, [2.0, 3.0]))) == {"other": 0.0}
    with pytest.raises(
        Mismatch, match=r"W9 other: result differs from the library's: they differ by 0\.667 "
    ):
        suite.check(_toy(lambda: (1.0, [2.0, 5.0])))
    with pytest.raises(Mismatch, match=r"W9 other: .* it gives 2 numbers where the library gives 3"):
        suite.check(_toy(lambda: (1.0, [2.0])))
    with pytest.raises(Mismatch, match="W9 other"):
        suite.check(_toy(lambda: (1.0, [2.0, math.nan])))
    assert suite.check(_toy(lambda: 1.0, expected=_first)) == {"other": 0.0}


# --- rounds, targets and the table (nothing timed) ----------------------------------------------


def test_rounds_rotate_and_time_each_run_once() -> None:
    calls: list[str] = []
    ticks = iter(range(10_000))

    def clock() -> float:
        return float(next(ticks))

    def prepare(name: str) -> Callable[[], object]:
        return lambda: calls.append(name)

    names = ("a", "b", "c")
    prepares = {name: partial(prepare, name) for name in names}
    rounds = run_rounds(prepares, rounds=4, clock=clock)
    assert len(rounds.seconds) == 6  # rounded up to a multiple of 3, so each leads twice
    assert calls[:3] == ["a", "b", "c"]  # the untimed warm-up round
    assert calls[3:] == [n for r in range(6) for n in rotation(names, r)]
    assert [calls[3 + 3 * r] for r in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert all(s == 1.0 for row in rounds.seconds for s in row)  # one tick between start and stop
    assert rotation(names, 4) == ["b", "c", "a"]
    with pytest.raises(ValueError, match="rounds"):
        run_rounds(prepares, rounds=0, clock=clock)


def test_spread_and_verdicts() -> None:
    spread = Spread.of([1.3, 1.1, 1.6])
    assert (spread.median, spread.low, spread.high) == (1.3, 1.1, 1.6)
    at_most = Target("lib/base", 1.5, at_most=True)
    assert at_most.verdict(spread) == "met (not in every round)"
    assert at_most.verdict(Spread.of([1.2, 1.4])) == "met"
    assert at_most.verdict(Spread.of([1.6, 1.7])) == "NOT MET"
    assert (
        Target("mg/lib", 8.0, at_most=False).verdict(Spread.of([7.0, 7.5, 9.0]))
        == "NOT MET (met in some rounds)"
    )
    assert at_most.verdict(None) == "n/a"
    with pytest.raises(ValueError, match="at least one"):
        Spread.of([])


def test_report_renders(tmp_path: Path) -> None:
    workload = Workload(
        "W1",
        "test",
        "one step",
        {
            "library": Implementation(lambda: lambda: None),
            "baseline": Implementation(lambda: lambda: None),
            "micrograd": "micrograd is not installed",
        },
        ("lib/base", "mg/lib"),
        (Target("lib/base", 1.5, at_most=True), Target("mg/lib", 100.0, at_most=False)),
    )
    rounds = Rounds(("library", "baseline"), ((0.020, 0.010), (0.030, 0.010), (0.025, 0.0125)))
    row = Row(workload, rounds, {"baseline": 0.0})
    assert row.ratio("lib/base") == Spread(2.0, 2.0, 3.0)
    assert row.median("library") == pytest.approx(0.025) and row.ratio("mg/lib") is None
    memory = MemoryRow(library_memory(graph_problem(40, leaves=4)), None, None)
    table = render([row], memory)
    assert "25 ms" in table and "10 ms" in table and "2x  (2x..3x)" in table
    assert "target <= 1.5x: NOT MET" in table and "target >= 100x: n/a" in table
    assert "target <= 200 B/node" in table
    path = tmp_path / "bench.json"
    write_json(path, to_json([row], memory, {"rounds": 3}, {"torch": None}))
    data = json.loads(path.read_text(encoding="utf-8"))
    w1 = data["workloads"]["W1"]
    assert w1["targets"][0]["met"] is False and w1["ratios"]["lib/base"]["per_round"] == [2.0, 3.0, 2.0]
    assert w1["implementations"]["micrograd"] == {"skipped": "micrograd is not installed"}
    assert w1["implementations"]["baseline"]["seconds_per_round"] == [0.010, 0.010, 0.0125]
    assert data["machine"]["python"] and list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_command_line_refuses_unknown_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--workloads", "W1,W9"])
    assert exit_info.value.code == 2
    assert "unknown workloads ['W9']" in capsys.readouterr().err


def test_w7_workers_train_to_the_in_process_params_and_the_table_renders() -> None:
    problem = parallel.parallel_problem(epochs=1, train_size=300, sizes=(8, 10))  # batches of 256 and 44
    with (
        ProcessPoolExecutor(1, initializer=install_dataset, initargs=(problem.train,)) as one,
        ProcessPoolExecutor(2, initializer=install_dataset, initargs=(problem.train,)) as two,
    ):
        parallel.check(problem, one, two)  # raises on a mismatch
        assert math.isfinite(parallel.step_overhead(problem, one, steps=2))
    times = {"here": [2.0, 2.2], "1 worker": [2.1, 2.3], "2 workers": [1.0, 1.5], "overhead": [0.001, 0.002]}
    table = parallel.report(problem, times)
    assert "1w/2w      1.82x  (1.53x..2.10x)   target >= 1.6x: met" in table
    assert "batch of 4: 1.5 ms (1.0..2.0)" in table
    assert f"({problem.steps} steps)" in table and problem.steps == 2
