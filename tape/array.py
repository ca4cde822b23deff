"""``Array``: the array front-end, an N-d array of floats recorded as one node.

An Array's data are nested tuples of floats, one level per axis (what ``.data``
gives, without a copy); the N-d kernels (:mod:`tape.kernels`) run on its flat
row-major view (:func:`flatten`, :func:`nest`). A tracked Array is made only by a
recording (see :class:`tape.core.node.Tracked`); :func:`asarray` makes an untracked
one. Its ops live in the op families (:mod:`tape.ops`), which also give it indexing
and operators. This module holds what every array op shares: finding the operands'
tape, the nested/flat conversions, adding a vjp rule's contribution into the sweep's
buffer, and applying an array op defined by its rules (the library's N-d ops and
users' ops alike).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from operator import add
from typing import TYPE_CHECKING, Any, Protocol, Union, cast, runtime_checkable

from tape.core.node import Node, Tracked
from tape.core.op import Op, define, register_binder
from tape.core.recording import Recording, is_zero
from tape.errors import TapeError
from tape.validate import (
    CONSTANTS_UNDER_JIT,
    HoldsTracked,
    float_array,
    float_matrix,
    float_vector,
    shape_of,
)
from tape.value import Scalar, Value

__all__ = [
    "Array",
    "Data",
    "Matrix",
    "Rows",
    "Vector",
    "Shape",
    "add_data",
    "add_flat",
    "add_matrix",
    "add_vector",
    "apply_array_op",
    "array_op",
    "as_data",
    "asarray",
    "constant_array",
    "constant_data",
    "flatten",
    "install",
    "nest",
    "nest_lists",
    "record_array",
    "shape_of",
    "tape_of",
    "traced_floats",
    "tracked",
    "zeros_like_data",
]

Shape = tuple[int, ...]
Vector = tuple[float, ...]
Matrix = tuple[Vector, ...]
Data = tuple[Any, ...]
"""An array's data: nested tuples of floats, one level per axis (a Vector, a Matrix, ...)."""
ArrayOperand = Union["Array", "Value", float, Sequence[Any]]
"""What the other side of an Array's operator may be: an Array, a Value, a float, nested floats."""
Rows = tuple[tuple["Scalar", ...], ...]
"""What array functions give without a tracked Array: rows of floats (or of Values)."""


class Array(Tracked):
    """An immutable N-d array of floats, recorded as one tape node (or untracked).

    ``.data`` is nested tuples of floats, one level per axis; ``.shape``, ``.ndim`` and
    ``.size`` describe it. ``a[i]`` indexes the first axis (a Value of a vector, an
    Array otherwise), itself recorded, so code written for sequences of Values still
    works; ``a[i, 1:, None]`` indexes several axes (see :mod:`tape.ops.indexing`).
    An Array made by :func:`asarray` is untracked: its ops give untracked Arrays.
    """

    __slots__ = ()

    primal: Data
    tape: Recording | None  # None for an untracked Array

    @property
    def data(self) -> Data:
        """The floats as nested tuples (a tuple for a vector, row tuples for a matrix, ...)."""
        return self.primal

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(shape_of(self.primal))

    @property
    def shape(self) -> Shape:
        """The length of each axis: ``(n,)`` for a vector, ``(rows, columns)`` for a matrix."""
        return shape_of(self.primal)

    @property
    def size(self) -> int:
        """The number of floats."""
        n = 1
        for extent in shape_of(self.primal):
            n *= extent
        return n

    def tolist(self) -> Any:  # nested lists of floats, one level per axis
        """The floats as nested lists."""
        return nest_lists(flatten(self.primal), shape_of(self.primal))

    def __float__(self) -> float:
        if self.size != 1:
            raise TypeError(f"float() of an Array needs exactly one element, not shape {self.shape}")
        value: object = flatten(self.primal)[0]
        while isinstance(value, Tracked):
            value = value.primal
        return cast(float, value)

    def __len__(self) -> int:
        if not isinstance(self.primal, tuple):
            raise TypeError("len() of a 0-d Array: it has no axis (use float())")
        return len(self.primal)

    def __bool__(self) -> bool:  # without it, every Array (a mask of zeros too) would be true
        raise TypeError(
            f"the truth value of an Array (shape {self.shape}) is ambiguous: use tape.arrays.where "
            "for a mask, or float() of a single element"
        )

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
        if self.tape is None:
            return f"Array(shape={self.shape}, untracked)"
        return f"Array(shape={self.shape}, op={self.tape.op_name(self.position)!r}, position={self.position})"

    if TYPE_CHECKING:  # given by the op families (tape.ops)

        def __getitem__(self, index: Any) -> Any:  # a Value of a vector, an Array otherwise
            ...

        @property
        def T(self) -> Array:  # NumPy's name
            """The transpose (axes reversed)."""

        # arithmetic with NumPy broadcasting (tape.ops.broadcasting) and matmul (tape.ops.linear)
        def __add__(self, other: ArrayOperand) -> Array: ...
        def __radd__(self, other: ArrayOperand) -> Array: ...
        def __sub__(self, other: ArrayOperand) -> Array: ...
        def __rsub__(self, other: ArrayOperand) -> Array: ...
        def __mul__(self, other: ArrayOperand) -> Array: ...
        def __rmul__(self, other: ArrayOperand) -> Array: ...
        def __truediv__(self, other: ArrayOperand) -> Array: ...
        def __rtruediv__(self, other: ArrayOperand) -> Array: ...
        def __pow__(self, other: ArrayOperand) -> Array: ...
        def __rpow__(self, other: ArrayOperand) -> Array: ...
        def __neg__(self) -> Array: ...
        def __abs__(self) -> Array: ...
        def __matmul__(self, other: Array | Sequence[Any]) -> Array | Value: ...
        def __rmatmul__(self, other: Sequence[Any]) -> Array | Value: ...
        def __lt__(self, other: ArrayOperand) -> Array: ...  # masks of 1.0 and 0.0
        def __le__(self, other: ArrayOperand) -> Array: ...
        def __gt__(self, other: ArrayOperand) -> Array: ...
        def __ge__(self, other: ArrayOperand) -> Array: ...


def install(name: str, method: Callable[..., object]) -> None:
    """Give :class:`Array` the method ``name`` (done by the op families)."""
    setattr(Array, name, method)


def record_array(
    recording: Recording, op: Op, parents: tuple[int, ...], value: Data, saved: tuple[object, ...]
) -> Array:
    """Record an array-valued node of ``op`` and return its Array."""
    return recording.record(op, parents, value, saved, Array)


def constant_array(data: Data | float) -> Array:
    """An untracked Array of ``data`` (nested tuples of floats, or a float for 0-d)."""
    made: Array = object.__new__(Array)
    made.primal = cast(Data, data)
    made.tape = None
    made.position = -1
    return made


def constant_data(x: object, where: str, what: str) -> object:
    """An op's constant operand (nested floats or an untracked Array) as nested tuples of floats.

    Tracked Values or a tracked Array there are a TypeError naming ``what``, and so is an
    untracked Array argument of a function :func:`tape.jit` traces (the compiled code would
    keep the first call's numbers).
    """
    if isinstance(x, Array) and x.tape is None:
        return x.primal
    owner: object = x.tape if isinstance(x, Array) else None
    if isinstance(owner, FloatStandIns) and owner.without_jit(cast(Array, x).position) == "untracked":
        raise TypeError(
            f"{where}: the {what} are an untracked Array argument, which tape.jit traces; constant {what} "
            "of a compiled function are nested sequences of floats of an argument, with arrays=True"
        )
    try:
        return float_array(x, f"{where}: {what}")
    except HoldsTracked:
        raise TypeError(
            f"{where}: the {what} hold Values; {what} are constants, nested sequences of floats "
            f"({CONSTANTS_UNDER_JIT})"
        ) from None


def asarray(x: object) -> Array:
    """``x`` as an Array: an Array as it is; a nested sequence of floats (or a float) untracked.

    A ragged or non-float input is a ValueError or TypeError naming the index at fault.
    """
    if isinstance(x, Array):
        return x
    try:
        return constant_array(float_array(x, "asarray"))  # type: ignore[arg-type]  # nested tuples or a float
    except HoldsTracked:
        held = traced_floats(cast("Sequence[object]", x), "asarray", array=True)
        if held is not None:
            return held
        raise TypeError(
            "asarray: the input holds Values; use tape.arrays.stack to make an Array of them"
        ) from None


@runtime_checkable
class FloatStandIns(Protocol):
    """A tracing recording whose Values may stand for plain floats (:class:`tape.jit.TraceTape`)."""

    def floats_array(self, x: Sequence[object], where: str, *, array: bool = False) -> Array | None:
        """``x`` as a tracked Array when every Value it holds stands for a plain float, else ``None``."""

    def without_jit(self, position: int) -> str:
        """``"plain"``, ``"untracked"`` or ``"tracked"``: what the value at ``position`` is without jit."""


def traced_floats(x: Sequence[object], where: str, *, array: bool = False) -> Array | None:
    """A sequence holding Values as one tracked Array, where a tracing recording says they stand for
    plain floats (:func:`tape.jit`'s watched floats of arguments a function gets as floats); else ``None``.

    Array ops call it only where an operand holds Values (the interpreter's plain floats
    are Values while :func:`tape.jit` traces), so it costs nothing on their common paths.
    """
    owner = _first_tape(x)
    return owner.floats_array(x, where, array=array) if isinstance(owner, FloatStandIns) else None


def _first_tape(x: object) -> Recording | None:
    """The recording of the first tracked Value or Array in nested sequences ``x``."""
    if isinstance(x, Tracked):
        return x.tape
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        for item in x:
            found = _first_tape(item)
            if found is not None:
                return found
    return None


def tracked(x: object) -> bool:
    """Whether ``x`` is an Array a recording tracks (not an untracked one from :func:`asarray`)."""
    return isinstance(x, Array) and x.tape is not None


def tape_of(*xs: object) -> Recording | None:
    """The one recording the tracked Arrays among ``xs`` belong to (``None`` if there are none)."""
    found: Recording | None = None
    for x in xs:
        if isinstance(x, Array) and x.tape is not None:
            if found is not None and x.tape is not found:
                raise TapeError("these Arrays belong to different tapes; array ops work on one tape")
            found = x.tape
    return found


def as_data(x: object, where: str) -> Data:
    """An operand's floats: an Array's data, or nested floats checked by :mod:`tape.validate`."""
    if isinstance(x, Array):
        return x.primal
    items = cast("Sequence[object]", x)
    if isinstance(items, Sequence) and items and not isinstance(items[0], (int, float, Tracked)):
        if isinstance(items[0], Sequence) and items[0] and isinstance(items[0][0], Sequence):
            return cast(Data, float_array(items, where))
        return float_matrix(cast("Sequence[Sequence[float]]", items), where)
    return float_vector(cast("Sequence[float]", items), where)


# --- nested data and its flat row-major view -----------------------------------------------


def flatten(data: object) -> list[Any]:
    """The floats of nested tuples (or lists) in row-major order, as a new list."""
    if data.__class__ is not tuple and data.__class__ is not list:
        return [data]
    items = cast("Sequence[Any]", data)
    flat: list[Any] = list(items)
    while flat and (flat[0].__class__ is tuple or flat[0].__class__ is list):
        flat = list(chain.from_iterable(flat))
    return flat


def _grouped(flat: Sequence[Any], shape: Shape, make: Callable[[Sequence[Any]], Any]) -> Any:
    if not shape:
        return flat[0]
    items: Sequence[Any] = flat
    for k in range(len(shape) - 1, 0, -1):
        width = shape[k]
        if width:  # groups of ``width`` by one C-level zip over one iterator
            groups = zip(*[iter(items)] * width, strict=False)
            items = list(groups) if make is tuple else list(map(make, groups))
            continue
        count = 1
        for extent in shape[:k]:
            count *= extent
        items = [make(()) for _ in range(count)]
    return make(items)


def nest(flat: Sequence[Any], shape: Shape) -> Any:  # nested tuples of ``shape`` (a float for ``()``)
    """Row-major ``flat`` as nested tuples of ``shape``."""
    if len(shape) == 1:
        return tuple(flat)
    return _grouped(flat, shape, tuple)


def nest_lists(flat: Sequence[Any], shape: Shape) -> Any:  # nested new lists of ``shape``
    """Row-major ``flat`` as nested new lists of ``shape`` (what the sweep's buffer owns)."""
    if len(shape) == 1:
        return list(flat)
    return _grouped(flat, shape, list)


def zeros_like_data(data: Data) -> Data:
    """Zeros of ``data``'s shape."""
    if data and isinstance(data[0], tuple):
        if data[0] and isinstance(data[0][0], tuple):
            return cast(Data, nest([0.0] * len(flatten(data)), shape_of(data)))
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


def _added(held: list[Any], more: Sequence[Any]) -> list[Any]:
    if held and held[0].__class__ is list:
        return [_added(a, b) for a, b in zip(held, more, strict=True)]
    return list(map(add, held, more))


def add_data(grads: list[Any], at: int, contribution: list[Any]) -> None:
    """Add fresh nested lists of any depth into the buffer slot ``at`` (0.0 or lists it owns)."""
    held = grads[at]
    grads[at] = contribution if held.__class__ is float else _added(held, contribution)


def add_flat(grads: list[Any], at: int, flat: Sequence[float], shape: Shape) -> None:
    """Add a row-major ``flat`` contribution of ``shape`` into the buffer slot ``at``."""
    if not shape:
        grads[at] += flat[0]
        return
    held = grads[at]
    if held.__class__ is float:
        grads[at] = nest_lists(flat, shape)
    else:
        grads[at] = nest_lists(list(map(add, flatten(held), flat)), shape)


def _add_any(grads: list[Any], at: int, contribution: object, like: object) -> None:
    """Add a rule's cotangent for an argument shaped like ``like``: a number, nested, or flat."""
    if isinstance(contribution, (int, float)):
        grads[at] += contribution
        return
    items = cast("Sequence[Any]", contribution)
    shape = shape_of(like)
    if len(shape) <= 1 or (items and not isinstance(items[0], Sequence)):
        add_flat(grads, at, list(items), shape)
    else:
        add_flat(grads, at, flatten(items), shape)


# --- array ops defined by their rules: the library's N-d ops and users' ops --------------------

Saved = tuple[tuple[object, ...], tuple["int | None", ...], dict[str, object]]
"""What a rule-defined array op's node saves: its operands' data, their tape positions
(``None`` where untracked), and its keyword parameters (with its ``residual``, if it keeps one)."""


_NESTED = (
    "A grad, jvp or hvp over array ops inside another one, or inside a function that tape.jit "
    "compiles (which traces the inner grad's inputs), is such a nested tape: compile the "
    "grad itself, tape.jit(tape.grad(f))"
)
"""What an array op says when it meets a nested tape."""


def custom_vjp(
    rule: Callable[..., Sequence[object]], *, tells_tracked: bool = False
) -> Callable[[Node, Any, list[Any]], None]:
    """Adapt ``vjp(adjoint, value, *args, **params) -> one cotangent per argument`` to the sweep.

    A cotangent is ``None`` (no gradient), a number (for a scalar argument), nested
    lists or tuples shaped like its argument, or the argument's flat row-major list.
    With ``tells_tracked`` the rule also gets ``tracked``, a bool per argument, so it
    can skip the cotangents nobody reads (a convolution's input gradient for the data).
    """

    def vjp(node: Node, g: Any, grads: list[Any]) -> None:
        args, slots, params = cast(Saved, node.saved)
        if tells_tracked:
            cotangents = rule(g, node.value, *args, tracked=tuple(at is not None for at in slots), **params)
        else:
            cotangents = rule(g, node.value, *args, **params)
        if len(cotangents) != len(args):
            raise ValueError(
                f"op {node.op.name!r}: its vjp gave {len(cotangents)} cotangents for {len(args)} arguments"
            )
        for k, (at, cotangent, arg) in enumerate(zip(slots, cotangents, args, strict=True)):
            if at is not None and cotangent is not None:
                if isinstance(cotangent, Tracked):  # a nested tape's Value: no number, no sequence
                    raise TypeError(
                        f"{node.op.name}: argument {k} is a Value of a nested tape whose value an "
                        "enclosing tape tracks, and its rule gave it a Value for a gradient; array "
                        f"ops are first-order (their rules run on floats). {_NESTED}"
                    )
                _add_any(grads, at, cotangent, arg)

    return vjp


def _library_jvp(rule: Callable[..., object]) -> Callable[[object, Any, tuple[Any, ...]], object]:
    """Adapt ``jvp(value, args, tangents, **params)`` where an untracked or zero tangent is ``None``."""

    def jvp(value: object, saved: Any, tangents: tuple[Any, ...]) -> object:
        args, slots, params = cast(Saved, saved)
        given = iter(tangents)
        full = []
        for at in slots:
            t = next(given) if at is not None else None
            full.append(None if t is None or is_zero(t) else t)
        return rule(value, args, tuple(full), **params)

    return jvp


def custom_jvp(rule: Callable[..., object]) -> Callable[[object, Any, tuple[Any, ...]], object]:
    """Adapt a user's ``jvp(value, args, tangents) -> tangent`` to recordings: every argument
    gets a tangent, zeros of its shape where it is untracked or unperturbed."""

    def with_zeros(
        value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], **params: object
    ) -> object:
        filled = tuple(
            (zeros_like_data(a) if isinstance(a, tuple) else 0.0) if t is None else t
            for a, t in zip(args, tangents, strict=True)
        )
        return rule(value, args, filled, **params)

    return _library_jvp(with_zeros)


def array_op(
    name: str,
    forward: Callable[..., object],
    vjp: Callable[..., Sequence[object]],
    jvp: Callable[..., object],
    *,
    emit: Callable[..., object] | None = None,
    builtin: bool = True,
    tells_tracked: bool = False,
    residual: bool = False,
) -> Op:
    """Define one of the library's N-d array ops from its rules (its one entry).

    - ``forward(*args, **params)``: nested tuples (or floats) in, nested tuples out, or
      a float (a full reduction; the node is then a Value);
    - ``vjp(adjoint, value, *args, **params)``: one cotangent per argument (see
      :func:`custom_vjp`; the adjoint is nested lists, or a float for a float value);
    - ``jvp(value, args, tangents, **params)``: the output's tangent, nested tuples (or a
      float); a tangent is ``None`` for an argument that is untracked or unperturbed.

    Calling the op applies it (see :func:`apply_array_op`): Arrays, Values, nested
    sequences and floats are operands; keyword arguments are parameters (axes, strides,
    int indices), saved on the node and given to every rule. Without ``emit``,
    :mod:`tape.jit` compiles a node to calls of ``forward`` and the sweep's ``vjp``.
    ``builtin=False`` marks an op defined outside the library's op families (a test's);
    ``tells_tracked=True`` gives the vjp rule ``tracked``, a bool per argument. With
    ``residual=True`` the forward rule gives ``(value, residual)``: the residual (what
    the forward computed and the rules need again) is saved on the node, and the vjp and
    jvp rules get it as the keyword ``residual``.
    """
    return define(
        name,
        forward,
        vjp=custom_vjp(vjp, tells_tracked=tells_tracked),
        jvp=_library_jvp(jvp),
        emit=emit,
        builtin=builtin,
        residual=residual,
    )


def apply_array_op(op: Op, *args: object, **params: object) -> Any:  # an Array, a Value, data or a float
    """Apply a rule-defined array op: a tracked operand records one node; otherwise no recording.

    With no tracked operand the result is an untracked Array when an operand was an
    (untracked) Array, else plain nested tuples (or a float): inference at float speed.
    """
    recording: Recording | None = None
    any_array = False
    data: list[object] = []
    slots: list[int | None] = []
    for k, a in enumerate(args):
        if isinstance(a, Tracked):
            any_array = any_array or isinstance(a, Array)
            owner = a.tape
            if owner is None:
                data.append(a.primal)
                slots.append(None)
                continue
            if recording is None:
                recording = owner
            elif owner is not recording:
                raise TapeError(
                    f"{op.name}: its operands belong to different tapes; array ops work on one tape "
                    f"(they are first-order: inside a nested grad, give them this tape's Arrays). {_NESTED}"
                )
            data.append(a.primal)
            slots.append(a.position)
        elif isinstance(a, Sequence) and not isinstance(a, (str, bytes)):
            try:
                data.append(float_array(a, f"{op.name}: argument {k}"))
            except HoldsTracked:
                held = traced_floats(a, f"{op.name}: argument {k}")
                if held is not None:  # plain floats where no tracing is: the op takes them as one input
                    return apply_array_op(op, *args[:k], held, *args[k + 1 :], **params)
                raise TypeError(
                    f"{op.name}: argument {k} is a sequence holding Values; array ops take Arrays or "
                    "nested sequences of floats (tape.arrays.stack makes an Array of Values)"
                ) from None
            slots.append(None)
        else:
            data.append(a)
            slots.append(None)
    value = op.forward(*data, **params)
    if op.residual:
        value, kept = cast("tuple[object, object]", value)
        if recording is not None:
            params = {**params, "residual": kept}
    if recording is None:
        return constant_array(value) if any_array and isinstance(value, tuple) else value
    parents = tuple(at for at in slots if at is not None)
    saved: Saved = (tuple(data), tuple(slots), params)
    if isinstance(value, tuple):
        return recording.record(op, parents, value, saved, Array)
    return recording.record(op, parents, value, saved, Value)


register_binder("array", apply_array_op)
