"""Checkpoints written by release 0.1.0 (run format 1) still evaluate, predict and resume exactly.

The files in ``fixtures/moons-release-0.1.0`` were written by that release's ``fnn``
(see the README there), together with what it printed; the current code must print
the same and, resumed, reach bit-identically the checkpoint that release reached.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from functional_nn.cli import main
from functional_nn.cli.checkpoints import RUN_FORMAT, read_run
from functional_nn.cli.config import Config
from functional_nn.serialization import load_checkpoint
from tests.functional_nn.cli_helpers import canonical_json, metrics_rows, payload, rewrite_checkpoint

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moons-release-0.1.0"
ONE_EPOCH = FIXTURES / "checkpoint.json"
RESUMED = FIXTURES / "resumed-to-3.json"


def run(cwd: Path, *args: str) -> tuple[int, list[str]]:
    """``main(args)`` in ``cwd``: the exit status and the printed lines."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        status = main(list(args), out=out)
    return status, out.getvalue().splitlines()


def recorded(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("fixture", [ONE_EPOCH, RESUMED])
def test_the_release_checkpoints_are_run_format_1_with_the_new_fields_defaulted(fixture: Path) -> None:
    assert "run_format" not in load_checkpoint(fixture).metadata
    saved = read_run(fixture)
    assert saved.run_format == 1 and saved.checkpoint.metadata["run_format"] == RUN_FORMAT
    defaults = Config()
    config = saved.config
    assert (config.data, config.data_sha256, config.model, config.shards, config.compile) == (
        defaults.data,
        defaults.data_sha256,
        defaults.model,
        defaults.shards,
        defaults.compile,
    )
    assert (config.dataset, config.hidden, config.patience) == ("moons", (8,), 3)


def test_evaluate_prints_what_the_release_printed(tmp_path: Path) -> None:
    assert run(tmp_path, "evaluate", str(ONE_EPOCH)) == (0, recorded("evaluate.txt"))


def test_predict_prints_what_the_release_printed(tmp_path: Path) -> None:
    assert run(tmp_path, "predict", str(ONE_EPOCH), "--input", "0.5,-0.3") == (0, recorded("predict.txt"))


def test_resuming_reaches_the_release_checkpoint_bit_for_bit(tmp_path: Path) -> None:
    shutil.copy(ONE_EPOCH, tmp_path / "v1.json")
    status, lines = run(tmp_path, "train", "--resume", "v1.json", "--epochs", "3", "--out", "v1r", "--quiet")
    assert status == 0
    assert lines[1:] == recorded("resume-to-3.txt")[1:] and lines[0] == "checkpoint: v1r/checkpoint.json"
    ours, theirs = payload(tmp_path / "v1r" / "checkpoint.json"), payload(RESUMED)
    assert canonical_json(ours["params"]) == canonical_json(theirs["params"])
    assert canonical_json(ours["opt_state"]) == canonical_json(theirs["opt_state"])
    assert ours["metadata"]["history"][:3] == [
        {**entry, "seconds": ours["metadata"]["history"][i]["seconds"]}
        for i, entry in enumerate(theirs["metadata"]["history"])
    ]
    header, rows = metrics_rows(tmp_path / "v1r" / "metrics.csv")
    _, release_rows = metrics_rows(FIXTURES / "resumed-to-3-metrics.csv")
    assert [row[:-1] for row in rows] == [row[:-1] for row in release_rows] and header[-1] == "seconds"
    # what it wrote is the current format, and it resumes further like any run
    assert read_run(tmp_path / "v1r" / "checkpoint.json").run_format == RUN_FORMAT
    assert run(tmp_path, "train", "--resume", "v1r/checkpoint.json", "--epochs", "4", "--quiet")[0] == 0


def test_the_release_checkpoint_resumed_to_3_evaluates_like_the_release_said(tmp_path: Path) -> None:
    status, lines = run(tmp_path, "evaluate", str(RESUMED))
    assert status == 0
    assert [f"test {line}" for line in lines[1:3]] == recorded("resume-to-3.txt")[1:]


def _edit(path: tuple[str, ...], value: object) -> Any:
    def edit(inner: dict[str, Any]) -> None:
        node = inner
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (_edit(("metadata", "key"), 12345), "key"),
        (_edit(("metadata", "run_format"), 1), "run format 1"),
        (_edit(("metadata", "run_format"), 5), "run format 5"),
        (_edit(("metadata", "run_format"), "2"), "run format '2'"),
        (_edit(("metadata", "config", "shards"), 2), "config has keys"),
        (_edit(("metadata", "training_version"), 1), "unexpected ['training_version']"),
        (_edit(("metadata", "restored_best_epoch"), "1"), "restored_best_epoch"),
    ],
)
def test_a_damaged_or_unknown_format_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, says: str
) -> None:
    rewrite_checkpoint(ONE_EPOCH, tmp_path / "bad.json", edit)
    for command in (["evaluate", "bad.json"], ["train", "--resume", "bad.json", "--epochs", "3"]):
        status, _ = run(tmp_path, *command)
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and says in err, (command, err)


def test_new_checkpoints_store_the_new_config_fields_with_their_defaults(tmp_path: Path) -> None:
    args = ["train", "--dataset", "moons", "--hidden", "4", "--epochs", "1", "--out", "out", "--quiet"]
    assert run(tmp_path, *args)[0] == 0
    meta = load_checkpoint(tmp_path / "out" / "checkpoint.json").metadata
    assert meta["run_format"] == RUN_FORMAT
    config = meta["config"]
    assert isinstance(config, dict)
    assert {k: config[k] for k in ("data", "data_sha256", "model", "shards", "compile")} == {
        "data": None,
        "data_sha256": None,
        "model": "mlp",
        "shards": 1,
        "compile": True,
    }
