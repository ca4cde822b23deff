"""Smoke test of the benchmark (``python -m tests.benchmarks``): every workload once, at tiny size.

What makes the benchmark's hand-written baseline trustworthy is that it computes
the library's numbers: from the same initial params and data, the same loss and
the same updated params (W1, W3), the same output and gradients (W2), the same
logits (W4). micrograd and PyTorch, when installed, are held to the same check
through the very adapters the benchmark times. No timing is asserted here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from tape.tree import tree_leaves
from tests.benchmarks import baseline, external
from tests.benchmarks.external import Prepared
from tests.benchmarks.measure import Timing, library_memory, time_runs, traced_bytes
from tests.benchmarks.report import Cell, MemoryRow, Row, Target, render, to_json, write_json
from tests.benchmarks.run import discrepancy
from tests.benchmarks.workloads import (
    DigitsProblem,
    GraphProblem,
    RegressionProblem,
    digits_problem,
    graph_problem,
    library_w1_step,
    library_w2,
    library_w3_epoch,
    library_w4,
    regression_problem,
)

TOLERANCE = 1e-9


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


def run_once(prepared: Prepared | None, name: str) -> object:
    if prepared is None:
        pytest.skip(f"{name} is not installed")
    prepare, convert = prepared
    return convert(prepare()())


# --- W1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arrays", [True, False], ids=["array-nodes", "scalar-values"])
def test_w1_baseline_matches_library(regression: RegressionProblem, arrays: bool) -> None:
    loss, params = library_w1_step(regression, arrays=arrays)(regression.params)
    base_loss, net = baseline.mse_step(
        baseline.from_params(regression.params), regression.inputs, regression.targets, regression.lr
    )
    assert base_loss == pytest.approx(loss, rel=1e-12)
    assert discrepancy(regression.params, params) > 1e-6  # the step moved the params
    assert_close(params, baseline.to_params(net))


# --- W2 ------------------------------------------------------------------------------------


def test_w2_graph_is_as_described(graph: GraphProblem) -> None:
    kinds = {kind for kind, _, _ in graph.program}
    assert kinds == {0, 1, 2} and 1_900 <= len(graph.program) <= 2_000
    assert graph == graph_problem(2_000, leaves=20)  # deterministic


def test_w2_baseline_matches_library(graph: GraphProblem) -> None:
    out, grads = library_w2(graph)
    assert all(g != 0.0 for g in grads)
    assert_close((out, grads), baseline.graph_gradient(graph))


def test_w2_memory_is_measured(graph: GraphProblem) -> None:
    memory = library_memory(graph)
    assert memory.nodes == graph.num_nodes
    assert 0 < memory.tape_bytes <= memory.total_bytes
    record = external.micrograd_w2_bytes(graph)
    if record is not None:
        held, count = traced_bytes(record)
        assert count == graph.num_nodes and held > 0


# --- W3 and W4 -----------------------------------------------------------------------------


def _baseline_epoch(problem: DigitsProblem) -> tuple[list[float], baseline.Net]:
    batches = [([list(x) for x in b.inputs], list(b.labels())) for b in problem.batches()]
    return baseline.cross_entropy_epoch(baseline.from_params(problem.params), batches, problem.lr)


@pytest.mark.parametrize("arrays", [True, False], ids=["array-nodes", "scalar-values"])
def test_w3_baseline_matches_library(digits: DigitsProblem, arrays: bool) -> None:
    losses, params = library_w3_epoch(digits, arrays=arrays)(digits.params)
    base_losses, net = _baseline_epoch(digits)
    assert len(losses) == len(base_losses) == 3
    assert base_losses == pytest.approx(losses, rel=1e-12)
    assert_close(params, baseline.to_params(net))


def test_w4_baseline_matches_library(digits: DigitsProblem) -> None:
    _, net = _baseline_epoch(digits)
    params = baseline.to_params(net)
    logits = library_w4(digits, params)
    assert len(logits) == 25 and len(logits[0]) == 10
    assert_close(logits, [baseline.forward_one(net, list(x)) for x in digits.test.inputs])


# --- harness --------------------------------------------------------------------------------


def test_timing_and_report(tmp_path: Path) -> None:
    calls: list[int] = []

    def prepare() -> Callable[[], object]:
        return lambda: calls.append(1)

    timing, _ = time_runs(prepare, repeat=3, min_time=0.0)
    assert len(timing.samples) == 3 and len(calls) == 4  # one warm-up
    row = Row(
        "W1",
        "test",
        "one step",
        {
            "library": Cell(Timing((0.02, 0.03, 0.025))),
            "baseline": Cell(Timing((0.01,)), discrepancy=0.0),
            "micrograd": Cell(skipped="not installed"),
        },
        (Target("lib/base", 1.5, at_most=True), Target("mg/lib", 100.0, at_most=False)),
    )
    assert row.ratio("lib/base") == pytest.approx(2.5)
    memory = MemoryRow(library_memory(graph_problem(40, leaves=4)), None, None)
    table = render([row], memory)
    assert "25 ms" in table and "2.5x" in table and "lib/base <= 1.5x: NOT MET" in table
    assert "mg/lib >= 100x: n/a" in table and "tape <= 200 B/node" in table
    path = tmp_path / "bench.json"
    write_json(path, to_json([row], memory, {"repeat": 3}, {"torch": None}))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["workloads"]["W1"]["targets"][0]["met"] is False
    assert data["machine"]["python"]


# --- micrograd and PyTorch, through the benchmark's adapters (last: importing torch is slow) ---------


@pytest.mark.parametrize("name", ["micrograd", "torch"])
def test_w1_external_matches_library(regression: RegressionProblem, name: str) -> None:
    adapter = external.micrograd_w1 if name == "micrograd" else external.torch_w1
    expected = library_w1_step(regression)(regression.params)
    assert_close(expected, run_once(adapter(regression), name))


@pytest.mark.parametrize("name", ["micrograd", "torch"])
def test_w2_external_matches_library(graph: GraphProblem, name: str) -> None:
    adapter = external.micrograd_w2 if name == "micrograd" else external.torch_w2
    assert_close(library_w2(graph), run_once(adapter(graph), name))


def test_w3_torch_matches_library(digits: DigitsProblem) -> None:
    expected = library_w3_epoch(digits)(digits.params)
    assert_close(expected, run_once(external.torch_w3(digits), "torch"))


def test_w4_torch_matches_library(digits: DigitsProblem) -> None:
    _, net = _baseline_epoch(digits)
    params = baseline.to_params(net)
    assert_close(library_w4(digits, params), run_once(external.torch_w4(digits, params), "torch"))
