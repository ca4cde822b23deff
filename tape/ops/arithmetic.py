"""Arithmetic on scalar Values: ``+ - * / **``, negation and ``abs``.

Each op is one :func:`~tape.core.op.define` entry (with its ``emit`` rule for
:mod:`tape.jit`: the Python it compiles to, forward and partials); the operators installed on
:class:`~tape.value.Value` below record through it. ``+``, ``-``, ``*`` and unary
``-`` have fast paths for the common case (two Values of one tape, or a Value and a
float) that record the entry's own constant partials; they are taken only while the
entry is the library's (a redefined op goes through :func:`~tape.value.apply`).
A product of two tracked Values saves no partials: the sweep recomputes them
from its inputs' values with ``mul``'s own rules. With an Array on the right, a Value's
operators return ``NotImplemented`` so that the Array's reflected operator (broadcasting,
:mod:`tape.ops.broadcasting`) runs.
"""

from __future__ import annotations

import operator
from typing import cast

from tape import floats
from tape.array import Array
from tape.core.op import Branch, define
from tape.value import Primal, Scalar, Value, apply, install


def p_div(x: Primal, y: Primal) -> Primal:
    """``x / y`` on primals: IEEE division on floats (``1 / 0`` is ``inf``), recorded on Values."""
    if x.__class__ is float and y.__class__ is float:
        return floats.div(x, y)
    return x / y


def p_pow(x: Primal, y: Primal) -> Primal:
    """``x ** y`` on primals: C's ``pow`` on floats, recorded on Values."""
    if x.__class__ is float and y.__class__ is float:
        return floats.pow(x, y)
    return x**y


def p_log(x: Primal) -> Primal:
    """Natural log on primals (needed by ``pow``'s partial in its exponent)."""
    return floats.log(x) if x.__class__ is float else cast(Value, x).log()


def _sign(x: Primal) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


def _abs(x: Primal) -> Primal:
    return abs(x) if x.__class__ is float else cast(Value, x).__abs__()


ADD = define(
    "add",
    operator.add,
    constant_partials=(1.0, 1.0),
    float_kernel=operator.add,
    emit=lambda c, v, x, y: (f"{x} + {y}", ("1.0", "1.0")),
    builtin=True,
)
SUB = define(
    "sub",
    operator.sub,
    constant_partials=(1.0, -1.0),
    float_kernel=operator.sub,
    emit=lambda c, v, x, y: (f"{x} - {y}", ("1.0", "-1.0")),
    builtin=True,
)
MUL = define(
    "mul",
    operator.mul,
    lambda v, x, y: y,
    lambda v, x, y: x,
    recompute=True,
    float_kernel=operator.mul,
    emit=lambda c, v, x, y: (f"{x} * {y}", (y, x)),
    builtin=True,
)


def _tangent_term_kernel(partial: float, tangent: float) -> float:
    return 0.0 if tangent == 0.0 else partial * tangent


def _tangent_term(partial: Primal, tangent: Primal) -> Primal:
    if partial.__class__ is float and tangent.__class__ is float:
        return _tangent_term_kernel(partial, tangent)
    return apply(TANGENT_TERM, partial, tangent)


TANGENT_TERM = define(
    "tangent_term",
    _tangent_term,
    *MUL.partials,  # the product's own
    recompute=True,
    float_kernel=_tangent_term_kernel,
    emit=lambda c, v, x, y: (f"0.0 if {y} == 0.0 else {x} * {y}", (y, x)),
    builtin=True,
)
"""``partial * tangent``, or 0 for a zero tangent: forward mode's term when the tangent is a
Value (under :func:`tape.jit`, or differentiated again), which skips a zero tangent as the
float path does (no ``nan * 0``) with the product's own partials. ``pow``'s partial in its
exponent, ``log(x) * x ** y`` and 0 where the power is 0, is this op too."""
DIV = define(
    "div",
    p_div,
    lambda v, x, y: p_div(1.0, y),
    lambda v, x, y: -p_div(v, y),
    float_kernel=floats.div,
    emit=lambda c, v, x, y: (
        f"{c.ref(floats.div)}({x}, {y})",
        (f"{c.ref(floats.div)}(1.0, {y})", f"-{c.ref(floats.div)}({v}, {y})"),
    ),
    builtin=True,
)
POW = define(
    "pow",
    p_pow,
    # d/dx is y * x ** (y - 1), and 0 where y is 0 (x ** 0 is constant, 0 ** 0 too, as PyTorch),
    # d/dy is log(x) * v, and 0 where v is 0 (0 ** y, as PyTorch): tangent_term's products, whose
    # zero tests are data (an op) when y or v is a Value, so they hold under jit and at higher orders
    lambda v, x, y: _tangent_term(p_pow(x, y - 1.0), y),
    lambda v, x, y: _tangent_term(p_log(x), v),
    float_kernel=floats.pow,
    emit=lambda c, v, x, y: (
        f"{c.ref(floats.pow)}({x}, {y})",
        (
            f"0.0 if {y} == 0.0 else {c.ref(floats.pow)}({x}, {y} - 1.0) * {y}",
            f"0.0 if {v} == 0.0 else {c.ref(floats.log)}({x}) * {v}",
        ),
    ),
    builtin=True,
)
NEG = define(
    "neg",
    operator.neg,
    constant_partials=(-1.0,),
    float_kernel=operator.neg,
    emit=lambda c, v, x: (f"-{x}", ("-1.0",)),
    builtin=True,
)
ABS = define(
    "abs",
    _abs,
    lambda v, x: _sign(x),
    float_kernel=abs,
    emit=lambda c, v, x: (f"abs({x})", (Branch(f"{x} > 0.0", "1.0", Branch(f"{x} < 0.0", "-1.0", "0.0")),)),
    builtin=True,
)

_ARRAY: type[object] = Array  # typed as a class, so that checking an operand against it narrows nothing
DEFER = cast(Value, NotImplemented)
"""What a Value's operator returns for an Array operand (``NotImplemented``): Python then runs the
Array's reflected operator."""

_ADD_BOTH = cast("tuple[float, float]", ADD.constant_partials)
_ADD_FIRST = (_ADD_BOTH[0],)
_SUB_BOTH = cast("tuple[float, float]", SUB.constant_partials)
_SUB_FIRST = (_SUB_BOTH[0],)
_NEG_ONLY = cast("tuple[float]", NEG.constant_partials)


def _add(self: Value, other: Scalar) -> Value:
    tape = self.tape
    if tape is not None and ADD.builtin:
        cls = other.__class__
        if cls is Value:
            if other.tape is tape:  # type: ignore[union-attr]  # its class is Value
                return tape.record(
                    ADD,
                    (self.position, other.position),  # type: ignore[union-attr]  # its class is Value
                    self.primal + other.primal,  # type: ignore[union-attr]  # its class is Value
                    _ADD_BOTH,
                    Value,
                )
        elif cls is float and not tape.traces:  # a trace keeps the constant: apply
            return tape.record(ADD, (self.position,), self.primal + other, _ADD_FIRST, Value)
    if other.__class__ is _ARRAY:
        return DEFER  # the Array's reflected operator broadcasts
    return apply(ADD, self, other)


def _sub(self: Value, other: Scalar) -> Value:
    tape = self.tape
    if tape is not None and SUB.builtin:
        cls = other.__class__
        if cls is Value:
            if other.tape is tape:  # type: ignore[union-attr]  # its class is Value
                return tape.record(
                    SUB,
                    (self.position, other.position),  # type: ignore[union-attr]  # its class is Value
                    self.primal - other.primal,  # type: ignore[union-attr]  # its class is Value
                    _SUB_BOTH,
                    Value,
                )
        elif cls is float and not tape.traces:  # a trace keeps the constant: apply
            return tape.record(SUB, (self.position,), self.primal - other, _SUB_FIRST, Value)
    if other.__class__ is _ARRAY:
        return DEFER  # the Array's reflected operator broadcasts
    return apply(SUB, self, other)


def _mul(self: Value, other: Scalar) -> Value:
    tape = self.tape
    if tape is not None and MUL.builtin:
        cls = other.__class__
        if cls is Value:
            if other.tape is tape:  # type: ignore[union-attr]  # its class is Value
                # saves no partials: mul recomputes them (see MUL's recompute)
                return tape.record(
                    MUL,
                    (self.position, other.position),  # type: ignore[union-attr]  # its class is Value
                    self.primal * other.primal,  # type: ignore[union-attr]  # its class is Value
                    None,
                    Value,
                )
        elif cls is float and not tape.traces:  # a trace keeps the constant: apply
            return tape.record(MUL, (self.position,), self.primal * other, (other,), Value)
    if other.__class__ is _ARRAY:
        return DEFER  # the Array's reflected operator broadcasts
    return apply(MUL, self, other)


def _div(self: Value, other: Scalar) -> Value:
    if other.__class__ is _ARRAY:
        return DEFER  # the Array's reflected operator broadcasts
    return apply(DIV, self, other)


def _pow(self: Value, other: Scalar) -> Value:
    if other.__class__ is _ARRAY:
        return DEFER  # the Array's reflected operator broadcasts
    return apply(POW, self, other)


def _neg(self: Value) -> Value:
    tape = self.tape
    if tape is not None and NEG.builtin:
        return tape.record(NEG, (self.position,), -self.primal, _NEG_ONLY, Value)
    return apply(NEG, self)


install("__add__", _add)
install("__radd__", lambda self, other: apply(ADD, other, self))
install("__sub__", _sub)
install("__rsub__", lambda self, other: apply(SUB, other, self))
install("__mul__", _mul)
install("__rmul__", lambda self, other: apply(MUL, other, self))
install("__truediv__", _div)
install("__rtruediv__", lambda self, other: apply(DIV, other, self))
install("__pow__", _pow)
install("__rpow__", lambda self, other: apply(POW, other, self))
install("__neg__", _neg)
install("__abs__", lambda self: apply(ABS, self))
