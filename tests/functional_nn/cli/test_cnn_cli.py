"""``fnn train --model cnn``: the digits CNN trains, checkpoints, resumes, evaluates, predicts and exports.

Real ``python -m functional_nn`` processes; the default run is the one the README quotes
(at least 98% test accuracy with the default seed).
"""

from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path

import pytest

from functional_nn.cli import main
from functional_nn.cli.assembly import build
from functional_nn.cli.checkpoints import RUN_FORMAT, read_run
from functional_nn.cli.config import Config, UsageError
from functional_nn.dataloader import Dataset
from functional_nn.datasets import digits
from functional_nn.models import ConvNet
from functional_nn.random import key
from functional_nn.serialization import load_checkpoint, state_dict
from functional_nn.train import fit
from optimizers import adam
from tape.tree import tree_leaves
from tests.functional_nn.cli_helpers import (
    Job,
    Run,
    canonical_json,
    payload,
    rewrite_checkpoint,
    run,
    run_cli,
    run_many,
)

SMALL = ("--model", "cnn", "--channels", "4", "--hidden", "16")


DEFAULT_RUN_TIMEOUT = 900.0
"""Seconds the default run (a minute of one core) may take on a loaded machine before the test fails."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("cnn")
    jobs = {
        "whole": Job(("train", *SMALL, "--epochs", "3", "--out", "out", "--quiet"), base / "whole"),
        "first": Job(("train", *SMALL, "--epochs", "2", "--out", "out", "--quiet"), base / "resumed"),
    }
    done = run_many(jobs)
    default = Job(("train", "--model", "cnn", "--out", "out"), base / "default")
    return {**done, "default": run(default, timeout=DEFAULT_RUN_TIMEOUT)}


def test_the_default_cnn_reaches_98_percent_on_the_digits(runs: dict[str, Run]) -> None:
    lines = runs["default"].ok().lines()
    assert lines[0].startswith("training digits: ") and "CNN 1x8x8 conv 8 pool, 32, 10 (relu)" in lines[0]
    accuracy = float(re.fullmatch(r"test accuracy: ([0-9.]+)%", lines[-1]).group(1))  # type: ignore[union-attr]
    assert accuracy >= 98.0, lines
    meta = load_checkpoint(runs["default"].cwd / "out" / "checkpoint.json").metadata
    assert meta["run_format"] == RUN_FORMAT and meta["config"]["model"] == "cnn"  # type: ignore[call-overload,index]
    assert meta["config"]["channels"] == [8]  # type: ignore[call-overload,index]


def test_evaluate_and_predict_use_the_cnn(runs: dict[str, Run]) -> None:
    cwd = runs["default"].cwd
    evaluated = run_cli(cwd, "evaluate", "out/checkpoint.json").ok().lines()
    assert evaluated[2] == runs["default"].lines()[-1].removeprefix("test ")
    assert evaluated[0].startswith("evaluated on the digits test split")
    pixels = ",".join(["0"] * 20 + ["16"] * 24 + ["0"] * 20)
    predicted = run_cli(cwd, "predict", "out/checkpoint.json", "--input", pixels).ok().lines()
    assert len(predicted) == 10 and sum("<- predicted" in line for line in predicted) == 1
    probabilities = [float(line.split(":")[1].split()[0]) for line in predicted]
    assert abs(sum(probabilities) - 1.0) < 1e-3


def test_a_resumed_cnn_run_is_the_uninterrupted_one_bit_for_bit(runs: dict[str, Run]) -> None:
    first = runs["first"].ok()
    resumed = run_cli(first.cwd, "train", "--resume", "out/checkpoint.json", "--epochs", "3", "--quiet").ok()
    assert resumed.lines()[1:] == runs["whole"].ok().lines()[1:]
    ours = payload(first.cwd / "out" / "checkpoint.json")
    theirs = payload(runs["whole"].cwd / "out" / "checkpoint.json")
    assert canonical_json(ours["params"]) == canonical_json(theirs["params"])
    assert canonical_json(ours["opt_state"]) == canonical_json(theirs["opt_state"])


def test_export_writes_the_nets_dotted_names_and_the_sequential_that_loads_them(
    runs: dict[str, Run],
) -> None:
    cwd = runs["whole"].ok().cwd
    printed = run_cli(cwd, "export", "out/checkpoint.json", "cnn.safetensors").ok().stdout
    assert "torch.nn.Unflatten(1, (1, 8, 8)),\n    torch.nn.Conv2d(1, 4, 3, padding=1)," in printed
    assert "torch.nn.Flatten(),\n    torch.nn.Linear(64, 16)," in printed
    raw = (cwd / "cnn.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    checkpoint = load_checkpoint(cwd / "out" / "checkpoint.json")
    assert sorted(set(header) - {"__metadata__"}) == sorted(state_dict(checkpoint.params))
    assert sorted(header) == [
        "1.bias",
        "1.weight",
        "5.bias",
        "5.weight",
        "7.bias",
        "7.weight",
        "__metadata__",
    ]
    assert header["1.weight"]["shape"] == [4, 1, 3, 3]


def test_a_format_3_checkpoint_loads_with_the_default_channels(runs: dict[str, Run], tmp_path: Path) -> None:
    def to_format_3(inner: dict[str, object]) -> None:
        meta = inner["metadata"]
        assert isinstance(meta, dict)
        del meta["config"]["channels"]
        meta["run_format"] = 3

    mlp = tmp_path / "mlp"
    mlp.mkdir()
    run_cli(
        mlp, "train", "--dataset", "moons", "--hidden", "4", "--epochs", "1", "--out", "out", "--quiet"
    ).ok()
    old = tmp_path / "v3.json"
    rewrite_checkpoint(mlp / "out" / "checkpoint.json", old, to_format_3)
    saved = read_run(old)
    assert saved.run_format == 3 and saved.config.channels == Config().channels
    assert saved.checkpoint.metadata["run_format"] == RUN_FORMAT
    assert saved.checkpoint.metadata == read_run(mlp / "out" / "checkpoint.json").checkpoint.metadata
    then = run_cli(mlp, "evaluate", "out/checkpoint.json").ok().lines()
    assert run_cli(tmp_path, "evaluate", str(old)).ok().lines() == then


def _usage(tmp_path: Path, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        patch.setattr("sys.stderr", err)
        status = main(list(args), out=out)
    assert status == 2, out.getvalue()
    return err.getvalue()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--dataset", "moons"),
            "--model cnn reads each row as a square image (64 features as 8x8); this data has 2",
        ),
        (
            ("--activation", "leaky_relu"),
            "--model cnn takes --activation relu, tanh, sigmoid, not leaky_relu",
        ),
        (("--channels", "8,8,8,8"), "4 conv blocks halve a 8x8 image below 1x1"),
    ],
)
def test_what_the_cnn_cannot_take_is_one_line_naming_it(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    err = _usage(tmp_path, "train", "--model", "cnn", "--epochs", "1", *args)
    assert says in err and err.count("\n") == 1, err


def test_channels_need_the_cnn(tmp_path: Path) -> None:
    assert "--channels sizes the conv blocks of --model cnn" in _usage(tmp_path, "train", "--channels", "4")


def test_the_cnn_of_a_config_is_the_one_its_params_fit() -> None:
    setup = build(Config(model="cnn", channels=(4, 6), hidden=(12,), epochs=1))
    net = setup.model
    assert isinstance(net, ConvNet) and net.n_in == 64 and net.n_out == 10
    params = net.init(key(0))
    assert net.check_params(params) == params
    other = ConvNet((1, 8, 8), (4,), (12,), 10).init(key(0))
    with pytest.raises(ValueError, match="params do not fit ConvNet"):
        net.check_params(other)
    with pytest.raises(UsageError):
        build(Config(model="cnn", dataset="moons", epochs=1))


def test_the_cnns_compiled_steps_are_its_interpreted_ones_bit_for_bit() -> None:
    net = ConvNet((1, 8, 8), (2,), (), 10)
    data = digits()
    small = Dataset(data.inputs[:48], data.targets[:48], data.num_classes)
    runs = [
        fit(net, net.init(key(1)), adam(0.01), small, epochs=2, batch_size=16, key=key(2), compile=compiled)
        for compiled in (True, False)
    ]
    compiled, interpreted = ([leaf.hex() for leaf in tree_leaves(run.params)] for run in runs)
    assert compiled == interpreted
    assert runs[0].history[-1].train_loss < runs[0].history[0].train_loss
