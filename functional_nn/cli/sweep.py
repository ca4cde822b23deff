"""``fnn sweep``: a grid of ``fnn train`` runs, one folder each, and a summary sorted by validation loss.

Any ``fnn train`` flag that takes a value may list several, separated by ``|``
(``--lr '0.01|0.1' --hidden '16|32,32'``); the grid is every combination, times
``--seeds N`` seeds (0 to N-1). ``--sample K`` keeps a random subset of K of them,
drawn from ``--sample-seed``. Each combination is an independent run in
``--out DIR/NAME``, where NAME lists the flags that vary (``lr=0.01_hidden=16``), so
a rerun of the same sweep finds its runs again: finished ones are skipped, interrupted
ones resumed. Runs go to the workers of ``--workers N`` or ``--scheduler ADDRESS``,
one run per task (Dask workers need the folder on a file system they share), or run
one after another here. ``DIR/summary.csv`` lists every run, finished ones by their
best validation loss, then those that failed and why.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TextIO

from functional_nn import random
from functional_nn.cli.arguments import PROG, check_workers, config_from_args, parser
from functional_nn.cli.checkpoints import read_run
from functional_nn.cli.commands import CHECKPOINT_NAME, run_train
from functional_nn.cli.config import Config, UsageError
from functional_nn.cli.executors import client_executor
from functional_nn.serialization import CheckpointError, write_atomically

SUMMARY_NAME = "summary.csv"
SWEEP_FAILED_STATUS = 1
"""The exit status when some run of the sweep failed (the others are kept)."""

_NOT_SWEPT = frozenset({"--out", "--resume", "--plot", "--quiet", "--progress", "--no-progress"})
_SAFE = re.compile(r"[^A-Za-z0-9.=+-]+")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its folder name, its ``fnn train`` flags and the swept values."""

    name: str
    flags: tuple[str, ...]
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Outcome:
    """How a run ended: its exit status and, when it failed, the reason."""

    status: int
    reason: str = ""


def _swept_flags(extra: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--flag value`` pairs (or ``--flag=value``) with each value split at ``|``."""
    out: list[tuple[str, list[str]]] = []
    items = iter(extra)
    for item in items:
        if not item.startswith("--"):
            raise UsageError(f"sweep: expected a train flag such as --lr, got {item!r}")
        flag, _, value = item.partition("=")
        if flag in _NOT_SWEPT:
            raise UsageError(f"sweep: {flag} does not apply to a sweep's runs")
        if not value:
            following = next(items, None)
            if following is None or following.startswith("--"):
                raise UsageError(f"sweep: {flag} needs a value (several separated by |)")
            value = following
        choices = [part.strip() for part in value.split("|")]
        if any(not part for part in choices):
            raise UsageError(f"sweep: {flag} {value!r} has an empty value")
        if any(flag == seen for seen, _ in out):
            raise UsageError(f"sweep: {flag} is given twice")
        out.append((flag, choices))
    return out


def plan(args: argparse.Namespace, extra: Sequence[str]) -> list[PlannedRun]:
    """Every run of the sweep, in grid order (then sampled); a UsageError for a config no run can use."""
    swept = _swept_flags(extra)
    if args.seeds is not None:
        if not 1 <= args.seeds <= 10_000:
            raise UsageError(f"--seeds must be in [1, 10000], got {args.seeds}")
        if any(flag == "--seed" for flag, _ in swept):
            raise UsageError("give --seed or --seeds, not both")
        swept.append(("--seed", [str(seed) for seed in range(args.seeds)]))
    grid = list(itertools.product(*(values for _, values in swept)))
    if args.sample is not None:
        if not args.sample >= 1:
            raise UsageError(f"--sample must be >= 1, got {args.sample}")
        chosen = sorted(random.permutation(random.key(args.sample_seed), len(grid))[: args.sample])
        grid = [grid[index] for index in chosen]
    varying = [len(values) > 1 for _, values in swept]
    runs: list[PlannedRun] = []
    for combination in grid:
        flags = tuple(
            part for (flag, _), value in zip(swept, combination, strict=True) for part in (flag, value)
        )
        named = [
            (flag.lstrip("-"), value)
            for (flag, _), value, varies in zip(swept, combination, varying, strict=True)
            if varies
        ]
        name = "_".join(f"{flag}={_SAFE.sub('+', value)}" for flag, value in named) or "run"
        runs.append(PlannedRun(name, flags, tuple(named)))
    for run in runs:
        train_config(run)  # every config is checked before any run starts
    return runs


def train_config(run: PlannedRun) -> Config:
    """The training config of ``run``'s flags, checked as ``fnn train`` checks it."""
    args = parser().parse_args(["train", *run.flags])
    if args.workers is not None or args.scheduler is not None:
        raise UsageError("sweep: give --workers or --scheduler to the sweep, not to its runs")
    return config_from_args(args)


def run_one(flags: Sequence[str], out_dir: str, resume: bool) -> Outcome:
    """Run one ``fnn train`` (resuming its checkpoint when ``resume``): what a worker runs."""
    argv = ["train", "--resume", os.path.join(out_dir, CHECKPOINT_NAME)] if resume else ["train", *flags]
    argv += ["--out", out_dir, "--quiet", "--no-progress"]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            status = run_train(parser().parse_args(argv), io.StringIO())
        except (UsageError, CheckpointError, ImportError, OSError) as error:
            return Outcome(2, str(error))
        except Exception as error:  # whatever one run raises is that run's failure, reported
            return Outcome(1, f"{type(error).__name__}: {error}")
    lines = [line for line in errors.getvalue().splitlines() if line.strip()]
    return Outcome(status, lines[-1].removeprefix(f"{PROG}: ") if status and lines else "")


@dataclass(frozen=True)
class _Saved:
    """What a run folder holds: whether it finished, and its best validation loss and accuracy."""

    finished: bool
    epochs_done: int
    val_loss: float
    val_accuracy: float
    train_loss: float


def _saved(run_dir: str, config: Config) -> _Saved | None:
    """The run saved in ``run_dir`` if it is this config's, else None."""
    path = os.path.join(run_dir, CHECKPOINT_NAME)
    if not os.path.exists(path):
        return None
    try:
        saved = read_run(path)
    except CheckpointError:
        return None
    if saved.config != config:
        return None
    meta = saved.checkpoint.metadata
    done = meta.get("epochs_done")
    history = meta.get("history")
    if not isinstance(done, int) or not isinstance(history, list):
        return None
    best_loss, best_accuracy, best_train = math.inf, math.nan, math.nan
    for entry in history:
        if not isinstance(entry, dict):
            continue
        loss, accuracy, train = (
            _number(entry.get(name)) for name in ("val_loss", "val_accuracy", "train_loss")
        )
        if loss < best_loss:
            best_loss, best_accuracy, best_train = loss, accuracy, train
    finished = done >= config.epochs or meta.get("stopped_early") is True
    return _Saved(finished, done, best_loss, best_accuracy, best_train)


def _number(value: object) -> float:
    """A history number as JSON holds it (``null`` for nan)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _executor(args: argparse.Namespace) -> contextlib.AbstractContextManager[Executor | None]:
    check_workers(args)
    if args.workers is not None:
        return ProcessPoolExecutor(args.workers)
    if args.scheduler is not None:
        return client_executor(args.scheduler)
    return contextlib.nullcontext()


def _summary(path: str, runs: Sequence[PlannedRun], rows: dict[str, tuple[str, _Saved | None, str]]) -> None:
    columns = sorted({flag for run in runs for flag, _ in run.values})

    def order(run: PlannedRun) -> tuple[int, float, str]:
        status, saved, _ = rows.get(run.name, ("not run", None, ""))
        loss = saved.val_loss if saved is not None and status == "finished" else math.inf
        return (0 if status == "finished" else 1, loss, run.name)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["run", "status", "val_loss", "val_accuracy", "train_loss", "epochs", *columns, "reason"])
    for run in sorted(runs, key=order):
        status, saved, reason = rows.get(run.name, ("not run", None, ""))
        values = dict(run.values)
        numbers = (
            [
                f"{saved.val_loss:.6g}",
                f"{saved.val_accuracy:.6g}",
                f"{saved.train_loss:.6g}",
                saved.epochs_done,
            ]
            if saved is not None and math.isfinite(saved.val_loss)
            else ["", "", "", saved.epochs_done if saved is not None else ""]
        )
        writer.writerow([run.name, status, *numbers, *(values.get(c, "") for c in columns), reason])
    write_atomically(path, text.getvalue().encode())


def run_sweep(args: argparse.Namespace, extra: Sequence[str], out: TextIO) -> int:
    """``fnn sweep``: plan the grid, run what is not finished, write summary.csv; the exit status."""
    runs = plan(args, extra)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --out {args.out}: {error.strerror}") from error
    configs = {run.name: train_config(run) for run in runs}
    if len(configs) != len(runs):
        raise UsageError("sweep: two runs would share a folder; give each swept flag distinct values")
    rows: dict[str, tuple[str, _Saved | None, str]] = {}
    todo: list[tuple[PlannedRun, bool]] = []
    for run in runs:
        saved = _saved(os.path.join(args.out, run.name), configs[run.name])
        if saved is not None and saved.finished:
            rows[run.name] = ("finished", saved, "")
            print(f"{run.name}: finished before, skipped", file=out, flush=True)
        else:
            todo.append((run, saved is not None and saved.epochs_done > 0))
    print(f"sweep: {len(runs)} runs, {len(todo)} to train", file=out, flush=True)
    interrupted = False
    try:
        with _executor(args) as executor:
            for run, outcome in _outcomes(executor, todo, args.out):
                saved = _saved(os.path.join(args.out, run.name), configs[run.name])
                if outcome.status == 130:
                    interrupted = True
                    break
                ok = outcome.status == 0 and saved is not None and saved.finished
                rows[run.name] = ("finished" if ok else "failed", saved, outcome.reason)
                shown = f"best val loss {saved.val_loss:.4f}" if ok and saved is not None else ""
                print(f"{run.name}: {shown or 'FAILED: ' + outcome.reason}", file=out, flush=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _summary(os.path.join(args.out, SUMMARY_NAME), runs, rows)
    failed = sorted(name for name, (status, _, _) in rows.items() if status == "failed")
    finished = sum(status == "finished" for status, _, _ in rows.values())
    print(f"summary: {os.path.join(args.out, SUMMARY_NAME)} ({finished} of {len(runs)} finished)", file=out)
    if interrupted:
        print(f"{PROG}: sweep interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    if failed:
        print(f"{PROG}: {len(failed)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return SWEEP_FAILED_STATUS
    return 0


def _outcomes(
    executor: Executor | None, todo: Sequence[tuple[PlannedRun, bool]], out_dir: str
) -> Iterator[tuple[PlannedRun, Outcome]]:
    """Each run with how it ended: as they finish on ``executor``, or one by one here."""
    if executor is None:
        for run, resume in todo:
            yield run, run_one(run.flags, os.path.join(out_dir, run.name), resume)
        return
    folder = os.path.abspath(out_dir)  # workers may run in another working folder
    futures: dict[Future[Outcome], PlannedRun] = {
        executor.submit(run_one, run.flags, os.path.join(folder, run.name), resume): run
        for run, resume in todo
    }
    try:
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:  # the worker died, or the task could not run there
                outcome = Outcome(1, f"its worker failed: {type(error).__name__}: {error}")
            yield futures[future], outcome
    finally:
        for future in futures:
            future.cancel()
