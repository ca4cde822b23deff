"""``fnn export``'s printed PyTorch code builds the model, loads the file and predicts as ``fnn predict``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.functional_nn.cli_helpers import run_cli

torch: Any = pytest.importorskip("torch")
pytest.importorskip("safetensors")


def test_the_printed_code_predicts_what_fnn_predict_does(tmp_path: Path) -> None:
    run_cli(
        tmp_path, "train", "--dataset", "moons", "--hidden", "8", "--epochs", "2", "--out", "run", "--quiet"
    ).ok()
    printed = run_cli(tmp_path, "export", "run/checkpoint.json", "moons.safetensors").ok().stdout
    code = printed.split("to load it in PyTorch:\n", 1)[1]
    namespace: dict[str, Any] = {}
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(compile(code, "fnn export", "exec"), namespace)  # the code the command prints
    finally:
        os.chdir(here)
    x = torch.tensor([[0.5, -0.3]], dtype=torch.float64)
    with torch.no_grad():
        probs = torch.softmax(namespace["model"](namespace["standardize"](x)), dim=1)[0].tolist()
    predicted = run_cli(tmp_path, "predict", "run/checkpoint.json", "--input", "0.5,-0.3").ok().stdout
    shown = [float(line.split(":")[1].split()[0]) for line in predicted.splitlines()]
    assert probs == pytest.approx(shown, abs=5e-5)  # fnn predict prints 4 decimals
