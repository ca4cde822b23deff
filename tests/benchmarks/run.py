"""Run the workloads and print the table: ``python -m tests.benchmarks [--quick] [--json FILE] [--profile]``.

First every implementation of every chosen workload runs once and its result is
checked against the library's (same loss and updated params for W1 and W3, same
output and leaf gradients for W2, same logits for W4); a mismatch stops the run
before anything is timed. Then each workload is timed in rounds (see
:mod:`tests.benchmarks.measure`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tests.benchmarks import external, suite
from tests.benchmarks.measure import library_memory, run_rounds, traced_bytes
from tests.benchmarks.nd_workloads import (
    attention_params,
    attention_problem,
    cnn_params,
    cnn_problem,
    library_w5_epoch,
    library_w6,
    library_w8_step,
    rnn_params,
    rnn_problem,
)
from tests.benchmarks.report import MemoryRow, Row, machine, render, to_json, write_json
from tests.benchmarks.suite import TOLERANCE, Mismatch, Workload
from tests.benchmarks.workloads import (
    digits_problem,
    graph_problem,
    library_w1_scalar_step,
    library_w1_step,
    library_w3_epoch,
    regression_problem,
)

__all__ = ["WORKLOADS", "Settings", "main"]

WORKLOADS = (
    "W1",
    "W1-jit",
    "W1-scalar",
    "W1-scalar-jit",
    "W2",
    "W2-jit",
    "W3",
    "Adam",
    "W4",
    "W5",
    "W6",
    "W8",
)
"""The names ``--workloads`` accepts (case, ``-`` and spaces do not matter)."""


@dataclass(frozen=True)
class Settings:
    """The command-line options, defaults resolved."""

    json: Path | None
    rounds: int
    min_time: float
    max_rounds: int
    warmup_rounds: int
    quick: bool
    workloads: tuple[str, ...]
    profile: bool


def _canonical(name: str) -> str:
    return name.replace("-", "").replace(" ", "").replace("_", "").upper()


def _parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Time this library against a hand-written pure-Python baseline, micrograd and "
        "PyTorch (when installed) in interleaved rounds of CPU time, and print one table.",
    )
    parser.add_argument("--json", type=Path, help="also write every figure (and the machine) to this file")
    parser.add_argument(
        "--rounds", type=int, help="at least this many rounds per workload (default 15, or 3 with --quick)"
    )
    parser.add_argument(
        "--min-time",
        type=float,
        help="a workload's rounds go on (up to --max-rounds) until its timed runs add up to this many "
        "seconds of CPU time (default 3.0, or 0.3 with --quick)",
    )
    parser.add_argument("--max-rounds", type=int, default=200, help="at most this many rounds (default 200)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds and no warm-up round: under a minute in all"
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {', '.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the table, profile the library on W1, W3 and the chosen W5, W6, W8 (cProfile)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    rounds: int = (3 if quick else 15) if args.rounds is None else args.rounds
    min_time: float = (0.3 if quick else 3.0) if args.min_time is None else args.min_time
    max_rounds: int = args.max_rounds
    if rounds < 1 or min_time < 0 or max_rounds < rounds:
        parser.error("--rounds must be >= 1 and <= --max-rounds, and --min-time >= 0")
    known = {_canonical(w): w for w in WORKLOADS}
    asked = [w.strip() for w in str(args.workloads).split(",") if w.strip()]
    unknown = [w for w in asked if _canonical(w) not in known]
    if unknown or not asked:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    chosen = {known[_canonical(w)] for w in asked}
    workloads = tuple(w for w in WORKLOADS if w in chosen)
    warmup_rounds = 0 if quick else 1
    return Settings(
        args.json, rounds, min_time, max_rounds, warmup_rounds, quick, workloads, bool(args.profile)
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _workloads(chosen: Sequence[str]) -> list[Workload]:
    """The chosen workloads at full size, in table order."""
    out: list[Workload] = []
    if {"W1", "W1-jit", "W1-scalar", "W1-scalar-jit"} & set(chosen):
        regression = regression_problem()
        if "W1" in chosen:
            out.append(suite.w1(regression))
        if "W1-jit" in chosen:
            out.append(suite.w1_jit(regression))
        if "W1-scalar" in chosen:
            out.append(suite.w1_scalar(regression))
        if "W1-scalar-jit" in chosen:
            out.append(suite.w1_scalar_jit(regression))
    if "W2" in chosen or "W2-jit" in chosen:
        graph = graph_problem()
        if "W2" in chosen:
            out.append(suite.w2(graph))
        if "W2-jit" in chosen:
            out.append(suite.w2_jit(graph, large=graph_problem(100_000)))
    if {"W3", "Adam", "W4"} & set(chosen):
        digits = digits_problem()
        if "W3" in chosen:
            out.append(suite.w3(digits))
        if "Adam" in chosen:
            out.append(suite.adam(digits))
        if "W4" in chosen:
            out.append(suite.w4(digits))
    if "W5" in chosen:
        out.append(suite.w5(cnn_problem()))
    if "W6" in chosen:
        out.append(suite.w6(attention_problem()))
    if "W8" in chosen:
        out.append(suite.w8(rnn_problem()))
    return out


def _memory() -> MemoryRow:
    problem = graph_problem()
    memory = library_memory(problem)
    record = external.micrograd_w2_bytes(problem)
    mg_bytes, mg_values = traced_bytes(record) if record is not None else (None, None)
    return MemoryRow(memory, mg_bytes, mg_values)


def _profile_cases(chosen: Sequence[str]) -> list[tuple[str, Callable[[], object]]]:
    """What ``--profile`` runs: the library on W1 steps (both ways), W3 batches and each chosen N-d row."""
    w1 = regression_problem()
    step = library_w1_step(w1)
    scalar_step = library_w1_scalar_step(w1)
    w3 = digits_problem(train_size=10 * 32)
    epoch = library_w3_epoch(w3)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("W1, 20 SGD steps", lambda: [step(w1.params) for _ in range(20)]),
        ("W1 scalar, 5 SGD steps", lambda: [scalar_step(w1.params) for _ in range(5)]),
        ("W3, 10 Adam steps on batches of 32", lambda: epoch(w3.params)),
    ]
    if "W5" in chosen:
        w5 = cnn_problem(train_size=10 * 32)
        w5_epoch = library_w5_epoch(w5)
        w5_params = cnn_params(w5.weights)
        cases.append(("W5, 10 Adam steps on batches of 32", lambda: w5_epoch(w5_params)))
    if "W6" in chosen:
        w6 = attention_problem()
        w6_run = library_w6(w6)
        w6_params = attention_params(w6.weights)
        cases.append(("W6, 10 forward + backward passes", lambda: [w6_run(w6_params) for _ in range(10)]))
    if "W8" in chosen:
        w8 = rnn_problem()
        w8_params = rnn_params(w8.weights)
        w8_step = library_w8_step(w8)
        cases.append(("W8, 20 Adam steps on array nodes", lambda: [w8_step(w8_params) for _ in range(20)]))
    return cases


def _profile(chosen: Sequence[str], out: Callable[[str], None]) -> None:
    """The library's top functions by own time (tottime) on each case of :func:`_profile_cases`."""
    cases = _profile_cases(chosen)
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
    """Run the benchmark; print the table (progress goes to stderr). 1 if a cross-check fails."""
    began = time.perf_counter()
    settings = _parse(argv)
    versions = {name: external.package_version(name) for name in ("micrograd", "torch")}
    workloads = _workloads(settings.workloads)
    checked: list[tuple[Workload, dict[str, float]]] = []
    for workload in workloads:
        _log(f"{workload.key}: checking {', '.join(workload.runnable())} against the library")
        try:
            checked.append((workload, suite.check(workload)))
        except Mismatch as error:
            print(f"benchmark stopped before timing: {error}", file=sys.stderr)
            return 1
    rows: list[Row] = []
    for workload, discrepancies in checked:
        implementations = workload.runnable()
        rounds = run_rounds(
            {name: i.prepare for name, i in implementations.items()},
            rounds=settings.rounds,
            min_time=settings.min_time,
            max_rounds=settings.max_rounds,
            warmup_rounds=settings.warmup_rounds,
            clock=workload.clock,
        )
        row = Row(workload, rounds, discrepancies)
        medians = ", ".join(f"{n} {row.median(n) or 0.0:.4g} s" for n in implementations)
        _log(f"{workload.key}: {len(rounds.seconds)} rounds; medians {medians}")
        rows.append(row)
    memory: MemoryRow | None = None
    if "W2" in settings.workloads:
        _log("W2 memory (tracemalloc)")
        memory = _memory()

    print(render(rows, memory))
    info = machine(versions)
    torch = f"torch {versions['torch']} (CPU, float64, 1 thread)" if versions["torch"] else "no torch"
    micrograd = f"micrograd {versions['micrograd']}" if versions["micrograd"] else "no micrograd"
    print(
        "\nTimes: median CPU time (time.process_time) per run. Every round runs each implementation of a "
        "workload once, in rotated order;\nratios are taken per round: median (min..max) over the rounds; "
        "a target is met or not by the median."
    )
    print(f"Python {info['python']} on {info['cpu']} ({info['cpu_count']} CPUs); {micrograd}; {torch}.")
    for row in rows:
        for name, reason in row.workload.skipped().items():
            print(f"{row.workload.key} {name}: — ({reason})")
        for note in row.workload.notes:
            print(note)
    print(
        "library: W1 and W3 use value_and_grad(..., arrays=True) and MLP.apply_batch (layer-level tape "
        "nodes, as functional_nn.train does);\nW1 scalar value_and_grad over MLP.apply per example; "
        "W2 scalar Values on a Tape; W4 MLP.apply per row on floats."
    )
    if rows:
        print(
            f"Checked before timing: every implementation's result agrees with the library's "
            f"(differences <= {TOLERANCE:g} of its scale)."
        )
    if memory is not None:
        print(
            f"W2 memory: the tape holds {memory.library.tape_per_node:.0f} B per recorded node "
            f"({memory.library.nodes:,} nodes); with the Value handles alive "
            f"{memory.library.total_per_node:.0f} B per node."
        )
        if memory.micrograd_bytes is not None:
            print(
                "W2 micrograd: memory is all it allocates per Value (one per node); its recursive "
                "topological sort needs a recursion limit above the graph's depth, raised for its "
                "backward() only."
            )
    elapsed = time.perf_counter() - began
    print(f"The whole run took {elapsed:.0f} s of wall-clock time.")
    if settings.json is not None:
        data = to_json(
            rows,
            memory,
            {
                "rounds": settings.rounds,
                "min_time": settings.min_time,
                "max_rounds": settings.max_rounds,
                "warmup_rounds": settings.warmup_rounds,
                "quick": settings.quick,
                "argv": sys.argv[1:] if argv is None else list(argv),
                "wall_seconds": elapsed,
                "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            versions,
        )
        write_json(settings.json, data)
        print(f"Figures written to {settings.json}.")
    if settings.profile:
        _profile(settings.workloads, print)
    return 0
