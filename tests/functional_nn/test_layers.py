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
    GELU,
    GRU,
    AvgPool2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Layer,
    LayerNorm,
    Linear,
    MaxPool2d,
    MLPLayer,
    MultiHeadAttention,
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


MISFITS = [
    (
        Linear(2, 3),
        Linear(2, 4),
        (4, 2),
        r"Linear: 'weight' has shape \(4, 2\), but this layer's spec gives \(3, 2\)",
    ),
    (
        Conv2d(1, 2, 3),
        Conv2d(1, 3, 3),
        (2, 1, 4, 4),
        r"Conv2d: 'weight' has shape \(3, 1, 3, 3\), .* \(2, 1, 3, 3\)",
    ),
    (GRU(2, 3), GRU(2, 4), (2, 2, 2), r"GRU: 'weight_ih_l0' has shape \(12, 2\), .* gives \(9, 2\)"),
    (MultiHeadAttention(4, 2), MultiHeadAttention(4, 1, causal=True), None, None),  # same shapes: fits
    (LayerNorm(3), LayerNorm(4), (2, 3), r"LayerNorm: 'weight' has shape \(4,\), but .* gives \(3,\)"),
]


@pytest.mark.parametrize(("layer", "other", "shape", "match"), MISFITS, ids=[repr(m[0]) for m in MISFITS])
@pytest.mark.parametrize("watched", [False, True], ids=["floats", "under grad"])
def test_params_of_a_layer_of_another_size_are_refused_by_name(
    layer: Layer, other: Layer, shape: tuple[int, ...] | None, match: str | None, watched: bool
) -> None:
    """Params another size of the same layer made would run (a wider layer's are consistent among
    themselves) and give another shape; each parameter is checked against the layer's spec."""
    params = other.init(key(0))
    x = data(1, *(shape or (2, 3, 4)))

    def run(p: Any) -> Any:
        return arrays.sum(arrays.asarray(layer.apply(p, x)))

    def call() -> object:
        return tape.grad(run, arrays=True)(params) if watched else run(params)

    if match is None:
        call()  # attention's heads split the same weights: another head count fits
        return
    with pytest.raises(ValueError, match=match + r" \(params of another layer\?\)"):
        call()


def test_embedding_and_attention_params_of_another_size_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"Embedding: 'weight' has shape \(5, 2\), .* gives \(5, 3\)"):
        Embedding(5, 3).apply(Embedding(5, 2).init(key(0)), [[1, 2]])
    with pytest.raises(ValueError, match=r"MultiHeadAttention.out_proj: 'weight' has shape \(2, 2\)"):
        wrong = MultiHeadAttention(4, 2).init(key(0)).set("out_proj", Linear(2, 2).init(key(1)))
        MultiHeadAttention(4, 2).apply(wrong, data(1, 2, 3, 4))


def test_a_parameter_held_as_a_sequence_of_array_rows_is_read_at_its_whole_shape() -> None:
    """Array ops take a sequence of (untracked) Array rows as the matrix they make; the shape
    check reads it at its whole shape, not at the length of the sequence."""
    layer = Linear(3, 2)
    params = layer.init(key(0))
    rows = params.set("weight", tuple(arrays.asarray(tuple(row)) for row in params["weight"]))
    x = [[0.1, 0.2, 0.3]]
    assert layer.apply(rows, x) == layer.apply(params, x)
    wider = Linear(3, 4).init(key(0))
    with pytest.raises(ValueError, match=r"'weight' has shape \(4, 3\), but .* gives \(2, 3\)"):
        layer.apply(wider.set("weight", tuple(arrays.asarray(tuple(row)) for row in wider["weight"])), x)


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
    assert layer.stochastic and not Dropout(0.0).stochastic
    assert MLPLayer(MLP(2, (3, 1), dropout=0.5)).stochastic and not MLPLayer(MLP(2, (3, 1))).stochastic


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


# -- the N-d layers -----------------------------------------------------------------------------


def _loss_of(layer: Layer, x: Any) -> Any:
    def loss(p: PMap[str, Any], inputs: Any) -> Any:
        return weighted_mean(layer.apply(p, inputs))

    return loss


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (Conv2d(2, 3, 2), (2, 2, 4, 3)),
        (Conv2d(1, 2, (2, 3), stride=2, padding=1), (1, 1, 5, 4)),
        (serial(MaxPool2d(2), Flatten()), (2, 2, 4, 4)),
        (AvgPool2d(2, stride=1), (1, 2, 3, 3)),
        (LayerNorm(4), (2, 3, 4)),
        (GELU(), (2, 3, 2)),
        (GRU(3, 2), (2, 3, 3)),
        (MultiHeadAttention(4, 2), (2, 3, 4)),
        (MultiHeadAttention(4, 1, causal=True), (1, 3, 4)),
    ],
    ids=repr,
)
def test_nd_layer_gradients_match_central_differences(layer: Layer, shape: tuple[int, ...]) -> None:
    params = layer.init(key(7))
    x = data(8, *shape)
    assert_gradients_match(_loss_of(layer, x), params, x, argnums=(0, 1), arrays=True)


def test_embedding_gradients_accumulate_over_repeated_ids() -> None:
    layer = Embedding(5, 3)
    params = layer.init(key(0))
    ids = ((1, 3, 1), (4, 1, 0))

    def loss(p: PMap[str, Any]) -> Any:
        return weighted_mean(layer.apply(p, ids))

    assert_gradients_match(loss, params, arrays=True)
    grads = tape.grad(loss, arrays=True)(params)
    assert cast(Any, state_dict(grads)["weight"])[2] == [0.0, 0.0, 0.0]  # id 2 is never looked up
    assert layer.apply(params, ids)[0][0] == tuple(params["weight"][1])


def test_embedding_rejects_bad_ids_by_name() -> None:
    layer = Embedding(3, 2)
    params = layer.init(key(0))
    with pytest.raises(ValueError, match="token id 3 is out of range for 3 embeddings"):
        layer.apply(params, [[0, 3]])
    with pytest.raises(TypeError, match="token ids must be ints, got float"):
        layer.apply(params, [[0, 1.0]])
    with pytest.raises(ValueError, match="ragged"):
        layer.apply(params, [[0, 1], [2]])


def test_gru_outputs_are_each_steps_hidden_state_computed_by_hand() -> None:
    layer = GRU(2, 3)
    params = layer.init(key(1))
    x = data(2, 1, 4, 2)
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b_ih, b_hh = params["bias_ih_l0"], params["bias_hh_l0"]

    def affine(w: Any, b: Any, v: Sequence[float]) -> list[float]:
        return [
            math.fsum(a * c for a, c in zip(row, v, strict=True)) + bias
            for row, bias in zip(w, b, strict=True)
        ]

    def sigmoid(s: float) -> float:
        return 1 / (1 + math.exp(-s))

    h = [0.0] * 3
    expected = []
    for x_t in x[0]:
        gi, gh = affine(w_ih, b_ih, x_t), affine(w_hh, b_hh, h)
        r = [sigmoid(gi[j] + gh[j]) for j in range(3)]
        z = [sigmoid(gi[3 + j] + gh[3 + j]) for j in range(3)]
        n = [math.tanh(gi[6 + j] + r[j] * gh[6 + j]) for j in range(3)]
        h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(3)]
        expected.append(h)
    ours = layer.apply(params, x)
    assert flatten(ours) == pytest.approx(flatten(expected), rel=1e-12, abs=1e-12)


def test_causal_attention_does_not_look_ahead() -> None:
    layer = MultiHeadAttention(4, 2, causal=True)
    params = layer.init(key(3))
    x = data(4, 1, 5, 4)
    changed = ((*x[0][:3], tuple(v + 1.0 for v in x[0][3]), *x[0][4:]),)
    before, after = layer.apply(params, x), layer.apply(params, changed)
    assert before[0][:3] == after[0][:3]
    assert before[0][3] != after[0][3]
    full = MultiHeadAttention(4, 2).apply(params, x)
    assert full[0][0] != before[0][0]


def test_nd_layers_reject_misshapen_input_by_name() -> None:
    with pytest.raises(ValueError, match=r"Conv2d: expected 2 input channels"):
        Conv2d(2, 1, 1).apply(Conv2d(2, 1, 1).init(key(0)), data(0, 1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"GRU: expected input of shape \(batch, time, 3\)"):
        GRU(3, 2).apply(GRU(3, 2).init(key(0)), data(0, 2, 4))
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        MultiHeadAttention(5, 2)


ND_LAYERS: list[Layer] = [
    Conv2d(1, 2, 3, stride=(1, 2), padding=1),
    MaxPool2d(2),
    AvgPool2d(3, stride=1),
    Flatten(),
    Embedding(4, 2),
    GELU(),
    GRU(2, 3),
    MultiHeadAttention(4, 2, causal=True),
    serial(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(8, 2)),
]


@pytest.mark.parametrize("layer", ND_LAYERS, ids=repr)
def test_nd_layers_follow_the_protocol_and_pickle_by_value(layer: Layer) -> None:
    assert isinstance(layer, Layer)
    again = pickle.loads(pickle.dumps(layer))
    assert again == layer
    assert again.init(key(3)) == layer.init(key(3))


def test_weight_decay_covers_every_weight_and_no_bias_or_norm_scale() -> None:
    model = serial(
        Embedding(5, 4), MultiHeadAttention(4, 2), LayerNorm(4), GRU(4, 3), Flatten(), Linear(6, 2)
    )
    params = model.init(key(0))
    names = leaf_parameter_names(params)
    flags = mask_leaves(default_decay_mask, params)
    decayed = {name for name, flag in zip(names, flags, strict=True) if flag}
    assert decayed == {
        "0.weight",
        "1.in_proj_weight",
        "1.out_proj.weight",
        "3.weight_hh_l0",
        "3.weight_ih_l0",
        "5.weight",
    }


def test_a_small_cnn_trains_with_the_optimizers() -> None:
    model = serial(Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(12, 2))
    x = data(0, 8, 1, 4, 4)
    labels = tuple(int(sum(flatten(image)) > 0) for image in x)
    opt = optimizers.adam(0.05)
    params = model.init(key(1))
    state = opt.init(params)
    step = tape.value_and_grad(
        lambda p: arrays.cross_entropy_with_logits(model.apply(p, x), labels), arrays=True
    )
    losses = []
    for _ in range(15):
        value, grads = step(params)
        losses.append(float(value))
        params, state = opt.step(params, grads, state)
    assert losses[-1] < 0.5 * losses[0]


def _sequence_losses(core: Layer, steps: int) -> list[float]:
    ids = ((0, 1, 2, 3), (3, 2, 1, 0), (1, 1, 2, 2))
    targets = data(5, 3, 4, 1)
    model = serial(Embedding(4, 4), core, Linear(4, 1))
    opt = optimizers.adamw(0.05)
    params = model.init(key(2))
    state = opt.init(params)
    step = tape.value_and_grad(lambda p: arrays.mean((model.apply(p, ids) - targets) ** 2), arrays=True)
    losses = []
    for _ in range(steps):
        value, grads = step(params)
        losses.append(float(value))
        params, state = opt.step(params, grads, state)
    return losses


@pytest.mark.parametrize("core", [GRU(4, 4), MultiHeadAttention(4, 2, causal=True)], ids=repr)
def test_a_gru_and_an_attention_model_train_with_the_optimizers(core: Layer) -> None:
    losses = _sequence_losses(core, 30)
    assert losses[-1] < 0.5 * losses[0]


def _spread(values: list[float]) -> tuple[float, float]:
    return min(values), max(values)


def test_nd_layers_initialise_as_pytorch_does() -> None:
    conv = state_dict(Conv2d(3, 40, (2, 3)).init(key(0)))
    bound = 1 / math.sqrt(3 * 2 * 3)
    for name in ("weight", "bias"):
        low, high = _spread(flatten(conv[name]))
        assert -bound <= low < -0.9 * bound and 0.9 * bound < high < bound, name
    gru = state_dict(GRU(5, 16).init(key(0)))
    for name, values in gru.items():
        low, high = _spread(flatten(values))
        assert -0.25 <= low < -0.2 and 0.2 < high < 0.25, name  # 1/sqrt(16)
    attention = state_dict(MultiHeadAttention(8, 2).init(key(0)))
    xavier = math.sqrt(6 / (8 + 24))
    low, high = _spread(flatten(attention["in_proj_weight"]))
    assert -xavier <= low < -0.9 * xavier and 0.9 * xavier < high < xavier
    assert set(flatten(attention["in_proj_bias"])) == set(flatten(attention["out_proj.bias"])) == {0.0}
    low, high = _spread(flatten(attention["out_proj.weight"]))
    assert -1 / math.sqrt(8) <= low and high < 1 / math.sqrt(8)
    table = flatten(state_dict(Embedding(100, 50).init(key(0)))["weight"])
    assert math.fsum(table) / len(table) == pytest.approx(0.0, abs=0.05)
    assert math.fsum(v * v for v in table) / len(table) == pytest.approx(1.0, rel=0.05)


COMPOSED: list[tuple[str, Serial, Any]] = [
    (
        "cnn",
        serial(Conv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(8, 3)),
        data(1, 4, 1, 4, 4),
    ),
    ("gru", serial(GRU(3, 4), Flatten(), Linear(8, 3)), data(2, 4, 2, 3)),
    (
        "attention",
        serial(MultiHeadAttention(4, 2, causal=True), LayerNorm(4), Flatten(), Linear(12, 3)),
        data(3, 4, 3, 4),
    ),
    (
        "tokens",
        serial(Embedding(5, 4), GRU(4, 4), Flatten(), Linear(12, 3)),
        ((0, 1, 2), (3, 4, 0), (1, 1, 1), (2, 2, 4)),
    ),
]


@pytest.mark.parametrize(("name", "model", "x"), COMPOSED, ids=[c[0] for c in COMPOSED])
def test_a_compiled_step_of_a_composed_model_is_the_eager_one_bit_for_bit(
    name: str, model: Serial, x: Any
) -> None:
    params = model.init(key(0))

    def loss(p: PMap[str, Any], inputs: Any) -> Any:
        return arrays.cross_entropy_with_logits(model.apply(p, inputs), (0, 1, 2, 0))

    eager = tape.value_and_grad(loss, arrays=True)(params, x)
    compiled = tape.jit(tape.value_and_grad(loss, arrays=True))
    assert compiled(params, x) == eager
    assert compiled(model.init(key(1)), x) == tape.value_and_grad(loss, arrays=True)(model.init(key(1)), x)
