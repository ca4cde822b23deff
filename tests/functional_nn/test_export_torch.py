"""Exported MLPs run in PyTorch as in the library (float64, 1e-12); skipped when torch is absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from functional_nn import MLP, load_safetensors, random, save_safetensors, state_dict
from functional_nn.activations import ACTIVATION_NAMES
from functional_nn.datasets import Standardizer
from functional_nn.export import export_torch, torch_sequential_names

torch: Any = pytest.importorskip("torch")
safetensors_torch: Any = pytest.importorskip("safetensors.torch")


def run_snippet(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(code, "snippet", "exec"), namespace)
    return namespace


models = st.builds(
    MLP,
    st.integers(1, 4),
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    activation=st.sampled_from(ACTIVATION_NAMES),
    dropout=st.sampled_from([0.0, 0.3]),
)
inputs = st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4)


@given(models, st.integers(0, 2**32 - 1), st.lists(inputs, min_size=1, max_size=3))
def test_the_snippet_builds_a_sequential_that_loads_strictly_and_matches_apply(
    tmp_path_factory: pytest.TempPathFactory, model: MLP, seed: int, rows: list[list[float]]
) -> None:
    params = model.init(random.key(seed))
    path = tmp_path_factory.mktemp("export") / "model.safetensors"
    namespace = run_snippet(export_torch(path, model, params))
    module = namespace["model"]
    assert not module.training
    module.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)  # again, explicitly strict
    for row in rows:
        x = row[: model.n_in]
        got = module(torch.tensor(x, dtype=torch.float64)).tolist()
        want = model.apply(params, x)
        assert got == pytest.approx(list(want), rel=1e-12, abs=1e-12)


def test_standardized_inputs_match_the_standardizer_including_a_constant_feature(tmp_path: Path) -> None:
    model = MLP(3, (6, 2), activation="tanh")
    params = model.init(random.key(3))
    scaler = Standardizer(pvector([0.5, -1.0, 4.0]), pvector([2.0, 0.0, 0.25]))
    namespace = run_snippet(export_torch(tmp_path / "model.safetensors", model, params, standardizer=scaler))
    for row in ([1.0, 2.0, 3.0], [-4.0, -1.0, 4.5]):
        standardized = namespace["standardize"](torch.tensor(row, dtype=torch.float64))
        assert standardized.tolist() == list(scaler.apply(row))
        got = namespace["model"](standardized).tolist()
        assert got == pytest.approx(list(model.apply(params, scaler.apply(row))), rel=1e-12, abs=1e-12)


def test_a_float32_export_runs_in_float32_close_to_the_library(tmp_path: Path) -> None:
    model = MLP(4, (8, 3), activation="leaky_relu")
    params = model.init(random.key(5))
    namespace = run_snippet(export_torch(tmp_path / "model.safetensors", model, params, dtype="F32"))
    module = namespace["model"]
    assert all(p.dtype == torch.float32 for p in module.parameters())
    x = [0.25, -1.5, 2.0, 0.0]
    got = module(torch.tensor(x, dtype=torch.float32)).tolist()
    assert got == pytest.approx(list(model.apply(params, x)), rel=1e-5, abs=1e-5)


def test_a_torch_module_saved_by_the_safetensors_package_loads_into_the_library(tmp_path: Path) -> None:
    model = MLP(3, (4, 2), activation="sigmoid", dropout=0.1)
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Sigmoid(), torch.nn.Dropout(0.1), torch.nn.Linear(4, 2)
    ).double()
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(module.state_dict(), str(path), metadata={"format": "pt"})
    like = model.init(random.key(0))
    params = load_safetensors(path, like=like, names=torch_sequential_names(model)).params
    module.eval()
    x = [0.1, -0.7, 1.3]
    assert model.apply(params, x) == pytest.approx(
        module(torch.tensor(x, dtype=torch.float64)).tolist(), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_half_and_single_precision_torch_tensors_load_exactly(tmp_path: Path, dtype: str) -> None:
    values = torch.tensor([[1.0, -2.5, 3.140625], [1e-3, -65504.0, 0.0]]).to(getattr(torch, dtype))
    path = tmp_path / "t.safetensors"
    safetensors_torch.save_file({"t": values}, str(path))
    loaded = load_safetensors(path).params["t"]
    assert loaded == tuple(tuple(row) for row in values.double().tolist())


def test_torch_reads_an_f64_save_bit_exactly(tmp_path: Path) -> None:
    params = MLP(2, (3,)).init(random.key(1))
    path = tmp_path / "model.safetensors"
    save_safetensors(path, params)
    tensors = safetensors_torch.load_file(str(path))
    weight = cast("list[list[float]]", state_dict(params)["layers.0.weight"])
    assert tensors["layers.0.weight"].dtype == torch.float64
    assert [[x.hex() for x in row] for row in tensors["layers.0.weight"].tolist()] == [
        [x.hex() for x in row] for row in weight
    ]
