"""Forward mode: dual numbers over the same op registry, and ``jvp``.

A :class:`ForwardTape` is a :class:`~tape.core.recording.ForwardRecording`: it keeps
no graph; each op, as it is recorded, computes its output's tangent from its
inputs' tangents. A Value on it is therefore a dual number, its primal value plus a
tangent. Scalar ops use the same local partials as reverse mode
(``tangent = sum(partial_k * tangent_k)``); array ops have a ``jvp`` rule beside
their ``vjp`` rule.

Forward tapes nest with reverse tapes: ``jvp`` of a function that calls ``grad``
gives Hessian-vector products (forward-over-reverse), see :func:`tape.hvp`.

>>> from tape import jvp, tanh
>>> value, slope = jvp(lambda x, y: x * y + tanh(x), (0.5, 3.0), (1.0, 0.0))  # d/dx at (0.5, 3)
>>> round(value, 12), round(slope, 12)
(1.96211715726, 3.786447732966)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from tape.array import Array, record_array, shape_of, zeros_like_data
from tape.core.node import Tracked
from tape.core.op import LEAF
from tape.core.recording import ForwardRecording, is_zero
from tape.gradient_tape import is_float_array
from tape.transforms import unwrap
from tape.tree import named_leaves, tree_flatten, tree_map, tree_unflatten
from tape.validate import float_array, number
from tape.value import Scalar, Value, watch_leaf

__all__ = ["ForwardTape", "jvp"]

T = TypeVar("T")


class ForwardTape(ForwardRecording):
    """Forward-mode recording: every op computes its tangent at once; no nodes are kept.

    ``watch(x, tangent)`` makes a dual number; :meth:`tangent` reads one back.
    """

    __slots__ = ()

    def watch(self, x: Scalar, tangent: Scalar = 0.0) -> Value:
        """A dual number: ``x`` with the given ``tangent`` (the direction of differentiation)."""
        if isinstance(x, Value) and x.tape is self:
            return x
        value = watch_leaf(self, x)
        self.set_tangent(
            value.position, tangent if isinstance(tangent, Value) else number(tangent, "a tangent")
        )
        return value

    def watch_array(self, data: Array | Sequence[Any], tangent: object = 0.0) -> Array:
        """A dual array: a nested sequence of floats (any depth) with a tangent of the same shape."""
        if isinstance(data, Array):
            data = data.primal
        value = float_array(data, "a watched array")
        if not isinstance(value, tuple) or not value:
            raise ValueError("cannot watch an empty array" if value == () else "watch_array takes a sequence")
        array = record_array(self, LEAF, (), value, ())
        if isinstance(tangent, Array) and tangent.tape is None:
            tangent = tangent.primal
        if not is_zero(tangent):
            direction = float_array(tangent, "a tangent")
            if shape_of(direction) != shape_of(value):
                raise ValueError(
                    f"a tangent of shape {shape_of(direction)} for an array of shape {shape_of(value)}"
                )
            self.set_tangent(array.position, direction)
        return array

    def tangent(self, x: object) -> object:
        """The tangent of a Value or Array of this tape (0.0 for anything else)."""
        if isinstance(x, (Value, Array)) and x.tape is self:
            return self.tangent_at(x.position)
        return 0.0


def _tangent_value(x: object, tape: ForwardTape) -> object:
    tangent: Any = tape.tangent(x)
    if isinstance(x, Array):
        if is_zero(tangent):
            return zeros_like_data(x.primal)
        return tuple(tuple(row) for row in tangent) if x.ndim == 2 else tuple(tangent)
    return tangent


def jvp(
    fun: Callable[..., T], primals: tuple[object, ...], tangents: tuple[object, ...], *, arrays: bool = False
) -> tuple[T, T]:
    """``(fun(*primals), J @ tangents)``: the value and the directional derivative.

    ``primals`` and ``tangents`` are tuples of trees of the same structure (one per
    argument of ``fun``); the result's tangent has the structure of ``fun``'s output
    (a scalar, or any tree of them). Computed in one forward pass, no graph kept.
    With ``arrays=True`` nested sequences of floats (any depth) are watched as Array nodes
    (as in :func:`tape.grad`) and their tangents pushed through the array ops' rules.
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("jvp takes primals and tangents as tuples, one entry per argument")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    is_leaf = is_float_array if arrays else None
    with ForwardTape() as tape:
        args = []
        for n, (primal, tangent) in enumerate(zip(primals, tangents, strict=True)):
            p_leaves, p_def = tree_flatten(primal, is_leaf)
            t_leaves, t_def = tree_flatten(tangent, is_leaf)
            if p_def != t_def:
                if arrays and any(isinstance(leaf, Tracked) for leaf in p_leaves):
                    raise TypeError(
                        f"jvp: argument {n} holds tracked Values where its tangent is nested floats: "
                        "arrays=True watches nested floats as one Array, and array ops are first-order, "
                        "so a nested tape's Values cannot be one (inside a grad, and inside a function "
                        "tape.jit compiles, whose arguments it traces: jvp with arrays=True does not compile)"
                    )
                raise ValueError(f"jvp: the tangent for argument {n} has another structure than its primal")
            watched: list[object] = []
            for path, (leaf, t) in zip(
                named_leaves(primal, is_leaf), zip(p_leaves, t_leaves, strict=True), strict=True
            ):
                checked: object = leaf
                if arrays and is_float_array(checked):
                    watched.append(tape.watch_array(cast("Sequence[float]", checked), t))
                    continue
                if arrays and isinstance(checked, Array):
                    if checked.tape is not None:
                        raise TypeError(
                            f"jvp: argument {n} is an Array a tape records, and array ops are first-order "
                            "(inside a function tape.jit compiles with arrays=True, whose arguments it "
                            "traces as Arrays, jvp with arrays=True does not compile)"
                        )
                    watched.append(tape.watch_array(checked, t))
                    continue
                if not isinstance(checked, (float, Value)) or isinstance(checked, bool):
                    raise TypeError(f"jvp: argument {n} leaf {path[0] or '(root)'!r} is not a float")
                watched.append(tape.watch(checked, _check_tangent(t)))
            args.append(tree_unflatten(p_def, cast("list[float]", watched)))  # Value/Array leaves
        out = fun(*args)
    value = tree_map(lambda leaf: cast(float, unwrap(leaf, tape)), cast(Any, out))
    tangent = tree_map(lambda leaf: cast(float, _tangent_value(leaf, tape)), cast(Any, out))
    return cast(T, value), cast(T, tangent)


def _check_tangent(t: object) -> Scalar:
    if isinstance(t, Value):
        return t
    return number(t, "a tangent")
