"""Tampered run checkpoints (checksum recomputed, so only the checks behind it stand) never
cause a traceback: ``train --resume``, ``evaluate`` and ``predict`` succeed or print one line
on stderr and exit non-zero.

In-process (``main([...])``) so that many cases run quickly; the fuzz is bounded and
derandomized, and the cases it once found are pinned as plain tests.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functional_nn.cli import main
from tests.functional_nn.cli_helpers import read_document, rewrite_checkpoint

FIXTURE = Path(__file__).parent.parent / "fixtures" / "moons-release-0.1.0" / "checkpoint.json"
HUGE = 10**400
NASTY: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2**31,
    2**53 + 1,
    HUGE,
    -HUGE,
    1e308,
    -1e308,
    0.5,
    -0.5,
    "",
    "x",
    "relu",
    "mlp",
    [],
    {},
    [1.0],
    [[1.0]],
    {"a": 1},
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints to tamper with: one of today's (with early stopping) and release 0.1.0's."""
    base = tmp_path_factory.mktemp("sources")
    args = ["train", "--dataset", "moons", "--hidden", "4", "--epochs", "2", "--patience", "5"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        assert main([*args, "--out", "out", "--quiet"], out=io.StringIO()) == 0
    return {"current": base / "out" / "checkpoint.json", "release": FIXTURE}


COMMANDS = (
    ("train", "--resume", "{file}", "--epochs", "3", "--out", "{folder}/resumed", "--quiet"),
    ("evaluate", "{file}"),
    ("predict", "{file}", "--input", "0.5,-0.3"),
)


def assert_every_command_fails_cleanly(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    for template in COMMANDS:
        argv = [part.format(file=path, folder=path.parent) for part in template]
        status = main(argv, out=io.StringIO())  # an exception escaping fails the test
        err = capsys.readouterr().err
        assert status in (0, 2, 3), (argv, status, err)
        if status != 0:
            assert err.count("\n") == 1 and err.startswith("fnn: "), (argv, err)
        assert "Traceback" not in err


def paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON tree (a long list contributes its first two items and its last)."""
    out: list[tuple[str | int, ...]] = [prefix]
    if isinstance(node, dict):
        for key in sorted(node):
            out += paths(node[key], (*prefix, key))
    elif isinstance(node, list):
        picks = sorted({0, 1, len(node) - 1} & set(range(len(node))))
        for index in picks:
            out += paths(node[index], (*prefix, index))
    return out


def edit_at(path: tuple[str | int, ...], action: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        if not path:
            payload["metadata"] = value  # the whole payload's keys are the loader's; vary one part
            return
        node: Any = payload
        for part in path[:-1]:
            node = node[part]
        last = path[-1]
        if action == "delete" and isinstance(node, dict):
            del node[last]
        elif action == "add" and isinstance(node, dict):
            node[f"{last}_extra"] = value
        else:
            node[last] = copy.deepcopy(value)

    return edit


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_tampering_never_escapes_as_a_traceback(
    sources: dict[str, Path], capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    source = sources[data.draw(st.sampled_from(sorted(sources)))]
    where = data.draw(st.sampled_from(paths(read_document(source)["payload"])))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    value = data.draw(st.sampled_from(NASTY))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tampered.json"
        rewrite_checkpoint(source, path, edit_at(where, action, value))
        assert_every_command_fails_cleanly(path, capsys)


PINNED: list[tuple[str, tuple[str | int, ...], str, object]] = [
    ("current", ("metadata", "config", "lr"), "replace", HUGE),
    ("release", ("metadata", "config", "lr"), "replace", HUGE),
    ("current", ("metadata", "config", "hidden"), "replace", [2**31]),
    ("current", ("metadata", "config", "compile"), "replace", 1),
    ("current", ("metadata", "history", 0, "seconds"), "replace", HUGE),
    ("current", ("metadata", "early_stopping", "best_loss"), "replace", HUGE),
    ("current", ("metadata", "standardizer", "scale", 0), "replace", -0.5),
    ("current", ("metadata", "standardizer", "mean"), "replace", [HUGE, 1.0]),
    ("current", ("metadata", "run_format"), "delete", None),
    ("current", ("metadata", "kind"), "add", "x"),
    ("release", ("metadata", "key"), "replace", HUGE),
    ("release", ("metadata", "early_stopping", "best_params"), "replace", {"a": 1}),
    ("current", ("opt_state", "step"), "replace", HUGE),
    ("current", ("params", "layers.0.weight", 0, 0), "replace", 1e308),
]


@pytest.mark.parametrize(
    ("source", "where", "action", "value"), PINNED, ids=[str(i) for i in range(len(PINNED))]
)
def test_pinned_tampering_fails_cleanly(
    sources: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    source: str,
    where: tuple[str | int, ...],
    action: str,
    value: object,
) -> None:
    path = tmp_path / "tampered.json"
    rewrite_checkpoint(sources[source], path, edit_at(where, action, value))
    assert json.loads(path.read_text())["sha256"]  # the checksum was recomputed
    assert_every_command_fails_cleanly(path, capsys)
