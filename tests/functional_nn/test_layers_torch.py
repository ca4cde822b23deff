"""Every layer against its PyTorch module in float64: the same parameters give the same outputs.

Parameters made by a layer's ``init`` are loaded into the PyTorch module with
``load_state_dict(strict=True)``, so the names and shapes must be exactly the module's;
the outputs must then agree to 1e-9. Skipped where torch is not installed.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_nn.layers import (
    GELU,
    GRU,
    AvgPool2d,
    Conv2d,
    Embedding,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    MaxPool2d,
    MultiHeadAttention,
    ReLU,
    Sigmoid,
    Tanh,
    serial,
)
from functional_nn.random import key, normal
from functional_nn.serialization import state_dict
from tape import Array
from tape.tree import tree_flatten, tree_unflatten

torch: Any = pytest.importorskip("torch")
nn: Any = torch.nn

seeds = st.integers(min_value=0, max_value=2**32)


def t64(xs: object) -> Any:
    return torch.tensor(xs, dtype=torch.float64)


def data(seed: int, *shape: int) -> Any:
    """Deterministic normal floats of ``shape`` as nested lists."""
    return t64(list(normal(key(seed), math.prod(shape)))).reshape(shape).tolist()


def load(module: Any, params: object) -> Any:
    """``module`` in float64 holding ``params`` (its names and shapes must be exactly the module's)."""
    module = module.double()
    module.load_state_dict({name: t64(value) for name, value in state_dict(params).items()}, strict=True)
    return module


def assert_matches(layer: Layer, module: Any, x: Any, *, seed: int = 0, **call: Any) -> None:
    """``layer`` and ``module`` with the same parameters give the same output for ``x`` (1e-9)."""
    params = layer.init(key(seed))
    torch_module = load(module, params)
    ours = t64(_plain(layer.apply(params, x)))
    with torch.no_grad():
        theirs = torch_module(t64(x), **call)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-9), (ours - theirs).abs().max()


def _plain(y: Any) -> Any:
    return y.data if isinstance(y, Array) else y


def test_init_names_and_shapes_are_the_torch_modules() -> None:
    for layer, module in [
        (Linear(3, 5), nn.Linear(3, 5)),
        (Linear(3, 5, bias=False), nn.Linear(3, 5, bias=False)),
    ]:
        ours = {name: tuple(t64(v).shape) for name, v in state_dict(layer.init(key(0))).items()}
        assert ours == {name: tuple(v.shape) for name, v in module.state_dict().items()}


@given(seeds)
def test_linear_matches_torch(seed: int) -> None:
    assert_matches(Linear(4, 3), nn.Linear(4, 3), data(seed, 5, 4), seed=seed)
    assert_matches(Linear(4, 3, bias=False), nn.Linear(4, 3, bias=False), data(seed, 2, 4), seed=seed)


def test_a_serial_mlp_matches_nn_sequential() -> None:
    model = serial(Linear(3, 8), ReLU(), Linear(8, 8), Tanh(), Linear(8, 2), Sigmoid())
    module = nn.Sequential(
        nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2), nn.Sigmoid()
    )
    assert_matches(model, module, data(1, 6, 3))


def perturbed(params: Any, seed: int) -> Any:
    """``params`` with every float moved by a normal draw: no zero bias or unit scale hides a bug."""
    leaves, treedef = tree_flatten(params)
    noise = normal(key(seed), len(leaves), std=0.5)
    return tree_unflatten(treedef, [a + b for a, b in zip(leaves, noise, strict=True)])


def assert_close(ours: Any, theirs: Any) -> None:
    ours = t64(_plain(ours))
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-9), (ours - theirs).abs().max()


@given(seeds)
def test_layer_norm_matches_torch(seed: int) -> None:
    layer = LayerNorm(5, eps=1e-3)
    params = perturbed(layer.init(key(seed)), seed)
    x = data(seed, 2, 3, 5)
    with torch.no_grad():
        theirs = load(nn.LayerNorm(5, eps=1e-3), params)(t64(x))
    assert_close(layer.apply(params, x), theirs)


# -- the N-d layers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "module"),
    [
        (Conv2d(2, 3, 3), nn.Conv2d(2, 3, 3)),
        (Conv2d(2, 3, (3, 2), stride=2, padding=1), nn.Conv2d(2, 3, (3, 2), stride=2, padding=1)),
        (Conv2d(2, 1, 1, bias=False), nn.Conv2d(2, 1, 1, bias=False)),
        (MaxPool2d(2), nn.MaxPool2d(2)),
        (MaxPool2d(3, stride=2), nn.MaxPool2d(3, stride=2)),
        (AvgPool2d(2), nn.AvgPool2d(2)),
        (AvgPool2d((2, 3), stride=1), nn.AvgPool2d((2, 3), stride=1)),
        (Flatten(), nn.Flatten()),
        (GELU(), nn.GELU()),
        (ReLU(), nn.ReLU()),
    ],
    ids=repr,
)
def test_image_layers_match_torch(layer: Layer, module: Any) -> None:
    assert_matches(layer, module, data(3, 2, 2, 7, 6))


@given(seeds)
def test_embedding_matches_torch(seed: int) -> None:
    layer = Embedding(6, 3)
    params = layer.init(key(seed))
    ids = [[1, 5, 1, 0], [2, 2, 3, 4]]
    with torch.no_grad():
        theirs = load(nn.Embedding(6, 3), params)(torch.tensor(ids))
    assert_close(layer.apply(params, ids), theirs)


@given(seeds)
def test_gru_matches_torch_output_and_its_last_step_is_h_n(seed: int) -> None:
    layer = GRU(3, 4)
    params = layer.init(key(seed))
    x = data(seed, 2, 5, 3)
    with torch.no_grad():
        output, h_n = load(nn.GRU(3, 4, batch_first=True), params)(t64(x))
    ours = layer.apply(params, x)
    assert_close(ours, output)
    assert_close([row[-1] for row in ours], h_n[0])


@pytest.mark.parametrize("causal", [False, True])
@given(seed=seeds)
def test_multi_head_attention_matches_torch(causal: bool, seed: int) -> None:
    layer = MultiHeadAttention(6, 3, causal=causal)
    params = perturbed(layer.init(key(seed)), seed)
    x = data(seed, 2, 4, 6)
    module = load(nn.MultiheadAttention(6, 3, batch_first=True), params)
    mask = torch.triu(torch.full((4, 4), float("-inf"), dtype=torch.float64), diagonal=1) if causal else None
    with torch.no_grad():
        theirs, _ = module(t64(x), t64(x), t64(x), need_weights=False, attn_mask=mask, is_causal=causal)
    assert_close(layer.apply(params, x), theirs)


def test_a_serial_cnn_matches_nn_sequential() -> None:
    model = serial(
        Conv2d(1, 4, 3, padding=1),
        ReLU(),
        MaxPool2d(2),
        Conv2d(4, 6, 3),
        Tanh(),
        AvgPool2d(2),
        Flatten(),
        Linear(6, 3),
    )
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    assert_matches(model, module, data(4, 3, 1, 8, 8))
