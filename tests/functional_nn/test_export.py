"""An MLP's torch layout, names and metadata, and what export_torch writes (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from functional_nn import MLP, CheckpointError, load_safetensors, random, state_dict
from functional_nn.activations import ACTIVATION_NAMES
from functional_nn.datasets import Standardizer
from functional_nn.export import (
    export_torch,
    torch_metadata,
    torch_modules,
    torch_sequential_names,
    torch_snippet,
)


def test_the_sequential_gives_each_activation_and_dropout_an_index() -> None:
    assert torch_sequential_names(MLP(2, (3, 3, 1))) == {
        "layers.0.bias": "0.bias",
        "layers.0.weight": "0.weight",
        "layers.1.bias": "2.bias",
        "layers.1.weight": "2.weight",
        "layers.2.bias": "4.bias",
        "layers.2.weight": "4.weight",
    }
    with_dropout = MLP(2, (3, 3, 1), activation="sigmoid", dropout=0.25)
    assert torch_modules(with_dropout) == [
        "torch.nn.Linear(2, 3)",
        "torch.nn.Sigmoid()",
        "torch.nn.Dropout(0.25)",
        "torch.nn.Linear(3, 3)",
        "torch.nn.Sigmoid()",
        "torch.nn.Dropout(0.25)",
        "torch.nn.Linear(3, 1)",
    ]
    assert [torch_sequential_names(with_dropout)[f"layers.{i}.weight"] for i in range(3)] == [
        "0.weight",
        "3.weight",
        "6.weight",
    ]
    assert torch_modules(MLP(5, (2,))) == ["torch.nn.Linear(5, 2)"]


@given(
    st.integers(1, 4),
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.sampled_from(ACTIVATION_NAMES),
    st.sampled_from([0.0, 0.5]),
)
def test_names_cover_every_parameter_at_a_linear_module(
    n_in: int, sizes: list[int], activation: str, dropout: float
) -> None:
    model = MLP(n_in, sizes, activation=activation, dropout=dropout)  # type: ignore[arg-type]
    names = torch_sequential_names(model)
    params = model.init(random.key(0))
    assert sorted(names) == sorted(state_dict(params))
    modules = torch_modules(model)
    for name, torch_name in names.items():
        index, part = torch_name.split(".")
        assert modules[int(index)].startswith("torch.nn.Linear(")
        assert name.endswith(part)
    assert len(set(names.values())) == len(names)


def test_metadata_records_sizes_activation_dropout_and_standardization() -> None:
    model = MLP(2, (4, 3), activation="tanh", dropout=0.125)
    scaler = Standardizer(pvector([1.5, -2.0]), pvector([0.5, 0.0]))
    metadata = torch_metadata(model, scaler)
    assert metadata == {
        "format": "pt",
        "layer_sizes": "[2, 4, 3]",
        "activation": "tanh",
        "dropout": "0.125",
        "input_mean": "[1.5, -2.0]",
        "input_scale": "[0.5, 0.0]",
    }
    assert json.loads(metadata["layer_sizes"]) == [model.n_in, *model.sizes]
    assert "input_mean" not in torch_metadata(model)
    with pytest.raises(ValueError, match="the standardizer expects 3 features, the model 2"):
        torch_metadata(model, Standardizer(pvector([0.0] * 3), pvector([1.0] * 3)))


def test_export_writes_torch_names_and_metadata_and_returns_the_snippet(tmp_path: Path) -> None:
    model = MLP(3, (5, 2), dropout=0.5)
    params = model.init(random.key(7))
    path = tmp_path / "model.safetensors"
    scaler = Standardizer(pvector([0.0, 1.0, 2.0]), pvector([1.0, 2.0, 3.0]))
    code = export_torch(path, model, params, standardizer=scaler)
    assert code == torch_snippet(model, path, standardized=True)
    assert f"load_file({str(path)!r})" in code
    with safetensors.safe_open(str(path), framework="numpy") as file:
        assert sorted(file.keys()) == ["0.bias", "0.weight", "3.bias", "3.weight"]
        assert file.metadata() == torch_metadata(model, scaler)
    names = torch_sequential_names(model)
    assert load_safetensors(path, like=params, names=names).params == params


def test_export_refuses_params_of_another_model_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    with pytest.raises(CheckpointError, match=r"params do not fit MLP\(3, \(4, 2\)"):
        export_torch(path, MLP(3, (4, 2)), MLP(3, (5, 2)).init(random.key(0)))
    assert not path.exists()


def test_the_snippet_without_standardization_only_builds_and_loads() -> None:
    code = torch_snippet(MLP(2, (1,)), "m.safetensors", dtype="F32")
    assert "standardize" not in code and "import json" not in code
    assert ").to(torch.float32)\nmodel.load_state_dict(load_file('m.safetensors'))\nmodel.eval()\n" in code
    compile(code, "snippet", "exec")
