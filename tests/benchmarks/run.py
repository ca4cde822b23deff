"""Run the workloads and print the table: ``python -m tests.benchmarks [--json FILE] [--repeat N] [--quick]``.

Every implementation's first (warm-up) run is checked against the library's
result: same loss and updated params (W1, W3), same output and leaf gradients
(W2), same logits (W4). A mismatch is reported under the table.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from functional_nn.mlp import Params
from tape.tree import tree_leaves
from tests.benchmarks import baseline, external
from tests.benchmarks.external import Prepared
from tests.benchmarks.measure import library_memory, time_runs, traced_bytes
from tests.benchmarks.report import Cell, MemoryRow, Row, Target, machine, render, to_json, write_json
from tests.benchmarks.workloads import (
    DigitsProblem,
    digits_problem,
    graph_problem,
    library_w1_step,
    library_w2,
    library_w3_epoch,
    library_w4,
    regression_problem,
)

__all__ = ["Settings", "discrepancy", "main"]

WORKLOADS = ("W1", "W2", "W3", "W4")
TOLERANCE = 1e-9
"""How far another implementation's result may be from the library's, relative to its scale."""


@dataclass(frozen=True)
class Settings:
    """The command-line options, defaults resolved."""

    json: Path | None
    repeat: int
    min_time: float
    quick: bool
    workloads: tuple[str, ...]
    profile: bool


def _parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Time this library against a hand-written pure-Python baseline, micrograd and "
        "PyTorch (when installed) on the workloads of issue 6, and print one table.",
    )
    parser.add_argument("--json", type=Path, help="also write every figure (and the machine) to this file")
    parser.add_argument(
        "--repeat", type=int, help="timed runs per cell after one warm-up (default 11, or 3 with --quick)"
    )
    parser.add_argument(
        "--min-time",
        type=float,
        help="fast cells keep running (up to 200 runs) until they have taken this many seconds "
        "(default 2.0, or 0.25 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs: about 30 s in all")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset, e.g. W1,W3")
    parser.add_argument(
        "--profile", action="store_true", help="after the table, profile the library on W1 and W3 (cProfile)"
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    repeat: int = (3 if quick else 11) if args.repeat is None else args.repeat
    min_time: float = (0.25 if quick else 2.0) if args.min_time is None else args.min_time
    if repeat < 1 or min_time < 0:
        parser.error("--repeat must be >= 1 and --min-time >= 0")
    workloads = tuple(w.strip().upper() for w in str(args.workloads).split(","))
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    return Settings(args.json, repeat, min_time, quick, workloads, bool(args.profile))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def discrepancy(reference: object, other: object) -> float:
    """The largest difference between two results' floats, relative to the reference's scale (>= 1)."""
    a = [float(x) for x in tree_leaves(reference)]
    b = [float(x) for x in tree_leaves(other)]
    if len(a) != len(b):
        return math.inf
    scale = max([1.0, *(abs(x) for x in a)])
    return max([0.0, *(abs(x - y) for x, y in zip(a, b))]) / scale


def _same(output: object) -> object:
    return output


def _row(
    key: str,
    title: str,
    unit: str,
    implementations: dict[str, Prepared | str],
    settings: Settings,
    targets: tuple[Target, ...],
) -> Row:
    """Time each implementation (a ``str`` is the reason it is skipped) and check it against the library."""
    cells: dict[str, Cell] = {}
    reference: object = None
    for name, implementation in implementations.items():
        if isinstance(implementation, str):
            cells[name] = Cell(skipped=implementation)
            continue
        prepare, convert = implementation
        timing, output = time_runs(prepare, repeat=settings.repeat, min_time=settings.min_time)
        result = convert(output)
        _log(f"  {key} {name}: median {timing.median * 1e3:.3f} ms over {len(timing.samples)} runs")
        if name == "library":
            reference = result
            cells[name] = Cell(timing)
        else:
            cells[name] = Cell(timing, discrepancy=discrepancy(reference, result), tolerance=TOLERANCE)
    return Row(key, title, unit, cells, targets)


def _not_installed(name: str, prepared: Prepared | None) -> Prepared | str:
    return f"{name} is not installed" if prepared is None else prepared


def _w1(settings: Settings) -> Row:
    problem = regression_problem()
    step = library_w1_step(problem)
    net = baseline.from_params(problem.params)
    xs = [list(x) for x in problem.inputs]
    ys = list(problem.targets)

    def base_convert(output: object) -> object:
        loss, new_net = cast("tuple[float, baseline.Net]", output)
        return loss, baseline.to_params(new_net)

    implementations: dict[str, Prepared | str] = {
        "library": (lambda: lambda: step(problem.params), _same),
        "baseline": (lambda: lambda: baseline.mse_step(net, xs, ys, problem.lr), base_convert),
        "micrograd": _not_installed("micrograd", external.micrograd_w1(problem)),
        "torch": _not_installed("torch", external.torch_w1(problem)),
    }
    targets = (Target("lib/base", 1.5, at_most=True), Target("mg/lib", 100.0, at_most=False))
    return _row("W1", "MLP 2-16-16-1, MSE, 100 points", "one SGD step", implementations, settings, targets)


def _w2(settings: Settings) -> tuple[Row, MemoryRow]:
    problem = graph_problem()
    implementations: dict[str, Prepared | str] = {
        "library": (lambda: lambda: library_w2(problem), _same),
        "baseline": (lambda: lambda: baseline.graph_gradient(problem), _same),
        "micrograd": _not_installed("micrograd", external.micrograd_w2(problem)),
        "torch": _not_installed("torch", external.torch_w2(problem)),
    }
    title = f"graph of {len(problem.program):,} ops"
    row = _row("W2", title, "forward + backward", implementations, settings, (Target("mg/lib", 30.0, False),))
    _log("  W2 memory (tracemalloc)")
    memory = library_memory(problem)
    record = external.micrograd_w2_bytes(problem)
    mg_bytes, mg_values = traced_bytes(record) if record is not None else (None, None)
    return row, MemoryRow(memory, mg_bytes, mg_values)


def _w3(settings: Settings, problem: DigitsProblem) -> Row:
    epoch = library_w3_epoch(problem)
    net = baseline.from_params(problem.params)
    batches = [([list(x) for x in b.inputs], list(b.labels())) for b in problem.batches()]

    def base_convert(output: object) -> object:
        losses, new_net = cast("tuple[list[float], baseline.Net]", output)
        return losses, baseline.to_params(new_net)

    implementations: dict[str, Prepared | str] = {
        "library": (lambda: lambda: epoch(problem.params), _same),
        "baseline": (lambda: lambda: baseline.cross_entropy_epoch(net, batches, problem.lr), base_convert),
        "micrograd": "micrograd has no exp or log for cross-entropy, and an epoch would take minutes: "
        "about 7,000 Values per example",
        "torch": _not_installed("torch", external.torch_w3(problem)),
    }
    title = f"digits 64-32-10, Adam, {len(batches)} batches of {problem.batch_size}"
    return _row("W3", title, "one epoch", implementations, settings, (Target("lib/base", 1.5, at_most=True),))


def _w4(settings: Settings, problem: DigitsProblem) -> Row:
    batches = [([list(x) for x in b.inputs], list(b.labels())) for b in problem.batches()]
    _, trained_net = baseline.cross_entropy_epoch(baseline.from_params(problem.params), batches, problem.lr)
    params: Params = baseline.to_params(trained_net)
    rows = [list(x) for x in problem.test.inputs]
    forward_one = baseline.forward_one
    implementations: dict[str, Prepared | str] = {
        "library": (lambda: lambda: library_w4(problem, params), _same),
        "baseline": (lambda: lambda: [forward_one(trained_net, x) for x in rows], _same),
        "micrograd": "micrograd evaluates only by recording a graph",
        "torch": _not_installed("torch", external.torch_w4(problem, params)),
    }
    title = f"inference, {len(rows)} test rows"
    return _row("W4", title, "whole test split", implementations, settings, (Target("lib/base", 1.2, True),))


def _profile(out: Callable[[str], None]) -> None:
    """The library's top functions by own time (tottime) on W1 steps and W3 batches."""
    w1 = regression_problem()
    step = library_w1_step(w1)
    w3 = digits_problem(train_size=10 * 32)
    epoch = library_w3_epoch(w3)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("W1, 20 SGD steps", lambda: [step(w1.params) for _ in range(20)]),
        ("W3, 10 Adam steps on batches of 32", lambda: epoch(w3.params)),
    ]
    root = str(Path.cwd()) + "/"
    for title, run in cases:
        run()  # warm-up
        profiler = cProfile.Profile()
        profiler.runcall(run)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        lines = [line.replace(root, "") for line in text.getvalue().splitlines() if line.strip()]
        calls = next(line.strip() for line in lines if "function calls" in line)
        table = lines[next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")) :]
        out(f"\nProfile of the library, {title} ({calls}), top 15 by own time:")
        out("\n".join(table))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table (progress goes to stderr)."""
    settings = _parse(argv)
    chosen = settings.workloads
    versions = {name: external.package_version(name) for name in ("micrograd", "torch")}
    rows: list[Row] = []
    memory: MemoryRow | None = None
    if "W1" in chosen:
        _log("W1")
        rows.append(_w1(settings))
    if "W2" in chosen:
        _log("W2")
        row, memory = _w2(settings)
        rows.append(row)
    if "W3" in chosen or "W4" in chosen:
        problem = digits_problem()
        if "W3" in chosen:
            _log("W3")
            rows.append(_w3(settings, problem))
        if "W4" in chosen:
            _log("W4")
            rows.append(_w4(settings, problem))

    print(render(rows, memory))
    info = machine(versions)
    torch = f"torch {versions['torch']} (CPU, float64, 1 thread)" if versions["torch"] else "no torch"
    micrograd = f"micrograd {versions['micrograd']}" if versions["micrograd"] else "no micrograd"
    print(
        f"\nMedian time per step after one warm-up run (at least {settings.repeat} timed runs per cell); "
        f"Python {info['python']} on {info['cpu']} ({info['cpu_count']} CPUs); {micrograd}; {torch}."
    )
    for row in rows:
        for name, cell in row.cells.items():
            if cell.timing is None:
                print(f"{row.key} {name}: — ({cell.skipped})")
            elif cell.agrees is False:
                print(
                    f"{row.key} {name}: RESULT DIFFERS from the library's by {cell.discrepancy:.3g} "
                    f"(tolerance {cell.tolerance:g})"
                )
    print(
        "library: W1 and W3 use value_and_grad(..., arrays=True) and MLP.apply_batch (layer-level tape "
        "nodes, as functional_nn.train does); W2 scalar Values; W4 MLP.apply per row on floats."
    )
    checked = [c for row in rows for c in row.cells.values() if c.discrepancy is not None]
    if checked and all(c.agrees for c in checked):
        print(f"Every result above agrees with the library's (differences <= {TOLERANCE:g} of its scale).")
    if memory is not None:
        print(
            f"W2 memory: the tape holds {memory.library.tape_per_node:.0f} B per recorded node "
            f"({memory.library.nodes:,} nodes); with the Value handles alive "
            f"{memory.library.total_per_node:.0f} B per node."
        )
    if memory is not None and memory.micrograd_bytes is not None:
        print(
            "W2 micrograd: memory is all it allocates per Value (one per node); its recursive topological "
            "sort needs a recursion limit above the graph's depth, raised for its backward() only."
        )
    if settings.json is not None:
        data = to_json(
            rows,
            memory,
            {
                "repeat": settings.repeat,
                "min_time": settings.min_time,
                "quick": settings.quick,
                "argv": sys.argv[1:] if argv is None else list(argv),
                "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            versions,
        )
        write_json(settings.json, data)
        print(f"Figures written to {settings.json}.")
    if settings.profile:
        _profile(print)
    return 0 if all(c.agrees is not False for row in rows for c in row.cells.values()) else 1
