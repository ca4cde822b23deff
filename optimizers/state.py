"""Optimizer state: a persistent map of JSON-friendly values, and its JSON round trip.

A state holds only :class:`~pyrsistent.PMap` with ``str`` keys, :class:`~pyrsistent.PVector`,
``float``, ``int``, ``str`` and ``bool``, so a checkpoint can write it as JSON and read it
back exactly (Python writes floats with their shortest round-tripping ``repr``).
Per-leaf moments are kept as trees with the parameters' structure, their containers
frozen: maps become ``PMap`` and sequences ``PVector``, which keeps the leaf order.

>>> import json
>>> from pyrsistent import pmap, pvector
>>> state = pmap({"step": 3, "mu": pmap({"w": pvector([0.1, -2.5])})})
>>> text = json.dumps(state_to_json(state))
>>> text
'{"mu": {"w": [0.1, -2.5]}, "step": 3}'
>>> state_from_json(json.loads(text)) == state
True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple, TypeAlias

from pyrsistent import PMap, PVector, pmap, pvector

from tape.tree import (
    TreeDef,
    TreeError,
    tree_flatten,
    tree_flatten_floats,
    tree_structure,
    tree_unflatten,
)

StateValue: TypeAlias = "bool | int | float | str | PMap[str, StateValue] | PVector[StateValue]"
"""One value inside an optimizer state."""

OptState: TypeAlias = "PMap[str, StateValue]"
"""An optimizer state: a persistent map from ``str`` keys to :data:`StateValue`."""

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json]"
"""A value as :func:`json.dumps` writes it and :func:`json.loads` reads it back."""


class StateError(ValueError):
    """An optimizer state that does not fit the parameters it is meant for; the message says where."""


class StateSpec(NamedTuple):
    """What one gradient transformation keeps in its state besides its ``"transform"`` name.

    ``counts`` are ``int`` step counts (``>= 0``); ``moments`` are trees with the
    params' structure and shapes, of finite floats; those in ``non_negative`` (second
    moments) are also ``>= 0``.
    """

    counts: tuple[str, ...] = ()
    moments: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()


Shape: TypeAlias = "tuple[int, ...] | list[Shape]"
"""``(rows, columns, ...)`` of a rectangular array; a list of its items' shapes if it is ragged."""


def array_shape(tree: object) -> Shape:
    """The shape of nested sequences: ``()`` for a leaf, ``(2, 3)`` for two rows of three.

    >>> array_shape([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), array_shape([[1.0], []])
    ((2, 3), [(1,), (0,)])
    """
    if isinstance(tree, (list, PVector, tuple)):
        return combine_shapes([array_shape(item) for item in tree])
    return ()


def combine_shapes(inner: list[Shape]) -> Shape:
    """The shape of a sequence whose items have the shapes ``inner``."""
    first = inner[0] if inner else ()
    if isinstance(first, tuple) and all(shape == first for shape in inner):
        return (len(inner), *first)
    return inner


def _where(path: str) -> str:
    return repr(path) if path else "the root"


def _join(path: str, part: object) -> str:
    return f"{path}.{part}" if path else str(part)


def _to_json(value: object, path: str) -> Json:
    if isinstance(value, PMap):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"state map at {_where(path)} has a non-str key {key!r}")
        return {key: _to_json(value[key], _join(path, key)) for key in sorted(value)}
    if isinstance(value, (PVector, tuple)):
        return [_to_json(item, _join(path, index)) for index, item in enumerate(value)]
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"state value at {_where(path)} is a {type(value).__name__}, not JSON-friendly")


def state_to_json(state: OptState) -> dict[str, Json]:
    """The state as plain ``dict``/``list``/numbers/strings, ready for :func:`json.dumps`.

    Raises :class:`ValueError` naming the path of any value JSON cannot hold.
    """
    out = _to_json(state, "")
    assert isinstance(out, dict)
    return out


def _from_json(value: object, path: str) -> StateValue:
    if isinstance(value, Mapping):
        items: dict[str, StateValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"JSON object at {_where(path)} has a non-str key {key!r}")
            items[key] = _from_json(item, _join(path, key))
        return pmap(items)
    if isinstance(value, (list, tuple)):
        return pvector([_from_json(item, _join(path, index)) for index, item in enumerate(value)])
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"JSON value at {_where(path)} is a {type(value).__name__}, not a state value")


def state_from_json(obj: Mapping[str, object]) -> OptState:
    """Rebuild a state from what :func:`state_to_json` gave (after a JSON round trip).

    Objects become ``PMap`` and arrays ``PVector``; the next ``step`` checks the state
    against its optimizer and parameters.
    """
    out = _from_json(obj, "")
    if not isinstance(out, PMap):
        raise ValueError(f"an optimizer state is a JSON object, not a {type(obj).__name__}")
    return out


def zeros_like(tree: object) -> StateValue:
    """A tree of ``0.0`` with ``tree``'s structure, maps frozen to ``PMap``, sequences to ``PVector``.

    The result is immutable, so one is kept per structure: a fresh state every step
    (``init`` in a loop) costs a lookup, not a walk over every leaf.
    """
    try:
        structure = tree_structure(tree)
    except TreeError:  # keys that cannot be sorted: not a structure to key on
        return _zeros(tree)
    return _zeros_of(structure)


@functools.lru_cache(maxsize=64)
def _zeros_of(structure: TreeDef[object]) -> StateValue:
    return _zeros(tree_unflatten(structure, [0.0] * structure.num_leaves))


def _zeros(tree: object) -> StateValue:
    if isinstance(tree, (PMap, dict)):
        return pmap({key: _zeros(value) for key, value in tree.items()})
    if isinstance(tree, (PVector, list, tuple)):
        return pvector([_zeros(item) for item in tree])
    return 0.0


def expect_state(state: object, transform: str) -> OptState:
    """``state`` if it is a state that the transform named ``transform`` made, else a ValueError."""
    if not isinstance(state, PMap):
        raise ValueError(f"{transform}: expected its state (a PMap), got a {type(state).__name__}")
    made_by = state.get("transform")
    if made_by != transform:
        raise ValueError(
            f"{transform}: the state was made by {made_by!r}, not by {transform!r} "
            "(a state from another optimizer?)"
        )
    return state


def get_int(state: OptState, key: str, transform: str) -> int:
    """The non-negative ``int`` at ``key`` of a transform's state."""
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{transform}: state[{key!r}] should be a count >= 0, got {value!r}")
    return value


def get_tree(
    state: OptState, key: str, transform: str, num_leaves: int
) -> tuple[list[float], TreeDef[StateValue], bool]:
    """Leaves and structure of the moment tree at ``key``, checked to hold ``num_leaves`` numbers,
    and whether every leaf is known to be exactly a float (a tree a step built from floats)."""
    if key not in state:
        raise ValueError(f"{transform}: the state has no {key!r}")
    try:
        found = tree_flatten_floats(state[key])  # a lookup for the moments the last step built
        leaves, treedef = found if found is not None else tree_flatten(state[key])
    except TreeError as error:
        raise ValueError(f"{transform}: state[{key!r}] is not a tree: {error}") from error
    if len(leaves) != num_leaves:
        raise ValueError(
            f"{transform}: state[{key!r}] has {len(leaves)} leaves but the updates have "
            f"{num_leaves} (a state from another parameter tree?)"
        )
    if found is None:
        for leaf in leaves:
            if not isinstance(leaf, (int, float)) or isinstance(leaf, bool):
                raise ValueError(f"{transform}: state[{key!r}] holds a {type(leaf).__name__}, not a float")
    return leaves, treedef, found is not None
