"""Broadcasting arithmetic on Arrays: ``+ - * / **``, negation, ``abs``, comparisons and ``where``.

Each binary op is one array op made from its scalar op in :mod:`tape.ops.arithmetic`
(the float kernel and the partial rules are that op's: nothing is written twice),
applied with NumPy's broadcasting rules by :mod:`tape.kernels.broadcast`: its vjp
multiplies the adjoint by each partial and sums it back to the operand's shape, its
jvp adds the partials times the broadcast tangents. Operands are Arrays (tracked or
untracked), Values (a tracked scalar: its cotangent is the sum over the result),
floats and nested sequences of floats, on either side; the operators of
:class:`~tape.array.Array` (``X + 1.0``, ``2.0 ** X``, ``v * X``, ``-X``, ``abs(X)``)
are these ops. A result with no axes (both operands scalars or 0-d) is a scalar: a
Value when recorded, else a float.

Comparisons (``X < Y``, :func:`less`, ...) broadcast the same way and give masks of
``1.0`` (true) and ``0.0`` (false), NumPy's booleans as floats, so a mask multiplies
and feeds :func:`where`. A mask passes no gradient; a comparison of tracked Arrays is
still recorded, so :func:`tape.jit` recomputes the mask from each call's inputs rather
than freezing the traced one. :func:`where` picks from ``x`` where the mask is
nonzero and from ``y`` elsewhere, the gradient flowing to the picked operand.

These array ops are first-order in reverse mode (their vjp rules run on floats);
forward mode works through their jvp rules.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast, overload

from tape.array import Array, ArrayOperand, Data, apply_array_op, array_op, flatten, install, nest, shape_of
from tape.core.op import Op
from tape.kernels.broadcast import binary, broadcast_to, sum_to_shape
from tape.kernels.indexing import where as where_kernel
from tape.kernels.indexing import where_vjp
from tape.ops.arithmetic import ADD, DIV, MUL, POW, SUB
from tape.ops.elementwise import array_abs, array_neg
from tape.value import Value

__all__ = [
    "ARRAY_ADD",
    "ARRAY_DIV",
    "ARRAY_MUL",
    "ARRAY_POW",
    "ARRAY_SUB",
    "ARRAY_WHERE",
    "add",
    "divide",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "multiply",
    "power",
    "subtract",
    "where",
]


def _is_operand(x: object) -> bool:
    """Whether ``x`` can be an operand: an Array, a Value, a number, or a (nested) sequence."""
    if isinstance(x, (Array, Value)):
        return True
    if isinstance(x, bool):
        return False
    return isinstance(x, (int, float)) or (isinstance(x, Sequence) and not isinstance(x, (str, bytes)))


def _operands(label: str, *xs: object) -> tuple[object, ...]:
    """The operands with ints as floats; anything else that cannot be one is a TypeError naming ``label``."""
    out = []
    for k, x in enumerate(xs):
        if not _is_operand(x):
            raise TypeError(
                f"{label}: argument {k} must be an Array, a Value, a float or a nested sequence of "
                f"floats, not {type(x).__name__}"
            )
        out.append(float(x) if isinstance(x, int) else x)
    return tuple(out)


# --- binary arithmetic from the scalar ops -------------------------------------------------------


def _broadcast_op(scalar: Op, name: str, label: str) -> Op:
    """The broadcasting array op ``name`` of the scalar ``op``: its float kernel and its partials."""
    kernel = cast("Callable[[float, float], float]", scalar.float_kernel)
    constants = scalar.constant_partials
    rules = scalar.partials
    product = scalar is MUL  # each factor's partial is the other factor: no rule call per element

    def forward(a: Any, b: Any) -> Any:  # nested tuples, or a float without axes
        flat, shape = binary(kernel, flatten(a), shape_of(a), flatten(b), shape_of(b), op=label)
        return nest(flat, shape)

    def scaled(k: int, g: list[float], v: Any, a: Any, b: Any, shape: tuple[int, ...]) -> list[float]:
        """``g`` times the partial in argument ``k``, everything at the result's ``shape``."""
        if constants is not None:
            c = constants[k]
            return g if c == 1.0 else list(map(operator.neg, g)) if c == -1.0 else [c * x for x in g]
        other = b if k == 0 else a
        if product and other.__class__ is float:  # a product's partial is the other factor: g * c
            return [x * other for x in g]
        xs = broadcast_to(flatten(a), shape_of(a), shape, op=label)
        ys = broadcast_to(flatten(b), shape_of(b), shape, op=label)
        if product:
            return list(map(operator.mul, g, ys if k == 0 else xs))
        return list(map(operator.mul, g, map(rules[k], flatten(v), xs, ys)))

    def vjp(
        g: Any, value: Any, a: Any, b: Any, *, tracked: tuple[bool, ...] = (True, True)
    ) -> tuple[list[float] | None, list[float] | None]:
        shape = shape_of(value)
        flat = flatten(g)
        return (
            sum_to_shape(scaled(0, flat, value, a, b, shape), shape, shape_of(a), op=label)
            if tracked[0]
            else None,
            sum_to_shape(scaled(1, flat, value, a, b, shape), shape, shape_of(b), op=label)
            if tracked[1]
            else None,
        )

    def jvp(value: Any, args: tuple[Any, Any], tangents: tuple[Any, Any]) -> Any:
        shape = shape_of(value)
        total: list[float] | None = None
        for k, (arg, tangent) in enumerate(zip(args, tangents, strict=True)):
            if tangent is None:
                continue
            wide = broadcast_to(flatten(tangent), shape_of(arg), shape, op=label)
            term = scaled(k, wide, value, *args, shape)
            total = term if total is None else list(map(operator.add, total, term))
        return 0.0 if total is None else nest(total, shape)

    return array_op(name, forward, vjp, jvp, tells_tracked=True)


ARRAY_ADD = _broadcast_op(ADD, "array_add", "add")
ARRAY_SUB = _broadcast_op(SUB, "array_sub", "subtract")
ARRAY_MUL = _broadcast_op(MUL, "array_mul", "multiply")
ARRAY_DIV = _broadcast_op(DIV, "array_div", "divide")
ARRAY_POW = _broadcast_op(POW, "array_pow", "power")


class Broadcast(Protocol):
    """A binary function with NumPy broadcasting: an Array operand gives an Array.

    Scalars (Values and floats) give a Value or a float; nested sequences of floats
    (with no Array or Value) give plain nested tuples, recording nothing.
    """

    @overload
    def __call__(self, x: Array, y: ArrayOperand, /) -> Array: ...
    @overload
    def __call__(self, x: ArrayOperand, y: Array, /) -> Array: ...
    @overload
    def __call__(self, x: Value | float, y: Value, /) -> Value: ...
    @overload
    def __call__(self, x: Value, y: float, /) -> Value: ...
    @overload
    def __call__(self, x: float, y: float, /) -> float: ...
    @overload
    def __call__(self, x: Sequence[Any], y: Sequence[Any] | float, /) -> Data: ...
    @overload
    def __call__(self, x: float, y: Sequence[Any], /) -> Data: ...
    @overload
    def __call__(self, x: ArrayOperand, y: ArrayOperand, /) -> Array | Value | Data | float: ...


def _function(op: Op, label: str, doc: str) -> Broadcast:
    """The public function ``label``: ``op`` applied with broadcasting (one node if an operand is tracked)."""

    def function(x: object, y: object) -> Any:
        return apply_array_op(op, *_operands(label, x, y))

    function.__name__ = function.__qualname__ = label
    function.__doc__ = doc
    return cast(Broadcast, function)


add = _function(ARRAY_ADD, "add", "``x + y`` with NumPy broadcasting (one node when an operand is tracked).")
subtract = _function(
    ARRAY_SUB, "subtract", "``x - y`` with NumPy broadcasting (one node when an operand is tracked)."
)
multiply = _function(
    ARRAY_MUL, "multiply", "``x * y`` with NumPy broadcasting (one node when an operand is tracked)."
)
divide = _function(
    ARRAY_DIV,
    "divide",
    "``x / y`` with NumPy broadcasting; IEEE results for a zero divisor (``inf``, ``nan``).",
)
power = _function(
    ARRAY_POW,
    "power",
    "``x ** y`` with NumPy broadcasting, as C's ``pow`` (a negative base to a fractional power: ``nan``).",
)


# --- comparisons and where -------------------------------------------------------------------------


def _comparison(name: str, label: str, test: Callable[[float, float], bool]) -> Op:
    def truth(x: float, y: float) -> float:
        return 1.0 if test(x, y) else 0.0

    def forward(a: Any, b: Any) -> Any:
        flat, shape = binary(truth, flatten(a), shape_of(a), flatten(b), shape_of(b), op=label)
        return nest(flat, shape)

    return array_op(name, forward, lambda g, value, a, b: (None, None), lambda value, args, tangents: 0.0)


ARRAY_LESS = _comparison("array_less", "less", lambda x, y: x < y)
ARRAY_LESS_EQUAL = _comparison("array_less_equal", "less_equal", lambda x, y: x <= y)
ARRAY_GREATER = _comparison("array_greater", "greater", lambda x, y: x > y)
ARRAY_GREATER_EQUAL = _comparison("array_greater_equal", "greater_equal", lambda x, y: x >= y)


less = _function(
    ARRAY_LESS,
    "less",
    "``x < y`` with NumPy broadcasting: a mask of 1.0 (true) and 0.0, passing no gradient.",
)
less_equal = _function(
    ARRAY_LESS_EQUAL,
    "less_equal",
    "``x <= y`` with NumPy broadcasting: a mask of 1.0 (true) and 0.0, passing no gradient.",
)
greater = _function(
    ARRAY_GREATER,
    "greater",
    "``x > y`` with NumPy broadcasting: a mask of 1.0 (true) and 0.0, passing no gradient.",
)
greater_equal = _function(
    ARRAY_GREATER_EQUAL,
    "greater_equal",
    "``x >= y`` with NumPy broadcasting: a mask of 1.0 (true) and 0.0, passing no gradient.",
)


def _where_forward(mask: Any, x: Any, y: Any) -> Any:
    flat, shape = where_kernel(
        flatten(mask), shape_of(mask), flatten(x), shape_of(x), flatten(y), shape_of(y)
    )
    return nest(flat, shape)


def _where_vjp(g: Any, value: Any, mask: Any, x: Any, y: Any) -> tuple[None, list[float], list[float]]:
    gx, gy = where_vjp(flatten(g), flatten(mask), shape_of(mask), shape_of(x), shape_of(y))
    return None, gx, gy


def _where_jvp(value: Any, args: tuple[Any, Any, Any], tangents: tuple[Any, Any, Any]) -> Any:
    mask = args[0]
    _, dx, dy = tangents
    if dx is None and dy is None:
        return 0.0
    return _where_forward(mask, 0.0 if dx is None else dx, 0.0 if dy is None else dy)


ARRAY_WHERE = array_op("array_where", _where_forward, _where_vjp, _where_jvp)


def _mask(mask: object) -> object:
    """A mask as floats: bools become 1.0 and 0.0 (nested sequences too); anything else as it is."""
    if isinstance(mask, bool):
        return 1.0 if mask else 0.0
    if isinstance(mask, Sequence) and not isinstance(mask, (str, bytes)):
        return tuple(_mask(m) for m in mask)
    return mask


@overload
def where(mask: object, x: Array, y: ArrayOperand) -> Array: ...
@overload
def where(mask: object, x: ArrayOperand, y: Array) -> Array: ...
@overload
def where(mask: Array, x: ArrayOperand, y: ArrayOperand) -> Array: ...
@overload
def where(mask: object, x: ArrayOperand, y: ArrayOperand) -> Array | Value | Data | float: ...
def where(mask: object, x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``numpy.where(mask, x, y)``, all three broadcast: ``x`` where ``mask`` is nonzero (true), else ``y``.

    ``mask`` is a comparison's mask, an Array, or (nested) bools or numbers; the gradient
    flows to ``x`` and ``y`` where each was picked (summed over broadcast axes), never to the mask.
    """
    return apply_array_op(ARRAY_WHERE, *_operands("where", _mask(mask), x, y))


# --- Array's operators ----------------------------------------------------------------------------


def _operator(op: Op, reflected: bool) -> Callable[[Array, object], Any]:
    def method(self: Array, other: object) -> Any:
        if not _is_operand(other):
            return NotImplemented
        other = float(other) if isinstance(other, int) else other
        return apply_array_op(op, other, self) if reflected else apply_array_op(op, self, other)

    return method


for _name, _op in (
    ("add", ARRAY_ADD),
    ("sub", ARRAY_SUB),
    ("mul", ARRAY_MUL),
    ("truediv", ARRAY_DIV),
    ("pow", ARRAY_POW),
):
    install(f"__{_name}__", _operator(_op, reflected=False))
    install(f"__r{_name}__", _operator(_op, reflected=True))
for _name, _op in (
    ("lt", ARRAY_LESS),
    ("le", ARRAY_LESS_EQUAL),
    ("gt", ARRAY_GREATER),
    ("ge", ARRAY_GREATER_EQUAL),
):
    install(f"__{_name}__", _operator(_op, reflected=False))
install("__neg__", array_neg)
install("__abs__", array_abs)
install("__pos__", lambda self: self)
