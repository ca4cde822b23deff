"""Gradient transformations, their composition with :func:`chain`, and :class:`Optimizer`.

A :class:`GradientTransformation` is a named pair of pure functions: ``init(params)``
makes its state and ``update(updates, state, params)`` turns updates (at first the
gradients) into new updates and a new state. :func:`chain` runs several in order and
gives an :class:`Optimizer`, whose ``step`` applies the final updates to the params.

>>> from pyrsistent import pmap
>>> from optimizers.transforms import scale_by_learning_rate, trace
>>> opt = chain(trace(0.5), scale_by_learning_rate(0.1))
>>> params = pmap({"w": 1.0})
>>> state = opt.init(params)
>>> params, state = opt.step(params, pmap({"w": 2.0}), state)
>>> params["w"], state["step"]
(0.8, 1)
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from pyrsistent import PMap, PVector, pmap, pvector

from optimizers.state import OptState, StateValue, expect_state, get_int
from tape.tree import (
    TreeDef,
    assert_same_structure,
    leaf_parameter_names,
    named_leaves,
    only_floats,
    tree_flatten,
    tree_flatten_floats,
    tree_map,
    tree_structure,
    tree_unflatten,
)

T = TypeVar("T")

Params = TypeVar("Params")
"""The type of a parameter tree: any tree :mod:`tape.tree` accepts, with float leaves."""

Updates = TypeVar("Updates")
"""The type of a gradient or update tree: the params' structure with float leaves."""


class InitFn(Protocol):
    """``init(params) -> state``: the state a transformation starts from."""

    def __call__(self, params: object, /) -> OptState: ...


class UpdateFn(Protocol):
    """``update(updates, state, params) -> (updates, state)``, giving back the updates' type."""

    def __call__(self, updates: Updates, state: OptState, params: object, /) -> tuple[Updates, OptState]: ...


class FlatUpdateFn(Protocol):
    """``update_flat(leaves, state, params) -> (leaves, state)``: ``update`` on the updates'
    leaves in flattening order (a new list; the one given is not changed)."""

    def __call__(
        self, updates: list[float], state: OptState, params: object, /
    ) -> tuple[list[float], OptState]: ...


class FlatApplyFn(Protocol):
    """``apply_flat(param_leaves, leaves, state, params, floats) -> (new param leaves, state,
    new_floats)``: ``update_flat``, then each update added to its param, in one pass.

    ``floats``: the caller knows that every param leaf and update is exactly a ``float``;
    ``new_floats``: every new param leaf is then known to be one too (no check is needed).
    """

    def __call__(
        self,
        param_leaves: list[float],
        updates: list[float],
        state: OptState,
        params: object,
        floats: bool,
        /,
    ) -> tuple[list[float], OptState, bool]: ...


class ScaleFn(Protocol):
    """``scale_flat(state) -> (factor, state)``: a transformation that is ``u -> factor * u``
    for every update, giving this step's factor."""

    def __call__(self, state: OptState, /) -> tuple[float, OptState]: ...


class ScaledApplyFn(Protocol):
    """``apply_scaled_flat(param_leaves, leaves, state, params, factor, floats) -> (new param
    leaves, state, new_floats)``: ``update_flat``, then each param plus ``factor`` times its
    update, in one pass (``floats`` and ``new_floats`` as for :class:`FlatApplyFn`)."""

    def __call__(
        self,
        param_leaves: list[float],
        updates: list[float],
        state: OptState,
        params: object,
        factor: float,
        floats: bool,
        /,
    ) -> tuple[list[float], OptState, bool]: ...


class GradientTransformation(NamedTuple):
    """A named pair of pure functions that turn gradients into updates.

    ``init(params)`` gives a state (a ``PMap`` whose ``"transform"`` entry is ``name``);
    ``update(updates, state, params)`` gives new updates (same structure and container
    types as ``updates``) and a new state. Neither mutates its arguments. The built-in
    transformations also have ``update_flat``, the same update on the flat list of
    leaves: a chain of them passes one list from part to part, and :class:`Optimizer`
    flattens the gradients once per step. A transformation that can also add its updates
    to the params in the same pass has ``apply_flat`` (the learning rate's scaling: the
    step's last pass is then ``p + (-lr) * u``, the same operations as two passes).
    A transformation that is one factor times every update (the learning rate) has
    ``scale_flat``; one that can add that factor times its updates to the params in its
    last pass (Adam's direction) has ``apply_scaled_flat``, and :func:`chain` fuses the
    two: the same operations in one pass fewer.
    """

    init: InitFn
    update: UpdateFn
    name: str
    update_flat: FlatUpdateFn | None = None
    apply_flat: FlatApplyFn | None = None
    scale_flat: ScaleFn | None = None
    apply_scaled_flat: ScaledApplyFn | None = None


def from_flat(
    init: InitFn,
    update_flat: FlatUpdateFn,
    name: str,
    apply_flat: FlatApplyFn | None = None,
    *,
    scale_flat: ScaleFn | None = None,
    apply_scaled_flat: ScaledApplyFn | None = None,
) -> GradientTransformation:
    """A transformation whose tree ``update`` flattens the updates, runs ``update_flat``, rebuilds."""

    def update(updates: Updates, state: OptState, params: object) -> tuple[Updates, OptState]:
        leaves, treedef = tree_flatten(updates)
        out, new_state = update_flat(leaves, state, params)
        return tree_unflatten(treedef, out), new_state

    return _made_together(
        GradientTransformation(init, update, name, update_flat, apply_flat, scale_flat, apply_scaled_flat)
    )


_FAST_PATHS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()
"""Each ``update`` the library made, and the fast paths made with it (``update_flat`` onwards)."""
_UPDATE_OF: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Each fast path the library made, and the ``update`` it computes."""


def _made_together(transform: GradientTransformation) -> GradientTransformation:
    """Note that ``transform``'s fast paths compute its ``update`` (for :func:`_check_consistent`)."""
    fast = tuple(transform)[3:]
    _FAST_PATHS[transform.update] = fast
    for path in fast:
        if path is not None:
            _UPDATE_OF[path] = transform.update
    return transform


def _check_consistent(transform: GradientTransformation) -> None:
    """A ``ValueError`` if a fast path of ``transform`` computes another rule than its ``update``.

    That is a library transformation with one field replaced (``adam._replace(update_flat=f)``
    keeps the ``apply_scaled_flat`` and ``update`` of Adam's rule, which a step would then
    run). A transformation built whole, with ``from_flat`` or ``GradientTransformation(init,
    update, name, ...)`` of new functions, is taken as it is; so is one without some fast paths.
    """
    fast = tuple(transform)[3:]
    made = _FAST_PATHS.get(transform.update)
    together = made is None or all(b is None or a is b for a, b in zip(made, fast, strict=True))
    if together and all(
        _UPDATE_OF.get(f, transform.update) is transform.update for f in fast if f is not None
    ):
        return
    raise ValueError(
        f"{transform.name}: its update and its fast paths (update_flat, apply_flat, scale_flat, "
        "apply_scaled_flat) compute different rules: one of them was replaced on its own "
        "(_replace?). Build the new rule whole: optimizers.base.from_flat(init, update_flat, name), "
        "or GradientTransformation(init, update, name) without fast paths"
    )


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` leaf by leaf, as a new tree of the params' container types.

    >>> apply_updates((1.0, [2.0]), (0.5, [-1.0]))
    (1.5, [1.0])
    """
    return tree_map(lambda p, u: p + u, params, updates)


def _is_number(leaf: object) -> bool:
    return isinstance(leaf, (int, float)) and not isinstance(leaf, bool)


def _check_numbers(leaves: list[float], tree: object, what: str) -> None:
    if only_floats(leaves) or all(_is_number(leaf) for leaf in leaves):
        return
    for path, leaf in named_leaves(tree):
        if not _is_number(leaf):
            raise ValueError(f"{what} leaf {path or '(the root)'!r} is a {type(leaf).__name__}, not a float")


def _leaves_and_floats(tree: T) -> tuple[list[float], TreeDef[T], bool]:
    """The leaves and structure of ``tree``, and whether every leaf is known to be a float
    (a lookup for a tree of floats flattened or built before: the params a step gave)."""
    found = tree_flatten_floats(tree)
    if found is not None:
        return *found, True
    return *tree_flatten(tree), False


def params_layout(params: object) -> str:
    """A digest of the params' leaf paths: equal for trees with the same layout of leaves."""
    return _layout_of(tree_structure(params))


@functools.lru_cache(maxsize=64)
def _layout_of(structure: TreeDef[Any]) -> str:
    """The layout digest of one structure (cached: every step checks it)."""
    text = "\n".join(
        path for path, _ in named_leaves(tree_unflatten(structure, [0.0] * structure.num_leaves))
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def params_sizes(params: object) -> PMap[str, StateValue]:
    """How many leaves each named parameter has."""
    return _sizes_of(tree_structure(params))


@functools.lru_cache(maxsize=64)
def _sizes_of(structure: TreeDef[Any]) -> PMap[str, StateValue]:
    """The parameter sizes of one structure (cached: every ``init`` and mismatch report needs them)."""
    return pmap(dict(Counter(leaf_parameter_names(tree_unflatten(structure, [0.0] * structure.num_leaves)))))


def describe_params_mismatch(recorded: StateValue, params: object) -> str:
    """How the parameter sizes a state records differ from those of ``params``."""
    sizes = params_sizes(params)
    if not isinstance(recorded, PMap):
        return "the state records no parameter names"
    for name in leaf_parameter_names(params):
        if name not in recorded:
            return f"parameter {name!r} is not in the state"
        if recorded[name] != sizes[name]:
            return f"parameter {name!r} has {sizes[name]} leaves but {recorded[name]} in the state"
    for name in recorded:
        if name not in sizes:
            return f"parameter {name!r} is in the state but not in the params"
    return "the parameters have the same names and sizes but their leaves are laid out differently"


@dataclass(frozen=True)
class Optimizer:
    """An optimizer: ``init(params) -> state`` and ``step(params, grads, state) -> (params, state)``.

    It wraps a :class:`GradientTransformation` (its ``transform``, whose name is the
    optimizer's ``name``) and adds to its state the step count and the parameters'
    names and layout, so that a state is never used with other parameters. Optimizers
    compose: :func:`chain` accepts them as well as transformations.
    """

    transform: GradientTransformation

    def __post_init__(self) -> None:
        _check_consistent(self.transform)

    @property
    def name(self) -> str:
        """The name of the wrapped transformation, e.g. ``"adam"``."""
        return self.transform.name

    def init(self, params: object) -> OptState:
        """The state before the first step: step 0, the params' identity, the transform's state."""
        leaves, _ = tree_flatten(params)
        _check_numbers(leaves, params, "params")
        return pmap(
            {
                "step": 0,
                "parameters": params_sizes(params),
                "layout": params_layout(params),
                "transform": self.transform.init(params),
            }
        )

    def step(self, params: Params, grads: Params, state: OptState) -> tuple[Params, OptState]:
        """New params and state after one update with ``grads`` (the params' structure)."""
        if not isinstance(state, PMap) or not {"step", "parameters", "layout"} <= set(state):
            raise ValueError(
                f"{self.name}: the state is not an optimizer state; make it with {self.name}.init(params)"
            )
        step = get_int(state, "step", self.name)
        param_leaves, param_def, params_floats = _leaves_and_floats(params)
        grad_leaves, grad_def, grads_floats = _leaves_and_floats(grads)
        if grad_def != param_def:
            assert_same_structure(params, grads, ("params", "grads"))
        if not params_floats:
            _check_numbers(param_leaves, params, "params")
        if not grads_floats:
            _check_numbers(grad_leaves, grads, "grads")
        if state["layout"] != _layout_of(param_def):
            raise ValueError(
                f"{self.name}: the state was made for another parameter tree: "
                f"{describe_params_mismatch(state['parameters'], params)}"
            )
        inner = state.get("transform")
        if not isinstance(inner, PMap):
            raise ValueError(f"{self.name}: the state holds no state for its transform")
        applied = self.transform.apply_flat
        flat = self.transform.update_flat
        if applied is not None:  # updates and params in one pass
            new_leaves, inner, floats = applied(
                param_leaves, grad_leaves, inner, params, params_floats and grads_floats
            )
            if len(new_leaves) != len(param_leaves):
                raise ValueError(
                    f"{self.name}: the transform gave {len(new_leaves)} params for {len(param_leaves)}"
                )
            new_params = tree_unflatten(param_def, new_leaves, floats=floats)
            return new_params, state.set("step", step + 1).set("transform", inner)
        if flat is not None:
            update_leaves, inner = flat(grad_leaves, inner, params)
            if len(update_leaves) != len(grad_leaves):
                raise ValueError(
                    f"{self.name}: the transform gave {len(update_leaves)} updates "
                    f"for {len(grad_leaves)} grads"
                )
        else:
            updates, inner = self.transform.update(grads, inner, params)
            update_leaves, update_def = tree_flatten(updates)
            if update_def != grad_def:
                raise ValueError(f"{self.name}: the transform gave updates of another structure than grads")
        new_params = tree_unflatten(
            param_def, [p + u for p, u in zip(param_leaves, update_leaves, strict=True)]
        )
        return new_params, state.set("step", step + 1).set("transform", inner)


def chain(*parts: GradientTransformation | Optimizer, name: str | None = None) -> Optimizer:
    """An optimizer that runs ``parts`` in order, each feeding its updates to the next.

    Optimizers among ``parts`` contribute their transform, so
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` clips gradients before Adam.
    ``name`` defaults to ``"chain(...)"`` of the parts' names; the state records it.
    """
    transforms = tuple(part.transform if isinstance(part, Optimizer) else part for part in parts)
    for transform in transforms:
        _check_consistent(transform)
    label = name if name is not None else f"chain({', '.join(t.name for t in transforms)})"

    def init(params: object) -> OptState:
        return pmap({"transform": label, "parts": pvector([t.init(params) for t in transforms])})

    def part_states(state: OptState) -> PVector[StateValue]:
        state = expect_state(state, label)
        states = state.get("parts")
        if not isinstance(states, PVector) or len(states) != len(transforms):
            raise ValueError(f"{label}: the state should hold {len(transforms)} parts, got {states!r}")
        for transform, part_state in zip(transforms, states, strict=True):
            if not isinstance(part_state, PMap):
                raise ValueError(f"{label}: the state of {transform.name!r} is not a PMap")
        return states

    def update(updates: Updates, state: OptState, params: object) -> tuple[Updates, OptState]:
        new_states: list[StateValue] = []
        for transform, part_state in zip(transforms, part_states(state), strict=True):
            updates, new_state = transform.update(updates, cast(OptState, part_state), params)
            new_states.append(new_state)
        return updates, state.set("parts", pvector(new_states))

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        new_states: list[StateValue] = []
        for transform, part_state in zip(transforms, part_states(state), strict=True):
            flat = cast(FlatUpdateFn, transform.update_flat)
            leaves, new_state = flat(leaves, cast(OptState, part_state), params)
            new_states.append(new_state)
        return leaves, state.set("parts", pvector(new_states))

    fuses = (
        len(transforms) >= 2
        and transforms[-1].scale_flat is not None
        and transforms[-2].apply_scaled_flat is not None
    )
    first = len(transforms) - 2 if fuses else len(transforms) - 1  # the parts that only update

    def apply_flat(
        param_leaves: list[float], leaves: list[float], state: OptState, params: object, floats: bool
    ) -> tuple[list[float], OptState, bool]:
        new_states: list[StateValue] = []
        states = part_states(state)
        for transform, part_state in zip(transforms[:first], states, strict=False):
            flat = cast(FlatUpdateFn, transform.update_flat)
            leaves, new_state = flat(leaves, cast(OptState, part_state), params)
            new_states.append(new_state)
        floats = floats and first == 0  # what the earlier parts gave is not known to be floats
        if fuses:  # the direction's last pass adds the learning rate's factor times it
            expect_state(states[-2], transforms[-2].name)  # its state is checked first, as unfused
            factor, last_state = cast(ScaleFn, transforms[-1].scale_flat)(cast(OptState, states[-1]))
            direction = cast(ScaledApplyFn, transforms[-2].apply_scaled_flat)
            new_params, new_state, floats = direction(
                param_leaves, leaves, cast(OptState, states[-2]), params, factor, floats
            )
            new_states += [new_state, last_state]
        else:
            last = cast(FlatApplyFn, transforms[-1].apply_flat)
            new_params, new_state, floats = last(
                param_leaves, leaves, cast(OptState, states[-1]), params, floats
            )
            new_states.append(new_state)
        return new_params, state.set("parts", pvector(new_states)), floats

    every_flat = all(t.update_flat is not None for t in transforms)
    applies = every_flat and bool(transforms) and (fuses or transforms[-1].apply_flat is not None)
    return Optimizer(
        _made_together(
            GradientTransformation(
                init, update, label, update_flat if every_flat else None, apply_flat if applies else None
            )
        )
    )
