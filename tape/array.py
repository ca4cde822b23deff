"""``Array``: the array front-end, a vector or matrix of floats recorded as one node.

An Array is made only by a recording (see :class:`tape.core.node.Tracked`); its ops
live in the op families (:mod:`tape.ops`), which also give it indexing. This module
holds what every array op shares: finding the operands' tape, adding a vjp rule's
contribution into the sweep's buffer, and applying a user-defined array op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import add
from typing import TYPE_CHECKING, Any, cast

from tape.core.node import Node, Tracked
from tape.core.op import Op, register_binder
from tape.core.recording import Recording, is_zero
from tape.errors import TapeError
from tape.validate import HoldsTracked, float_matrix, float_vector
from tape.value import Scalar, Value

__all__ = [
    "Array",
    "Data",
    "Matrix",
    "Rows",
    "Vector",
    "add_matrix",
    "add_vector",
    "as_data",
    "install",
    "record_array",
    "tape_of",
    "zeros_like_data",
]

Vector = tuple[float, ...]
Matrix = tuple[Vector, ...]
Data = Vector | Matrix
Rows = tuple[tuple["Scalar", ...], ...]
"""What array functions give without a tracked Array: rows of floats (or of Values)."""


class Array(Tracked):
    """An immutable vector or matrix of floats recorded as one tape node.

    ``.data`` is a tuple (vector) or a tuple of row tuples (matrix); ``.shape`` is
    ``(n,)`` or ``(rows, columns)``. ``a[i]`` is a Value (vector) or a row Array
    (matrix), itself recorded, so code written for sequences of Values still works.
    """

    __slots__ = ()

    primal: Data
    tape: Recording

    @property
    def data(self) -> Data:
        """The floats: a tuple, or a tuple of row tuples."""
        return self.primal

    @property
    def ndim(self) -> int:
        """1 for a vector, 2 for a matrix."""
        return 2 if self.primal and isinstance(self.primal[0], tuple) else 1

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n,)`` or ``(rows, columns)``."""
        data = self.primal
        if self.ndim == 2:
            return (len(data), len(cast(Matrix, data)[0]))
        return (len(data),)

    def __len__(self) -> int:
        return len(self.primal)

    def row(self, index: int) -> Array:
        """Row ``index`` of a matrix, recorded as a node."""
        if self.ndim != 2:
            raise TypeError("row() needs a matrix; use item() on a vector")
        return cast(Array, self[index])

    def item(self, index: int) -> Any:
        """Element ``index`` of a vector (a Value), recorded as a node."""
        if self.ndim != 1:
            raise TypeError("item() needs a vector; use row() on a matrix")
        return self[index]

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self.primal)))

    def __repr__(self) -> str:
        return f"Array(shape={self.shape}, op={self.tape.op_name(self.position)!r}, position={self.position})"

    if TYPE_CHECKING:  # given by tape.ops.indexing

        def __getitem__(self, index: int) -> Any:  # a Value of a vector, a row Array of a matrix
            ...


def install(name: str, method: Callable[..., object]) -> None:
    """Give :class:`Array` the method ``name`` (done by the op families)."""
    setattr(Array, name, method)


def record_array(
    recording: Recording, op: Op, parents: tuple[int, ...], value: Data, saved: tuple[object, ...]
) -> Array:
    """Record an array-valued node of ``op`` and return its Array."""
    return recording.record(op, parents, value, saved, Array)


def tape_of(*xs: object) -> Recording | None:
    """The one recording the Arrays among ``xs`` belong to (``None`` if there are none)."""
    found: Recording | None = None
    for x in xs:
        if isinstance(x, Array):
            if found is not None and x.tape is not found:
                raise TapeError("these Arrays belong to different tapes; array ops work on one tape")
            found = x.tape
    return found


def as_data(x: object, where: str) -> Data:
    """An operand's floats: an Array's data, or a float vector or matrix checked by :mod:`tape.validate`."""
    if isinstance(x, Array):
        return x.primal
    items = cast("Sequence[object]", x)
    if isinstance(items, Sequence) and items and not isinstance(items[0], (int, float, Tracked)):
        return float_matrix(cast("Sequence[Sequence[float]]", items), where)
    return float_vector(cast("Sequence[float]", items), where)


def zeros_like_data(data: Data) -> Data:
    """Zeros of ``data``'s shape."""
    if data and isinstance(data[0], tuple):
        return tuple((0.0,) * len(row) for row in data)
    return (0.0,) * len(data)


# --- adding a vjp rule's contribution into the sweep's buffer --------------------------


def add_vector(grads: list[Any], at: int, contribution: list[float]) -> None:
    """Add a fresh list into the buffer slot ``at`` (which holds 0.0 or a list it owns)."""
    held = grads[at]
    grads[at] = contribution if held.__class__ is float else list(map(add, held, contribution))


def add_matrix(grads: list[Any], at: int, contribution: list[list[float]]) -> None:
    """Add fresh rows into the buffer slot ``at`` (which holds 0.0 or rows it owns)."""
    held = grads[at]
    if held.__class__ is float:
        grads[at] = contribution
    else:
        grads[at] = [list(map(add, a, b)) for a, b in zip(held, contribution, strict=True)]


def _add_any(grads: list[Any], at: int, contribution: object) -> None:
    if isinstance(contribution, (int, float)):
        grads[at] += contribution
    elif contribution and isinstance(cast("Sequence[object]", contribution)[0], Sequence):
        add_matrix(grads, at, [list(row) for row in cast("Sequence[Sequence[float]]", contribution)])
    else:
        add_vector(grads, at, list(cast("Sequence[float]", contribution)))


# --- user-defined array ops --------------------------------------------------------------


def custom_vjp(rule: Callable[..., Sequence[object]]) -> Callable[[Node, Any, list[Any]], None]:
    """Adapt a user's ``vjp(adjoint, value, *args) -> one cotangent per argument`` to the sweep."""

    def vjp(node: Node, g: Any, grads: list[Any]) -> None:
        args, slots = cast("tuple[tuple[object, ...], tuple[int | None, ...]]", node.saved)
        cotangents = rule(g, node.value, *args)
        if len(cotangents) != len(args):
            raise ValueError(
                f"op {node.op.name!r}: its vjp gave {len(cotangents)} cotangents for {len(args)} arguments"
            )
        for at, cotangent in zip(slots, cotangents, strict=True):
            if at is not None and cotangent is not None:
                _add_any(grads, at, cotangent)

    return vjp


def custom_jvp(rule: Callable[..., object]) -> Callable[[object, Any, tuple[Any, ...]], object]:
    """Adapt a user's ``jvp(value, args, tangents) -> tangent`` (a tangent per argument) to recordings."""

    def jvp(value: object, saved: Any, tangents: tuple[Any, ...]) -> object:
        args, slots = saved
        given = iter(tangents)
        full = tuple(next(given) if at is not None else 0.0 for at in slots)
        return rule(
            value,
            args,
            tuple(
                zeros_like_data(a) if is_zero(t) and isinstance(a, tuple) else t
                for a, t in zip(args, full, strict=True)
            ),
        )

    return jvp


def _bind_array(op: Op, *args: object) -> object:
    """Apply an array op: plain data in, plain data out; a tracked Array in, one node out."""
    recording = tape_of(*args)
    try:
        data = tuple(
            as_data(a, f"{op.name}: argument {k}") if isinstance(a, (Array, Sequence)) else a
            for k, a in enumerate(args)
        )
    except HoldsTracked:
        raise TypeError(f"{op.name}: array ops take Arrays or floats, not sequences of Values") from None
    value = op.forward(*data)
    if recording is None:
        return value
    slots = tuple(a.position if isinstance(a, Array) else None for a in args)
    parents = tuple(at for at in slots if at is not None)
    if isinstance(value, tuple):
        return record_array(recording, op, parents, cast(Data, value), (data, slots))
    return recording.record(op, parents, float(cast(float, value)), (data, slots), Value)


register_binder("array", _bind_array)
