"""``fnn sweep``: the grid, its run folders and summary, failed runs, reruns, in real subprocesses."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import time
from pathlib import Path

import pytest

from functional_nn.cli.arguments import parser
from functional_nn.cli.config import UsageError
from functional_nn.cli.sweep import plan
from tests.functional_nn.cli_helpers import Job, finish, payload, run_cli, sigint_raises, start

BASE = ("--dataset", "moons", "--epochs", "3", "--batch-size", "16")


def _summary(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _plan(*argv: str) -> list[str]:
    args, extra = parser().parse_known_args(["sweep", "--out", "x", *argv])
    assert isinstance(args, argparse.Namespace)
    return [run.name for run in plan(args, extra)]


def test_the_grid_is_every_combination_named_by_what_varies() -> None:
    names = _plan("--lr", "0.01|0.1", "--hidden", "16|32,32", "--dataset", "moons")
    assert names == ["lr=0.01_hidden=16", "lr=0.01_hidden=32+32", "lr=0.1_hidden=16", "lr=0.1_hidden=32+32"]
    assert _plan("--seeds", "3") == ["seed=0", "seed=1", "seed=2"]
    assert _plan("--seed", "4") == ["run"]  # --seed is a train flag, not short for --seeds


def test_sample_keeps_a_seeded_subset_in_grid_order() -> None:
    grid = _plan("--lr", "0.01|0.02|0.05|0.1", "--seeds", "3")
    sample = _plan("--lr", "0.01|0.02|0.05|0.1", "--seeds", "3", "--sample", "5")
    assert len(sample) == 5 and set(sample) <= set(grid)
    assert sample == sorted(sample, key=grid.index)
    assert sample == _plan("--lr", "0.01|0.02|0.05|0.1", "--seeds", "3", "--sample", "5")
    other = _plan("--lr", "0.01|0.02|0.05|0.1", "--seeds", "3", "--sample", "5", "--sample-seed", "1")
    assert other != sample


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--lr", "0.1|-1"), "--lr must be > 0"),
        (("--plot",), "--plot does not apply"),
        (("--lr", "0.1||0.2"), "empty value"),
        (("--seed", "1", "--seeds", "2"), "not both"),
        (("--lr",), "needs a value"),
        (("--lr", "0.1", "--lr", "0.2"), "given twice"),
    ],
)
def test_bad_sweeps_are_refused_before_any_run(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _plan(*argv)


def test_a_sweep_on_workers_trains_each_config_as_train_does_and_a_rerun_skips_them(tmp_path: Path) -> None:
    sweep = run_cli(
        tmp_path, "sweep", *BASE, "--lr", "0.01|0.1", "--hidden", "8|16,16", "--workers", "2", "--out", "s"
    )
    assert sweep.returncode == 0, sweep.describe()
    rows = _summary(tmp_path / "s" / "summary.csv")
    assert [row["status"] for row in rows] == ["finished"] * 4
    losses = [float(row["val_loss"]) for row in rows]
    assert losses == sorted(losses)
    assert {row["run"] for row in rows} == {
        "lr=0.01_hidden=8",
        "lr=0.01_hidden=16+16",
        "lr=0.1_hidden=8",
        "lr=0.1_hidden=16+16",
    }
    alone = run_cli(tmp_path, "train", *BASE, "--lr", "0.1", "--hidden", "16,16", "--out", "alone", "--quiet")
    assert alone.returncode == 0
    in_sweep = payload(tmp_path / "s" / "lr=0.1_hidden=16+16" / "checkpoint.json")["params"]
    assert json.dumps(in_sweep) == json.dumps(payload(tmp_path / "alone" / "checkpoint.json")["params"])
    again = run_cli(tmp_path, "sweep", *BASE, "--lr", "0.01|0.1", "--hidden", "8|16,16", "--out", "s")
    assert again.returncode == 0
    assert sum("finished before, skipped" in line for line in again.lines()) == 4
    assert "sweep: 4 runs, 0 to train" in again.stdout
    assert _summary(tmp_path / "s" / "summary.csv") == rows


def test_a_failed_run_is_named_with_its_reason_and_the_others_are_kept(tmp_path: Path) -> None:
    sweep = run_cli(tmp_path, "sweep", *BASE, "--lr", "0.1|1e300", "--out", "s")
    assert sweep.returncode == 1
    assert "1 runs failed: lr=1e300" in sweep.stderr
    finished, failed = _summary(tmp_path / "s" / "summary.csv")
    assert (finished["run"], finished["status"]) == ("lr=0.1", "finished")
    assert (failed["run"], failed["status"]) == ("lr=1e300", "failed")
    assert "diverged at epoch 1" in failed["reason"]
    assert (tmp_path / "s" / "lr=0.1" / "checkpoint.json").exists()
    again = run_cli(tmp_path, "sweep", *BASE, "--lr", "0.1|1e300", "--out", "s")
    assert "lr=0.1: finished before, skipped" in again.stdout and "sweep: 2 runs, 1 to train" in again.stdout


def test_an_interrupted_sweep_keeps_what_it_finished_and_a_rerun_completes_it(tmp_path: Path) -> None:
    flags = ("sweep", "--dataset", "moons", "--epochs", "30", "--batch-size", "8", "--lr", "0.05|0.1")
    job = Job((*flags, "--out", "s"), tmp_path)
    first = tmp_path / "s" / "lr=0.05" / "checkpoint.json"
    with sigint_raises():
        process = start(job)
        deadline = time.monotonic() + 120
        while not first.exists():  # the first run has finished an epoch
            assert time.monotonic() < deadline and process.poll() is None, "the sweep did not start"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stopped = finish(process, job)
    assert stopped.returncode == 130, stopped.describe()
    assert "sweep interrupted; rerun the same command to continue" in stopped.stderr
    assert (tmp_path / "s" / "summary.csv").exists()
    again = run_cli(tmp_path, *flags, "--out", "s")
    assert again.returncode == 0, again.describe()
    assert [row["status"] for row in _summary(tmp_path / "s" / "summary.csv")] == ["finished", "finished"]
    alone = run_cli(tmp_path, "train", *flags[1:7], "--lr", "0.05", "--out", "alone", "--quiet")
    assert alone.returncode == 0
    assert payload(first)["params"] == payload(tmp_path / "alone" / "checkpoint.json")["params"]
