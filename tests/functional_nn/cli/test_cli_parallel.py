"""``fnn train --shards/--workers/--scheduler`` in real subprocesses, a Dask cluster included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest

from tests.functional_nn.cli_helpers import Job, cli_env, finish, payload, run_cli, start

SMALL = ("train", "--dataset", "moons", "--hidden", "8", "--batch-size", "16", "--quiet")


def _params(run_dir: Path) -> str:
    return json.dumps(payload(run_dir / "checkpoint.json")["params"], sort_keys=True)


def _config(run_dir: Path) -> dict[str, object]:
    config = payload(run_dir / "checkpoint.json")["metadata"]["config"]
    assert isinstance(config, dict)
    return config


def test_local_workers_give_the_in_process_result_and_save_their_shards(tmp_path: Path) -> None:
    pooled = run_cli(tmp_path, *SMALL, "--epochs", "2", "--workers", "2", "--out", "pooled")
    here = run_cli(tmp_path, *SMALL, "--epochs", "2", "--shards", "2", "--out", "here")
    single = run_cli(tmp_path, *SMALL, "--epochs", "2", "--out", "single")
    assert pooled.returncode == here.returncode == single.returncode == 0, pooled.describe()
    assert _params(tmp_path / "pooled") == _params(tmp_path / "here")
    assert _config(tmp_path / "pooled")["shards"] == 2 and _config(tmp_path / "single")["shards"] == 1
    headline = run_cli(tmp_path, *SMALL[:-1], "--epochs", "1", "--workers", "2", "--shards", "3")
    assert headline.returncode == 0
    assert headline.lines()[0].endswith("1 epochs, 3 shards on 2 local workers")


def test_a_resumed_run_keeps_its_shards_and_may_change_its_workers(tmp_path: Path) -> None:
    straight = run_cli(tmp_path, *SMALL, "--epochs", "3", "--shards", "2", "--out", "straight")
    first = run_cli(tmp_path, *SMALL, "--epochs", "1", "--workers", "2", "--out", "split")
    assert straight.returncode == first.returncode == 0, first.describe()
    resumed = run_cli(
        tmp_path, "train", "--resume", "split/checkpoint.json", "--epochs", "3", "--workers", "1"
    )
    assert resumed.returncode == 0, resumed.describe()
    assert _params(tmp_path / "split") == _params(tmp_path / "straight")
    assert _config(tmp_path / "split")["shards"] == 2
    refused = run_cli(
        tmp_path, "train", "--resume", "split/checkpoint.json", "--epochs", "4", "--shards", "3"
    )
    assert refused.returncode == 2 and "drop --shards" in refused.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"), "choose one"),
        (("--workers", "0"), "--workers must be in [1, 256], got 0"),
        (("--shards", "0"), "--shards must be in [1, 2147483647], got 0"),
    ],
)
def test_bad_parallel_flags_are_one_line_errors(tmp_path: Path, flags: tuple[str, ...], message: str) -> None:
    result = run_cli(tmp_path, *SMALL, "--epochs", "1", *flags)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _dask(tmp_path: Path, module: str, *args: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{module.rsplit('.', 1)[-1]}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=tmp_path, env=cli_env(0), stdout=log, stderr=log
    )


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """A Dask scheduler and one worker process with two single-threaded workers, on 127.0.0.1."""
    address_file = tmp_path / "scheduler.json"
    common = ("--no-dashboard", "--scheduler-file", str(address_file))
    scheduler = _dask(
        tmp_path, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", *common
    )
    processes = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() or not address_file.read_text().strip():
            assert time.monotonic() < deadline and scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker_args = ("--host", "127.0.0.1", "--nworkers", "2", "--nthreads", "1", *common)
        processes.append(_dask(tmp_path, "distributed.cli.dask_worker", *worker_args))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_training_on_a_dask_scheduler_equals_training_here(tmp_path: Path, dask_scheduler: str) -> None:
    here = run_cli(tmp_path, *SMALL, "--epochs", "2", "--shards", "2", "--out", "here")
    dask = run_cli(
        tmp_path,
        *SMALL[:-1],
        "--epochs",
        "2",
        "--shards",
        "2",
        "--scheduler",
        dask_scheduler,
        "--out",
        "dask",
    )
    assert here.returncode == 0 and dask.returncode == 0, dask.describe()
    assert dask.lines()[0].endswith(f"2 shards on the Dask cluster at {dask_scheduler}")
    assert _params(tmp_path / "dask") == _params(tmp_path / "here")


def test_a_sweep_runs_its_configs_on_a_dask_cluster(tmp_path: Path, dask_scheduler: str) -> None:
    sweep = run_cli(
        tmp_path,
        "sweep",
        *SMALL[1:-1],
        "--epochs",
        "2",
        "--lr",
        "0.01|0.1",
        "--scheduler",
        dask_scheduler,
        "--out",
        "s",
    )
    assert sweep.returncode == 0, sweep.describe()
    assert "summary: s/summary.csv (2 of 2 finished)" in sweep.stdout
    alone = run_cli(tmp_path, *SMALL, "--epochs", "2", "--lr", "0.1", "--out", "alone")
    assert alone.returncode == 0
    assert _params(tmp_path / "s" / "lr=0.1") == _params(tmp_path / "alone")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")
def test_a_killed_worker_ends_the_run_naming_shard_and_step_and_resume_finishes_it(tmp_path: Path) -> None:
    flags = (*SMALL, "--epochs", "40", "--batch-size", "8")
    job = Job((*flags, "--workers", "2", "--out", "run"), tmp_path)
    checkpoint = tmp_path / "run" / "checkpoint.json"
    process = start(job)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() or len(_children(process.pid)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "the run did not get going"
        time.sleep(0.05)
    for child in _children(process.pid):  # the pool's workers
        os.kill(child, signal.SIGKILL)
    died = finish(process, job)
    assert died.returncode == 4, died.describe()
    message = died.stderr.strip()
    assert message.startswith("fnn: error: epoch ") and ", step " in message and "shard " in message
    assert "worker process died" in message and "continue with --resume run/checkpoint.json" in message
    resumed = run_cli(tmp_path, "train", "--resume", "run/checkpoint.json", "--workers", "2", "--quiet")
    straight = run_cli(tmp_path, *flags, "--shards", "2", "--out", "straight")
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.describe()
    assert _params(tmp_path / "run") == _params(tmp_path / "straight")
