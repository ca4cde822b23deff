"""Broadcasting arithmetic on Arrays: ``+ - * / **``, negation and ``abs``.

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

These array ops are first-order in reverse mode (their vjp rules run on floats);
forward mode works through their jvp rules.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from tape.array import Array, apply_array_op, array_op, flatten, install, nest, shape_of
from tape.core.op import Op
from tape.kernels.broadcast import binary, broadcast_to, sum_to_shape
from tape.ops.arithmetic import ADD, DIV, MUL, POW, SUB
from tape.ops.elementwise import array_abs, array_neg
from tape.value import Value

__all__ = [
    "ARRAY_ADD",
    "ARRAY_DIV",
    "ARRAY_MUL",
    "ARRAY_POW",
    "ARRAY_SUB",
    "add",
    "divide",
    "multiply",
    "power",
    "subtract",
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

    def forward(a: Any, b: Any) -> Any:  # nested tuples, or a float without axes
        flat, shape = binary(kernel, flatten(a), shape_of(a), flatten(b), shape_of(b), op=label)
        return nest(flat, shape)

    def scaled(k: int, g: list[float], v: Any, a: Any, b: Any, shape: tuple[int, ...]) -> list[float]:
        """``g`` times the partial in argument ``k``, everything at the result's ``shape``."""
        if constants is not None:
            c = constants[k]
            return g if c == 1.0 else list(map(operator.neg, g)) if c == -1.0 else [c * x for x in g]
        xs = broadcast_to(flatten(a), shape_of(a), shape, op=label)
        ys = broadcast_to(flatten(b), shape_of(b), shape, op=label)
        return list(map(operator.mul, g, map(rules[k], flatten(v), xs, ys)))

    def vjp(g: Any, value: Any, a: Any, b: Any) -> tuple[list[float], list[float]]:
        shape = shape_of(value)
        flat = flatten(g)
        return (
            sum_to_shape(scaled(0, flat, value, a, b, shape), shape, shape_of(a), op=label),
            sum_to_shape(scaled(1, flat, value, a, b, shape), shape, shape_of(b), op=label),
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

    return array_op(name, forward, vjp, jvp)


ARRAY_ADD = _broadcast_op(ADD, "array_add", "add")
ARRAY_SUB = _broadcast_op(SUB, "array_sub", "subtract")
ARRAY_MUL = _broadcast_op(MUL, "array_mul", "multiply")
ARRAY_DIV = _broadcast_op(DIV, "array_div", "divide")
ARRAY_POW = _broadcast_op(POW, "array_pow", "power")


def _binary(op: Op, label: str, x: object, y: object) -> Any:
    return apply_array_op(op, *_operands(label, x, y))


def add(x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``x + y`` with NumPy broadcasting (one node when an operand is tracked)."""
    return _binary(ARRAY_ADD, "add", x, y)


def subtract(x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``x - y`` with NumPy broadcasting (one node when an operand is tracked)."""
    return _binary(ARRAY_SUB, "subtract", x, y)


def multiply(x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``x * y`` with NumPy broadcasting (one node when an operand is tracked)."""
    return _binary(ARRAY_MUL, "multiply", x, y)


def divide(x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``x / y`` with NumPy broadcasting; IEEE results for a zero divisor (``inf``, ``nan``)."""
    return _binary(ARRAY_DIV, "divide", x, y)


def power(x: object, y: object) -> Any:  # an Array, a Value, nested tuples or a float
    """``x ** y`` with NumPy broadcasting, as C's ``pow`` (a negative base to a fractional power: ``nan``)."""
    return _binary(ARRAY_POW, "power", x, y)


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
install("__neg__", array_neg)
install("__abs__", array_abs)
install("__pos__", lambda self: self)
