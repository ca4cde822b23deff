"""Forward mode: dual numbers over the same op registry, and ``jvp``.

A :class:`ForwardTape` is a tape that keeps no graph: each op, as it is recorded,
computes its output's tangent from its inputs' tangents and stores only that.
A Value on a forward tape is therefore a dual number, its primal value plus a
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
from typing import Any, NoReturn, TypeVar, cast

from tape.arrays import Array, _is_zero, matrix_data, vector_data
from tape.errors import TapeError
from tape.gradient_tape import Tape, _all_finite, is_float_array
from tape.ops import MUL, Op, Primal
from tape.transforms import _unwrap
from tape.tree import named_leaves, tree_flatten, tree_map, tree_unflatten
from tape.value import Scalar, Value, _check_number, _make

T = TypeVar("T")


class ForwardTape(Tape):
    """Forward-mode recording: every op computes its tangent at once; no nodes are kept.

    ``watch(x, tangent)`` makes a dual number; :meth:`tangent` reads one back.
    """

    __slots__ = ("_ops", "_tangents")

    def __init__(self, *, check_finite: bool = False) -> None:
        super().__init__(check_finite=check_finite)
        self._tangents: list[Any] = []
        self._ops: list[Op] = []

    def _record(self, op: Op, parents: tuple[int, ...], value: Primal, partials: tuple[Primal, ...]) -> Value:
        if self._closed is not None:
            raise TapeError(f"cannot record {op.name!r} on a closed tape; open a new tape")
        tangents = self._tangents
        index = len(tangents)
        if self.check_finite and not _all_finite(value):
            self._non_finite(op, parents, index, value)
        tangent: Any = 0.0
        if op.jvp is not None:  # an array op with a scalar result (a loss, an element)
            incoming_all = tuple(tangents[p] for p in parents)
            if not all(_is_zero(t) for t in incoming_all):
                tangent = op.jvp(value, partials, incoming_all)
        else:
            for parent, partial in zip(parents, partials):
                incoming = tangents[parent]
                if not _is_zero(incoming):  # an unperturbed input contributes nothing, not nan * 0
                    tangent = tangent + partial * incoming
        tangents.append(tangent)
        self._ops.append(op)
        return _make(value, self, index)

    def _record_product(self, left: Value, right: Value) -> Value:
        x, y = left._primal, right._primal
        return self._record(MUL, (left._index, right._index), x * y, (y, x))

    def _append(self, op: Op, parents: tuple[int, ...], value: object, saved: tuple[object, ...]) -> int:
        if self._closed is not None:
            raise TapeError(f"cannot record {op.name!r} on a closed tape; open a new tape")
        index = len(self._tangents)
        if self.check_finite and not _all_finite(value):
            self._non_finite(op, parents, index, value)
        incoming = tuple(self._tangents[p] for p in parents)
        if op.jvp is None or all(_is_zero(t) for t in incoming):
            tangent: object = 0.0
        else:
            tangent = op.jvp(value, saved, incoming)
        self._tangents.append(tangent)
        self._ops.append(op)
        return index

    def _non_finite(self, op: Op, parents: tuple[int, ...], index: int, value: object) -> None:
        from tape.errors import NonFiniteError

        raise NonFiniteError(f"op {op.name!r} at tape position {index} produced a non-finite value")

    def __len__(self) -> int:
        return len(self._tangents)

    def op_name(self, position: int) -> str:
        """The name of the op recorded at ``position``."""
        return self._ops[position].name

    def watch(self, x: Scalar, tangent: Scalar = 0.0) -> Value:
        """A dual number: ``x`` with the given ``tangent`` (the direction of differentiation)."""
        value = super().watch(x)
        if value._index == len(self._tangents) - 1 and value._tape is self:
            self._tangents[value._index] = tangent if isinstance(tangent, Value) else float(tangent)
        return value

    def tangent(self, x: object) -> object:
        """The tangent of a Value or Array of this tape (0.0 for anything else)."""
        at = getattr(x, "_index", None)
        if getattr(x, "_tape", None) is self and at is not None:
            return self._tangents[at]
        return 0.0

    def gradient(self, target: object, sources: object, *, seed: Scalar = 1.0) -> NoReturn:
        """Not available: a forward tape keeps no graph. Use :class:`tape.Tape`."""
        raise TapeError("a ForwardTape computes tangents, not gradients; use tape.Tape for reverse mode")


def _tangent_value(x: object, tape: ForwardTape) -> object:
    tangent: Any = tape.tangent(x)
    if isinstance(x, Array):
        if _is_zero(tangent):
            shape = x.shape
            return (0.0,) * shape[0] if len(shape) == 1 else tuple((0.0,) * shape[1] for _ in range(shape[0]))
        return tuple(tuple(row) for row in tangent) if x.ndim == 2 else tuple(tangent)
    return tangent


def jvp(
    fun: Callable[..., T], primals: tuple[object, ...], tangents: tuple[object, ...], *, arrays: bool = False
) -> tuple[T, T]:
    """``(fun(*primals), J @ tangents)``: the value and the directional derivative.

    ``primals`` and ``tangents`` are tuples of trees of the same structure (one per
    argument of ``fun``); the result's tangent has the structure of ``fun``'s output
    (a scalar, or any tree of them). Computed in one forward pass, no graph kept.
    With ``arrays=True`` vectors and matrices of floats are watched as Array nodes
    (as in :func:`tape.grad`) and their tangents pushed through the array ops' rules.
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("jvp takes primals and tangents as tuples, one entry per argument")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    is_leaf = is_float_array if arrays else None
    with ForwardTape() as tape:
        args = []
        for n, (primal, tangent) in enumerate(zip(primals, tangents)):
            p_leaves, p_def = tree_flatten(primal, is_leaf)
            t_leaves, t_def = tree_flatten(tangent, is_leaf)
            if p_def != t_def:
                raise ValueError(f"jvp: the tangent for argument {n} has another structure than its primal")
            watched: list[object] = []
            for path, (leaf, t) in zip(named_leaves(primal, is_leaf), zip(p_leaves, t_leaves)):
                checked: object = leaf
                if arrays and is_float_array(checked):
                    array = tape.watch_array(cast("Sequence[float]", checked))
                    data = cast(tuple[object, ...], array.data)
                    direction: object = (
                        matrix_data(cast("Sequence[Sequence[float]]", t), "a tangent")
                        if data and isinstance(data[0], tuple)
                        else vector_data(cast("Sequence[float]", t), "a tangent")
                    )
                    tape._tangents[array._index] = direction
                    watched.append(array)
                    continue
                if not isinstance(checked, (float, Value)) or isinstance(checked, bool):
                    raise TypeError(f"jvp: argument {n} leaf {path[0] or '(root)'!r} is not a float")
                watched.append(tape.watch(checked, _check_tangent(t)))
            args.append(tree_unflatten(p_def, watched))  # type: ignore[arg-type]  # Value/Array leaves
        out = fun(*args)
    value = tree_map(lambda leaf: _unwrap(leaf, tape), out)  # type: ignore[arg-type, return-value]  # output leaves are any objects
    tangent = tree_map(lambda leaf: _tangent_value(leaf, tape), out)  # type: ignore[arg-type, return-value]  # output leaves are any objects
    return value, tangent


def _check_tangent(t: object) -> Scalar:
    if isinstance(t, Value):
        return t
    return _check_number(t, "a tangent")
