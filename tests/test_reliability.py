"""Reliability (issue 7): nothing lost on a crash, clear stops on divergence, bounded memory at scale.

- SIGKILL: ``fnn train`` processes are killed at seeded random moments, over and
  over, each run resuming from what the previous one left; and, deterministically,
  inside each step of a checkpoint save (a child process kills itself in
  ``os.write``, ``os.fsync`` or ``os.replace``). Whatever is on disk afterwards is a
  complete earlier epoch, and resuming from it gives the uninterrupted result.
- Divergence: a run whose loss becomes non-finite exits non-zero with one line naming
  the epoch and step and keeps the last good checkpoint; ``train_step`` raises
  :class:`NonFiniteTrainingError` and advances nothing.
- Scale: a 100,000-wide ``vsum``, the peak memory of a 200,000-op chain, a recursion
  limit of 100, and 10,000 training steps that leave no tapes and no growth behind.

Observed behaviour worth knowing: a SIGKILL during a save leaves its temporary file
(``.checkpoint-<16 hex>.tmp``) behind until the next run in that folder removes it; it
is never read as the checkpoint. ``metrics.csv`` is
written after ``checkpoint.json``, so after a kill it may lag the checkpoint by one
epoch; the checkpoint's own history is always complete.
"""

from __future__ import annotations

import gc
import math
import os
import random as stdlib_random
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyrsistent import pmap, pvector

import optimizers
import tape
from functional_nn import random
from functional_nn.cli import Config, build
from functional_nn.dataloader import Batch
from functional_nn.mlp import MLP, Params
from functional_nn.serialization import CheckpointError, load_checkpoint, state_dict
from functional_nn.train import NonFiniteTrainingError, supervised_loss, train_step
from optimizers.state import OptState, state_to_json
from tape import Scalar, Tape, Value
from tape.tree import tree_leaves
from tests.functional_nn.cli_helpers import (
    TIMEOUT,
    Job,
    Run,
    canonical_json,
    cli_env,
    finish,
    metrics_rows,
    payload,
    run,
    run_cli,
    start,
)

posix_only = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
TEMPORARY = re.compile(r"\.checkpoint-[0-9a-f]{16}\.tmp\Z")
"""The name of :func:`functional_nn.serialization._atomic_write`'s temporary file."""


# --- checkpoints on disk ------------------------------------------------------------------


def epochs_done(checkpoint: Path) -> int:
    """``epochs_done`` of a checkpoint, checked to be an int >= 1 with as many history entries."""
    meta = load_checkpoint(checkpoint).metadata
    done = meta["epochs_done"]
    history = meta["history"]
    assert type(done) is int and done >= 1, f"{checkpoint}: epochs_done = {done!r}"
    assert isinstance(history, list) and len(history) == done, f"{checkpoint}: history vs {done} epochs"
    assert [entry["epoch"] for entry in history if isinstance(entry, dict)] == list(range(done))
    return done


def without_seconds(history: Sequence[Any]) -> list[str]:
    """History entries as canonical JSON without their timing (the one field runs may differ in)."""
    return [canonical_json({k: v for k, v in entry.items() if k != "seconds"}) for entry in history]


def assert_same_training(expected: Path, actual: Path) -> None:
    """Two checkpoints hold bit-identical params and optimizer state after the same epochs.

    Canonical JSON writes every float as its shortest round-tripping ``repr``, so equal
    text means equal bits (``-0.0`` and ``0.0`` included).
    """
    a, b = payload(expected), payload(actual)
    assert canonical_json(a["params"]) == canonical_json(b["params"]), f"params of {actual} differ"
    assert canonical_json(a["opt_state"]) == canonical_json(b["opt_state"]), f"opt_state of {actual} differs"
    assert a["metadata"]["epochs_done"] == b["metadata"]["epochs_done"]
    assert without_seconds(a["metadata"]["history"]) == without_seconds(b["metadata"]["history"])


def temporaries(folder: Path) -> set[str]:
    """Names of the leftover temporary files in ``folder``, after checking nothing else is there."""
    names = set(os.listdir(folder)) if folder.exists() else set()
    temps = {name for name in names if TEMPORARY.match(name)}
    unexpected = names - temps - {"checkpoint.json", "metrics.csv"}
    assert not unexpected, f"unexpected files in {folder}: {sorted(unexpected)}"
    return temps


def temporary_kind(path: Path, saved: int) -> str:
    """What a leftover temporary file holds: never something taken for the current checkpoint.

    ``"checkpoint"``: a complete checkpoint of the epoch after ``saved``, written but not
    yet renamed into place; ``"metrics"``: metrics CSV text; ``"partial"``: a checkpoint
    cut short, which the loader refuses.
    """
    raw = path.read_bytes()
    try:
        newer = load_checkpoint(path).metadata["epochs_done"]
    except CheckpointError:
        return "metrics" if raw.startswith(b"epoch,") else "partial"
    assert newer == saved + 1, f"{path} holds epoch {newer!r}; checkpoint.json holds {saved}"
    return "checkpoint"


# --- 1. SIGKILL at random moments ---------------------------------------------------------

# Batch size 4 makes an epoch of moons (144 training examples, 36 steps) about 20-30 ms,
# checkpoint save included, so saves are frequent. The epoch count is never reached.
KILL_BATCH_SIZE = 4
KILL_TRAIN = (
    "train",
    "--dataset",
    "moons",
    "--hidden",
    "8",
    "--batch-size",
    str(KILL_BATCH_SIZE),
    "--epochs",
    "5000",
    "--quiet",
    "--out",
    "out",
)
KILL_RESUME = ("train", "--resume", "out/checkpoint.json", "--out", "out", "--quiet")
KILLS = 16
CHAINS = 2


def kill_delays(seed: int, count: int, low: float = 0.05, high: float = 1.5) -> list[float]:
    """``count`` delays spread over ``[low, high)``: one per equal stratum, in a seeded random order."""
    rng = stdlib_random.Random(seed)
    width = (high - low) / count
    delays = [low + (i + rng.random()) * width for i in range(count)]
    rng.shuffle(delays)
    return delays


@dataclass(frozen=True)
class OnDisk:
    """What a run folder held after a kill."""

    epochs: int  # 0 when there is no checkpoint yet
    history: tuple[str, ...]
    temps: frozenset[str]


def check_after_kill(out: Path, before: OnDisk, steps_per_epoch: int, kinds: list[str]) -> OnDisk:
    """Everything on disk is a complete epoch, never older than before the kill."""
    temps = temporaries(out)
    new = temps - before.temps
    assert len(new) <= 1, f"one kill left {len(new)} temporary files: {sorted(new)}"
    path = out / "checkpoint.json"
    if before.epochs:
        assert path.exists(), f"the checkpoint of epoch {before.epochs} disappeared"
    if not path.exists():
        assert not (out / "metrics.csv").exists()
        kinds += [temporary_kind(out / name, 0) for name in new]
        return OnDisk(0, (), frozenset(temps))
    done = epochs_done(path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.opt_state is not None
    assert checkpoint.opt_state["step"] == done * steps_per_epoch, "params from the middle of an epoch"
    assert done >= before.epochs, f"the checkpoint went back from epoch {before.epochs} to {done}"
    entries = checkpoint.metadata["history"]
    assert isinstance(entries, list)
    history = tuple(canonical_json(entry) for entry in entries)
    assert history[: before.epochs] == before.history, "earlier epochs' records changed"
    rows = metrics_rows(out / "metrics.csv")[1] if (out / "metrics.csv").exists() else []
    assert len(rows) in (done - 1, done), f"metrics.csv has {len(rows)} rows, checkpoint {done} epochs"
    assert [row[0] for row in rows] == [str(e + 1) for e in range(len(rows))]
    kinds += [temporary_kind(out / name, done) for name in new]
    return OnDisk(done, history, frozenset(temps))


def _saved_epochs(out: Path) -> int:
    try:
        return epochs_done(out / "checkpoint.json")
    except (OSError, ValueError, CheckpointError):
        return 0


def kill_chain(folder: Path, delays: Sequence[float], steps_per_epoch: int) -> tuple[OnDisk, list[str]]:
    """Start, SIGKILL after each delay, check the folder, resume from it (or start over if empty).

    The last run is killed only once it has saved an epoch more than the folder held, so
    every chain makes progress however slowly a loaded machine starts the runs.
    """
    out = folder / "out"
    state = OnDisk(0, (), frozenset())
    kinds: list[str] = []
    for index, delay in enumerate([*delays, None]):
        job = Job(KILL_RESUME if state.epochs else KILL_TRAIN, folder, hashseed=index)
        process = start(job)
        try:
            if delay is None:
                deadline = time.monotonic() + 120.0
                while _saved_epochs(out) <= state.epochs and time.monotonic() < deadline:
                    time.sleep(0.02)
                process.send_signal(signal.SIGKILL)
            else:
                process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        finally:
            result = finish(process, job)
        assert result.returncode == -signal.SIGKILL, f"the run was not killed:\n{result.describe()}"
        state = check_after_kill(out, state, steps_per_epoch, kinds)
    return state, kinds


@posix_only
def test_sigkill_at_random_moments_always_leaves_a_complete_earlier_epoch(tmp_path: Path) -> None:
    """Two chains of kills, run side by side; each run resumes from the folder the last one left.

    Reusing the folder checks more than a fresh one per kill would: a checkpoint that
    survived one kill is resumed from and must survive the next, the epoch count never
    goes back, and the records of earlier epochs never change. Kills land during start-up,
    in steps and now and then inside a save (about one kill in 16 leaves a temporary file);
    the next test places them inside a save exactly.
    """
    config = Config(dataset="moons", hidden=(8,), batch_size=KILL_BATCH_SIZE)
    steps = build(config).steps_per_epoch
    delays = kill_delays(seed=7, count=KILLS)
    with ThreadPoolExecutor(max_workers=CHAINS) as pool:
        futures = [
            pool.submit(kill_chain, tmp_path / f"chain{c}", delays[c::CHAINS], steps) for c in range(CHAINS)
        ]
        results = [future.result() for future in futures]
    for chain, (state, _) in enumerate(results):
        assert state.epochs >= 1, f"chain {chain}: no run lived long enough to finish an epoch"
    kinds = [kind for _, chain_kinds in results for kind in chain_kinds]
    print(f"epochs reached {[s.epochs for s, _ in results]}; leftover temporary files: {sorted(kinds)}")


# The same crash, placed exactly: a child process runs `fnn train` with one os function
# replaced, that SIGKILLs the process at its n-th call from the checkpoint writer. Every
# finished epoch saves checkpoint.json and then metrics.csv, each with one os.write, one
# fsync of the file, one os.replace and one fsync of the folder.
_CRASH_AT = """\
import os, signal, sys
name, nth = sys.argv[1], int(sys.argv[2])
real = getattr(os, name)
calls = 0

def crash(*args):
    global calls
    if sys._getframe(1).f_globals.get("__name__") == "functional_nn.serialization":
        calls += 1
        if calls == nth:
            if name == "write":  # half of the bytes reach the file, then the process dies
                real(args[0], args[1][: len(args[1]) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)

setattr(os, name, crash)
from functional_nn.cli import main
sys.exit(main(sys.argv[3:]))
"""

CRASH_TRAIN = ("train", "--dataset", "moons", "--hidden", "8", "--epochs", "4", "--quiet", "--out", "out")


@dataclass(frozen=True)
class Crash:
    """Where a save dies and what must be on disk afterwards."""

    call: str  # the os function
    nth: int  # its n-th call from functional_nn.serialization
    saved: int  # epochs in checkpoint.json (0: none)
    rows: int  # rows in metrics.csv (0: none)
    temporary: str  # the leftover temporary file: "none", "partial", "checkpoint" or "metrics"


CRASHES = {
    "first-checkpoint-half-written": Crash("write", 1, 0, 0, "partial"),
    "checkpoint-half-written": Crash("write", 5, 2, 2, "partial"),
    "metrics-half-written": Crash("write", 6, 3, 2, "metrics"),
    "before-checkpoint-fsync": Crash("fsync", 9, 2, 2, "checkpoint"),
    "before-checkpoint-rename": Crash("replace", 5, 2, 2, "checkpoint"),
    "before-folder-fsync": Crash("fsync", 10, 3, 2, "none"),
    "before-metrics-rename": Crash("replace", 6, 3, 2, "metrics"),
}


def crash_run(folder: Path, crash: Crash) -> Run:
    """``fnn train`` (CRASH_TRAIN) in ``folder``, dying as ``crash`` says."""
    folder.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", _CRASH_AT, crash.call, str(crash.nth), *CRASH_TRAIN],
        cwd=folder,
        env=cli_env(0),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(CRASH_TRAIN, folder, done.returncode, done.stdout.decode(), done.stderr.decode())


def resume_or_restart(folder: Path) -> Run:
    """Finish the run in ``folder``: resume from its checkpoint, or start again if there is none."""
    args = KILL_RESUME if (folder / "out" / "checkpoint.json").exists() else CRASH_TRAIN
    return run(Job(args, folder, hashseed=1))


@posix_only
def test_sigkill_inside_a_save_keeps_the_previous_epoch_and_resumes_exactly(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        straight = pool.submit(run, Job(CRASH_TRAIN, tmp_path / "straight", hashseed=2))
        crashed = dict(
            zip(CRASHES, pool.map(lambda n: crash_run(tmp_path / n, CRASHES[n]), CRASHES), strict=True)
        )
        for name, crash in CRASHES.items():
            result = crashed[name]
            assert result.returncode == -signal.SIGKILL, f"{name}: no crash\n{result.describe()}"
            out = result.out
            checkpoint = out / "checkpoint.json"
            assert (epochs_done(checkpoint) if checkpoint.exists() else 0) == crash.saved, name
            rows = len(metrics_rows(out / "metrics.csv")[1]) if (out / "metrics.csv").exists() else 0
            assert rows == crash.rows, name
            temps = temporaries(out)
            assert [temporary_kind(out / t, crash.saved) for t in temps] == (
                [] if crash.temporary == "none" else [crash.temporary]
            ), name
        finished = dict(
            zip(CRASHES, pool.map(lambda n: resume_or_restart(tmp_path / n), CRASHES), strict=True)
        )
        straight.result().ok()
    for name, result in finished.items():
        result.ok()
        assert_same_training(
            tmp_path / "straight" / "out" / "checkpoint.json", result.out / "checkpoint.json"
        )
        assert temporaries(result.out) == set(), f"{name}: the next run removes the crash's leftover"


# --- 2. resume after SIGKILL is bit-identical ---------------------------------------------

# Batch size 1 makes an iris epoch about 60 ms, long enough to kill the run between epochs 2 and 6.
IRIS = ("train", "--dataset", "iris", "--hidden", "8", "--epochs", "6", "--batch-size", "1", "--seed", "3")


def wait_for_epochs(path: Path, epochs: int, process: subprocess.Popen[bytes], job: Job) -> None:
    """Poll until the checkpoint at ``path`` holds at least ``epochs`` epochs."""
    deadline = time.monotonic() + TIMEOUT
    while not (path.exists() and epochs_done(path) >= epochs):
        if process.poll() is not None:
            pytest.fail(f"the run ended before epoch {epochs} was saved:\n{finish(process, job).describe()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not reach epoch {epochs} within {TIMEOUT} s")
        time.sleep(0.002)


@posix_only
def test_resume_after_sigkill_is_bit_identical_to_the_straight_run(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        straight = pool.submit(run, Job((*IRIS, "--quiet", "--out", "A"), tmp_path, hashseed=1))
        job = Job((*IRIS, "--quiet", "--out", "B"), tmp_path, hashseed=2)
        process = start(job)
        try:
            wait_for_epochs(tmp_path / "B" / "checkpoint.json", 2, process, job)
            process.send_signal(signal.SIGKILL)
        finally:
            killed = finish(process, job)
        straight.result().ok()
    assert killed.returncode == -signal.SIGKILL, killed.describe()
    saved = epochs_done(tmp_path / "B" / "checkpoint.json")
    assert 2 <= saved < 6, f"killed after epoch {saved}"
    run_cli(tmp_path, "train", "--resume", "B/checkpoint.json", "--out", "B2", "--quiet", hashseed=3).ok()
    assert_same_training(tmp_path / "A" / "checkpoint.json", tmp_path / "B2" / "checkpoint.json")


# --- 3. non-finite training stops clearly ------------------------------------------------

# SGD at lr 5 on sine: epoch 1 ends with finite losses, epoch 2 reaches an infinite loss.
SINE_SGD = ("train", "--dataset", "sine", "--hidden", "8", "--optimizer", "sgd", "--quiet", "--out", "out")
DIVERGING = (*SINE_SGD, "--lr", "5", "--epochs", "4")
WHERE = re.compile(r"\bepoch (\d+), step (\d+)\b")


def one_line(result: Run) -> str:
    """The single stderr line of a failed run (no traceback anywhere)."""
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    return lines[0]


def test_divergence_exits_with_one_line_naming_epoch_and_step_and_keeps_the_last_good_epoch(
    tmp_path: Path,
) -> None:
    result = run_cli(tmp_path, *DIVERGING)
    line = one_line(result)
    assert result.returncode == 3, result.describe()
    where = WHERE.search(line)
    assert where, line
    epoch = int(where.group(1))
    assert epoch >= 2, f"the first epoch was meant to stay finite: {line}"
    assert "out/checkpoint.json" in line, line
    checkpoint = load_checkpoint(tmp_path / "out" / "checkpoint.json")
    assert epochs_done(tmp_path / "out" / "checkpoint.json") == epoch - 1
    assert all(math.isfinite(x) for x in tree_leaves(checkpoint.params))
    history = checkpoint.metadata["history"]
    assert isinstance(history, list)
    losses = [entry["train_loss"] for entry in history if isinstance(entry, dict)]
    assert len(losses) == epoch - 1 and all(isinstance(x, float) and math.isfinite(x) for x in losses)
    # The kept epoch is exactly the last good one: resuming from it diverges at the same step.
    again = run_cli(tmp_path, "train", "--resume", "out/checkpoint.json", "--out", "again", "--quiet")
    assert WHERE.search(one_line(again)) and where.group(0) in again.stderr, again.describe()


def test_a_loss_too_large_for_a_float_stops_like_any_divergence(tmp_path: Path) -> None:
    result = run_cli(tmp_path, *SINE_SGD, "--lr", "0.5", "--epochs", "3")
    assert WHERE.search(one_line(result)), result.describe()
    assert result.returncode == 3, result.describe()


def test_an_infinite_validation_loss_is_reported_with_its_epoch(tmp_path: Path) -> None:
    result = run_cli(tmp_path, *SINE_SGD, "--lr", "10", "--epochs", "3")
    assert re.search(r"\bepoch \d+\b", one_line(result)), result.describe()


def layer_params(*layers: tuple[list[list[float]], list[float]]) -> Params:
    """MLP params from (weight rows, bias) pairs."""
    return pmap(
        {
            "layers": pvector(
                pmap({"weight": pvector(pvector(row) for row in weight), "bias": pvector(bias)})
                for weight, bias in layers
            )
        }
    )


def batch_of(rows: Sequence[Sequence[float]], targets: Sequence[float]) -> Batch:
    """A Batch of feature rows and targets (class labels if they are ints)."""
    return Batch(tuple(pvector(row) for row in rows), tuple(targets))


def snapshot(params: Params, state: OptState) -> tuple[str, str]:
    return canonical_json(state_dict(params)), canonical_json(state_to_json(state))


BATCH = batch_of([[1.0]] * 4, [0.0] * 4)
NON_FINITE = {
    # 1e308 * 10 overflows to inf in the forward pass: the loss is inf.
    "loss": (MLP(1, [1], activation="identity"), layer_params(([[1e308]], [0.0])), "the loss is inf"),
    # Output 1e10 and loss 1e20 are finite; d loss / d weight of layer 1 is 1e10 * 1e300.
    "gradient": (
        MLP(1, [1, 1], activation="identity"),
        layer_params(([[1e300]], [0.0]), ([[1e-290]], [0.0])),
        "a gradient is not finite",
    ),
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_train_step_raises_on_non_finite_and_advances_nothing(case: str) -> None:
    model, bad, message = NON_FINITE[case]
    batch = BATCH if case == "gradient" else batch_of([[10.0]] * 4, [0.0] * 4)
    optimizer = optimizers.adam(0.01)
    step = train_step(supervised_loss(model, "regression"), optimizer)
    state = optimizer.init(model.check_params(bad))
    before = snapshot(bad, state)
    with pytest.raises(NonFiniteTrainingError, match=re.escape(message)):
        step(bad, state, batch, None)
    assert snapshot(bad, state) == before
    # Nothing was advanced or kept anywhere: the same step and state, with good params,
    # give exactly what a fresh step from a fresh state gives.
    good = model.init(random.key(0))
    fresh = train_step(supervised_loss(model, "regression"), optimizer)
    after_failure = step(good, state, batch, None)
    expected = fresh(good, optimizer.init(good), batch, None)
    assert snapshot(*after_failure[:2]) == snapshot(*expected[:2])
    assert after_failure[2] == expected[2]


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_train_step_reports_an_overflowing_loss_as_non_finite(task: str) -> None:
    if task == "regression":  # output 1e200: its square overflows
        model = MLP(1, [1], activation="identity")
        params = layer_params(([[1e200]], [0.0]))
        batch = BATCH
    else:  # two rows whose cross-entropy is 1e308 each: their sum overflows
        model = MLP(1, [2], activation="identity")
        params = layer_params(([[1e308], [0.0]], [0.0, 0.0]))
        batch = batch_of([[1.0], [1.0]], [1, 1])
    optimizer = optimizers.sgd(0.1)
    step = train_step(supervised_loss(model, task), optimizer)
    with pytest.raises(NonFiniteTrainingError):
        step(params, optimizer.init(params), batch, None)


# --- 4. scale: wide sums, long chains, no recursion ---------------------------------------


def test_a_100000_wide_vsum_of_watched_values_differentiates_to_all_ones() -> None:
    with Tape() as t:
        xs = [t.watch(float(i)) for i in range(100_000)]
        total = tape.vsum(xs)
    assert len(t) == 100_001  # the leaves and one fused node
    grads = t.gradient(total, xs)
    assert len(grads) == 100_000 and all(g == 1.0 for g in grads)


CHAIN = 200_000


def test_a_200000_op_chain_records_and_differentiates_in_memory_linear_in_its_length() -> None:
    """Peak traced memory: under 400 bytes per op in all, under 100 for the backward sweep alone.

    A node costs about 190 bytes to record; the sweep's buffer of gradients about 32 per
    op. Recursion (a frame per op) or copies of the tape's nodes would break the bounds.
    """
    gc.collect()
    tracemalloc.start()
    try:
        with Tape() as t:
            x = t.watch(1.0)
            y = x
            for _ in range(CHAIN):
                y = y + 1.0
        recorded, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        gradient = t.gradient(y, x)
        _, sweep_peak = tracemalloc.get_traced_memory()
        total_peak = max(sweep_peak, recorded)
    finally:
        tracemalloc.stop()
    assert gradient == 1.0
    assert total_peak < 400 * CHAIN, f"{total_peak / CHAIN:.0f} bytes per op"
    assert sweep_peak - recorded < 100 * CHAIN, f"the sweep takes {(sweep_peak - recorded) / CHAIN:.0f} B/op"


def test_the_recursion_limit_is_irrelevant_to_a_10000_op_chain() -> None:
    def chain(x: Scalar) -> Scalar:
        y = x
        for _ in range(5_000):
            y = y * 1.0001 + 0.5
        return y

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        with Tape() as t:
            x = t.watch(0.0)
            y = chain(x)
        taped = t.gradient(y, x)  # one Value source: a float
        transformed = tape.grad(chain)(0.0)
    finally:
        sys.setrecursionlimit(previous)
    assert len(t) == 10_001
    assert taped == transformed and math.isclose(taped, 1.0001**5_000, rel_tol=1e-9)


# --- 5. tapes are released after use ------------------------------------------------------

STEPS = 10_000


def count(kind: type) -> int:
    """Live instances of ``kind``."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def allocated_blocks() -> int:
    """Memory blocks in use (after a collection): cheap, unlike tracing every allocation."""
    gc.collect()
    return sys.getallocatedblocks()


def traced_memory() -> int:
    """Bytes allocated since tracemalloc started and still in use (after a collection)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_ten_thousand_training_steps_release_their_tapes_and_do_not_grow() -> None:
    """A 2-4-1 MLP on a batch of 4 through the array path (``train_step``), 10,000 SGD steps.

    Tracing every allocation for all steps would take about 20 s, so growth is measured
    twice: by ``sys.getallocatedblocks`` (cheap) between steps 100 and 10,000, and by
    tracemalloc over the last 900 steps, in two halves of 450. A leak of one small object
    per step shows up as 9,900 blocks, and in *each* half as at least 450 x (16 B of the
    smallest object + 8 B of the reference keeping it) = 10.8 KB traced. A one-time
    resize of some table that earlier tests filled (the flattening memo, a compiled
    step's cache) can retain tens of KB, but in one half only: the traced bound is 8 KB
    on the smaller half.
    """
    model = MLP(2, [4, 1], activation="tanh")
    params = model.init(random.key(0))
    optimizer = optimizers.sgd(0.01)
    state = optimizer.init(params)
    step = train_step(supervised_loss(model, "regression"), optimizer)
    batch = batch_of([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6], [0.7, 0.8]], [0.1, -0.2, 0.3, 0.4])
    tapes, values, arrays = count(Tape), count(Value), count(tape.Array)
    try:
        for n in range(1, STEPS + 1):
            params, state, metrics = step(params, state, batch, None)
            if n == 100:
                blocks_at_100 = allocated_blocks()
            elif n == STEPS - 1000:
                tracemalloc.start()
            elif n == STEPS - 900:
                traced_at_9100 = traced_memory()
            elif n == STEPS - 450:
                traced_at_9550 = traced_memory()
        halves = (traced_at_9550 - traced_at_9100, traced_memory() - traced_at_9550)
    finally:
        tracemalloc.stop()
    block_growth = allocated_blocks() - blocks_at_100
    assert state["step"] == STEPS and math.isfinite(metrics["loss"])
    assert block_growth < 100, f"{block_growth} more memory blocks after step {STEPS} than after step 100"
    assert min(halves) < 8_000, f"{halves} bytes retained over each of two runs of 450 steps"
    assert count(Tape) <= tapes, "tapes survive their steps"
    assert count(Value) <= values and count(tape.Array) <= arrays, "Values or Arrays survive their steps"
