"""Running the ``fnn`` command line in subprocesses, for ``test_cli.py``.

Each run is a real ``python -m functional_nn ...`` process in its own folder, with
``PYTHONPATH`` unset (the package is installed editable) and a chosen
``PYTHONHASHSEED``. Optional modules can be hidden from a run (``block=("tqdm",)``)
to exercise what a user without that extra sees: the run then goes through a tiny
launcher that puts ``None`` into ``sys.modules`` for them, which makes importing
them fail exactly as if they were not installed, and then runs the package's
``__main__`` as ``-m`` would.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT = 120.0
"""Seconds any single run may take before the test fails."""

_LAUNCHER = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "del sys.argv[1]\n"
    "runpy.run_module('functional_nn', run_name='__main__', alter_sys=True)\n"
)


def cli_env(hashseed: int) -> dict[str, str]:
    """The environment of a run: this one without ``PYTHONPATH``, with ``PYTHONHASHSEED`` set."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONHASHSEED"] = str(hashseed)
    return env


def command(args: Sequence[str], *, block: Sequence[str] = ()) -> list[str]:
    """The argv that runs ``python -m functional_nn *args`` (with ``block`` modules hidden)."""
    if block:
        return [sys.executable, "-c", _LAUNCHER, ",".join(block), *args]
    return [sys.executable, "-m", "functional_nn", *args]


@dataclass(frozen=True)
class Job:
    """One run to make: arguments, folder, hash seed and modules to hide."""

    args: tuple[str, ...]
    cwd: Path
    hashseed: int = 0
    block: tuple[str, ...] = ()


@dataclass(frozen=True)
class Run:
    """A finished run."""

    args: tuple[str, ...]
    cwd: Path
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        """stdout as the lines a terminal would show: text after each line's last ``\\r``, no blanks."""
        shown = (line.rsplit("\r", 1)[-1].rstrip() for line in self.stdout.split("\n"))
        return [line for line in shown if line]

    def describe(self) -> str:
        """Everything about the run, for assertion messages."""
        return (
            f"fnn {' '.join(self.args)} (in {self.cwd}) exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )

    def ok(self) -> Run:
        """This run, after asserting it succeeded without writing to stderr."""
        assert self.returncode == 0, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        return self

    @property
    def out(self) -> Path:
        """The ``--out out`` folder the train runs here use."""
        return self.cwd / "out"


def run(job: Job, timeout: float = TIMEOUT) -> Run:
    """Make one run and wait for it."""
    job.cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        command(job.args, block=job.block),
        cwd=job.cwd,
        env=cli_env(job.hashseed),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Run(
        job.args,
        job.cwd,
        done.returncode,
        done.stdout.decode("utf-8", errors="replace"),
        done.stderr.decode("utf-8", errors="replace"),
    )


def run_cli(cwd: Path, *args: str, hashseed: int = 0, block: Sequence[str] = ()) -> Run:
    """``python -m functional_nn *args`` in ``cwd``."""
    return run(Job(tuple(args), cwd, hashseed, tuple(block)))


def run_many(jobs: Mapping[str, Job]) -> dict[str, Run]:
    """Make all ``jobs`` concurrently, one process per CPU, and return their runs by name."""
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run, job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


# --- checkpoints and metrics on disk ---------------------------------------------------


def read_document(path: Path) -> dict[str, Any]:
    """A checkpoint file as parsed JSON (format, version, sha256, payload)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a JSON object"
    return document


def payload(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint: params, opt_state and metadata."""
    inner = read_document(path)["payload"]
    assert isinstance(inner, dict), f"{path} has no payload object"
    return inner


def canonical_json(value: object) -> str:
    """JSON text that is equal for equal values (sorted keys, exact float reprs)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def rewrite_checkpoint(source: Path, target: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Copy a checkpoint with ``edit`` applied to its payload and its SHA-256 recomputed.

    The checksum is that of the payload's canonical JSON (sorted keys, no spaces), so
    the copy passes the integrity check and reaches the checks behind it.
    """
    document = read_document(source)
    edit(document["payload"])
    body = canonical_json(document["payload"]).encode()
    document["sha256"] = hashlib.sha256(body).hexdigest()
    target.write_text(canonical_json(document) + "\n", encoding="utf-8")


def metrics_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a ``metrics.csv``."""
    with path.open(newline="", encoding="utf-8") as stream:
        table = list(csv.reader(stream))
    assert table, f"{path} is empty"
    return table[0], table[1:]


def without_seconds(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[list[str]]:
    """``rows`` with the timing column dropped (it is the only one that may differ between runs)."""
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[row[i] for i in keep] for row in rows]


def start(job: Job) -> subprocess.Popen[bytes]:
    """Start a run without waiting for it (its stdout and stderr are pipes)."""
    job.cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command(job.args, block=job.block),
        cwd=job.cwd,
        env=cli_env(job.hashseed),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], job: Job, timeout: float = TIMEOUT) -> Run:
    """Wait for a started run and collect what it printed."""
    stdout, stderr = process.communicate(timeout=timeout)
    return Run(
        job.args,
        job.cwd,
        process.returncode,
        stdout.decode("utf-8", errors="replace"),
        stderr.decode("utf-8", errors="replace"),
    )


@contextlib.contextmanager
def sigint_raises() -> Iterator[None]:
    """Children started inside get SIGINT's default action even if this process ignores it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
