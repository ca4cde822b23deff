"""Tests for functional_nn.regularization: dropout (alone and in an MLP), weight-decay names."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from functional_nn import layer
from functional_nn.mlp import MLP, Params, named_parameters
from functional_nn.random import fold_in, key, split
from functional_nn.regularization import check_dropout_rate, dropout, dropout_mask
from optimizers.masks import default_decay_mask
from tape import Scalar, Tape, Value
from tape.testing import assert_gradients_match, scalars

seeds = st.integers(min_value=0, max_value=2**64)
rates = st.floats(0.01, 0.9)  # np >= 10 over the trials: the normal bound holds
activations_ = st.lists(st.floats(-10.0, 10.0), min_size=1, max_size=6)


# -- dropout -------------------------------------------------------------------------


@given(xs=activations_, p=st.floats(0.0, 1.0), seed=seeds)
def test_eval_is_the_identity(xs: list[float], p: float, seed: int) -> None:
    assert dropout(key(seed), xs, p, train=False) == tuple(xs)
    assert dropout(None, xs, p, train=False) == tuple(xs)


@given(xs=activations_, seed=seeds)
def test_zero_rate_is_the_identity_even_in_training(xs: list[float], seed: int) -> None:
    assert dropout(key(seed), xs, 0.0) == tuple(xs)
    assert dropout(None, xs, 0.0, train=True) == tuple(xs)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_zeroes_about_p_and_scales_survivors(p: float) -> None:
    n = 4000
    xs = [1.0 + i / n for i in range(n)]  # all nonzero, so zeros are exactly the dropped
    out = dropout(key(11), xs, p)
    dropped = sum(y == 0.0 for y in out)
    assert abs(dropped / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    for x, y in zip(xs, out, strict=True):
        assert y == 0.0 or math.isclose(y, x / (1.0 - p), rel_tol=1e-15)
    mask = dropout_mask(key(11), p, n)
    assert out == tuple(x * (1.0 / (1.0 - p)) if kept else 0.0 for x, kept in zip(xs, mask, strict=True))


@given(xs=activations_, p=rates, seed=seeds)
def test_expected_value_is_preserved(xs: list[float], p: float, seed: int) -> None:
    trials = 1000
    base = key(seed)
    totals = [0.0] * len(xs)
    for i in range(trials):
        for j, y in enumerate(dropout(fold_in(base, i), xs, p)):
            totals[j] += y
    for x, total in zip(xs, totals, strict=True):
        sigma = abs(x) * math.sqrt(p / (1.0 - p) / trials)
        assert abs(total / trials - x) <= 6 * sigma + 1e-9


@given(p=st.floats(0.05, 0.95), seed=seeds)
def test_same_key_same_mask_and_other_keys_other_masks(p: float, seed: int) -> None:
    xs = [1.0] * 200
    k = key(seed)
    assert dropout(k, xs, p) == dropout(k, xs, p)
    a, b = split(k)
    assert dropout(a, xs, p) != dropout(b, xs, p)  # equal with chance < 1e-8 for 200 draws


def test_p_one_zeroes_everything_and_bad_rates_are_rejected() -> None:
    assert dropout(key(0), [1.0, -2.0, 3.0], 1.0) == (0.0, 0.0, 0.0)
    assert dropout(key(0), [1.0, -2.0], 1.0, train=False) == (1.0, -2.0)
    for bad in (-0.1, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            dropout(key(0), [1.0], bad)
    with pytest.raises(TypeError, match="must be a number"):
        dropout(key(0), [1.0], "0.5")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        check_dropout_rate(1.0, allow_one=False)
    assert check_dropout_rate(0, allow_one=False) == 0.0


def test_training_without_a_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs a key"):
        dropout(None, [1.0, 2.0], 0.5)


def test_dropout_on_values_passes_gradient_to_survivors_only() -> None:
    xs = [0.5, -1.0, 2.0, 3.0, 1.5, -0.25, 4.0, 1.0]
    p = 0.5
    k = key(5)
    mask = dropout_mask(k, p, len(xs))
    assert 0 < sum(mask) < len(xs)
    with Tape() as t:
        watched = [t.watch(x) for x in xs]
        out = dropout(k, watched, p)
    for y, kept in zip(out, mask, strict=True):
        assert isinstance(y, Value) if kept else (type(y) is float and y == 0.0)
    grads = tape.grad(lambda v: tape.vsum(dropout(k, v, p)))(xs)
    assert grads == [2.0 if kept else 0.0 for kept in mask]


# -- dropout in an MLP ---------------------------------------------------------------------


def test_mlp_dropout_differs_between_train_and_eval_and_between_keys() -> None:
    model = MLP(4, (32, 32, 2), dropout=0.5)
    params = model.init(key(0))
    x = [0.5, -1.0, 2.0, 0.25]
    evaluated = model.apply(params, x)
    assert evaluated == model.apply(params, x, key=key(1))  # eval ignores the key
    trained = model.apply(params, x, key=key(1), train=True)
    assert trained == model.apply(params, x, key=key(1), train=True)
    assert trained != evaluated
    assert trained != model.apply(params, x, key=key(2), train=True)
    with pytest.raises(ValueError, match="pass key="):
        model.apply(params, x, train=True)
    no_dropout = MLP(4, (32, 32, 2))
    assert no_dropout.apply(params, x, train=True) == evaluated


def test_mlp_drops_after_each_hidden_activation_with_keys_split_from_the_given_one() -> None:
    model = MLP(3, (6, 5, 2), activation="tanh", dropout=0.4)
    params = model.init(key(0))
    x = [0.3, -0.7, 1.1]
    k = key(9)
    keys = split(k, 2)  # one per hidden layer; the output layer is never dropped
    layers = params["layers"]
    h = dropout(keys[0], layer.apply(layers[0], x, activation="tanh"), 0.4)
    h = dropout(keys[1], layer.apply(layers[1], h, activation="tanh"), 0.4)
    expected = layer.apply(layers[2], h, activation="identity")
    assert model.apply(params, x, key=k, train=True) == expected


def test_single_layer_mlp_never_drops_its_outputs() -> None:
    model = MLP(3, (50,), dropout=0.9)
    params = model.init(key(0))
    x = [1.0, 2.0, 3.0]
    assert model.apply(params, x, key=key(1), train=True) == model.apply(params, x)


def test_apply_batch_gives_each_example_its_own_mask() -> None:
    model = MLP(2, (64, 1), dropout=0.5)
    params = model.init(key(0))
    xs = [[1.0, 1.0]] * 4
    out = model.apply_batch(params, xs, key=key(3), train=True)
    assert len(set(out)) > 1
    assert out == model.apply_batch(params, xs, key=key(3), train=True)
    assert len(set(model.apply_batch(params, xs))) == 1


@given(seed=seeds, x=st.lists(scalars(-2.0, 2.0, kinks=()), min_size=2, max_size=2))
def test_gradients_through_a_fixed_dropout_mask_match_numerical(seed: int, x: list[float]) -> None:
    model = MLP(2, (5, 4, 1), activation="tanh", dropout=0.3)
    params = model.init(key(seed))
    k = fold_in(key(seed), 1)

    def loss(p: Params, inputs: Sequence[Scalar]) -> Scalar:
        (y,) = model.apply(p, inputs, key=k, train=True)
        return (y - 0.5) ** 2

    assert_gradients_match(loss, params, x, argnums=(0, 1))


# -- weight-decay names -----------------------------------------------------------------------


def test_the_optimizers_default_mask_decays_an_mlps_weights_not_its_biases() -> None:
    params = MLP(2, (3, 1)).init(key(0))
    assert [default_decay_mask(name) for name, _ in named_parameters(params)] == [False, True, False, True]
