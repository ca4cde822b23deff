"""``fnn export``: a trained run as a safetensors file under ``torch.nn.Sequential``'s names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functional_nn.safetensors import load_safetensors
from functional_nn.serialization import load_checkpoint, state_dict
from tests.functional_nn.cli_helpers import run_cli


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    run_cli(
        folder, "train", "--dataset", "moons", "--hidden", "8,8", "--epochs", "2", "--out", "run", "--quiet"
    ).ok()
    return folder


def test_export_writes_the_params_under_sequential_names(run_folder: Path) -> None:
    done = run_cli(run_folder, "export", "run/checkpoint.json", "moons.safetensors").ok()
    assert done.stdout.startswith("wrote moons.safetensors: MLP(2, (8, 8, 2)")
    assert "torch.nn.Linear(2, 8),\n    torch.nn.ReLU(),\n    torch.nn.Linear(8, 8)," in done.stdout
    loaded = load_safetensors(run_folder / "moons.safetensors")
    assert sorted(loaded.params) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    trained = state_dict(load_checkpoint(run_folder / "run" / "checkpoint.json").params)
    for i, index in enumerate((0, 2, 4)):
        for part in ("weight", "bias"):
            got = loaded.params[f"{index}.{part}"]
            want: Any = trained[f"layers.{i}.{part}"]  # nested lists of floats
            assert got == (tuple(tuple(row) for row in want) if part == "weight" else tuple(want))
    assert loaded.metadata["activation"] == "relu" and "input_mean" in loaded.metadata


def test_export_errors_are_one_line(run_folder: Path) -> None:
    missing = run_cli(run_folder, "export", "nowhere.json", "x.safetensors")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    bad_dtype = run_cli(run_folder, "export", "run/checkpoint.json", "x.safetensors", "--dtype", "F16")
    assert bad_dtype.returncode == 2 and "invalid choice" in bad_dtype.stderr
    assert not (run_folder / "x.safetensors").exists()
