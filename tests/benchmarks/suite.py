"""The benchmark's rows: each workload's implementations, its ratios and targets, and the cross-check.

A :class:`Workload` names its implementations (the library first, as the
reference), the ratios the table shows and the targets on them. Before anything
is timed, :func:`check` runs every implementation once and compares its result
with the library's; a difference beyond the tolerance raises :class:`Mismatch`.
The builders (:func:`w1` ... :func:`w8`) take a problem, so the smoke test checks
the very rows the benchmark times, at a small size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pyrsistent import PMap

import tape
from functional_nn import Params
from tape.tree import tree_leaves
from tests.benchmarks import baseline, external, nd_baseline
from tests.benchmarks.external import Prepared
from tests.benchmarks.measure import Clock, Spread
from tests.benchmarks.nd_workloads import (
    AttentionProblem,
    CnnProblem,
    RnnProblem,
    attention_params,
    attention_weights,
    cnn_params,
    cnn_weights,
    library_w5_epoch,
    library_w6,
    library_w8_step,
    rnn_params,
    rnn_weights,
)
from tests.benchmarks.workloads import (
    DigitsProblem,
    GraphProblem,
    RegressionProblem,
    library_adam_step,
    library_w1_scalar_step,
    library_w1_step,
    library_w2,
    library_w2_jit,
    library_w3_epoch,
    library_w4,
    optimizer_problem,
    replay,
)

__all__ = [
    "IMPLEMENTATIONS",
    "RATIOS",
    "TOLERANCE",
    "Implementation",
    "Mismatch",
    "Target",
    "Workload",
    "adam",
    "check",
    "discrepancy",
    "trained_params",
    "w1",
    "w1_jit",
    "w1_scalar",
    "w1_scalar_jit",
    "w2",
    "w2_jit",
    "w3",
    "w4",
    "w5",
    "w6",
    "w8",
]

IMPLEMENTATIONS = ("library", "values", "baseline", "micrograd", "torch", "floats", "lean")
"""Every implementation a row may have, in the table's column order; ``library`` is the reference.

``values`` is the library again, on scalar Values instead of array nodes (W8); ``lean`` the
leanest eager tape (W2: :func:`~tests.benchmarks.baseline.lean_graph_gradient`)."""

RATIOS: dict[str, tuple[str, str]] = {
    "vals/lib": ("values", "library"),
    "lib/base": ("library", "baseline"),
    "mg/lib": ("micrograd", "library"),
    "lib/torch": ("library", "torch"),
    "mg/floats": ("micrograd", "floats"),
    "mg/lean": ("micrograd", "lean"),
}
"""Each ratio: (numerator, denominator) implementations, taken per round."""

TOLERANCE = 1e-9
"""How far another implementation's result may be from the library's, relative to its scale."""


@dataclass(frozen=True)
class Target:
    """A target on a ratio of :data:`RATIOS` (or on bytes): ``what <= threshold`` or ``what >= threshold``."""

    what: str
    threshold: float
    at_most: bool
    unit: str = "x"
    note: str = ""
    """Shown after the threshold, e.g. which mode of the library the target is for."""

    def meets(self, value: float) -> bool:
        """Whether ``value`` is on the right side of the threshold."""
        return value <= self.threshold if self.at_most else value >= self.threshold

    def label(self) -> str:
        """``"<= 1.5x"``, with the note in parentheses."""
        sign = "<=" if self.at_most else ">="
        note = f" ({self.note})" if self.note else ""
        return f"{sign} {self.threshold:g}{self.unit}{note}"

    def verdict(self, spread: Spread | None) -> str:
        """Met or not by the median; says so when some rounds fell on the other side."""
        if spread is None:
            return "n/a"
        met = self.meets(spread.median)
        low, high = self.meets(spread.low), self.meets(spread.high)
        if met:
            return "met" if low and high else "met (not in every round)"
        return "NOT MET" if not (low or high) else "NOT MET (met in some rounds)"


def _same(output: object) -> object:
    return output


@dataclass(frozen=True)
class Implementation:
    """One way to run a workload: ``prepare()`` (untimed) gives the thunk to time.

    ``result`` turns the thunk's output into the library's form (floats, params);
    ``expected`` picks the part of the library's result it must match (all of it
    by default; W2's float evaluation computes the output only).
    """

    prepare: Callable[[], Callable[[], object]]
    result: Callable[[object], object] = _same
    expected: Callable[[object], object] = _same

    @staticmethod
    def of(prepared: Prepared) -> Implementation:
        """An implementation from an external adapter's ``(prepare, convert)``."""
        prepare, convert = prepared
        return Implementation(prepare, convert)


def _thunk(run: Callable[[], object]) -> Implementation:
    """An implementation needing no set-up between runs."""
    return Implementation(lambda: run)


@dataclass(frozen=True)
class Workload:
    """One row of the table: implementations by name (a ``str`` is why it is not run), ratios, targets."""

    key: str
    title: str
    unit: str
    implementations: dict[str, Implementation | str]
    ratios: tuple[str, ...]
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()
    """Said under the table about this row."""
    clock: Clock = time.process_time
    """What each run is timed with: CPU time of this process, as every row so far runs in one process
    (a row whose work runs in other processes would need wall-clock time, :func:`time.perf_counter`)."""

    def runnable(self) -> dict[str, Implementation]:
        """The implementations that run, in column order, the library first."""
        return {n: i for n, i in self.implementations.items() if isinstance(i, Implementation)}

    def skipped(self) -> dict[str, str]:
        """Why each implementation that does not run is left out."""
        return {n: i for n, i in self.implementations.items() if isinstance(i, str)}


class Mismatch(Exception):
    """An implementation's result differs from the library's: the benchmark stops before timing."""


def discrepancy(reference: object, other: object) -> float:
    """The largest difference between two results' floats, relative to the reference's scale (>= 1).

    ``inf`` when they hold different numbers of floats; ``nan`` when a difference is NaN.
    """
    a = [float(x) for x in tree_leaves(reference)]
    b = [float(x) for x in tree_leaves(other)]
    if len(a) != len(b):
        return math.inf
    scale = max([1.0, *(abs(x) for x in a)])
    differences = [abs(x - y) for x, y in zip(a, b, strict=True)]
    if any(math.isnan(d) for d in differences):
        return math.nan
    return max([0.0, *differences]) / scale


def check(workload: Workload, *, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Run each implementation once and compare it with the library's result; the discrepancies by name.

    This is also every implementation's warm-up. Raises :class:`Mismatch` naming the
    workload, the implementation and the size of the difference when one is beyond
    ``tolerance``, or when the library's own result is not finite.
    """
    implementations = workload.runnable()
    if next(iter(implementations), None) != "library":
        raise ValueError(f"{workload.key}: the library must be the first implementation")
    results = {name: i.result(i.prepare()()) for name, i in implementations.items()}
    reference = results["library"]
    leaves = [float(x) for x in tree_leaves(reference)]
    if not leaves or not all(math.isfinite(x) for x in leaves):
        raise Mismatch(f"{workload.key}: the library's result is empty or not finite")
    found: dict[str, float] = {}
    for name, implementation in implementations.items():
        if name == "library":
            continue
        expected = implementation.expected(reference)
        mine, theirs = len(tree_leaves(results[name])), len(tree_leaves(expected))
        prefix = f"{workload.key} {name}: result differs from the library's"
        if mine != theirs:
            raise Mismatch(f"{prefix}: it gives {mine} numbers where the library gives {theirs}")
        difference = discrepancy(expected, results[name])
        if not difference <= tolerance:
            raise Mismatch(
                f"{prefix}: they differ by {difference:.3g} of its scale (tolerance {tolerance:g})"
            )
        found[name] = difference
    return found


def _not_installed(name: str, prepared: Prepared | None) -> Implementation | str:
    return f"{name} is not installed" if prepared is None else Implementation.of(prepared)


def _baseline_params(output: object) -> object:
    first, net = cast("tuple[object, baseline.Net]", output)
    return first, baseline.to_params(net)


def w1(problem: RegressionProblem) -> Workload:
    """W1: one full-batch SGD step; the library on array nodes (as ``functional_nn.train`` runs)."""
    step = library_w1_step(problem)
    net = baseline.from_params(problem.params)
    xs = [list(x) for x in problem.inputs]
    ys = list(problem.targets)
    return Workload(
        "W1",
        f"MLP 2-16-16-1, MSE, {len(xs)} points, SGD step",
        "one SGD step",
        {
            "library": _thunk(lambda: step(problem.params)),
            "baseline": Implementation(
                lambda: lambda: baseline.mse_step(net, xs, ys, problem.lr), _baseline_params
            ),
            "micrograd": _not_installed("micrograd", external.micrograd_w1(problem)),
            "torch": _not_installed("torch", external.torch_w1(problem)),
        },
        ("lib/base", "mg/lib", "lib/torch"),
        (Target("lib/base", 1.5, at_most=True), Target("mg/lib", 100.0, at_most=False)),
    )


def w1_scalar(problem: RegressionProblem) -> Workload:
    """W1 written as the README's first example: per-example scalar Values, ``value_and_grad``, SGD."""
    step = library_w1_scalar_step(problem)
    net = baseline.from_params(problem.params)
    xs = [list(x) for x in problem.inputs]
    ys = list(problem.targets)
    return Workload(
        "W1 scalar",
        f"same step, per-example Values, {len(xs)} points",
        "one SGD step",
        {
            "library": _thunk(lambda: step(problem.params)),
            "baseline": Implementation(
                lambda: lambda: baseline.mse_step(net, xs, ys, problem.lr), _baseline_params
            ),
            "micrograd": _not_installed("micrograd", external.micrograd_w1(problem)),
        },
        ("lib/base", "mg/lib"),
        notes=("W1 scalar: the library records one node per neuron and example, as micrograd does.",),
    )


def w2(problem: GraphProblem) -> Workload:
    """W2: a random scalar graph, forward and backward; ``floats`` evaluates it on bare floats only."""
    return Workload(
        "W2",
        f"graph of {len(problem.program):,} scalar ops, fwd + bwd",
        "forward + backward",
        {
            "library": _thunk(lambda: library_w2(problem)),
            "baseline": _thunk(lambda: baseline.graph_gradient(problem)),
            "micrograd": _not_installed("micrograd", external.micrograd_w2(problem)),
            "torch": _not_installed("torch", external.torch_w2(problem)),
            "floats": Implementation(lambda: lambda: baseline.graph_output(problem), expected=_output),
            "lean": _thunk(lambda: baseline.lean_graph_gradient(problem)),
        },
        ("lib/base", "mg/lib", "lib/torch", "mg/floats", "mg/lean"),
        (Target("mg/lib", 8.0, at_most=False, note="eager"), Target("mg/lib", 30.0, at_most=False)),
        (
            "W2 floats: the same graph evaluated on bare Python floats, forward only (no autodiff).",
            "W2 lean: the leanest eager tape (a three-slot value, a tuple node per op, the three ops "
            "written into the sweep, the collector paused, nothing checked): recording's least cost.",
        ),
    )


def _first_call(run: Callable[[], object]) -> float:
    """CPU seconds of ``run``'s first call: for a jitted row, tracing and compiling (and one run)."""
    started = time.process_time()
    run()
    return time.process_time() - started


def w1_jit(problem: RegressionProblem) -> Workload:
    """W1 with the loss and gradient compiled by ``tape.jit`` (array nodes)."""
    step = library_w1_step(problem, jit=True)
    built = _first_call(lambda: step(problem.params))
    others = {k: v for k, v in w1(problem).implementations.items() if k in ("baseline", "micrograd")}
    return Workload(
        "W1 jit",
        "W1 compiled by tape.jit, array nodes",
        "one SGD step",
        {"library": _thunk(lambda: step(problem.params)), **others},
        ("lib/base", "mg/lib"),
        (Target("lib/base", 0.8, at_most=True),),
        (f"W1 jit: trace + compile + first step {built:.3g} s, once; the rows time later steps.",),
    )


def w1_scalar_jit(problem: RegressionProblem) -> Workload:
    """W1 scalar with the loss and gradient compiled by ``tape.jit``: straight-line scalar code."""
    step = library_w1_scalar_step(problem, jit=True)
    built = _first_call(lambda: step(problem.params))
    others = {k: v for k, v in w1_scalar(problem).implementations.items() if k != "library"}
    return Workload(
        "W1 scalar jit",
        "W1 scalar compiled by tape.jit",
        "one SGD step",
        {"library": _thunk(lambda: step(problem.params)), **others},
        ("lib/base", "mg/lib"),
        (Target("lib/base", 2.0, at_most=True),),
        (f"W1 scalar jit: trace + compile + first step {built:.3g} s, once; the rows time later steps.",),
    )


def w2_jit(problem: GraphProblem, *, large: GraphProblem | None = None) -> Workload:
    """W2 replayed by code ``tape.jit`` compiled: forward and backward as straight-line Python.

    With a ``large`` graph, a note also gives its first call and what tracing, generating the
    code and CPython's ``compile`` cost of it (the run's 100,000-op graph).
    """
    run = library_w2_jit(problem)
    built = _first_call(run)
    others = {k: v for k, v in w2(problem).implementations.items() if k not in ("library", "lean")}
    notes = [f"W2 jit: trace + compile + first run {built:.3g} s, once; the rows time the replay."]
    if large is not None:
        notes.append(_first_call_note(large))
    return Workload(
        "W2 jit",
        f"W2 compiled by tape.jit, {len(problem.program):,} ops",
        "forward + backward",
        {"library": _thunk(run), **others},
        ("lib/base", "mg/lib", "mg/floats"),
        (Target("mg/lib", 30.0, at_most=False, note="jit replay"),),
        tuple(notes),
    )


def _first_call_note(problem: GraphProblem) -> str:
    """What W2's first call costs on ``problem``: in all, its trace with code generation, and its compile."""
    leaves = list(problem.leaves)
    jitted = tape.jit(tape.value_and_grad(lambda xs: replay(problem.program, xs)[-1]))
    total = _first_call(lambda: jitted(leaves))
    entry = jitted.compiled(leaves)
    lines = entry.source.count("\n")
    return (
        f"W2 jit at {len(problem.program):,} ops: first call {total:.3g} s (trace and code generation "
        f"{entry.trace_seconds:.3g} s, compile {entry.compile_seconds:.3g} s, {lines:,} lines), once."
    )


def _output(reference: object) -> object:
    out, _ = cast("tuple[float, list[float]]", reference)
    return out


def _batches(problem: DigitsProblem) -> list[tuple[list[list[float]], list[int]]]:
    return [([list(x) for x in b.inputs], list(b.labels())) for b in problem.batches()]


def w3(problem: DigitsProblem) -> Workload:
    """W3: one epoch of Adam on the digits, the library on array nodes."""
    epoch = library_w3_epoch(problem)
    net = baseline.from_params(problem.params)
    batches = _batches(problem)
    return Workload(
        "W3",
        f"digits 64-32-10, Adam, {len(batches)} batches of {problem.batch_size}",
        "one epoch",
        {
            "library": _thunk(lambda: epoch(problem.params)),
            "baseline": Implementation(
                lambda: lambda: baseline.cross_entropy_epoch(net, batches, problem.lr), _baseline_params
            ),
            "micrograd": "micrograd has no exp or log for cross-entropy, and an epoch would take minutes: "
            "about 7,000 Values per example",
            "torch": _not_installed("torch", external.torch_w3(problem)),
        },
        ("lib/base", "lib/torch"),
        (Target("lib/base", 1.5, at_most=True), Target("lib/base", 1.1, at_most=True)),
    )


def adam(problem: DigitsProblem) -> Workload:
    """The optimizer step alone: Adam on the digits MLP's params against the baseline's Adam."""
    step = library_adam_step(problem)
    params, grads = optimizer_problem(problem)
    net, gnet = baseline.from_params(params), baseline.from_params(grads)
    net, state = baseline.adam_step(net, gnet, baseline.adam_init(net), problem.lr)
    size = len(tree_leaves(params))
    return Workload(
        "Adam",
        f"Adam step alone, {size:,} params of W3's MLP",
        "one step",
        {
            "library": _thunk(step),
            "baseline": Implementation(
                lambda: lambda: baseline.adam_step(net, gnet, state, problem.lr)[0],
                lambda out: baseline.to_params(cast("baseline.Net", out)),
            ),
            "torch": "not timed: a fused tensor op, not an optimizer over Python floats",
        },
        ("lib/base",),
        (Target("lib/base", 1.3, at_most=True),),
    )


def trained_params(problem: DigitsProblem) -> Params:
    """The params after one epoch of W3 (computed by the baseline): what W4 infers with."""
    _, net = baseline.cross_entropy_epoch(baseline.from_params(problem.params), _batches(problem), problem.lr)
    return baseline.to_params(net)


def w4(problem: DigitsProblem) -> Workload:
    """W4: inference on floats over the test split with the params :func:`trained_params` gives."""
    params = trained_params(problem)
    net = baseline.from_params(params)
    rows = [list(x) for x in problem.test.inputs]
    forward_one = baseline.forward_one
    return Workload(
        "W4",
        f"inference on floats, {len(rows)} test rows",
        "whole test split",
        {
            "library": _thunk(lambda: library_w4(problem, params)),
            "baseline": _thunk(lambda: [forward_one(net, x) for x in rows]),
            "micrograd": "micrograd evaluates only by recording a graph",
            "torch": _not_installed("torch", external.torch_w4(problem, params)),
        },
        ("lib/base", "lib/torch"),
        (Target("lib/base", 1.2, at_most=True),),
    )


def _cnn_result(output: object) -> object:
    losses, params = cast("tuple[list[float], PMap[str, object]]", output)
    return losses, cnn_weights(params)


def _cnn_baseline_result(output: object) -> object:
    losses, net = cast("tuple[list[float], baseline.Net]", output)
    return losses, tuple(nd_baseline.cnn_weights(net))


def w5(problem: CnnProblem) -> Workload:
    """W5: one epoch of Adam on the digits CNN (batch 32), the library on array nodes."""
    epoch = library_w5_epoch(problem)
    params = cnn_params(problem.weights)
    net = nd_baseline.cnn_net(problem.weights)
    batches = problem.batches()
    c = problem.channels
    return Workload(
        "W5",
        f"digits CNN conv{c}-pool-linear, Adam, {len(batches)} batches of {problem.digits.batch_size}",
        "one epoch",
        {
            "library": Implementation(lambda: lambda: epoch(params), _cnn_result),
            "baseline": Implementation(
                lambda: lambda: nd_baseline.cnn_epoch(net, batches, problem.lr), _cnn_baseline_result
            ),
            "torch": _not_installed("torch", external.torch_w5(problem)),
        },
        ("lib/base", "lib/torch"),
        (Target("lib/base", 1.5, at_most=True),),
        (
            f"W5: Conv2d(1, {c}, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear({16 * c}, 10), "
            "cross-entropy; library: those functional_nn.layers in serial (arrays.conv2d, relu, max_pool2d, "
            "reshape, linear).",
        ),
    )


def _attention_result(output: object) -> object:
    loss, grads = cast("tuple[float, PMap[str, object]]", output)
    return loss, attention_weights(grads)


def _attention_baseline_result(output: object) -> object:
    loss, grads = cast("tuple[float, tuple[object, ...]]", output)
    return loss, tuple(grads)


def w6(problem: AttentionProblem) -> Workload:
    """W6: forward and backward of one causal self-attention block over a batch of sequences."""
    run = library_w6(problem)
    params = attention_params(problem.weights)
    batch, time = len(problem.inputs), len(problem.inputs[0])
    return Workload(
        "W6",
        f"causal attention d{problem.d_model}, {problem.heads} heads, {batch} seqs of {time}, fwd + bwd",
        "forward + backward",
        {
            "library": Implementation(lambda: lambda: run(params), _attention_result),
            "baseline": Implementation(
                lambda: lambda: nd_baseline.attention_gradients(problem), _attention_baseline_result
            ),
            "torch": _not_installed("torch", external.torch_w6(problem)),
        },
        ("lib/base", "lib/torch"),
        (Target("lib/base", 1.5, at_most=True),),
        (
            "W6: loss mean(y ** 2) of nn.MultiheadAttention's output under a causal mask; library: "
            "functional_nn.layers.MultiHeadAttention(causal=True) (linear on weight slices per head, "
            "arrays.scaled_dot_product_attention, concatenate).",
        ),
    )


def _rnn_result(output: object) -> object:
    loss, grads, params = cast("tuple[float, object, object]", output)
    return loss, rnn_weights(cast("PMap[str, object]", grads)), rnn_weights(cast("PMap[str, object]", params))


def _rnn_baseline_result(output: object) -> object:
    loss, grads, net = cast("tuple[float, baseline.Net, baseline.Net]", output)
    return loss, tuple(nd_baseline.rnn_weights(grads)), tuple(nd_baseline.rnn_weights(net))


def w8(problem: RnnProblem) -> Workload:
    """W8: an Elman RNN over a batch of sequences, one Adam step; array nodes against scalar Values."""
    params = rnn_params(problem.weights)
    on_arrays = library_w8_step(problem)
    on_values = library_w8_step(problem, arrays=False)
    net = nd_baseline.rnn_net(problem.weights)
    hidden, features = len(problem.weights.weight_ih), len(problem.weights.weight_ih[0])
    sequences, steps = len(problem.inputs), len(problem.inputs[0])
    return Workload(
        "W8",
        f"Elman RNN {features}-{hidden}-2, {sequences} sequences of {steps}, Adam step",
        "one Adam step",
        {
            "library": Implementation(lambda: lambda: on_arrays(params), _rnn_result),
            "values": Implementation(lambda: lambda: on_values(params), _rnn_result),
            "baseline": Implementation(
                lambda: lambda: nd_baseline.rnn_step(net, problem), _rnn_baseline_result
            ),
            "torch": _not_installed("torch", external.torch_w8(problem)),
        },
        ("vals/lib", "lib/base", "lib/torch"),
        (Target("vals/lib", 10.0, at_most=False),),
        (
            "W8 values: the same model and loss on scalar Values (tape.dot per row, tape.tanh per unit); "
            "library: per step two arrays.linear nodes, their sum and arrays.tanh.",
        ),
    )
