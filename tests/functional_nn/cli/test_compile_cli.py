"""``fnn train`` compiles its training step unless ``--no-compile``: the same run either way."""

from __future__ import annotations

from pathlib import Path

from functional_nn.serialization import load_checkpoint
from tests.functional_nn.cli_helpers import run_cli


def test_compiled_and_interpreted_runs_save_the_same_checkpoint(tmp_path: Path) -> None:
    flags = ("train", "--dataset", "moons", "--hidden", "8", "--epochs", "2", "--dropout", "0.1", "--quiet")
    run_cli(tmp_path, *flags, "--out", "compiled").ok()
    run_cli(tmp_path, *flags, "--out", "interpreted", "--no-compile").ok()
    compiled = load_checkpoint(tmp_path / "compiled" / "checkpoint.json")
    interpreted = load_checkpoint(tmp_path / "interpreted" / "checkpoint.json")
    assert compiled.params == interpreted.params and compiled.opt_state == interpreted.opt_state
    assert compiled.metadata["config"]["compile"] is True  # type: ignore[index, call-overload]
    assert interpreted.metadata["config"]["compile"] is False  # type: ignore[index, call-overload]
    resumed = run_cli(
        tmp_path, "train", "--resume", "interpreted/checkpoint.json", "--epochs", "3", "--compile"
    )
    assert resumed.ok().returncode == 0
