"""Smoke test of the benchmark (``python -m tests.benchmarks``): every workload once, at tiny size.

What makes the benchmark's hand-written baseline trustworthy is that it computes
the library's numbers: from the same initial params and data, the same loss and
the same updated params (W1, W3, W5), the same output and gradients (W2, W6), the
same logits (W4), the same loss, gradients and updated params (W8). micrograd and
PyTorch, when installed, are held to the same check through the very rows the
benchmark times (:func:`tests.benchmarks.suite.check`); the N-d baselines are also
compared with PyTorch directly where it is installed.
Nothing is timed here: the round scheduler runs on a counting clock, and the
table is rendered from made-up seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import cast

import pytest

from functional_nn.sharding import install_dataset
from tape.tree import tree_leaves
from tests.benchmarks import baseline, external, nd_baseline, parallel, suite
from tests.benchmarks.measure import Rounds, Spread, library_memory, rotation, run_rounds, traced_bytes
from tests.benchmarks.nd_workloads import (
    AttentionProblem,
    CnnProblem,
    RnnProblem,
    attention_params,
    attention_problem,
    attention_weights,
    cnn_params,
    cnn_problem,
    cnn_weights,
    library_w5_epoch,
    library_w6,
    library_w8_step,
    rnn_params,
    rnn_problem,
    rnn_weights,
)
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
    assert baseline.lean_graph_gradient(graph) == (out, grads)  # the same sweep: the same bits
    assert baseline.graph_output(graph) == pytest.approx(out, rel=1e-12)


def test_w2_jit_reports_a_large_graphs_first_call(graph: GraphProblem) -> None:
    large = graph_problem(3_000, leaves=20)
    notes = suite.w2_jit(graph, large=large).notes
    assert len(notes) == 2 and len(suite.w2_jit(graph).notes) == 1
    found = re.fullmatch(
        r"W2 jit at ([\d,]+) ops: first call ([\d.e-]+) s \(trace and code generation ([\d.e-]+) s, "
        r"compile ([\d.e-]+) s, ([\d,]+) lines\), once\.",
        notes[1],
    )
    assert found is not None, notes[1]
    ops, total, traced, compiled, lines = found.groups()
    assert int(ops.replace(",", "")) == len(large.program)
    assert min(float(total), float(traced), float(compiled)) > 0.0  # each rounded to 3 digits: no sums
    assert int(lines.replace(",", "")) > len(large.program) // 2  # fused lines: fewer lines than ops


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


# --- the N-d workloads: baselines against the library (and PyTorch, where installed) ----------


@pytest.fixture(scope="module")
def cnn() -> CnnProblem:
    return cnn_problem(train_size=40)  # batches of 32 and 8


@pytest.fixture(scope="module")
def attention() -> AttentionProblem:
    return attention_problem(batch=2, time=4, d_model=8, heads=2)


@pytest.fixture(scope="module")
def rnn() -> RnnProblem:
    return rnn_problem(batch=5, time=3, features=3, hidden=4)


def test_nd_problems_are_as_described(cnn: CnnProblem, attention: AttentionProblem, rnn: RnnProblem) -> None:
    batches = cnn.batches()
    assert [len(labels) for _, labels in batches] == [32, 8]
    images = batches[0][0]
    assert (len(images), len(images[0]), len(images[0][0]), len(images[0][0][0])) == (32, 1, 8, 8)
    assert len(cnn.weights.linear_weight[0]) == 8 * 4 * 4 and len(cnn.weights.conv_weight[0][0]) == 3
    assert len(attention.weights.in_proj_weight) == 3 * attention.d_model == 24
    assert set(rnn.labels) == {0, 1} and len(rnn.steps()) == 3 and len(rnn.steps()[0]) == 5
    assert rnn == rnn_problem(batch=5, time=3, features=3, hidden=4)  # deterministic
    with pytest.raises(ValueError, match="d_model 6 is not a multiple of heads 4"):
        attention_problem(d_model=6, heads=4)


def test_nd_baseline_layouts_round_trip(cnn: CnnProblem, rnn: RnnProblem) -> None:
    assert nd_baseline.cnn_weights(nd_baseline.cnn_net(cnn.weights)) == cnn.weights
    assert nd_baseline.rnn_weights(nd_baseline.rnn_net(rnn.weights)) == rnn.weights
    assert rnn_weights(rnn_params(rnn.weights)) == tuple(rnn.weights)


def test_w5_baseline_matches_library(cnn: CnnProblem) -> None:
    losses, params = library_w5_epoch(cnn)(cnn_params(cnn.weights))
    base_losses, net = nd_baseline.cnn_epoch(nd_baseline.cnn_net(cnn.weights), cnn.batches(), cnn.lr)
    assert len(losses) == len(base_losses) == 2
    assert base_losses == pytest.approx(losses, rel=1e-12)
    assert discrepancy(cnn_weights(cnn_params(cnn.weights)), cnn_weights(params)) > 1e-4  # Adam moved them
    assert_close(cnn_weights(params), tuple(nd_baseline.cnn_weights(net)))


def test_w6_baseline_matches_library(attention: AttentionProblem) -> None:
    loss, grads = library_w6(attention)(attention_params(attention.weights))
    base_loss, base_grads = nd_baseline.attention_gradients(attention)
    assert base_loss == pytest.approx(loss, rel=1e-12)
    assert all(g != 0.0 for g in tree_leaves(attention_weights(grads)))
    assert_close(attention_weights(grads), tuple(base_grads))


@pytest.mark.parametrize("arrays", [True, False], ids=["array-nodes", "scalar-values"])
def test_w8_baseline_matches_library(rnn: RnnProblem, arrays: bool) -> None:
    loss, grads, params = library_w8_step(rnn, arrays=arrays)(rnn_params(rnn.weights))
    base_loss, base_grads, net = nd_baseline.rnn_step(nd_baseline.rnn_net(rnn.weights), rnn)
    assert base_loss == pytest.approx(loss, rel=1e-12)
    assert all(g != 0.0 for g in tree_leaves(rnn_weights(grads)))  # every weight gets a gradient
    assert_close(rnn_weights(grads), tuple(nd_baseline.rnn_weights(base_grads)))
    assert_close(rnn_weights(params), tuple(nd_baseline.rnn_weights(net)))


def test_nd_baselines_match_torch(cnn: CnnProblem, attention: AttentionProblem, rnn: RnnProblem) -> None:
    w5, w6, w8 = external.torch_w5(cnn), external.torch_w6(attention), external.torch_w8(rnn)
    if w5 is None or w6 is None or w8 is None:
        pytest.skip("torch is not installed")
    losses, net = nd_baseline.cnn_epoch(nd_baseline.cnn_net(cnn.weights), cnn.batches(), cnn.lr)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert_close(w5[1](w5[0]()()), (losses, tuple(nd_baseline.cnn_weights(net))))
    loss, grads = nd_baseline.attention_gradients(attention)
    assert_close(w6[1](w6[0]()()), (loss, tuple(grads)))
    loss, rnn_grads, rnn_net = nd_baseline.rnn_step(nd_baseline.rnn_net(rnn.weights), rnn)
    expected = (loss, tuple(nd_baseline.rnn_weights(rnn_grads)), tuple(nd_baseline.rnn_weights(rnn_net)))
    assert_close(w8[1](w8[0]()()), expected)


# --- every row the benchmark times passes its cross-check -----------------------------------------

BUILDERS: dict[str, Callable[[RegressionProblem, GraphProblem, DigitsProblem], Workload]] = {
    "W1": lambda r, g, d: suite.w1(r),
    "W1 jit": lambda r, g, d: suite.w1_jit(r),
    "W1 scalar": lambda r, g, d: suite.w1_scalar(r),
    "W1 scalar jit": lambda r, g, d: suite.w1_scalar_jit(r),
    "W2": lambda r, g, d: suite.w2(g),
    "W2 jit": lambda r, g, d: suite.w2_jit(g),
    "W3": lambda r, g, d: suite.w3(d),
    "Adam": lambda r, g, d: suite.adam(d),
    "W4": lambda r, g, d: suite.w4(d),
}


def _check_row(workload: Workload, key: str) -> None:
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


@pytest.mark.parametrize("key", list(BUILDERS))
def test_every_implementation_agrees_with_the_library(
    key: str, regression: RegressionProblem, graph: GraphProblem, digits: DigitsProblem
) -> None:
    _check_row(BUILDERS[key](regression, graph, digits), key)


ND_BUILDERS: dict[str, Callable[[CnnProblem, AttentionProblem, RnnProblem], Workload]] = {
    "W5": lambda c, a, r: suite.w5(c),
    "W6": lambda c, a, r: suite.w6(a),
    "W8": lambda c, a, r: suite.w8(r),
}


@pytest.mark.parametrize("key", list(ND_BUILDERS))
def test_every_nd_implementation_agrees_with_the_library(
    key: str, cnn: CnnProblem, attention: AttentionProblem, rnn: RnnProblem
) -> None:
    _check_row(ND_BUILDERS[key](cnn, attention, rnn), key)


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


def test_quick_run_of_w8_prints_its_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w8.json"
    assert main(["--quick", "--workloads", "W8", "--rounds", "1", "--min-time", "0", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "W8 Elman RNN 4-8-2, 32 sequences of 6, Adam step" in table
    assert "vals/lib" in table and "target >= 10x" in table
    w8 = json.loads(out.read_text(encoding="utf-8"))["workloads"]["W8"]
    assert {"library", "values", "baseline"} <= set(w8["implementations"])
    assert w8["targets"][0]["what"] == "vals/lib" and w8["targets"][0]["value"] > 1.0


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
