"""States are persistent, JSON round-trippable, and nothing given to an optimizer changes."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import optimizers
from optimizers import Optimizer, OptState, state_from_json, state_to_json
from tape.tree import tree_leaves, tree_structure
from tests.optimizers.strategies import Problem, a_mask_for, any_skeletons, model_skeletons, problems


def every_optimizer(params: object) -> list[Optimizer]:
    mask = a_mask_for(params)
    return [
        optimizers.sgd(0.1),
        optimizers.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.01, decay_mask=mask),
        optimizers.momentum(optimizers.cosine_decay(0.1, 10), weight_decay=0.01, decay_mask=mask),
        optimizers.adam(0.01, weight_decay=0.01, decay_mask=mask),
        optimizers.adamw(optimizers.step_decay(0.01, 2), decay_mask=mask),
        optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adamw(decay_mask=mask)),
    ]


def part(state: OptState, *indices: int) -> OptState:
    """The state of the transform reached through ``"transform"`` then ``"parts"`` indices."""
    node = state["transform"]
    for index in indices:
        assert isinstance(node, PMap)
        parts = node["parts"]
        assert isinstance(parts, PVector)
        node = parts[index]
    assert isinstance(node, PMap)
    return node


def assert_json_friendly(value: object, path: str = "") -> None:
    """Only PMaps with str keys, PVectors, floats, ints, strs and bools."""
    if isinstance(value, PMap):
        for key, item in value.items():
            assert isinstance(key, str), path
            assert_json_friendly(item, f"{path}.{key}")
    elif isinstance(value, PVector):
        for index, item in enumerate(value):
            assert_json_friendly(item, f"{path}.{index}")
    else:
        assert isinstance(value, (bool, int, float, str)), (path, value)


def _nested_types(tree: object) -> list[type]:
    """The container types met walking ``tree`` (to compare identity of outputs)."""
    out: list[type] = [type(tree)]
    if isinstance(tree, (dict, PMap)):
        for key in sorted(tree):
            out += _nested_types(tree[key])
    elif isinstance(tree, (list, tuple, PVector)):
        for item in tree:
            out += _nested_types(item)
    return out


def _mutable_nodes(tree: object) -> list[object]:
    out: list[object] = []
    if isinstance(tree, (dict, list)):
        out.append(tree)
    if isinstance(tree, (dict, PMap)):
        for value in tree.values():
            out += _mutable_nodes(value)
    elif isinstance(tree, (list, tuple, PVector)):
        for item in tree:
            out += _mutable_nodes(item)
    return out


@given(problems(trees=any_skeletons, max_steps=4))
def test_inputs_are_never_mutated_and_outputs_are_new_trees(problem: Problem) -> None:
    for opt in every_optimizer(problem.params):
        params_copy = copy.deepcopy(problem.params)
        grads_copy = copy.deepcopy(problem.grads)
        params = problem.params
        state = opt.init(params)
        for grads in problem.grads:
            state_before = state
            new_params, state = opt.step(params, grads, state)
            assert state is not state_before
            assert tree_structure(new_params) == tree_structure(params)
            assert _nested_types(new_params) == _nested_types(params)
            inputs = {id(node) for node in _mutable_nodes(params) + _mutable_nodes(grads)}
            assert not inputs & {id(node) for node in _mutable_nodes(new_params)}
            params = new_params
        assert problem.params == params_copy
        assert problem.grads == grads_copy
        assert_json_friendly(state)


@given(problems(trees=any_skeletons, max_steps=2))
def test_state_steps_leave_the_old_state_unchanged(problem: Problem) -> None:
    opt = optimizers.adam(0.1)
    state = opt.init(problem.params)
    frozen = state_to_json(state)
    opt.step(problem.params, problem.grads[0], state)
    assert state_to_json(state) == frozen


@given(problems(trees=st.one_of(model_skeletons, any_skeletons), max_steps=6), st.integers(0, 6))
def test_state_round_trips_through_json_exactly(problem: Problem, split: int) -> None:
    """Resuming from a JSON copy of the state gives bit-identical params."""
    for opt in every_optimizer(problem.params):
        params, state = problem.params, opt.init(problem.params)
        resumed_params, resumed_state = params, state
        for index, grads in enumerate(problem.grads):
            if index == split:
                text = json.dumps(state_to_json(state))
                resumed_state = state_from_json(json.loads(text))
                assert resumed_state == state
                resumed_params = params
            params, state = opt.step(params, grads, state)
            if index >= split:
                resumed_params, resumed_state = opt.step(resumed_params, grads, resumed_state)
        if split < len(problem.grads):
            assert tree_leaves(resumed_params) == tree_leaves(params)
            assert resumed_state == state


def test_state_layout() -> None:
    params = pmap({"layer": pmap({"weight": pvector([1.0, 2.0]), "bias": 0.0})})
    opt = optimizers.adam(0.1)
    state: OptState = opt.init(params)
    assert state["step"] == 0
    assert state["parameters"] == pmap({"layer.weight": 2, "layer.bias": 1})
    assert part(state)["transform"] == "adam"
    adam_state = part(state, 0)
    zeros = pmap({"layer": pmap({"weight": pvector([0.0, 0.0]), "bias": 0.0})})
    assert adam_state == pmap({"transform": "scale_by_adam", "count": 0, "mu": zeros, "nu": zeros})


def test_moments_of_mutable_trees_are_stored_frozen() -> None:
    params = {"b": [1.0, (2.0, 3.0)], "a": 4.0}
    state = optimizers.momentum(0.1).init(params)
    velocity = part(state, 0)["velocity"]
    assert velocity == pmap({"a": 0.0, "b": pvector([0.0, pvector([0.0, 0.0])])})
    assert_json_friendly(state)


def test_state_to_json_names_what_json_cannot_hold() -> None:
    state = optimizers.momentum(0.1).init(pmap({1: 1.0, 2: 2.0}))
    with pytest.raises(ValueError, match=r"state map at 'transform\.parts\.0\.velocity' has a non-str key 1"):
        state_to_json(state)
    with pytest.raises(ValueError, match=r"JSON value at 'a\.0' is a NoneType"):
        state_from_json({"a": [None]})
    with pytest.raises(ValueError, match="state value at 'x' is a set"):
        state_to_json(pmap({"x": {1}}))  # type: ignore[dict-item]
