"""Tests for functional_nn.neuron, .layer, .mlp (with .init and .activations)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PVector, pmap, pvector

import tape
from functional_nn import layer, neuron
from functional_nn.activations import ACTIVATION_NAMES, ActivationName, check_activation, get_activation
from functional_nn.init import glorot_bound, he_std, weight_matrix
from functional_nn.layer import LayerParams, Matrix, Vector
from functional_nn.mlp import MLP, Params, named_parameters, num_params
from functional_nn.neuron import NeuronParams
from functional_nn.random import key
from tape import Scalar, Tape, Value
from tape.testing import assert_gradients_match, scalars
from tape.tree import leaf_parameter_names, named_leaves, tree_leaves, tree_map

seeds = st.integers(min_value=0, max_value=2**64)
activations = st.sampled_from(ACTIVATION_NAMES)
layer_sizes = st.lists(st.integers(1, 5), min_size=1, max_size=3)


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _std(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _weight(params: Params, i: int) -> Matrix:
    w = params["layers"][i]["weight"]
    assert all(isinstance(row, PVector) for row in w)
    return w  # type: ignore[return-value]  # checked above: a vector of rows


def _bias(params: Params, i: int) -> Vector:
    return params["layers"][i]["bias"]  # type: ignore[return-value]  # a vector of floats


# -- reference forward pass: explicit loops, plain math ------------------------------

REFERENCE: dict[str, Callable[[float], float]] = {
    "relu": lambda s: s if s > 0.0 else 0.0,
    "tanh": math.tanh,
    "sigmoid": lambda s: 1.0 / (1.0 + math.exp(-s)),
    "leaky_relu": lambda s: s if s > 0.0 else 0.01 * s,
    "identity": lambda s: s,
}


def reference_forward(params: Params, x: Sequence[float], activation: str) -> list[float]:
    h = list(x)
    layers = params["layers"]
    for i in range(len(layers)):
        weight, bias = _weight(params, i), _bias(params, i)
        out = []
        for j in range(len(weight)):
            s = bias[j]
            for k in range(len(h)):
                s += weight[j][k] * h[k]
            out.append(REFERENCE[activation](s) if i < len(layers) - 1 else s)
        h = out
    return h


def randomized(params: Params, seed: int) -> Params:
    """The params with every leaf (biases too) replaced by a draw from ``seed``."""
    from functional_nn.random import uniform

    draws = iter(uniform(key(seed), len(tree_leaves(params)), -1.0, 1.0))
    return tree_map(lambda _: next(draws), params)


# -- init ------------------------------------------------------------------------------


def test_init_is_deterministic_per_key_and_differs_across_keys() -> None:
    model = MLP(3, (4, 2))
    assert model.init(key(7)) == model.init(key(7))
    assert model.init(key(7)) != model.init(key(8))
    assert neuron.init(key(7), 3) == neuron.init(key(7), 3) != neuron.init(key(8), 3)
    assert layer.init(key(7), 3, 2) == layer.init(key(7), 3, 2) != layer.init(key(8), 3, 2)


def test_layers_of_one_model_get_different_weights() -> None:
    params = MLP(4, (4, 4)).init(key(0))
    assert _weight(params, 0) != _weight(params, 1)


@given(n_in=st.integers(1, 5), sizes=layer_sizes, seed=seeds)
def test_shapes_names_and_num_params(n_in: int, sizes: list[int], seed: int) -> None:
    model = MLP(n_in, sizes)
    params = model.init(key(seed))
    fans_in = [n_in, *sizes[:-1]]
    expected_count = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(fans_in, sizes, strict=True))
    assert num_params(params) == expected_count == model.num_params
    assert model.check_params(params) is params
    for i, (fan_in, fan_out) in enumerate(zip(fans_in, sizes, strict=True)):
        weight, bias = _weight(params, i), _bias(params, i)
        assert len(weight) == fan_out  # one row per output unit, like torch's [out, in]
        assert all(len(row) == fan_in for row in weight)
        assert bias == pvector([0.0] * fan_out)
        assert all(type(w) is float for row in weight for w in row)
    assert model.layer_shapes == tuple(zip(sizes, fans_in, strict=True))
    names = [name for name, _ in named_parameters(params)]
    assert names == [f"layers.{i}.{part}" for i in range(len(sizes)) for part in ("bias", "weight")]
    assert sorted(set(leaf_parameter_names(params))) == sorted(names)


def test_torch_style_leaf_names() -> None:
    params = MLP(3, (4, 2)).init(key(0))
    leaves = dict(named_leaves(params))
    # layers.<layer>.weight.<output unit>.<input>
    assert leaves["layers.0.weight.3.2"] == _weight(params, 0)[3][2]
    assert leaves["layers.1.bias.1"] == 0.0
    assert "layers.1.weight.1.3" in leaves and "layers.1.weight.2.0" not in leaves
    named = dict(named_parameters(params))
    assert named["layers.0.weight"] == _weight(params, 0)
    assert named["layers.1.bias"] == _bias(params, 1)


def test_he_statistics_over_a_big_layer() -> None:
    fan_in, fan_out = 200, 100
    weights = [w for row in weight_matrix(key(3), fan_in, fan_out, "he") for w in row]
    std = math.sqrt(2.0 / fan_in)
    assert he_std(fan_in) == std
    assert abs(_mean(weights)) < 5 * std / math.sqrt(len(weights))
    assert abs(_std(weights) / std - 1.0) < 0.03
    # normal, not uniform: about 4.6% of draws lie beyond two standard deviations
    beyond = sum(abs(w) > 2 * std for w in weights) / len(weights)
    assert 0.035 < beyond < 0.057


def test_glorot_statistics_over_a_big_layer() -> None:
    fan_in, fan_out = 200, 100
    weights = [w for row in weight_matrix(key(4), fan_in, fan_out, "glorot") for w in row]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert glorot_bound(fan_in, fan_out) == bound
    assert all(-bound <= w < bound for w in weights)
    assert max(weights) > 0.99 * bound and min(weights) < -0.99 * bound
    assert abs(_mean(weights)) < 5 * bound / math.sqrt(3 * len(weights))
    assert abs(_std(weights) / (bound / math.sqrt(3)) - 1.0) < 0.03


@pytest.mark.parametrize(
    ("activation", "expected"),
    [("relu", "he"), ("leaky_relu", "he"), ("tanh", "glorot"), ("sigmoid", "glorot"), ("identity", "glorot")],
)
def test_initializer_is_chosen_by_activation(activation: ActivationName, expected: str) -> None:
    model = MLP(50, (40, 1), activation=activation)
    assert model.initializer == expected
    first = [w for row in _weight(model.init(key(0)), 0) for w in row]
    if expected == "glorot":
        assert max(map(abs, first)) < glorot_bound(50, 40)
    else:
        assert max(map(abs, first)) > glorot_bound(50, 40)  # a normal's tails reach further
    assert MLP(50, (40, 1), activation=activation, init="glorot").initializer == "glorot"
    assert MLP(50, (40, 1), activation=activation, init="he").initializer == "he"


def test_neuron_and_layer_init_use_the_initializer() -> None:
    params = neuron.init(key(0), 500, initializer="glorot", fan_out=1)
    assert params["bias"] == 0.0
    weight = params["weight"]
    assert isinstance(weight, PVector)
    assert len(weight) == 500 and all(abs(w) < glorot_bound(500, 1) for w in weight)
    assert layer.shape(layer.init(key(0), 3, 5)) == (5, 3)


# -- apply on floats ---------------------------------------------------------------------


@given(
    n_in=st.integers(1, 4),
    sizes=layer_sizes,
    activation=activations,
    seed=seeds,
    data=st.data(),
)
def test_apply_on_floats_matches_a_hand_written_forward_pass(
    n_in: int, sizes: list[int], activation: ActivationName, seed: int, data: st.DataObject
) -> None:
    model = MLP(n_in, sizes, activation=activation)
    params = randomized(model.init(key(seed)), seed)  # nonzero biases too
    x = data.draw(st.lists(scalars(kinks=()), min_size=n_in, max_size=n_in))
    with Tape() as t:  # floats in: nothing is recorded, even with a tape open
        out = model.apply(params, x)
    assert len(t) == 0
    assert all(type(y) is float for y in out)
    expected = reference_forward(params, x, activation)
    assert len(out) == sizes[-1]
    for y, e in zip(out, expected, strict=True):
        assert math.isclose(y, e, rel_tol=1e-12, abs_tol=1e-12)


def test_output_layer_is_the_identity() -> None:
    model = MLP(2, (3, 4), activation="relu")
    params = randomized(model.init(key(0)), 1)
    outputs = [y for i in range(20) for y in model.apply(params, [float(i) - 10.0, 3.0 - i])]
    assert min(outputs) < 0.0  # relu on the last layer could never give this
    hidden = layer.apply(params["layers"][0], [1.0, -2.0], activation="relu")
    assert all(h >= 0.0 for h in hidden)


def test_neuron_apply_matches_formula() -> None:
    params: NeuronParams = pmap({"weight": pvector([0.5, -1.5, 2.0]), "bias": 0.25})
    x = [1.0, 2.0, -0.5]
    s = 0.5 * 1.0 - 1.5 * 2.0 + 2.0 * -0.5 + 0.25
    for name in ACTIVATION_NAMES:
        assert neuron.apply(params, x, activation=name) == pytest.approx(REFERENCE[name](s), abs=1e-15)


def test_apply_batch_is_apply_per_example() -> None:
    model = MLP(2, (3, 2), activation="tanh")
    params = model.init(key(0))
    xs = [[0.1, 0.2], [-1.0, 3.0], [0.0, 0.0]]
    assert model.apply_batch(params, xs) == tuple(model.apply(params, x) for x in xs)


def test_integer_inputs_are_accepted() -> None:
    model = MLP(2, (2,), activation="identity")
    params = model.init(key(0))
    assert model.apply(params, [1, 2]) == model.apply(params, [1.0, 2.0])


# -- apply on Values -----------------------------------------------------------------------


def test_a_neuron_records_exactly_one_dot_node() -> None:
    params = neuron.init(key(0), 4)
    x = [0.5, -1.0, 2.0, 0.25]
    with Tape() as t:
        watched = t.watch_tree(params)
        before = len(t)
        out = neuron.apply(watched, x, activation="tanh")
    assert isinstance(out, Value)
    assert [node.op.name for node in t.nodes[before:]] == ["dot", "add", "tanh"]
    dot_node = t.nodes[before]
    assert len(dot_node.parents) == 4 and dot_node.partials == tuple(x)  # one node, 4 inputs


def test_a_layer_records_one_dot_per_unit_and_the_mlp_one_per_neuron() -> None:
    params = layer.init(key(0), 5, 3)
    with Tape() as t:
        watched = t.watch_tree(params)
        before = len(t)
        layer.apply(watched, [1.0] * 5, activation="sigmoid")
    assert [node.op.name for node in t.nodes[before:]] == ["dot", "add", "sigmoid"] * 3

    model = MLP(4, (6, 5, 2), activation="identity")
    with Tape() as t:
        watched_mlp = t.watch_tree(model.init(key(1)))
        before = len(t)
        model.apply(watched_mlp, [1.0, 2.0, 3.0, 4.0])
    ops = [node.op.name for node in t.nodes[before:]]
    assert ops == ["dot", "add"] * (6 + 5 + 2)  # identity: no activation node


@given(
    seed=seeds,
    x=st.lists(scalars(-2.0, 2.0, kinks=()), min_size=3, max_size=3),
    target=st.lists(scalars(-1.0, 1.0, kinks=()), min_size=2, max_size=2),
)
def test_mlp_gradients_match_numerical_gradients(seed: int, x: list[float], target: list[float]) -> None:
    model = MLP(3, (4, 2), activation="tanh")
    params = randomized(model.init(key(seed)), seed)

    def loss(p: Params, inputs: Sequence[Scalar]) -> Scalar:
        outputs = model.apply(p, inputs)
        return tape.vsum([(y - t) ** 2 for y, t in zip(outputs, target, strict=True)])

    assert_gradients_match(loss, params, x, argnums=(0, 1))


def test_gradients_come_back_as_params_with_named_leaves() -> None:
    model = MLP(2, (3, 1), activation="tanh")
    params = model.init(key(0))

    def loss(p: Params) -> Scalar:
        (y,) = model.apply(p, [1.0, -1.0])
        return y * y

    value, grads = tape.value_and_grad(loss)(params)
    assert isinstance(value, float)
    assert [name for name, _ in named_parameters(grads)] == [name for name, _ in named_parameters(params)]
    assert all(type(g) is float for g in tree_leaves(grads))
    assert any(g != 0.0 for g in tree_leaves(grads))


# -- errors --------------------------------------------------------------------------------


def test_wrong_input_width_names_the_layer_and_both_sizes() -> None:
    model = MLP(3, (4, 2))
    params = model.init(key(0))
    with pytest.raises(ValueError, match=r"layers\.0: expected an input of width 3 .*got 2"):
        model.apply(params, [1.0, 2.0])
    second: LayerParams = params["layers"][1]
    with pytest.raises(
        ValueError, match=r"layers\.1: expected an input of width 4 \(layers\.1\.weight is 2 x 4\)"
    ):
        layer.apply(second, [0.0] * 3, name="layers.1")
    with pytest.raises(ValueError, match=r"neuron: expected an input of width 2 .*got 3"):
        two_weights: NeuronParams = pmap({"weight": pvector([1.0, 2.0]), "bias": 0.0})
        neuron.apply(two_weights, [1.0, 2.0, 3.0])


def test_params_of_another_spec_are_rejected_with_the_misfit_named() -> None:
    model = MLP(3, (4, 2))
    wider = MLP(3, (5, 2)).init(key(0))
    with pytest.raises(ValueError, match=r"layers\.0\.weight has 5 rows but 4 are expected"):
        model.check_params(wider)
    with pytest.raises(ValueError, match=r"params do not fit MLP\(3, \(4, 2\).*layers\.0\.weight has 5 rows"):
        model.apply(wider, [1.0, 2.0, 3.0])
    deeper = MLP(3, (4, 2, 2)).init(key(0))
    with pytest.raises(ValueError, match=r"holds 3 layers but the spec has 2"):
        model.apply(deeper, [1.0, 2.0, 3.0])
    other_input = MLP(5, (4, 2)).init(key(0))
    with pytest.raises(ValueError, match=r"layers\.0\.weight\.0 has 5 entries but 3 are expected"):
        model.apply(other_input, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("arrays", [False, True])
def test_apply_batch_rejects_params_of_another_spec_as_apply_does(arrays: bool) -> None:
    """A wider hidden layer is consistent within itself: the batch path still names the misfit,
    so fit cannot train params of another model."""
    model = MLP(3, (4, 2))
    wider = MLP(3, (5, 2)).init(key(0))
    batch = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    misfit = r"layers\.0 gives 5 outputs, but the spec has 4" if arrays else r"layers\.0\.weight has 5 rows"
    with pytest.raises(ValueError, match=r"params do not fit MLP\(3, \(4, 2\).*" + misfit):
        if arrays:
            tape.grad(lambda p: tape.arrays.sum(model.apply_batch(p, batch)), arrays=True)(wider)
        else:
            model.apply_batch(wider, batch)


def test_check_params_names_malformed_parts() -> None:
    model = MLP(2, (2,))
    good = model.init(key(0))
    lp: LayerParams = good["layers"][0]
    cases: list[tuple[object, str]] = [
        ({"layers": good["layers"]}, "pyrsistent map"),
        (pmap({"layer": good["layers"]}), "'layers'"),
        (pmap({"layers": list(good["layers"])}), "must be a pyrsistent vector"),
        (pmap({"layers": pvector([lp.remove("bias")])}), "keys 'bias' and 'weight'"),
        (
            pmap({"layers": pvector([lp.set("bias", pvector([0.0, "x"]))])}),
            r"layers\.0\.bias\.1 must be a float",
        ),
        (pmap({"layers": pvector([lp.set("bias", pvector([0.0]))])}), r"layers\.0\.bias has 1 entries"),
        (pmap({"layers": pvector([lp.set("weight", pvector([pvector([0.0, 1.0]), (0.0, 1.0)]))])}), "vector"),
    ]
    for params, message in cases:
        with pytest.raises(ValueError, match=message):
            model.check_params(params)


def test_inconsistent_layer_params_are_reported() -> None:
    ragged: LayerParams = pmap(
        {"weight": pvector([pvector([1.0, 2.0]), pvector([1.0])]), "bias": pvector([0.0, 0.0])}
    )
    with pytest.raises(ValueError, match=r"row 1 of layer\.weight has 1 entries"):
        layer.apply(ragged, [1.0, 1.0])
    short_bias: LayerParams = pmap({"weight": pvector([pvector([1.0])]), "bias": pvector([0.0, 0.0])})
    with pytest.raises(ValueError, match=r"layer\.weight has 1 rows but layer\.bias has 2"):
        layer.apply(short_bias, [1.0])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((0, (2,)), {}, ValueError, "n_in must be >= 1"),
        ((2.0, (2,)), {}, TypeError, "n_in must be an int"),
        ((2, ()), {}, ValueError, "at least one layer"),
        ((2, 3), {}, TypeError, "sequence of layer widths"),
        ((2, (3, 0)), {}, ValueError, r"sizes\[1\] must be >= 1"),
        ((2, (3, True)), {}, TypeError, r"sizes\[1\] must be an int"),
        ((2, (3,)), {"activation": "softmax"}, ValueError, "'relu', 'tanh', 'sigmoid', 'leaky_relu', 'ident"),
        ((2, (3,)), {"dropout": 1.0}, ValueError, r"in \[0, 1\)"),
        ((2, (3,)), {"dropout": -0.1}, ValueError, r"in \[0, 1\)"),
        ((2, (3,)), {"dropout": math.nan}, ValueError, r"in \[0, 1\)"),
        ((2, (3,)), {"init": "xavier"}, ValueError, "valid initializers: 'he', 'glorot'"),
    ],
)
def test_invalid_specs_are_rejected(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        MLP(*args, **kwargs)  # type: ignore[arg-type]


def test_unknown_activation_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid activations: 'relu', 'tanh'"):
        check_activation("gelu")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        layer.apply(layer.init(key(0), 1, 1), [1.0], activation="gelu")  # type: ignore[arg-type]
    assert get_activation("leaky_relu")(-2.0) == -0.02


def test_spec_is_a_frozen_hashable_value() -> None:
    a = MLP(2, [3, 1], activation="tanh")
    b = MLP(2, (3, 1), activation="tanh", init="glorot")
    assert a == b and hash(a) == hash(b) and a.sizes == (3, 1)
    assert a != MLP(2, (3, 1), activation="tanh", dropout=0.1)
    assert repr(a) == "MLP(2, (3, 1), activation='tanh', dropout=0.0, init='glorot')"
    assert eval(repr(a)) == a
    assert a.n_out == 1
    with pytest.raises(AttributeError):
        a.n_in = 3  # type: ignore[misc]


def test_bad_inputs_name_the_argument() -> None:
    model = MLP(2, [3, 1])
    params = model.init(key(0))
    with pytest.raises(
        ValueError, match=r"^MLP.apply: the input x: element 0 is an int too large for a float"
    ):
        model.apply(params, [10**400, 1.0])
    with pytest.raises(TypeError, match=r"^MLP.apply: the input x must be a sequence, not NoneType"):
        model.apply(params, None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^MLP.apply_batch: the batch xs must be a sequence, not NoneType"):
        model.apply_batch(params, None)  # type: ignore[arg-type]
    assert model.apply(params, [1, 2]) == model.apply(params, [1.0, 2.0])
