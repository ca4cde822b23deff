"""``Value``: an immutable scalar whose operations are recorded on a tape.

A Value is a primal value plus, when a :class:`tape.Tape` tracks it, that tape
and its position there. ``Value(2.0)`` and results computed without any tracked
input are constants and record nothing. Math functions here accept floats or
Values: floats in, floats out, so model code runs at float speed without a tape.

>>> from tape import Tape
>>> with Tape() as t:
...     x = t.watch(3.0)
...     y = x * x + 2.0 * x
>>> t.gradient(y, x)
8.0
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Union, cast, overload

from tape import floats
from tape.errors import TapeError
from tape.ops import (
    ABS,
    ADD,
    DIV,
    DOT,
    EXP,
    LEAKY_RELU,
    LOG,
    MUL,
    NEG,
    POW,
    RELU,
    SIGMOID,
    SQRT,
    SUB,
    TANH,
    VSUM,
    Op,
    Primal,
)

if TYPE_CHECKING:
    from tape.gradient_tape import Tape

Scalar = Union[float, "Value"]
"""What model code computes with: a float, or a Value while a tape records."""

_ONE = (1.0,)
_ZERO = (0.0,)
_MINUS_ONE = (-1.0,)
_ONE_ONE = (1.0, 1.0)
_ONE_MINUS_ONE = (1.0, -1.0)
_new = object.__new__
_mul = operator.mul


def _make(primal: Primal, tape: Tape, index: int) -> Value:
    value: Value = _new(Value)
    value._primal = primal
    value._tape = tape
    value._index = index
    return value


def _constant(x: Primal) -> Value:
    value: Value = _new(Value)
    value._primal = x
    value._tape = None
    value._index = -1
    return value


def _check_number(x: object, what: str) -> float:
    if x.__class__ is float:
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"{what} must be a float or a Value, not {type(x).__name__}: {x!r}")


class Value:
    """An immutable scalar; arithmetic on tracked Values is recorded on their tape.

    ``.data`` is the float value. Operators ``+ - * / **`` take Values or numbers on
    either side; ``-v``, ``abs(v)`` and the methods below are recorded ops too.
    """

    __slots__ = ("_index", "_primal", "_tape")

    _primal: Primal
    _tape: Tape | None
    _index: int

    def __init__(self, data: float) -> None:
        """A constant: it depends on nothing and records nothing."""
        self._primal = _check_number(data, "Value(data)")
        self._tape = None
        self._index = -1

    # --- reading -------------------------------------------------------------

    @property
    def data(self) -> float:
        """The float value."""
        primal = self._primal
        while not isinstance(primal, float):
            primal = primal._primal
        return primal

    @property
    def tape(self) -> Tape | None:
        """The tape recording this Value, or ``None`` for a constant."""
        return self._tape

    @property
    def position(self) -> int:
        """This Value's position on its tape (``-1`` for a constant)."""
        return self._index

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        if self._tape is None:
            return f"Value({self.data!r})"
        op = self._tape.op_name(self._index)
        return f"Value({self.data!r}, op={op!r}, position={self._index})"

    def __bool__(self) -> bool:
        return self.data != 0.0

    def __lt__(self, other: Scalar) -> bool:
        return self.data < _data(other)

    def __le__(self, other: Scalar) -> bool:
        return self.data <= _data(other)

    def __gt__(self, other: Scalar) -> bool:
        return self.data > _data(other)

    def __ge__(self, other: Scalar) -> bool:
        return self.data >= _data(other)

    # --- arithmetic; add, sub and mul inline their common cases -------------------

    def __add__(self, other: Scalar) -> Value:
        tape = self._tape
        if tape is not None:
            cls = other.__class__
            if cls is Value:
                if other._tape is tape:  # type: ignore[union-attr]  # cls is Value
                    return tape._record(
                        ADD,
                        (self._index, other._index),  # type: ignore[union-attr]  # other is a Value: its class was checked
                        self._primal + other._primal,  # type: ignore[union-attr]  # other is a Value: its class was checked
                        _ONE_ONE,
                    )
            elif cls is float:
                return tape._record(ADD, (self._index,), self._primal + other, _ONE)
        return apply(ADD, self, other)

    def __radd__(self, other: float) -> Value:
        return apply(ADD, other, self)

    def __sub__(self, other: Scalar) -> Value:
        tape = self._tape
        if tape is not None:
            cls = other.__class__
            if cls is Value:
                if other._tape is tape:  # type: ignore[union-attr]  # other is a Value: its class was checked
                    return tape._record(
                        SUB,
                        (self._index, other._index),  # type: ignore[union-attr]  # other is a Value: its class was checked
                        self._primal - other._primal,  # type: ignore[union-attr]  # other is a Value: its class was checked
                        _ONE_MINUS_ONE,
                    )
            elif cls is float:
                return tape._record(SUB, (self._index,), self._primal - other, _ONE)
        return apply(SUB, self, other)

    def __rsub__(self, other: float) -> Value:
        return apply(SUB, other, self)

    def __mul__(self, other: Scalar) -> Value:
        tape = self._tape
        if tape is not None:
            cls = other.__class__
            if cls is Value:
                if other._tape is tape:  # type: ignore[union-attr]  # other is a Value: its class was checked
                    return tape._record_product(self, other)  # type: ignore[arg-type]  # other is a Value: its class was checked
            elif cls is float:
                return tape._record(MUL, (self._index,), self._primal * other, (other,))
        return apply(MUL, self, other)

    def __rmul__(self, other: float) -> Value:
        return apply(MUL, other, self)

    def __truediv__(self, other: Scalar) -> Value:
        return apply(DIV, self, other)

    def __rtruediv__(self, other: float) -> Value:
        return apply(DIV, other, self)

    def __pow__(self, other: Scalar) -> Value:
        return apply(POW, self, other)

    def __rpow__(self, other: float) -> Value:
        return apply(POW, other, self)

    def __neg__(self) -> Value:
        tape = self._tape
        if tape is not None:
            return tape._record(NEG, (self._index,), -self._primal, _MINUS_ONE)
        return _constant(-self._primal)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return apply(ABS, self)

    # --- elementary functions ------------------------------------------------------

    def exp(self) -> Value:
        """``e ** self`` (``inf`` on overflow)."""
        return apply(EXP, self)

    def log(self) -> Value:
        """Natural log (``-inf`` at 0, ``nan`` below)."""
        return apply(LOG, self)

    def sqrt(self) -> Value:
        """Square root (``nan`` below 0)."""
        return apply(SQRT, self)

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return apply(TANH, self)

    def sigmoid(self) -> Value:
        """Logistic function, stable for large ``|x|``."""
        return apply(SIGMOID, self)

    def relu(self) -> Value:
        """``max(self, 0)``; its derivative at 0 is 0, as in PyTorch."""
        tape = self._tape
        primal = self._primal
        if tape is not None and primal.__class__ is float:  # the common case, inlined
            if primal > 0.0:
                return tape._record(RELU, (self._index,), primal, _ONE)
            return tape._record(RELU, (self._index,), 0.0 if primal == primal else primal, _ZERO)  # nan stays
        return apply(RELU, self)

    def leaky_relu(self, slope: Scalar = 0.01) -> Value:
        """``self`` if positive, else ``slope * self``."""
        return apply(LEAKY_RELU, self, slope)


def _data(x: Scalar) -> float:
    return x.data if isinstance(x, Value) else x


def _innermost(args: Iterable[object]) -> Tape | None:
    """The most deeply nested tape among the Values in ``args`` (``None`` if all constant)."""
    found: Tape | None = None
    for arg in args:
        if arg.__class__ is Value:
            tape = arg._tape
            if tape is None or tape is found:
                continue
            if found is None or found.encloses(tape):
                found = tape
            elif not tape.encloses(found):
                raise TapeError(
                    f"cannot combine Values of two unrelated tapes ({found!r} and {tape!r}); "
                    "a tape only sees Values of its own and of tapes it is nested in"
                )
    return found


def _lift(arg: object, tape: Tape | None) -> tuple[Primal, bool]:
    """``arg``'s primal value as ``tape`` sees it, and whether ``tape`` tracks it."""
    if arg.__class__ is Value:
        own = arg._tape
        if own is tape and tape is not None:
            return arg._primal, True
        if own is None:
            return arg._primal, False
        return arg, False
    return _check_number(arg, "an operand"), False


def apply(op: Op, *args: Scalar) -> Value:
    """Apply a fixed-arity ``op`` to ``args``, recording it if any is tracked.

    Returns a constant Value when no argument is tracked.
    """
    tape = _innermost(args)
    primals: list[Primal] = []
    tracked: list[int] = []
    parents: list[int] = []
    for position, arg in enumerate(args):
        primal, is_tracked = _lift(arg, tape)
        primals.append(primal)
        if is_tracked:
            tracked.append(position)
            parents.append(arg._index)  # type: ignore[union-attr]  # tracked means Value
    value = cast(Primal, op.forward(*primals))
    if tape is None:
        return _constant(value)
    partials = tuple(op.partials[k](value, *primals) for k in tracked)
    return tape._record(op, tuple(parents), value, partials)  # type: ignore[arg-type]  # partials of primals, typed as objects by the rules


def apply_nary(op: Op, *sequences: Sequence[Scalar]) -> Scalar:
    """Apply an n-ary ``op`` whose arguments are sequences; floats only give a float."""
    tape = _innermost(item for sequence in sequences for item in sequence)
    lifted = [[_lift(item, tape) for item in sequence] for sequence in sequences]
    primals = [[primal for primal, _ in items] for items in lifted]
    value = cast(Primal, op.forward(*primals))
    if tape is None:
        return value
    parents: list[int] = []
    partials: list[Primal] = []
    for rule, sequence, items in zip(op.partials, sequences, lifted):
        wanted = [j for j, (_, is_tracked) in enumerate(items) if is_tracked]
        if not wanted:
            continue
        local = rule(value, *primals)
        for j in wanted:
            parents.append(sequence[j]._index)  # type: ignore[union-attr]  # tracked items are Values
            partials.append(local[j])  # type: ignore[index]  # n-ary rules give sequences
    return tape._record(op, tuple(parents), value, tuple(partials))


# --- math on floats or Values ------------------------------------------------------


def _all_floats(xs: Sequence[Scalar]) -> bool:
    return all(x.__class__ is float for x in xs)


def dot(xs: Sequence[Scalar], ys: Sequence[Scalar]) -> Scalar:
    """``sum(x * y for x, y in zip(xs, ys))`` as one fused node.

    Floats in, a float out; with tracked Values, one ``dot`` node whose partials
    are the other side's values.
    """
    if len(xs) != len(ys):
        raise ValueError(f"dot: lengths differ ({len(xs)} vs {len(ys)})")
    if _all_floats(xs) and _all_floats(ys):
        return sum(map(_mul, xs, ys), 0.0)
    return apply_nary(DOT, xs, ys)


def vsum(xs: Sequence[Scalar]) -> Scalar:
    """The sum of ``xs`` as one fused node (floats in, a float out)."""
    if _all_floats(xs):
        return sum(xs, 0.0)
    return apply_nary(VSUM, xs)


@overload
def exp(x: float) -> float: ...
@overload
def exp(x: Value) -> Value: ...
def exp(x: Scalar) -> Scalar:
    """``e ** x``; ``inf`` on overflow."""
    return x.exp() if isinstance(x, Value) else floats.exp(_check_number(x, "exp(x)"))


@overload
def log(x: float) -> float: ...
@overload
def log(x: Value) -> Value: ...
def log(x: Scalar) -> Scalar:
    """Natural log; ``-inf`` at 0 and ``nan`` below."""
    return x.log() if isinstance(x, Value) else floats.log(_check_number(x, "log(x)"))


@overload
def sqrt(x: float) -> float: ...
@overload
def sqrt(x: Value) -> Value: ...
def sqrt(x: Scalar) -> Scalar:
    """Square root; ``nan`` below 0."""
    return x.sqrt() if isinstance(x, Value) else floats.sqrt(_check_number(x, "sqrt(x)"))


@overload
def tanh(x: float) -> float: ...
@overload
def tanh(x: Value) -> Value: ...
def tanh(x: Scalar) -> Scalar:
    """Hyperbolic tangent."""
    return x.tanh() if isinstance(x, Value) else floats.tanh(_check_number(x, "tanh(x)"))


@overload
def sigmoid(x: float) -> float: ...
@overload
def sigmoid(x: Value) -> Value: ...
def sigmoid(x: Scalar) -> Scalar:
    """Logistic function ``1 / (1 + e ** -x)``, stable for large ``|x|``."""
    return x.sigmoid() if isinstance(x, Value) else floats.sigmoid(_check_number(x, "sigmoid(x)"))


@overload
def relu(x: float) -> float: ...
@overload
def relu(x: Value) -> Value: ...
def relu(x: Scalar) -> Scalar:
    """``max(x, 0)``."""
    if isinstance(x, Value):
        return x.relu()
    x = _check_number(x, "relu(x)")
    return 0.0 if x <= 0.0 else x  # nan stays nan


@overload
def leaky_relu(x: float, slope: float = 0.01) -> float: ...
@overload
def leaky_relu(x: Value, slope: Scalar = 0.01) -> Value: ...
def leaky_relu(x: Scalar, slope: Scalar = 0.01) -> Scalar:
    """``x`` if positive, else ``slope * x``."""
    if isinstance(x, Value) or isinstance(slope, Value):
        return apply(LEAKY_RELU, x, slope)
    x = _check_number(x, "leaky_relu(x)")
    return x if x > 0.0 else slope * x
