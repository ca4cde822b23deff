"""check_state: every state an optimizer makes passes; swapped, transposed or damaged ones are named."""

from __future__ import annotations

import doctest
import json
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import optimizers
from optimizers import (
    OptState,
    StateError,
    check_state,
    state_from_json,
    state_to_json,
    transforms,
    validation,
)
from optimizers.state import StateValue
from tests.optimizers.strategies import Problem, any_skeletons, model_skeletons, problems
from tests.optimizers.test_state import every_optimizer

# Two layers whose weights are 3x2 and 2x3: swapping or transposing their moments keeps
# every count of leaves, which is all a step checks.
PARAMS: PMap[str, object] = pmap(
    {
        "layers": pvector(
            [
                pmap(
                    {
                        "weight": pvector([pvector([0.1, 0.2]), pvector([0.3, 0.4]), pvector([0.5, 0.6])]),
                        "bias": pvector([0.0, 0.1, 0.2]),
                    }
                ),
                pmap(
                    {
                        "weight": pvector([pvector([0.7, 0.8, 0.9]), pvector([1.0, 1.1, 1.2])]),
                        "bias": pvector([0.3, 0.4]),
                    }
                ),
            ]
        )
    }
)


def adam_state(steps: int = 2) -> OptState:
    opt = optimizers.adam(0.01)
    params, state = PARAMS, opt.init(PARAMS)
    for _ in range(steps):
        params, state = opt.step(params, params, state)
    return state


ADAM = ("transform", "parts", 0)
"""Where ``scale_by_adam``'s state sits inside an ``adam`` optimizer's state."""


def edited(state: OptState, path: tuple[object, ...], change: Callable[[StateValue], StateValue]) -> OptState:
    """``state`` with the value at ``path`` (keys and indices) replaced by ``change(value)``."""
    node: object = state
    for part in path:
        node = node[part]  # type: ignore[index]
    new: OptState = state.transform(list(path), change(node))  # type: ignore[arg-type]
    return new


def transposed(matrix: StateValue) -> StateValue:
    assert isinstance(matrix, PVector)
    return pvector([pvector(column) for column in zip(*matrix, strict=True)])


def repr_short(value: object) -> str:
    return f"{value!r:.12}"


def refused(state: object, params: object = PARAMS, optimizer: optimizers.Optimizer | None = None) -> str:
    with pytest.raises(StateError) as caught:
        check_state(state, params, optimizer)
    return str(caught.value)


# --- what optimizers make passes --------------------------------------------------------


@given(problems(trees=st.one_of(model_skeletons, any_skeletons), max_steps=3))
def test_every_state_an_optimizer_makes_passes_before_and_after_json(problem: Problem) -> None:
    for opt in every_optimizer(problem.params):
        params, state = problem.params, opt.init(problem.params)
        for grads in [None, *problem.grads]:
            if grads is not None:
                params, state = opt.step(params, grads, state)
            assert check_state(state, params, opt) is state
            again = state_from_json(json.loads(json.dumps(state_to_json(state))))
            assert check_state(again, params, opt) is again


def test_state_specs_describe_what_each_transformation_keeps() -> None:
    made = [
        transforms.scale_by_learning_rate(0.1),
        transforms.trace(0.9),
        transforms.scale_by_adam(),
        transforms.add_l2_decay(0.1),
        transforms.add_decoupled_weight_decay(0.1, 0.01),
        transforms.clip_by_global_norm(1.0),
    ]
    assert sorted(t.name for t in made) == sorted(transforms.STATE_SPECS)
    for transform in made:
        spec = transforms.STATE_SPECS[transform.name]
        assert set(transform.init(PARAMS)) == {"transform", *spec.counts, *spec.moments}
        assert set(spec.non_negative) <= set(spec.moments)


def test_the_module_examples_run() -> None:
    failures, tried = doctest.testmod(validation, optionflags=doctest.ELLIPSIS)
    assert failures == 0
    assert tried > 0


# --- moments that do not fit the params ---------------------------------------------------


def test_moments_swapped_between_two_layers_are_refused_by_key_and_parameter() -> None:
    state = adam_state()
    mu = (*ADAM, "mu", "layers")
    swapped = edited(state, mu, lambda layers: pvector([layers[1], layers[0]]))  # type: ignore[index]
    # Each moment tree still holds 16 numbers, so a step would use them, on the wrong parameters.
    optimizers.adam(0.01).step(PARAMS, PARAMS, swapped)
    message = refused(swapped)
    assert "'transform.parts.0.mu'" in message
    assert "'layers.0.bias'" in message
    assert "(3,)" in message and "(2,)" in message


def test_weights_moments_swapped_between_layers_name_the_weight() -> None:
    state = adam_state()

    def swap(layers: StateValue) -> StateValue:
        assert isinstance(layers, PVector)
        first, second = layers[0], layers[1]
        assert isinstance(first, PMap) and isinstance(second, PMap)
        return pvector([first.set("weight", second["weight"]), second.set("weight", first["weight"])])

    message = refused(edited(state, (*ADAM, "nu", "layers"), swap))
    assert "'transform.parts.0.nu'" in message
    assert "'layers.0.weight'" in message
    assert "(3, 2) in the params but (2, 3) in the state" in message


def test_a_transposed_moment_is_refused() -> None:
    message = refused(edited(adam_state(), (*ADAM, "mu", "layers", 1, "weight"), transposed))
    assert "'transform.parts.0.mu'" in message
    assert "'layers.1.weight' has shape (2, 3) in the params but (3, 2) in the state" in message


def test_a_momentum_trace_for_other_params_is_refused() -> None:
    opt = optimizers.sgd(0.1, momentum=0.9)
    state = opt.init(PARAMS)
    velocity = ("transform", "parts", 0, "velocity", "layers")
    message = refused(edited(state, velocity, lambda layers: pvector([layers[0]])))  # type: ignore[index]
    assert "'transform.parts.0.velocity'" in message
    assert "'layers.1.bias' has no entry in the state" in message


def test_a_moment_for_a_parameter_the_model_lacks_is_refused() -> None:
    def add_gain(mu: StateValue) -> StateValue:
        assert isinstance(mu, PMap)
        return mu.set("gain", 1.0)

    extra = edited(adam_state(), (*ADAM, "mu"), add_gain)
    assert "'gain', which is not a parameter" in refused(extra)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("nu", -1e-12, "second moment"),
        ("nu", math.inf, "finite"),
        ("mu", math.nan, "finite"),
        ("mu", 1, "is a int, not a float"),
        ("mu", True, "bool"),
        ("mu", "0.5", "str"),
    ],
)
def test_moment_values_must_be_finite_floats_and_second_moments_non_negative(
    key: str, value: StateValue, fragment: str
) -> None:
    state = edited(adam_state(), (*ADAM, key, "layers", 1, "weight", 1, 2), lambda _: value)
    message = refused(state)
    assert f"'transform.parts.0.{key}.layers.1.weight.1.2'" in message
    assert fragment in message


# --- counts, keys and names ---------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, True, 1.0, "2", None, -(10**400)], ids=repr_short)
@pytest.mark.parametrize("path", [("step",), (*ADAM, "count"), ("transform", "parts", 1, "count")])
def test_step_counts_are_non_negative_ints(path: tuple[object, ...], value: StateValue) -> None:
    message = refused(edited(adam_state(), path, lambda _: value))
    assert "an int >= 0" in message
    assert repr(".".join(map(str, path))) in message


@pytest.mark.parametrize(
    ("path", "change", "fragment"),
    [
        ((), lambda s: s.remove("layout"), "missing ['layout']"),
        ((), lambda s: s.set("extra", 1), "unexpected 'extra'"),
        (ADAM, lambda s: s.remove("nu"), "'transform.parts.0' should hold exactly"),
        (ADAM, lambda s: s.set("velocity", s["mu"]), "unexpected 'velocity'"),
        (ADAM, lambda s: s.set("transform", "scale_by_adamw"), "'scale_by_adamw', which is not a"),
        (ADAM, lambda s: s.set("transform", 3), "names no transformation"),
        (ADAM, lambda s: pvector([s]), "not a transformation's state"),
        (("transform",), lambda s: s.set("parts", pmap()), "not a PVector"),
        (("parameters",), lambda p: p.set("layers.0.bias", 4), "'layers.0.bias' has 3 leaves but 4"),
        (("layout",), lambda _: "0" * 32, "laid out differently"),
    ],
)
def test_keys_and_names_that_no_optimizer_writes_are_refused(
    path: tuple[object, ...], change: Callable[[PMap[str, StateValue]], StateValue], fragment: str
) -> None:
    state = adam_state()
    new = change(state) if not path else edited(state, path, change)  # type: ignore[arg-type]
    assert fragment in refused(new)


def test_a_state_for_other_params_is_refused() -> None:
    other = PARAMS.set("scale", 1.0)
    assert "another parameter tree" in refused(adam_state(), other)
    assert "a PMap, not a dict" in refused(state_to_json(adam_state()))


def test_with_an_optimizer_the_chain_of_transformations_must_be_its_own() -> None:
    state = adam_state()
    check_state(state, PARAMS, optimizers.adam(0.5, b1=0.5))  # hyperparameters are not recorded
    message = refused(state, optimizer=optimizers.sgd(0.1, momentum=0.9))
    assert "made by 'adam' (scale_by_adam, scale_by_learning_rate)" in message
    assert "not by 'sgd' (trace, scale_by_learning_rate)" in message
    parts = ("transform", "parts")
    reordered = edited(state, parts, lambda p: pvector(reversed(p)))  # type: ignore[arg-type]
    check_state(reordered, PARAMS)  # each part is well formed ...
    assert "(scale_by_learning_rate, scale_by_adam)" in refused(reordered, optimizer=optimizers.adam())
    with pytest.raises(ValueError, match="made by"):  # ... and step would refuse it too
        optimizers.adam().step(PARAMS, PARAMS, reordered)
