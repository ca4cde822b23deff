"""Checking a whole optimizer state against the parameters it is for, before any step uses it.

:meth:`~optimizers.base.Optimizer.step` checks what it needs as it goes: the state's
recorded parameter layout, and that each moment tree holds as many numbers as there
are parameters. A state read back from a file deserves more: two moment trees
swapped between layers, or a matrix of moments transposed, hold the right number of
leaves and would be applied, silently, to the wrong parameters. :func:`check_state`
refuses every such state, naming the state key and the parameter.

>>> from pyrsistent import pmap, pvector
>>> import optimizers
>>> params = pmap({"w": pvector([pvector([1.0, 2.0, 3.0])]), "b": pvector([0.0])})
>>> state = optimizers.adam(0.1).init(params)
>>> check_state(state, params) is state
True
>>> transposed = pmap({"w": pvector([pvector([0.0])] * 3), "b": pvector([0.0])})
>>> try:
...     check_state(state.transform(["transform", "parts", 0, "nu"], transposed), params)
... except optimizers.StateError as error:
...     print(error)
state key 'transform.parts.0.nu' does not fit the params: parameter 'w' has shape (1, 3) ... (3, 1) ...
"""

from __future__ import annotations

import math

from pyrsistent import PMap, PVector

from optimizers.base import Optimizer, describe_params_mismatch, params_layout, params_sizes
from optimizers.state import OptState, StateError, StateSpec, array_shape
from optimizers.transforms import STATE_SPECS
from tape.tree import TreeError, named_leaves, named_parameters, only_floats, tree_leaves

__all__ = ["check_state"]

_ENVELOPE = ("layout", "parameters", "step", "transform")
"""The keys of a state made by :meth:`~optimizers.base.Optimizer.init`."""


def _where(key: str) -> str:
    return f"state key {key!r}" if key else "the state"


def _shown(value: object) -> str:
    try:
        return f"{value!r:.40}"
    except ValueError:  # an int with more digits than repr allows
        return f"an {type(value).__name__} with too many digits"


def _keys(state: PMap[str, object], expected: tuple[str, ...], key: str) -> None:
    missing = [name for name in expected if name not in state]
    extra = sorted(_shown(name) for name in state if name not in expected)
    if missing or extra:
        raise StateError(
            f"{_where(key)} should hold exactly {list(expected)}: "
            f"missing {missing or 'nothing'}, unexpected {', '.join(extra) or 'nothing'}"
        )


def _count(value: object, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StateError(f"state key {key!r} should be a step count (an int >= 0), got {_shown(value)}")
    return value


def _describe_moment_mismatch(moment: object, params: object) -> str:
    want = dict(named_parameters(params))
    got = dict(named_parameters(moment))
    for name, tree in want.items():
        if name not in got:
            return f"parameter {name!r} has no entry in the state"
        if array_shape(got[name]) != array_shape(tree):
            return (
                f"parameter {name!r} has shape {array_shape(tree)} in the params "
                f"but {array_shape(got[name])} in the state"
            )
    for name in got:
        if name not in want:
            return f"the state holds {name!r}, which is not a parameter"
    return "its leaves are laid out differently from the params' leaves"


def _join(key: str, path: str) -> str:
    return f"{key}.{path}" if path else key


def _check_moment(moment: object, key: str, params: object, layout: str, non_negative: bool) -> None:
    if not isinstance(moment, (PMap, PVector, float)):
        raise StateError(f"state key {key!r} is a {type(moment).__name__}, not a tree of floats")
    leaves = tree_leaves(moment)
    if not only_floats(leaves) or not all(map(math.isfinite, leaves)) or (non_negative and min(leaves) < 0):
        for path, leaf in named_leaves(moment):
            at = f"state key {_join(key, path)!r}"
            if type(leaf) is not float:
                raise StateError(f"{at} is a {type(leaf).__name__}, not a float")
            if not math.isfinite(leaf) or (non_negative and leaf < 0):
                kind = "a finite number >= 0 (a second moment)" if non_negative else "a finite number"
                raise StateError(f"{at} is {leaf!r}; it should be {kind}")
    if params_layout(moment) != layout:
        raise StateError(
            f"state key {key!r} does not fit the params: {_describe_moment_mismatch(moment, params)}"
        )


def _check_transform(state: object, key: str, params: object, layout: str) -> None:
    if not isinstance(state, PMap):
        raise StateError(f"state key {key!r} is a {type(state).__name__}, not a transformation's state")
    name = state.get("transform")
    if not isinstance(name, str):
        raise StateError(f"state key {key!r} names no transformation (its 'transform' is {name!r:.40})")
    if "parts" in state:  # a chain, whatever its name
        _keys(state, ("parts", "transform"), key)
        parts = state["parts"]
        if not isinstance(parts, PVector):
            raise StateError(f"state key {key + '.parts'!r} is a {type(parts).__name__}, not a PVector")
        for index, part in enumerate(parts):
            _check_transform(part, f"{key}.parts.{index}", params, layout)
        return
    spec: StateSpec | None = STATE_SPECS.get(name)
    if spec is None:
        raise StateError(
            f"state key {key!r} holds the state of {name!r:.60}, which is not a transformation "
            "of this library"
        )
    _keys(state, tuple(sorted(("transform", *spec.counts, *spec.moments))), key)
    for count in spec.counts:
        _count(state[count], f"{key}.{count}")
    for moment in spec.moments:
        _check_moment(state[moment], f"{key}.{moment}", params, layout, moment in spec.non_negative)


def _skeleton(state: object) -> object:
    """The transformations a state was made by, in chain order: names and keys, no values."""
    if not isinstance(state, PMap):
        return None
    parts = state.get("parts")
    inner = [_skeleton(part) for part in parts] if isinstance(parts, PVector) else None
    return (state.get("transform"), tuple(sorted(state)), inner)


def _describe(skeleton: object) -> str:
    """``'adam' (scale_by_adam, scale_by_learning_rate)``: a chain's name and its transformations."""

    def leaves(node: object) -> list[str]:
        if not isinstance(node, tuple):
            return ["?"]
        name, _, inner = node
        return [str(name)] if inner is None else [leaf for part in inner for leaf in leaves(part)]

    name = skeleton[0] if isinstance(skeleton, tuple) else None
    return f"{_shown(name)} ({', '.join(leaves(skeleton))})"


def check_state(state: object, params: object, optimizer: Optimizer | None = None) -> OptState:
    """``state`` if it is, entry by entry, a state an optimizer of this library made for ``params``.

    Checks the step count (an ``int >= 0``), the recorded parameter names, sizes and
    layout, and the state of every transformation in the chain: its counts are
    ``int >= 0``; each moment tree (Adam's ``mu`` and ``nu``, momentum's
    ``velocity``) has the params' structure and each parameter's shape, and holds
    finite floats, ``>= 0`` for second moments. Anything else raises
    :class:`~optimizers.state.StateError` naming the state key (a dotted path such
    as ``transform.parts.0.mu``) and, for a moment tree, the parameter. States of
    transformations this library does not define are refused, as it cannot check them.

    With ``optimizer``, the state must also be one it made: the same transformations
    in the same order as ``optimizer.init(params)`` holds (their hyperparameters are not
    recorded, so they cannot be compared).
    """
    if not isinstance(state, PMap):
        raise StateError(f"an optimizer state is a PMap, not a {type(state).__name__}")
    _keys(state, _ENVELOPE, "")
    _count(state["step"], "step")
    try:
        layout = params_layout(params)
        if state["parameters"] != params_sizes(params) or state["layout"] != layout:
            raise StateError(
                "the state was made for another parameter tree: "
                f"{describe_params_mismatch(state['parameters'], params)}"
            )
        _check_transform(state["transform"], "transform", params, layout)
        if optimizer is not None:
            made, expected = _skeleton(state["transform"]), _skeleton(optimizer.init(params)["transform"])
            if made != expected:
                raise StateError(f"the state was made by {_describe(made)}, not by {_describe(expected)}")
    except TreeError as error:
        raise StateError(f"the state or the params are not trees: {error}") from error
    return state
