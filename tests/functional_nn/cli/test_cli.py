"""The command line end to end: every subcommand and flag through a real ``python -m functional_nn``.

Runs are small (the toy datasets, ``--hidden 8``, two to four epochs) and shared:
module-scoped fixtures start them all at once, one process per CPU, and the tests
read what they printed and wrote. Every run gets its own ``PYTHONHASHSEED``, so the
determinism checks also show that nothing depends on string hashing. Only
:func:`test_default_digits_training_ends_with_the_test_metrics` trains on digits.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functional_nn.cli import Config, build
from functional_nn.cli import main as cli_main
from functional_nn.cli.checkpoints import RUN_FORMAT
from functional_nn.datasets import DATASET_NAMES
from functional_nn.serialization import load_checkpoint
from tests.functional_nn.cli_helpers import (
    Job,
    Run,
    canonical_json,
    finish,
    metrics_rows,
    payload,
    read_document,
    rewrite_checkpoint,
    run,
    run_cli,
    run_many,
    sigint_raises,
    start,
    without_seconds,
)

SMALL_DATASETS = tuple(name for name in DATASET_NAMES if name != "digits")
REGRESSION = "sine"
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "exponential", "warmup-cosine")
METRIC_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAVE_TQDM = importlib.util.find_spec("tqdm") is not None
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

LOSS = r"\d+\.\d{4}"
PERCENT = r"\d{1,3}\.\d%"
TEST_LOSS = re.compile(rf"test loss: ({LOSS})")
TEST_ACCURACY = re.compile(rf"test accuracy: ({PERCENT})")
CHECKPOINT_LINE = "checkpoint: out/checkpoint.json"


def epoch_line(epoch: int, total: int, *, classify: bool = True) -> re.Pattern[str]:
    """The progress line printed after an epoch."""
    acc = rf" \| acc {PERCENT}" if classify else ""
    return re.compile(
        rf"epoch +{epoch}/{total} \| train loss {LOSS}{acc} \| val loss {LOSS}{acc} \| \d+\.\ds"
    )


def iris(*flags: str, epochs: int = 2) -> tuple[str, ...]:
    """``train`` on iris with a small net into ``./out``, plus ``flags``."""
    return ("train", "--dataset", "iris", "--hidden", "8", "--epochs", str(epochs), "--out", "out", *flags)


def small(dataset: str, *flags: str, epochs: int = 2) -> tuple[str, ...]:
    """``train`` on ``dataset`` with a small net, plus ``flags``."""
    return ("train", "--dataset", dataset, "--hidden", "8", "--epochs", str(epochs), *flags)


# name -> (arguments, modules to hide from the run)
TRAIN_CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{f"dataset-{d}": (small(d, "--quiet", "--out", "out"), ()) for d in SMALL_DATASETS},
    "quiet-no-out": (small("moons", "--quiet"), ()),
    "baseline": (iris(), ()),
    "baseline-twin": (iris(), ()),  # same flags, another PYTHONHASHSEED
    "progress-forced": (iris("--progress"), ()),
    "no-tqdm": (small("moons", "--out", "out"), ("tqdm",)),
    "progress-sine": (small("sine"), ()),
    "hidden-8,8": (("train", "--dataset", "iris", "--hidden", "8,8", "--epochs", "2", "--out", "out"), ()),
    **{f"activation-{a}": (iris("--activation", a), ()) for a in ACTIVATIONS},
    **{f"optimizer-{o}": (iris("--optimizer", o), ()) for o in OPTIMIZERS},
    **{f"schedule-{s}": (iris("--schedule", s, "--quiet"), ()) for s in SCHEDULES},
    "epochs-3": (iris("--quiet", epochs=3), ()),
    "batch-size": (iris("--batch-size", "7", "--quiet"), ()),
    "lr": (iris("--lr", "0.05"), ()),
    "momentum": (iris("--optimizer", "momentum", "--momentum", "0.5", "--quiet"), ()),
    "weight-decay": (iris("--weight-decay", "0.1", "--quiet"), ()),
    "weight-decay-adamw": (iris("--optimizer", "adamw", "--weight-decay", "0.1", "--quiet"), ()),
    "dropout": (iris("--dropout", "0.3", "--quiet"), ()),
    "clip": (iris("--clip", "0.05", "--quiet"), ()),
    "seed": (iris("--seed", "1", "--quiet"), ()),
    # Adam with a learning rate too small to move any float: validation loss plateaus at once.
    "patience": (small("moons", "--lr", "1e-30", "--patience", "1", "--out", "out", epochs=6), ()),
    # A large learning rate: validation loss improves, then gets worse for two epochs.
    "patience-best": (
        small("moons", "--lr", "0.3", "--patience", "2", "--quiet", "--out", "out", epochs=30),
        (),
    ),
    "plot-missing": (small("moons", "--plot", "--quiet", "--out", "out"), ("matplotlib",)),
    **(
        {f"plot-{d}": (small(d, "--plot", "--quiet", "--out", "out"), ()) for d in ("moons", "sine", "iris")}
        if HAVE_MATPLOTLIB
        else {}
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every run of :data:`TRAIN_CASES`, each in its own folder with its own PYTHONHASHSEED."""
    base = tmp_path_factory.mktemp("train")
    jobs = {
        name: Job(args, base / name, hashseed=index + 1, block=block)
        for index, (name, (args, block)) in enumerate(TRAIN_CASES.items())
    }
    return run_many(jobs)


def checkpoint_of(result: Run) -> Path:
    """The checkpoint a successful ``--out out`` run wrote."""
    path = result.ok().out / "checkpoint.json"
    assert path.is_file(), result.describe()
    return path


def params_json(result: Run) -> str:
    """The run's final parameters as canonical JSON text."""
    return canonical_json(payload(checkpoint_of(result))["params"])


def config_of(result: Run) -> dict[str, Any]:
    """The training config saved in the run's checkpoint."""
    config = payload(checkpoint_of(result))["metadata"]["config"]
    assert isinstance(config, dict)
    return config


def transform_names(tree: object) -> set[str]:
    """Every gradient-transformation name in an optimizer state's JSON."""
    names: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "transform" and isinstance(value, str):
                names.add(value)
            names |= transform_names(value)
    elif isinstance(tree, list):
        for item in tree:
            names |= transform_names(item)
    return names


def header(result: Run) -> re.Match[str]:
    """The first line of a run that is not ``--quiet``, parsed."""
    match = re.fullmatch(
        r"training (\w+): (\d+) train / (\d+) validation / (\d+) test examples, "
        r"MLP ([\d-]+) \((\w+)\), (\w+) lr (\S+), (\d+) epochs",
        result.lines()[0],
    )
    assert match, result.describe()
    return match


# --- train: datasets and output -----------------------------------------------------------


@pytest.mark.parametrize("dataset", SMALL_DATASETS)
def test_train_on_each_dataset_prints_the_test_metrics(runs: dict[str, Run], dataset: str) -> None:
    result = runs[f"dataset-{dataset}"].ok()
    lines = result.lines()
    assert result.stderr == "", result.describe()
    if dataset == REGRESSION:
        assert len(lines) == 4, result.describe()
        assert "accuracy" not in result.stdout
        assert re.fullmatch(r"test rmse: \d+\.\d+", lines[2]) and re.fullmatch(
            r"test mae: \d+\.\d+", lines[3]
        )
    else:
        assert len(lines) == 3, result.describe()
        assert TEST_ACCURACY.fullmatch(lines[2]), result.describe()
    assert lines[0] == CHECKPOINT_LINE
    assert TEST_LOSS.fullmatch(lines[1]), result.describe()
    assert config_of(result)["dataset"] == dataset


def test_quiet_prints_only_the_summary_and_writes_nothing_without_out(runs: dict[str, Run]) -> None:
    result = runs["quiet-no-out"].ok()
    lines = result.lines()
    assert len(lines) == 2, result.describe()
    assert TEST_LOSS.fullmatch(lines[0]) and TEST_ACCURACY.fullmatch(lines[1]), result.describe()
    assert result.stderr == ""
    assert list(result.cwd.iterdir()) == []


def test_progress_shows_a_header_one_line_per_epoch_and_the_summary(runs: dict[str, Run]) -> None:
    result = runs["baseline"].ok()
    lines = result.lines()
    assert len(lines) == 6, result.describe()
    match = header(result)
    assert match.group(1, 5, 6, 7, 8, 9) == ("iris", "4-8-3", "relu", "adam", "0.01", "2")
    assert sum(int(n) for n in match.group(2, 3, 4)) == 150
    assert epoch_line(1, 2).fullmatch(lines[1]), result.describe()
    assert epoch_line(2, 2).fullmatch(lines[2]), result.describe()
    assert lines[3] == CHECKPOINT_LINE
    assert TEST_LOSS.fullmatch(lines[4]) and TEST_ACCURACY.fullmatch(lines[5]), result.describe()
    # stderr is a pipe here: no bar anywhere unless --progress asks for one
    assert "\r" not in result.stdout + result.stderr and "batch/s" not in result.stderr, result.describe()


@pytest.mark.skipif(not HAVE_TQDM, reason="tqdm (the progress extra) is not installed")
def test_progress_flag_draws_the_bar_on_stderr_and_keeps_stdout_plain(runs: dict[str, Run]) -> None:
    result = runs["progress-forced"].ok()
    # the per-epoch bar, redrawn in place; it shows the speed in batches per second
    assert "\r" in result.stderr and "batch/s" in result.stderr, result.describe()
    assert "\r" not in result.stdout and result.lines() == runs["baseline"].lines()[:1] + result.lines()[1:]
    assert len(result.lines()) == 6 and epoch_line(2, 2).fullmatch(result.lines()[2]), result.describe()


def test_progress_without_tqdm_is_plain_epoch_lines(runs: dict[str, Run]) -> None:
    result = runs["no-tqdm"].ok()
    lines = result.lines()
    assert "\r" not in result.stdout
    assert header(result).group(1) == "moons"
    assert [bool(epoch_line(e, 2).fullmatch(line)) for e, line in zip((1, 2), lines[1:3], strict=True)] == [
        True,
        True,
    ]
    assert len(lines) == 6 and lines[3] == CHECKPOINT_LINE, result.describe()
    assert TEST_LOSS.fullmatch(lines[4]) and TEST_ACCURACY.fullmatch(lines[5]), result.describe()


def test_progress_for_regression_shows_no_accuracy(runs: dict[str, Run]) -> None:
    result = runs["progress-sine"].ok()
    lines = result.lines()
    assert len(lines) == 6, result.describe()
    assert epoch_line(1, 2, classify=False).fullmatch(lines[1]), result.describe()
    assert epoch_line(2, 2, classify=False).fullmatch(lines[2]), result.describe()
    assert TEST_LOSS.fullmatch(lines[3]), result.describe()


def test_out_holds_a_checkpoint_and_per_epoch_metrics(runs: dict[str, Run]) -> None:
    result = runs["baseline"]
    path = checkpoint_of(result)
    document = read_document(path)
    assert set(document) >= {"format", "version", "sha256", "payload"}
    inner = document["payload"]
    assert set(inner) == {"params", "opt_state", "metadata"}
    assert sorted(inner["params"]) == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]
    assert inner["opt_state"] is not None
    meta = inner["metadata"]
    assert meta["epochs_done"] == 2
    assert isinstance(meta["key"], int) and meta["run_format"] == RUN_FORMAT
    assert meta["config"] == {
        "dataset": "iris",
        "hidden": [8],
        "activation": "relu",
        "epochs": 2,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": None,
        "momentum": None,
        "weight_decay": 0.0,
        "dropout": 0.0,
        "clip": None,
        "schedule": "constant",
        "patience": None,
        "seed": 0,
        "data": None,
        "data_sha256": None,
        "model": "mlp",
        "shards": 1,
        "compile": True,
        "target": None,
        "task": None,
        "channels": [8],
    }
    assert meta["columns"] is None
    loaded = load_checkpoint(path)
    assert loaded.opt_state is not None and loaded.metadata["epochs_done"] == 2
    columns, rows = metrics_rows(result.out / "metrics.csv")
    assert columns == METRIC_COLUMNS
    assert [row[0] for row in rows] == ["1", "2"]
    for row, logged in zip(rows, meta["history"], strict=True):
        values = [float(cell) for cell in row]
        assert all(math.isfinite(v) and v >= 0 for v in values)
        assert values[1:5] == [logged[k] for k in METRIC_COLUMNS[1:5]]  # exact: the same floats


# --- train: flags ------------------------------------------------------------------------


def test_hidden_sizes_build_those_layers(runs: dict[str, Run]) -> None:
    result = runs["hidden-8,8"]
    assert header(result).group(5) == "4-8-8-3"
    params = payload(checkpoint_of(result))["params"]
    shapes = {name: (len(w), len(w[0])) for name, w in params.items() if name.endswith("weight")}
    assert shapes == {"layers.0.weight": (8, 4), "layers.1.weight": (8, 8), "layers.2.weight": (3, 8)}
    assert config_of(result)["hidden"] == [8, 8]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_flag(runs: dict[str, Run], activation: str) -> None:
    result = runs[f"activation-{activation}"]
    assert header(result).group(6) == activation
    assert config_of(result)["activation"] == activation
    same = params_json(result) == params_json(runs["baseline"])
    assert same == (activation == "relu")  # relu is the default; every other one trains differently


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_flag(runs: dict[str, Run], optimizer: str) -> None:
    result = runs[f"optimizer-{optimizer}"]
    match = header(result)
    assert match.group(7, 8) == (optimizer, "0.1" if optimizer in ("sgd", "momentum") else "0.01")
    assert config_of(result)["optimizer"] == optimizer
    assert optimizer in transform_names(payload(checkpoint_of(result))["opt_state"])
    same = params_json(result) == params_json(runs["baseline"])
    assert same == (optimizer in ("adam", "adamw"))  # without weight decay AdamW is Adam


def test_adamw_decouples_weight_decay(runs: dict[str, Run]) -> None:
    assert config_of(runs["weight-decay-adamw"])["optimizer"] == "adamw"
    assert params_json(runs["weight-decay-adamw"]) != params_json(runs["weight-decay"])


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_flag(runs: dict[str, Run], schedule: str) -> None:
    result = runs[f"schedule-{schedule}"]
    assert config_of(result)["schedule"] == schedule
    same = params_json(result) == params_json(runs["baseline"])
    assert same == (schedule == "constant")


def test_schedules_all_train_differently(runs: dict[str, Run]) -> None:
    assert len({params_json(runs[f"schedule-{s}"]) for s in SCHEDULES}) == len(SCHEDULES)


# case -> (the run it differs from in exactly that flag, config key, value saved)
FLAG_CASES = {
    "lr": ("baseline", "lr", 0.05),
    "momentum": ("optimizer-momentum", "momentum", 0.5),
    "weight-decay": ("baseline", "weight_decay", 0.1),
    "dropout": ("baseline", "dropout", 0.3),
    "clip": ("baseline", "clip", 0.05),
    "batch-size": ("baseline", "batch_size", 7),
    "seed": ("baseline", "seed", 1),
}


@pytest.mark.parametrize("case", FLAG_CASES)
def test_flag_is_saved_and_changes_training(runs: dict[str, Run], case: str) -> None:
    reference, key, value = FLAG_CASES[case]
    result = runs[case]
    assert config_of(result)[key] == value
    assert params_json(result) != params_json(runs[reference])


def test_lr_flag_is_shown(runs: dict[str, Run]) -> None:
    assert header(runs["lr"]).group(8) == "0.05"


def test_clip_puts_gradient_clipping_before_the_optimizer(runs: dict[str, Run]) -> None:
    assert "clip_by_global_norm" in transform_names(payload(checkpoint_of(runs["clip"]))["opt_state"])
    assert "clip_by_global_norm" not in transform_names(payload(checkpoint_of(runs["baseline"]))["opt_state"])


def test_batch_size_sets_the_steps_per_epoch(runs: dict[str, Run]) -> None:
    n_train = int(header(runs["baseline"]).group(2))
    for case, size in (("baseline", 32), ("batch-size", 7)):
        assert payload(checkpoint_of(runs[case]))["opt_state"]["step"] == 2 * math.ceil(n_train / size)


def test_epochs_flag(runs: dict[str, Run]) -> None:
    result = runs["epochs-3"]
    assert payload(checkpoint_of(result))["metadata"]["epochs_done"] == 3
    assert [row[0] for row in metrics_rows(result.out / "metrics.csv")[1]] == ["1", "2", "3"]


def test_same_seed_gives_bit_identical_runs_whatever_the_hash_seed(runs: dict[str, Run]) -> None:
    one, two = runs["baseline"], runs["baseline-twin"]
    first, second = payload(checkpoint_of(one)), payload(checkpoint_of(two))
    assert canonical_json(first["params"]) == canonical_json(second["params"])
    assert canonical_json(first["opt_state"]) == canonical_json(second["opt_state"])
    header_one, rows_one = metrics_rows(one.out / "metrics.csv")
    header_two, rows_two = metrics_rows(two.out / "metrics.csv")
    assert without_seconds(rows_one, header_one) == without_seconds(rows_two, header_two)
    assert one.lines()[-2:] == two.lines()[-2:]


def test_patience_stops_early_on_a_plateau(runs: dict[str, Run]) -> None:
    result = runs["patience"].ok()
    stopped = [line for line in result.lines() if line.startswith("stopped early")]
    assert len(stopped) == 1, result.describe()
    assert re.fullmatch(
        r"stopped early: no better validation loss for 1 epochs? \(best at epoch 1\)", stopped[0]
    )
    assert len(metrics_rows(result.out / "metrics.csv")[1]) == 2
    meta = payload(checkpoint_of(result))["metadata"]
    assert meta["epochs_done"] == 2 and meta["config"]["patience"] == 1


def test_early_stopped_checkpoint_gives_the_reported_test_metrics(runs: dict[str, Run]) -> None:
    result = runs["patience-best"].ok()
    stopped = [line for line in result.lines() if line.startswith("stopped early")]
    assert stopped, result.describe()
    best = int(re.findall(r"best at epoch (\d+)", stopped[0])[0])
    assert best < payload(checkpoint_of(result))["metadata"]["epochs_done"]
    evaluated = run_cli(result.cwd, "evaluate", "out/checkpoint.json").ok()
    reported = TEST_LOSS.fullmatch(result.lines()[-2])
    assert reported, result.describe()
    assert f"loss: {reported.group(1)}" in evaluated.lines(), evaluated.describe()


# --- train: resume and Ctrl-C ------------------------------------------------------------


RESUME_FLAGS = ("--dropout", "0.1", "--weight-decay", "0.01", "--optimizer", "adamw", "--clip", "1")


def assert_same_training(straight: Path, resumed: Path) -> None:
    """Two ``--out`` folders hold bit-identical params and optimizer state and equal metrics."""
    a, b = payload(straight / "checkpoint.json"), payload(resumed / "checkpoint.json")
    assert canonical_json(a["params"]) == canonical_json(b["params"])
    assert canonical_json(a["opt_state"]) == canonical_json(b["opt_state"])
    assert a["metadata"]["epochs_done"] == b["metadata"]["epochs_done"]
    columns, rows_a = metrics_rows(straight / "metrics.csv")
    _, rows_b = metrics_rows(resumed / "metrics.csv")
    assert without_seconds(rows_a, columns) == without_seconds(rows_b, columns)


def test_resume_continues_to_the_uninterrupted_result(tmp_path: Path) -> None:
    flags = small("moons", "--batch-size", "16", "--quiet", *RESUME_FLAGS)
    first = run_many(
        {
            "straight": Job((*flags, "--epochs", "4", "--out", "straight"), tmp_path, hashseed=11),
            "half": Job((*flags, "--epochs", "2", "--out", "half"), tmp_path, hashseed=22),
        }
    )
    first["straight"].ok()
    first["half"].ok()
    resumed = run_cli(
        tmp_path,
        "train",
        "--resume",
        "half/checkpoint.json",
        "--epochs",
        "4",
        "--out",
        "resumed",
        hashseed=33,
    ).ok()
    assert_same_training(tmp_path / "straight", tmp_path / "resumed")
    assert [row[0] for row in metrics_rows(tmp_path / "resumed" / "metrics.csv")[1]] == ["1", "2", "3", "4"]
    assert resumed.lines()[-2:] == first["straight"].lines()[-2:]
    assert re.search(r"resuming after epoch 2", resumed.stdout), resumed.describe()


def wait_for(path: Path, process: subprocess.Popen[bytes], job: Job, timeout: float = 60.0) -> None:
    """Poll until ``path`` exists; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path} appeared:\n{finish(process, job).describe()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)


def assert_interrupted(result: Run, saved: str) -> None:
    assert result.returncode == 130, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnn: "), result.describe()
    assert "interrupted" in lines[0] and saved in lines[0], result.describe()
    assert "Traceback" not in result.stdout + result.stderr


def test_ctrl_c_saves_the_last_epoch_and_resuming_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    # Batch size 1 and 40 epochs: seconds of training left when the first checkpoint appears,
    # however fast the (compiled) steps; cosine makes the result depend on the epoch count.
    flags = small("moons", "--batch-size", "1", "--schedule", "cosine", "--quiet", epochs=40)
    straight_job = Job((*flags, "--out", "straight"), tmp_path, hashseed=5)
    job = Job((*flags, "--out", "stopped"), tmp_path, hashseed=6)
    with ThreadPoolExecutor(max_workers=1) as pool:
        straight = pool.submit(run, straight_job)
        with sigint_raises():
            process = start(job)
        try:
            wait_for(tmp_path / "stopped" / "checkpoint.json", process, job)
            process.send_signal(signal.SIGINT)
            interrupted = finish(process, job)
        finally:
            if process.poll() is None:
                process.kill()
        straight.result().ok()
    assert_interrupted(interrupted, "stopped/checkpoint.json")
    saved = load_checkpoint(tmp_path / "stopped" / "checkpoint.json")
    done = saved.metadata["epochs_done"]
    assert isinstance(done, int) and 1 <= done < 40, done
    resumed = run_cli(tmp_path, "train", "--resume", "stopped/checkpoint.json", "--quiet", "--out", "resumed")
    resumed.ok()
    assert_same_training(tmp_path / "straight", tmp_path / "resumed")


def test_ctrl_c_without_out_saves_a_checkpoint_in_the_working_folder(tmp_path: Path) -> None:
    job = Job(small("moons", epochs=100000), tmp_path, hashseed=7, block=("tqdm",))
    with sigint_raises():
        process = start(job)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        # Wait for the second epoch's line: the first epoch is then surely recorded (see
        # test_ctrl_c_right_after_an_epoch_line_keeps_that_epoch for why not the first line).
        while not re.match(rb"epoch +2/100000 \|", process.stdout.readline()):
            assert time.monotonic() < deadline and process.poll() is None, "no epoch line"
        process.send_signal(signal.SIGINT)
        result = finish(process, job)
    finally:
        if process.poll() is None:
            process.kill()
    assert_interrupted(result, "interrupted-checkpoint.json")
    saved = load_checkpoint(tmp_path / "interrupted-checkpoint.json")
    done = saved.metadata["epochs_done"]
    assert isinstance(done, int) and done >= 1


class InterruptAfterLine(io.StringIO):
    """stdout that raises KeyboardInterrupt (as Ctrl-C would) once a line starting with ``marker`` shows."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.fired = False

    def write(self, text: str) -> int:
        written = super().write(text)
        shown = self.getvalue().rsplit("\r", 1)[-1].rstrip("\n").rsplit("\n", 1)[-1]
        if not self.fired and text.endswith("\n") and shown.startswith(self.marker):
            self.fired = True
            raise KeyboardInterrupt
        return written


INTERRUPT_BUG = (
    "on Ctrl-C, run_train reports and keeps `last`, which on_event updates only after printing the "
    "epoch line and before writing the checkpoint; a Ctrl-C in between loses a finished epoch "
    "or claims one is saved that is not"
)


def test_ctrl_c_right_after_an_epoch_line_keeps_that_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process, to hit the moment deterministically: Ctrl-C just as "epoch 2/3 | ..." is shown."""
    monkeypatch.chdir(tmp_path)
    stream = InterruptAfterLine("epoch 2/3 |")
    status = cli_main([*small("moons", "--out", "out", epochs=3)], out=stream)
    assert status == 130 and stream.fired
    message = capsys.readouterr().err
    assert load_checkpoint(tmp_path / "out" / "checkpoint.json").metadata["epochs_done"] == 2, message


def test_ctrl_c_while_a_checkpoint_is_written_saves_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: Ctrl-C arrives while epoch 2's checkpoint is being fsynced (the slow part of a save)."""
    monkeypatch.chdir(tmp_path)
    real_fsync = os.fsync
    calls = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 5:  # per epoch: checkpoint file, its folder, metrics.csv, its folder
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    status = cli_main([*small("moons", "--quiet", "--out", "out", epochs=3)], out=io.StringIO())
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert status == 130
    message = capsys.readouterr().err
    claimed = re.search(r"last finished epoch \((\d+)\)", message)
    assert claimed, message
    saved = load_checkpoint(tmp_path / "out" / "checkpoint.json").metadata["epochs_done"]
    assert saved == int(claimed.group(1)) == 2, message


# --- evaluate and predict ----------------------------------------------------------------


def split_size(dataset: str) -> int:
    """How many examples the test split of ``dataset`` has (seed 0)."""
    return len(build(Config(dataset=dataset, hidden=(8,), epochs=2)).test)


@pytest.fixture(scope="module")
def uses(runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """``evaluate`` and ``predict`` runs on the checkpoints of :func:`runs`."""
    base = tmp_path_factory.mktemp("use")
    ckpt = {d: str(checkpoint_of(runs[f"dataset-{d}"])) for d in SMALL_DATASETS}
    commands: dict[str, tuple[str, ...]] = {
        **{f"evaluate-{d}": ("evaluate", ckpt[d]) for d in SMALL_DATASETS},
        "evaluate-moons-on-circles": ("evaluate", ckpt["moons"], "--dataset", "circles"),
        "evaluate-moons-on-moons": ("evaluate", ckpt["moons"], "--dataset", "moons"),
        "predict-iris": ("predict", ckpt["iris"], "--input", "5.1,3.5,1.4,0.2"),
        "predict-moons": ("predict", ckpt["moons"], "--input", "0.5,0.25"),
        "predict-sine": ("predict", ckpt["sine"], "--input", "1.5"),
        "predict-negative-first": ("predict", ckpt["moons"], "--input", "-0.5,0.25"),
    }
    return run_many(
        {name: Job(args, base, hashseed=100 + i) for i, (name, args) in enumerate(commands.items())}
    )


def parse_evaluation(result: Run) -> tuple[str, int, str, str | None, list[list[int]] | None]:
    """(where, examples, loss, accuracy, confusion matrix) from ``fnn evaluate``'s output."""
    lines = result.ok().lines()
    first = re.fullmatch(r"evaluated on (.+) \((\d+) examples\)", lines[0])
    loss = re.fullmatch(rf"loss: ({LOSS})", lines[1])
    assert first and loss, result.describe()
    if len(lines) == 4:  # regression: rmse and mae follow, the loss is the mse
        rmse = re.fullmatch(r"rmse: (\d+\.?\d*(?:e-?\d+)?)", lines[2])
        assert rmse and re.fullmatch(r"mae: \S+", lines[3]), result.describe()
        assert abs(float(rmse.group(1)) ** 2 - float(loss.group(1))) <= 1e-3, result.describe()
        return first.group(1), int(first.group(2)), loss.group(1), None, None
    accuracy = re.fullmatch(rf"accuracy: ({PERCENT})", lines[2])
    assert accuracy and lines[3] == "confusion matrix (rows: true class, columns: predicted):", (
        result.describe()
    )
    k = len(lines) - 5
    assert lines[4].split() == [str(j) for j in range(k)], result.describe()
    matrix: list[list[int]] = []
    for i, line in enumerate(lines[5:]):
        cells = [int(cell) for cell in line.split()]
        assert cells[0] == i and len(cells) == k + 1, result.describe()
        matrix.append(cells[1:])
    return first.group(1), int(first.group(2)), loss.group(1), accuracy.group(1), matrix


@pytest.mark.parametrize("dataset", SMALL_DATASETS)
def test_evaluate_reports_the_test_split_like_train_did(
    runs: dict[str, Run], uses: dict[str, Run], dataset: str
) -> None:
    where, n, loss, accuracy, matrix = parse_evaluation(uses[f"evaluate-{dataset}"])
    trained = runs[f"dataset-{dataset}"].lines()
    assert where == f"the {dataset} test split"
    assert n == split_size(dataset)
    assert trained[1] == f"test loss: {loss}"
    if dataset == REGRESSION:
        assert accuracy is None and matrix is None
        return
    assert accuracy is not None and matrix is not None
    assert trained[2] == f"test accuracy: {accuracy}"
    assert sum(map(sum, matrix)) == n
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    assert f"{100 * correct / n:.1f}%" == accuracy


def test_evaluate_on_a_compatible_dataset(uses: dict[str, Run]) -> None:
    where, n, _, accuracy, matrix = parse_evaluation(uses["evaluate-moons-on-circles"])
    assert where == "all of circles" and n == 200
    assert accuracy is not None and matrix is not None and len(matrix) == 2
    assert sum(map(sum, matrix)) == n
    where, n, _, _, _ = parse_evaluation(uses["evaluate-moons-on-moons"])
    assert (where, n) == ("the moons test split", split_size("moons"))


def parse_probabilities(result: Run) -> tuple[list[float], int]:
    """The class probabilities ``fnn predict`` printed and the class it marked."""
    probs: list[float] = []
    marked: list[int] = []
    for k, line in enumerate(result.ok().lines()):
        match = re.fullmatch(rf"class {k}: (\d\.\d{{4}})(  <- predicted)?", line)
        assert match, result.describe()
        probs.append(float(match.group(1)))
        if match.group(2):
            marked.append(k)
    assert len(marked) == 1, result.describe()
    return probs, marked[0]


@pytest.mark.parametrize(("case", "classes"), [("predict-iris", 3), ("predict-moons", 2)])
def test_predict_prints_class_probabilities_and_marks_the_argmax(
    uses: dict[str, Run], case: str, classes: int
) -> None:
    probs, marked = parse_probabilities(uses[case])
    assert len(probs) == classes
    assert math.isclose(sum(probs), 1.0, abs_tol=classes * 5e-5)
    assert probs[marked] == max(probs)


def test_predict_for_regression_prints_the_prediction(uses: dict[str, Run]) -> None:
    lines = uses["predict-sine"].ok().lines()
    assert len(lines) == 1 and lines[0].startswith("prediction: "), lines
    assert math.isfinite(float(lines[0].removeprefix("prediction: ")))


def test_predict_accepts_a_negative_first_value(uses: dict[str, Run]) -> None:
    probs, _ = parse_probabilities(uses["predict-negative-first"])
    assert len(probs) == 2


# --- bad input ---------------------------------------------------------------------------

CONFIG_TYPES = "a hand-edited checkpoint config with a wrong-typed value (checksum recomputed) escapes as "


def _case(
    name: str, *args: str, says: str | None = None, xfail: str | None = None
) -> tuple[str, tuple[str, ...], str | None, str | None]:
    return name, args, says, xfail


BAD_CASES = [
    _case("unknown-flag", "train", "--dataset", "iris", "--bogus", says="--bogus"),
    _case("unknown-command", "fit", says="fit"),
    _case("no-command", says="command"),
    _case("unknown-dataset", "train", "--dataset", "mnist", says="mnist"),
    _case("unknown-activation", "train", "--activation", "gelu", says="gelu"),
    _case("unknown-optimizer", "train", "--optimizer", "rmsprop", says="rmsprop"),
    _case("unknown-schedule", "train", "--schedule", "linear", says="linear"),
    _case("epochs-0", "train", "--dataset", "iris", "--epochs", "0", says="--epochs"),
    _case("epochs-not-int", "train", "--dataset", "iris", "--epochs", "two", says="--epochs"),
    _case("lr-negative", "train", "--dataset", "iris", "--lr", "-1", says="--lr"),
    _case("lr-nan", "train", "--dataset", "iris", "--lr", "nan", says="--lr"),
    _case("lr-inf", "train", "--dataset", "iris", "--lr", "inf", says="finite"),
    _case("dropout-1.5", "train", "--dataset", "iris", "--dropout", "1.5", says="--dropout"),
    _case("dropout-negative", "train", "--dataset", "iris", "--dropout", "-0.1", says="--dropout"),
    _case(
        "momentum-1",
        "train",
        "--dataset",
        "iris",
        "--optimizer",
        "momentum",
        "--momentum",
        "1",
        says="--momentum",
    ),
    _case(
        "momentum-with-adam",
        "train",
        "--dataset",
        "iris",
        "--momentum",
        "0.5",
        says="--optimizer sgd or momentum",
    ),
    _case(
        "weight-decay-negative", "train", "--dataset", "iris", "--weight-decay", "-1", says="--weight-decay"
    ),
    _case("clip-0", "train", "--dataset", "iris", "--clip", "0", says="--clip"),
    _case("batch-size-0", "train", "--dataset", "iris", "--batch-size", "0", says="--batch-size"),
    _case("patience-0", "train", "--dataset", "iris", "--patience", "0", says="--patience"),
    _case("hidden-0", "train", "--dataset", "iris", "--hidden", "0", says="--hidden"),
    _case("hidden-letters", "train", "--dataset", "iris", "--hidden", "a,b", says="--hidden"),
    _case("hidden-empty", "train", "--dataset", "iris", "--hidden", "", says="--hidden"),
    _case("out-under-a-file", *iris()[:-2], "--out", "a-file/sub", says="--out"),
    _case("out-is-a-file", *iris()[:-2], "--out", "a-file", says="--out"),
    _case("resume-missing", "train", "--resume", "missing.json", says="missing.json"),
    _case("resume-with-other-flags", "train", "--resume", "moons.json", "--lr", "0.5", says="drop --lr"),
    _case("resume-truncated", "train", "--resume", "truncated.json", says="truncated.json"),
    _case("resume-corrupt", "train", "--resume", "corrupt.json", says="checksum"),
    _case("resume-binary", "train", "--resume", "binary.json", says="binary.json"),
    _case("resume-other-format", "train", "--resume", "other-format.json", says="other-format.json"),
    _case("resume-other-kind", "train", "--resume", "other-kind.json", says="fnn train"),
    _case("resume-other-shape", "train", "--resume", "other-shape.json", says="fit"),
    _case("resume-no-opt-state", "train", "--resume", "no-opt-state.json", says="optimizer state"),
    _case("resume-directory", "train", "--resume", ".", says="cannot read"),
    _case("evaluate-missing", "evaluate", "missing.json", says="missing.json"),
    _case("evaluate-truncated", "evaluate", "truncated.json", says="truncated.json"),
    _case("evaluate-other-kind", "evaluate", "other-kind.json", says="fnn train"),
    _case("evaluate-other-shape", "evaluate", "other-shape.json", says="fit"),
    _case(
        "evaluate-incompatible-features",
        "evaluate",
        "iris.json",
        "--dataset",
        "moons",
        says="features",
    ),
    _case("evaluate-incompatible-classes", "evaluate", "moons.json", "--dataset", "spirals", says="outputs"),
    _case("evaluate-unknown-dataset", "evaluate", "iris.json", "--dataset", "mnist", says="mnist"),
    _case("predict-no-input", "predict", "iris.json", says="--input"),
    _case("predict-too-few", "predict", "iris.json", "--input", "1,2", says="--input"),
    _case("predict-too-many", "predict", "iris.json", "--input", "1,2,3,4,5", says="--input"),
    _case("predict-not-numbers", "predict", "iris.json", "--input", "a,b,c,d", says="--input"),
    _case("predict-nan", "predict", "iris.json", "--input", "nan,1,2,3", says="--input"),
    _case("predict-empty", "predict", "iris.json", "--input", "", says="--input"),
    _case(
        "predict-underscore",
        "predict",
        "iris.json",
        "--input",
        "1,2_0,3,4",
        says="--input value 2: '2_0' is not a number (--input takes comma-separated numbers)",
    ),
    _case("predict-other-shape", "predict", "other-shape.json", "--input", "1,2,3,4", says="fit"),
    _case(
        "evaluate-config-seed-str",
        "evaluate",
        "seed-str.json",
    ),
    _case(
        "predict-config-hidden-bool",
        "predict",
        "hidden-bool.json",
        "--input",
        "1,2,3,4",
    ),
    _case(
        "resume-config-epochs-float",
        "train",
        "--resume",
        "epochs-float.json",
    ),
    _case(
        "resume-config-batch-size-float",
        "train",
        "--resume",
        "batch-size-float.json",
    ),
]


def _set_config(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(inner: dict[str, Any]) -> None:
        inner["metadata"]["config"][key] = value

    return edit


@pytest.fixture(scope="module")
def failures(runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every run of :data:`BAD_CASES`, in one folder holding the damaged files they name."""
    base = tmp_path_factory.mktemp("bad")
    good = checkpoint_of(runs["dataset-iris"])
    raw = good.read_bytes()
    shutil.copy(good, base / "iris.json")
    shutil.copy(checkpoint_of(runs["dataset-moons"]), base / "moons.json")
    (base / "a-file").write_text("not a folder\n")
    (base / "truncated.json").write_bytes(raw[: len(raw) // 2])
    at = raw.index(b'"params":')
    while not (raw[at : at + 1].isdigit() and raw[at - 1 : at].isdigit()):  # a digit inside a number
        at += 1
    flipped = b"2" if raw[at : at + 1] == b"1" else b"1"
    (base / "corrupt.json").write_bytes(raw[:at] + flipped + raw[at + 1 :])
    (base / "binary.json").write_bytes(bytes(range(256)))
    (base / "other-format.json").write_text('{"format": "something-else", "payload": {}}\n')

    def other_kind(inner: dict[str, Any]) -> None:
        inner["metadata"]["kind"] = "something-else"

    def no_opt_state(inner: dict[str, Any]) -> None:
        inner["opt_state"] = None

    rewrite_checkpoint(good, base / "other-kind.json", other_kind)
    rewrite_checkpoint(good, base / "no-opt-state.json", no_opt_state)
    rewrite_checkpoint(good, base / "other-shape.json", _set_config("hidden", [16]))
    rewrite_checkpoint(good, base / "seed-str.json", _set_config("seed", "abc"))
    rewrite_checkpoint(good, base / "hidden-bool.json", _set_config("hidden", [True]))
    rewrite_checkpoint(good, base / "epochs-float.json", _set_config("epochs", 2.5))
    rewrite_checkpoint(good, base / "batch-size-float.json", _set_config("batch_size", 2.5))
    jobs = {name: Job(args, base, hashseed=200 + i) for i, (name, args, _, _) in enumerate(BAD_CASES)}
    return run_many(jobs)


def test_rewritten_checkpoints_pass_the_integrity_check(tmp_path: Path, runs: dict[str, Run]) -> None:
    """The damaged files above reach the checks behind the checksum (so they test those)."""
    rewrite_checkpoint(checkpoint_of(runs["dataset-iris"]), tmp_path / "copy.json", lambda inner: None)
    assert load_checkpoint(tmp_path / "copy.json").metadata["epochs_done"] == 2
    evaluated = run_cli(tmp_path, "evaluate", "copy.json").ok().lines()[1:3]
    assert [f"test {line}" for line in evaluated] == runs["dataset-iris"].lines()[1:3]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        pytest.param(
            name, says, id=name, marks=[pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        )
        for name, _, says, xfail in BAD_CASES
    ],
)
def test_bad_input_fails_with_one_line_and_no_traceback(
    failures: dict[str, Run], name: str, says: str | None
) -> None:
    result = failures[name]
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.describe()
    line = result.stderr.rstrip("\n")
    assert line.startswith("fnn: ") and line[len("fnn: ") :].strip(), result.describe()
    if says is not None:
        assert says in line, result.describe()


# --- plots -------------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib (the plot extra) is not installed")
@pytest.mark.parametrize("dataset", ["moons", "sine", "iris"])
def test_plot_writes_a_png_into_out(runs: dict[str, Run], dataset: str) -> None:
    result = runs[f"plot-{dataset}"].ok()
    plotted = [line.removeprefix("plot: ") for line in result.lines() if line.startswith("plot: ")]
    assert len(plotted) == 1, result.describe()
    path = result.cwd / plotted[0]
    assert path.parent == result.out and path.suffix == ".png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_without_matplotlib_says_how_to_install_it_before_training(
    runs: dict[str, Run],
) -> None:
    result = runs["plot-missing"]
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnn: "), result.describe()
    assert "matplotlib" in lines[0] and "pip install" in lines[0], result.describe()
    # it says so at once, before spending any time on training
    assert not (result.out / "checkpoint.json").exists()
    assert "test loss" not in result.stdout


# --- the command itself ------------------------------------------------------------------


def test_help_lists_the_subcommands_and_every_train_flag(tmp_path: Path) -> None:
    top = run_cli(tmp_path, "--help").ok()
    assert all(command in top.stdout for command in ("train", "evaluate", "predict"))
    train = run_cli(tmp_path, "train", "--help").ok()
    flags = "dataset hidden activation epochs batch-size optimizer lr momentum weight-decay dropout clip"
    flags += " schedule patience seed out resume plot quiet"
    assert [f for f in flags.split() if f"--{f}" not in train.stdout] == []


def test_the_fnn_console_script_is_installed(tmp_path: Path) -> None:
    scripts = [Path(sys.executable).parent / "fnn", Path(sysconfig.get_path("scripts")) / "fnn"]
    found = shutil.which("fnn") or next((str(p) for p in scripts if p.is_file()), None)
    if found is None:
        pytest.fail(
            f"no `fnn` on PATH or in {scripts[0].parent}: the installed package predates "
            "[project.scripts] in pyproject.toml; re-run `pip install -e '.[test]'`"
        )
    done = subprocess.run([found, "--help"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: fnn"), done.stdout
    assert all(command in done.stdout for command in ("train", "evaluate", "predict"))


def test_default_digits_training_ends_with_the_test_metrics(tmp_path: Path) -> None:
    """The only digits run: the default command, cut to one epoch and a smaller net."""
    result = run_cli(tmp_path, "train", "--epochs", "1", "--hidden", "16", hashseed=4242).ok()
    lines = result.lines()
    assert header(result).group(1, 5) == ("digits", "64-16-10")
    assert TEST_LOSS.fullmatch(lines[-2]), result.describe()
    accuracy = TEST_ACCURACY.fullmatch(lines[-1])
    assert accuracy, result.describe()
    assert float(accuracy.group(1).rstrip("%")) >= 50.0  # one epoch already learns most digits
