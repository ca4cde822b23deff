"""The command line's edges, each in real subprocesses: Ctrl-C outside training, resuming into
the run's folder, nothing left to resume, where the progress bar goes, a closed stdout,
empty hidden sizes, ``--version``, defaults in ``--help``, and checkpoints that the
library's own ``save_checkpoint`` wrote."""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from functional_nn import MLP, random
from functional_nn.cli.assembly import run_keys
from functional_nn.datasets import load
from functional_nn.functional import softmax
from functional_nn.serialization import load_checkpoint, save_checkpoint
from functional_nn.train import evaluate
from tests.functional_nn.cli_helpers import (
    TIMEOUT,
    Job,
    Run,
    cli_env,
    command,
    metrics_rows,
    run_cli,
    run_many,
    sigint_raises,
)

TRAIN = ("train", "--dataset", "moons", "--hidden", "8", "--quiet")

# A launcher that makes one function (module:attribute) announce itself in a file and
# then wait, so that a SIGINT sent once the file appears arrives exactly inside it.
_STALL = """\
import importlib, pathlib, sys, time
module_name, attribute = sys.argv[1].split(":")
module = importlib.import_module(module_name)
real = getattr(module, attribute)

def stalled(*args, **kwargs):
    pathlib.Path("stalled").touch()
    time.sleep(60)
    return real(*args, **kwargs)

setattr(module, attribute, stalled)
from functional_nn.cli import main
sys.exit(main(sys.argv[2:]))
"""


def one_error_line(result: Run, *says: str) -> str:
    """The single stderr line of a failed run, checked to mention each of ``says``."""
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnn: "), result.describe()
    assert all(text in lines[0] for text in says), result.describe()
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``run/``: one epoch of moons."""
    base = tmp_path_factory.mktemp("trained")
    run_cli(base, *TRAIN, "--epochs", "1", "--out", "run").ok()
    return base


# --- Ctrl-C outside training --------------------------------------------------------------


def interrupted_inside(tmp_path: Path, target: str, *args: str) -> Run:
    """Run ``fnn args`` with ``target`` stalled, and send SIGINT once it is inside it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with sigint_raises():
        process = subprocess.Popen(
            [sys.executable, "-c", _STALL, target, *args],
            cwd=tmp_path,
            env=cli_env(0),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (tmp_path / "stalled").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the stalled function was never reached"
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    return Run(tuple(args), tmp_path, process.returncode, stdout.decode(), stderr.decode())


@pytest.mark.parametrize(
    ("case", "target", "args"),
    [
        ("train-preparing-data", "functional_nn.datasets:load", (*TRAIN, "--epochs", "1")),
        ("evaluate-preparing-data", "functional_nn.datasets:load", ("evaluate", "run/checkpoint.json")),
        (
            "evaluate-reading",
            "functional_nn.cli.commands:load_checkpoint",
            ("evaluate", "run/checkpoint.json"),
        ),
        (
            "predict-reading",
            "functional_nn.cli.commands:load_checkpoint",
            ("predict", "run/checkpoint.json", "--input", "0.5,0.5"),
        ),
    ],
)
def test_ctrl_c_outside_training_prints_one_line_and_exits_130(
    trained: Path, case: str, target: str, args: tuple[str, ...]
) -> None:
    result = interrupted_inside(trained / case, target, *[a.replace("run/", "../run/") for a in args])
    assert result.returncode == 130, result.describe()
    assert one_error_line(result, "interrupted") == "fnn: interrupted"
    assert result.stdout == "", result.describe()


# --- resuming -----------------------------------------------------------------------------


def test_resume_without_out_continues_in_the_run_folder_and_out_overrides(tmp_path: Path) -> None:
    runs = run_many(
        {
            "straight": Job((*TRAIN, "--epochs", "3", "--out", "straight"), tmp_path),
            "first": Job((*TRAIN, "--epochs", "1", "--out", "run"), tmp_path),
        }
    )
    runs["first"].ok()
    runs["straight"].ok()
    elsewhere = run_cli(
        tmp_path, "train", "--resume", "run/checkpoint.json", "--epochs", "2", "--out", "other"
    )
    assert "checkpoint: other/checkpoint.json" in elsewhere.ok().lines()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.json").metadata["epochs_done"] == 1  # untouched
    here = run_cli(tmp_path, "train", "--resume", "run/checkpoint.json", "--epochs", "3", "--quiet").ok()
    assert here.lines()[0] == "checkpoint: run/checkpoint.json", here.describe()
    assert here.lines()[1:] == runs["straight"].lines()[1:]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.json").metadata["epochs_done"] == 3
    assert [row[0] for row in metrics_rows(tmp_path / "run" / "metrics.csv")[1]] == ["1", "2", "3"]


def test_resuming_with_no_epochs_left_says_so(trained: Path) -> None:
    ckpt = "run/checkpoint.json"
    results = run_many(
        {
            "same": Job(("train", "--resume", ckpt, "--epochs", "1"), trained),
            "config's": Job(("train", "--resume", ckpt), trained),
        }
    )
    line = one_error_line(results["same"], "already trained 1 epochs", "--epochs 1", "above 1")
    assert results["same"].returncode == 2, line
    one_error_line(results["config's"], "already trained 1 epochs", "its 1 epochs")
    assert load_checkpoint(trained / ckpt).metadata["epochs_done"] == 1


# --- the progress bar -----------------------------------------------------------------------


def test_the_bar_is_drawn_on_a_terminal_stderr_and_not_with_no_progress(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")

    def with_terminal_stderr(*flags: str) -> tuple[int, str, str]:
        primary, secondary = pty.openpty()
        # a fresh terminal is 0 columns wide; tqdm draws nothing in that
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        process = subprocess.Popen(
            command(("train", "--dataset", "moons", "--hidden", "8", "--epochs", "2", *flags)),
            cwd=tmp_path,
            env=cli_env(0),
            stdout=subprocess.PIPE,
            stderr=secondary,
        )
        os.close(secondary)
        shown: list[bytes] = []

        def drain() -> None:
            while True:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed: the process ended
                    return
                if not chunk:
                    return
                shown.append(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        stdout, _ = process.communicate(timeout=TIMEOUT)
        reader.join(TIMEOUT)
        os.close(primary)
        return process.returncode, stdout.decode(), b"".join(shown).decode(errors="replace")

    status, stdout, terminal = with_terminal_stderr()
    assert status == 0 and "batch/s" in terminal and "\r" in terminal, terminal
    assert "\r" not in stdout and re.search(r"^epoch 2/2 \|", stdout, re.MULTILINE), stdout
    status, stdout, terminal = with_terminal_stderr("--no-progress")
    assert status == 0 and terminal == "" and "epoch 2/2 |" in stdout, terminal


# --- a closed stdout ----------------------------------------------------------------------


def test_a_closed_stdout_ends_quietly(trained: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write gets EPIPE
    try:
        done = subprocess.run(
            command(("evaluate", "run/checkpoint.json")),
            cwd=trained,
            env=cli_env(0),
            stdout=writer,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(writer)
    assert done.stderr == b"", done.stderr.decode()
    assert done.returncode in (0, 141), done.returncode


def test_evaluate_piped_into_head_prints_its_first_line_quietly(trained: Path) -> None:
    evaluate_command = shlex.join(command(("evaluate", "run/checkpoint.json")))
    pipeline = f"{evaluate_command} | head -1; echo status ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", pipeline], cwd=trained, env=cli_env(0), capture_output=True, text=True, check=False
    )
    assert done.stderr == "", done.stderr
    first, status = done.stdout.splitlines()
    assert first.startswith("evaluated on the moons test split") and status in ("status 0", "status 141")


# --- flags ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flag_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("flags")
    return run_many(
        {
            "hidden-empty-size": Job(("train", "--hidden", "32,,32"), base),
            "hidden-trailing-comma": Job(("train", "--hidden", "32,"), base),
            "version": Job(("--version",), base),
            "help": Job(("train", "--help"), base),
            "evaluate-help": Job(("evaluate", "--help"), base),
        }
    )


@pytest.mark.parametrize("case", ["hidden-empty-size", "hidden-trailing-comma"])
def test_an_empty_hidden_size_is_refused_clearly(flag_runs: dict[str, Run], case: str) -> None:
    one_error_line(flag_runs[case], "--hidden", "empty size")
    assert flag_runs[case].returncode == 2


def test_version_prints_the_package_version(flag_runs: dict[str, Run]) -> None:
    result = flag_runs["version"].ok()
    assert result.stdout == f"fnn {importlib.metadata.version('functional-nn')}\n", result.describe()


def test_help_shows_the_defaults(flag_runs: dict[str, Run]) -> None:
    text = " ".join(flag_runs["help"].ok().stdout.split())  # argparse wraps lines
    for flag, default in [
        ("--dataset", "digits"),
        ("--model", "mlp"),
        ("--hidden", "32"),
        ("--channels", "8"),
        ("--activation", "relu"),
        ("--epochs", "12"),
        ("--batch-size", "32"),
        ("--optimizer", "adam"),
        ("--lr", "0.1 for sgd and momentum, 0.01 for adam and adamw"),
        ("--weight-decay", "0.0"),
        ("--dropout", "0.0"),
        ("--schedule", "constant"),
        ("--seed", "0"),
        ("--progress", "only when stderr is a terminal"),
    ]:
        assert re.search(rf"{re.escape(flag)}\b.*?\(default: {re.escape(default)}[);]", text), flag
    assert "(default: relu)" in " ".join(flag_runs["evaluate-help"].ok().stdout.split())


# --- checkpoints written by the library ---------------------------------------------------------


MODEL = MLP(2, [8, 8, 2])


@pytest.fixture(scope="module")
def library_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("library")
    save_checkpoint(base / "mlp.json", MODEL.init(random.key(5)))
    save_checkpoint(base / "not-mlp.json", {"w": [[1.0, 2.0]]})
    jobs = {
        "predict": ("predict", "mlp.json", "--input", "0.5,-0.3"),
        "predict-tanh": ("predict", "mlp.json", "--input", "0.5,-0.3", "--activation", "tanh"),
        "evaluate": ("evaluate", "mlp.json", "--dataset", "moons"),
        "evaluate-no-dataset": ("evaluate", "mlp.json"),
        "evaluate-wrong-dataset": ("evaluate", "mlp.json", "--dataset", "iris"),
        "predict-not-mlp": ("predict", "not-mlp.json", "--input", "1,2"),
    }
    return run_many({name: Job(args, base) for name, args in jobs.items()})


def printed_probabilities(result: Run) -> list[float]:
    return [float(line.split(": ")[1].split()[0]) for line in result.ok().lines()]


@pytest.mark.parametrize(("case", "activation"), [("predict", "relu"), ("predict-tanh", "tanh")])
def test_predict_reads_a_library_checkpoint_with_the_given_activation(
    library_runs: dict[str, Run], case: str, activation: str
) -> None:
    model = MLP(2, [8, 8, 2], activation=activation)  # type: ignore[arg-type]  # a literal name
    logits = model.apply(MODEL.init(random.key(5)), [0.5, -0.3])
    expected = [round(float(p), 4) for p in softmax([float(v) for v in logits])]
    assert printed_probabilities(library_runs[case]) == expected


def test_evaluate_reads_a_library_checkpoint_on_a_named_dataset(library_runs: dict[str, Run]) -> None:
    lines = library_runs["evaluate"].ok().lines()
    data = load("moons", key=run_keys(0).data)
    loss, _ = evaluate(MODEL, MODEL.init(random.key(5)), data)
    where = "all of moons (not standardized: the checkpoint holds no standardizer)"
    assert lines[0] == f"evaluated on {where} ({len(data)} examples)"
    assert lines[1] == f"loss: {loss:.4f}"


def test_what_a_library_checkpoint_lacks_is_named(library_runs: dict[str, Run]) -> None:
    one_error_line(library_runs["evaluate-no-dataset"], "no run", "--dataset")
    one_error_line(library_runs["evaluate-wrong-dataset"], "iris has 4 features", "takes 2")
    one_error_line(library_runs["predict-not-mlp"], "not written by `fnn train`", "MLP")


def test_activation_is_refused_for_a_run_checkpoint(trained: Path) -> None:
    result = run_cli(trained, "predict", "run/checkpoint.json", "--input", "1,2", "--activation", "tanh")
    one_error_line(result, "--activation", "names its own")
