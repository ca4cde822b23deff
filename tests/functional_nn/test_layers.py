"""Layers as init/apply pairs: shapes, initialisation, gradients, composition, pickling, training."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import optimizers
import tape
from functional_nn import MLP
from functional_nn.layers import (
    Dropout,
    Layer,
    LayerNorm,
    Linear,
    ReLU,
    Serial,
    Sigmoid,
    Tanh,
    serial,
)
from functional_nn.random import key, normal, split
from functional_nn.serialization import state_dict
from optimizers.masks import default_decay_mask, mask_leaves
from tape import arrays
from tape.array import flatten, shape_of
from tape.testing import assert_gradients_match
from tape.tree import leaf_parameter_names, named_parameters, tree_leaves

seeds = st.integers(min_value=0, max_value=2**32)


def data(seed: int, *shape: int) -> Any:
    """Deterministic normal floats of ``shape`` as nested tuples."""
    return _nest(list(normal(key(seed), math.prod(shape))), shape)


def _nest(flat: list[float], shape: Sequence[int]) -> Any:
    if len(shape) == 1:
        return tuple(flat)
    step = len(flat) // shape[0]
    return tuple(_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0]))


def weighted_mean(y: Any, seed: int = 99) -> Any:
    """A scalar of ``y`` weighting each entry differently, so no gradient cancels by symmetry."""
    shape = y.shape if isinstance(y, tape.Array) else shape_of(y)
    return arrays.mean(arrays.scale(y, data(seed, *shape)))


def shapes(tree: object) -> dict[str, tuple[int, ...]]:
    return {name: shape_of(value) for name, value in state_dict(tree).items()}


# -- protocol, names and initialisation ---------------------------------------------------------


LAYERS: list[Layer] = [
    Linear(3, 2),
    Linear(3, 2, bias=False),
    ReLU(),
    Tanh(),
    Sigmoid(),
    Dropout(0.3),
    LayerNorm(3, eps=1e-6),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_layers_follow_the_protocol_and_pickle_by_value(layer: Layer) -> None:
    assert isinstance(layer, Layer)
    again = pickle.loads(pickle.dumps(layer))
    assert again == layer
    assert again.init(key(3)) == layer.init(key(3))


def test_linear_parameters_are_torch_named_and_uniform_within_one_over_sqrt_fan_in() -> None:
    params = Linear(16, 300).init(key(0))
    assert shapes(params) == {"weight": (300, 16), "bias": (300,)}
    weights = flatten(state_dict(params)["weight"])
    bound = 1 / math.sqrt(16)
    assert all(-bound <= w < bound for w in weights)
    # uniform on [-b, b): variance b^2 / 3; 4800 draws put the sample within 5% of it
    variance = math.fsum(w * w for w in weights) / len(weights)
    assert variance == pytest.approx(bound**2 / 3, rel=0.05)
    assert Linear(16, 300).init(key(1)) != params
    assert set(Linear(3, 2, bias=False).init(key(0))) == {"weight"}


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Linear(0, 2), ValueError, "in_features must be >= 1"),
        (lambda: Linear(2, cast(Any, 2.0)), TypeError, "out_features must be an int"),
        (lambda: Linear(2, 2, bias=cast(Any, 1)), TypeError, "bias must be a bool"),
        (lambda: Dropout(1.5), ValueError, r"dropout probability must be in \[0, 1\]"),
        (lambda: serial(), ValueError, "at least one layer"),
        (lambda: serial(Linear(1, 1), cast(Any, "relu")), TypeError, "is not a layer"),
    ],
)
def test_bad_specs_are_named_errors(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_missing_parameters_are_named() -> None:
    with pytest.raises(ValueError, match=r"Linear: params have no 'bias' \(they hold \['weight'\]\)"):
        Linear(2, 1).apply(Linear(2, 1, bias=False).init(key(0)), [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"serial: params hold \['7'\]"):
        serial(Linear(2, 1)).apply(pmap({"7": pmap()}), [[1.0, 2.0]])


# -- forward values -----------------------------------------------------------------------------


@given(seeds)
def test_linear_is_x_times_weight_transposed_plus_bias(seed: int) -> None:
    layer = Linear(3, 2)
    params = layer.init(key(seed))
    x = data(seed, 4, 3)
    y = layer.apply(params, x)
    for row, out in zip(x, y, strict=True):
        for j, w in enumerate(params["weight"]):
            expected = math.fsum(a * b for a, b in zip(w, row, strict=True)) + params["bias"][j]
            assert out[j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_activations_apply_elementwise() -> None:
    x = ((-1.0, 0.5), (2.0, -3.0))
    assert ReLU().apply(pmap(), x) == ((0.0, 0.5), (2.0, 0.0))
    assert Tanh().apply(pmap(), x) == tuple(tuple(map(math.tanh, row)) for row in x)
    assert Sigmoid().apply(pmap(), x)[0][0] == pytest.approx(1 / (1 + math.e))


def test_dropout_is_the_identity_outside_training_and_masks_by_key_in_it() -> None:
    x = tuple((1.0,) * 10 for _ in range(20))
    layer = Dropout(0.25)
    assert layer.apply(pmap(), x) == x
    dropped = layer.apply(pmap(), x, key=key(0), train=True)
    values = flatten(dropped)
    assert set(values) == {0.0, 1 / 0.75}
    assert 0.15 < values.count(0.0) / len(values) < 0.35
    assert layer.apply(pmap(), x, key=key(0), train=True) == dropped
    assert layer.apply(pmap(), x, key=key(1), train=True) != dropped
    assert set(flatten(Dropout(1.0).apply(pmap(), x, key=key(0), train=True))) == {0.0}
    with pytest.raises(ValueError, match="Dropout: training needs a key"):
        layer.apply(pmap(), x, train=True)


# -- composition --------------------------------------------------------------------------------


def test_serial_keys_params_by_position_like_nn_sequential() -> None:
    model = serial(Linear(2, 4), ReLU(), Dropout(0.1), Linear(4, 3), Tanh())
    params = model.init(key(0))
    assert shapes(params) == {"0.weight": (4, 2), "0.bias": (4,), "3.weight": (3, 4), "3.bias": (3,)}
    x = data(1, 5, 2)
    by_hand = Linear(4, 3).apply(params["3"], ReLU().apply(pmap(), Linear(2, 4).apply(params["0"], x)))
    assert model.apply(params, x) == Tanh().apply(pmap(), by_hand)
    nested = serial(serial(Linear(2, 4), ReLU()), Linear(4, 1))
    assert sorted(state_dict(nested.init(key(0)))) == ["0.0.bias", "0.0.weight", "1.bias", "1.weight"]


def test_serial_gives_each_layer_its_own_dropout_key() -> None:
    model = serial(Dropout(0.5), Dropout(0.5))
    x = tuple((1.0,) * 8 for _ in range(8))
    first, second = split(key(5), 2)
    once = Dropout(0.5).apply(pmap(), x, key=first, train=True)
    assert model.apply(pmap(), x, key=key(5), train=True) == Dropout(0.5).apply(
        pmap(), once, key=second, train=True
    )
    assert model.apply(pmap(), x) == x


def test_an_mlp_composes_through_apply_batch() -> None:
    mlp = MLP(3, (4, 2), activation="tanh")
    model = serial(Linear(5, 3), mlp)
    params = model.init(key(0))
    assert sorted(params["1"]) == ["layers"]
    x = data(2, 3, 5)
    hidden = Linear(5, 3).apply(params["0"], x)
    assert model.apply(params, x) == mlp.apply_batch(params["1"], hidden)


# -- gradients ----------------------------------------------------------------------------------


@given(seeds)
def test_linear_gradients_match_central_differences(seed: int) -> None:
    model = serial(Linear(3, 4), Tanh(), Linear(4, 2), Sigmoid())
    params = model.init(key(seed))
    x = data(seed + 1, 5, 3)

    def loss(p: PMap[str, Any], inputs: Any) -> Any:
        return weighted_mean(model.apply(p, inputs))

    assert_gradients_match(loss, params, x, argnums=(0, 1), arrays=True)


def test_gradients_come_back_in_the_params_structure() -> None:
    model = serial(Linear(2, 3), ReLU(), Linear(3, 1))
    params = model.init(key(0))
    grads = tape.grad(lambda p: weighted_mean(model.apply(p, data(1, 4, 2))), arrays=True)(params)
    assert leaf_parameter_names(grads) == leaf_parameter_names(params)
    assert shapes(grads) == shapes(params)


def test_gradients_on_the_scalar_path_equal_the_array_paths() -> None:
    model = serial(Linear(2, 3), Tanh(), Linear(3, 2))
    params = model.init(key(4))
    x = data(5, 3, 2)

    def loss(p: PMap[str, Any]) -> Any:
        return weighted_mean(model.apply(p, x))

    by_values, by_arrays = tape.grad(loss)(params), tape.grad(loss, arrays=True)(params)
    assert tree_leaves(by_values) == pytest.approx(tree_leaves(by_arrays), rel=1e-12, abs=1e-15)


def test_layer_norm_starts_as_the_identity_affine_map_and_its_gradients_match() -> None:
    layer = LayerNorm(4)
    assert layer.init(key(0)) == pmap({"weight": pvector([1.0] * 4), "bias": pvector([0.0] * 4)})
    params = serial(Linear(4, 4), layer).init(key(1))["1"]
    moved = pmap({"weight": pvector([0.5, 1.5, -1.0, 2.0]), "bias": pvector([0.1, 0.0, -0.2, 0.3])})
    x = data(2, 3, 4)
    for p in (params, moved):
        assert_gradients_match(
            lambda q, inputs: weighted_mean(layer.apply(q, inputs)), p, x, argnums=(0, 1), arrays=True
        )
    (row,) = layer.apply(params, [[1.0, 2.0, 3.0, 4.0]])
    assert math.fsum(row) == pytest.approx(0.0, abs=1e-12)
    assert math.fsum(v * v for v in row) / 4 == pytest.approx(1.0 / (1.0 + 1e-5 / 1.25), rel=1e-9)
    with pytest.raises(ValueError, match="LayerNorm: eps must be positive"):
        LayerNorm(3, eps=0.0)


# -- weight decay -------------------------------------------------------------------------------


def test_the_default_decay_mask_decays_weights_not_biases_of_composed_layers() -> None:
    params = serial(Linear(2, 3), Tanh(), LayerNorm(3), Linear(3, 1)).init(key(0))
    names = leaf_parameter_names(params)
    flags = mask_leaves(default_decay_mask, params)
    decayed = {name for name, flag in zip(names, flags, strict=True) if flag}
    assert decayed == {"0.weight", "3.weight"}
    mlp = MLP(2, (3, 1)).init(key(0))
    assert [default_decay_mask(name) for name, _ in named_parameters(mlp)] == [False, True, False, True]
    assert mask_leaves(default_decay_mask, mlp) == [
        default_decay_mask(name) for name in leaf_parameter_names(mlp)
    ]


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), seeds)
def test_for_mlps_the_default_mask_is_the_name_rule_of_weights_not_biases(
    sizes: list[int], seed: int
) -> None:
    params = MLP(2, sizes).init(key(seed))
    by_name = [default_decay_mask(name) for name in leaf_parameter_names(params)]
    assert mask_leaves(default_decay_mask, params) == by_name


def test_the_default_mask_keeps_the_name_rule_in_trees_of_scalars_and_vectors() -> None:
    assert mask_leaves(default_decay_mask, pmap({"weight": (1.0, 2.0), "bias": 0.5})) == [False, True, True]
    assert mask_leaves(default_decay_mask, pmap({"w": (1.0, 2.0), "matrix": ((1.0,),)})) == [True, True, True]
    norm_beside_a_matrix = pmap({"weight": (1.0, 2.0), "matrix": ((1.0,),)})
    assert mask_leaves(default_decay_mask, norm_beside_a_matrix) == [True, False, False]


# -- training -----------------------------------------------------------------------------------


def _train(model: Serial, params: PMap[str, Any], x: Any, y: Any, steps: int) -> list[float]:
    opt = optimizers.adamw(0.05, weight_decay=1e-3)
    state = opt.init(params)

    def loss(p: PMap[str, Any]) -> Any:
        return arrays.mse(model.apply(p, x, key=None, train=False), y)

    step = tape.value_and_grad(loss, arrays=True)
    losses = []
    for _ in range(steps):
        value, grads = step(params)
        losses.append(float(value))
        params, state = opt.step(params, grads, state)
    return losses


def test_a_composed_model_trains_with_the_optimizers() -> None:
    model = serial(Linear(2, 8), Tanh(), Linear(8, 1))
    x = data(0, 16, 2)
    y = tuple((math.sin(a) * b,) for a, b in x)
    losses = _train(model, model.init(key(1)), x, y, 30)
    assert losses[-1] < 0.5 * losses[0]
    assert all(math.isfinite(v) for v in losses)
    assert len(tree_leaves(model.init(key(1)))) == 8 * 2 + 8 + 8 + 1
