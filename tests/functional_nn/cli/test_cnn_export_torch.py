"""``fnn export`` of a ``--model cnn`` run: the printed code builds the nn.Sequential, loads the
file and gives the library's logits (float64, to 1e-9)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from functional_nn.cli.checkpoints import read_run
from functional_nn.cli.commands import CHECKPOINT_NAME
from functional_nn.datasets import digits
from functional_nn.models import ConvNet
from functional_nn.train import outputs
from tests.functional_nn.cli_helpers import run_cli

torch: Any = pytest.importorskip("torch")
pytest.importorskip("safetensors")


def test_the_printed_code_gives_the_cnns_logits(tmp_path: Path) -> None:
    args = ("--model", "cnn", "--channels", "4,6", "--hidden", "12", "--epochs", "1", "--out", "run")
    run_cli(tmp_path, "train", *args, "--quiet").ok()
    printed = run_cli(tmp_path, "export", f"run/{CHECKPOINT_NAME}", "cnn.safetensors").ok().stdout
    code = printed.split("to load it in PyTorch:\n", 1)[1]
    namespace: dict[str, Any] = {}
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(compile(code, "fnn export", "exec"), namespace)  # the code the command prints
    finally:
        os.chdir(here)
    saved = read_run(tmp_path / "run" / CHECKPOINT_NAME)
    net = ConvNet((1, 8, 8), (4, 6), (12,), 10)
    rows = [list(row) for row in digits().inputs[:5]]
    ours = outputs(
        net, net.check_params(saved.checkpoint.params), [saved.standardizer.apply(row) for row in rows]
    )
    x = torch.tensor(rows, dtype=torch.float64)
    with torch.no_grad():
        theirs = namespace["model"](namespace["standardize"](x)).tolist()
    assert [v for row in theirs for v in row] == pytest.approx([v for row in ours for v in row], abs=1e-9)
