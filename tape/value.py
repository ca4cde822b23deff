"""``Value``: the scalar front-end, an immutable scalar whose operations are recorded.

A Value is a primal value plus, when a recording tracks it, that recording and its
position there (see :class:`tape.core.node.Tracked`). ``Value(2.0)`` and results
computed without any tracked input are constants and record nothing.

This module knows no particular op: :func:`apply` records any scalar op from its
registry entry, and the op families (:mod:`tape.ops`) give Value its operators and
methods next to their rules.

>>> from tape import Tape
>>> with Tape() as t:
...     x = t.watch(3.0)
...     y = x * x + 2.0 * x
>>> t.gradient(y, x)
8.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Union, cast

from tape.core.node import Tracked
from tape.core.op import LEAF, Op, register_binder
from tape.core.recording import Recording
from tape.errors import TapeError, TracingError
from tape.validate import number

__all__ = [
    "Primal",
    "Scalar",
    "Value",
    "apply",
    "apply_nary",
    "constant",
    "innermost",
    "install",
    "lift",
    "watch_leaf",
]

Scalar = Union[float, "Value"]
"""What model code computes with: a float, or a Value while a tape records."""

Primal = Union[float, "Value"]
"""A value as one recording sees it: a float, or a Value of an enclosing recording."""

_new = object.__new__


class Value(Tracked):
    """An immutable scalar; arithmetic on tracked Values is recorded on their tape.

    ``.data`` is the float value. Operators ``+ - * / **`` take Values or numbers on
    either side; ``-v``, ``abs(v)`` and the methods ``exp log sqrt tanh sigmoid relu
    leaky_relu`` are recorded ops too.
    """

    __slots__ = ()

    primal: Primal

    def __init__(self, data: float) -> None:
        """A constant: it depends on nothing and records nothing."""
        self.primal = number(data, "Value(data)")
        self.tape = None
        self.position = -1

    @property
    def data(self) -> float:
        """The float value."""
        primal = self.primal
        while primal.__class__ is not float:
            primal = cast(Value, primal).primal
        return primal

    def __float__(self) -> float:
        return _concrete(self, "float()")

    def __repr__(self) -> str:
        if self.tape is None:
            return f"Value({self.data!r})"
        return f"Value({self.data!r}, op={self.tape.op_name(self.position)!r}, position={self.position})"

    def __bool__(self) -> bool:
        return _concrete(self, "bool()") != 0.0

    def __lt__(self, other: Scalar) -> bool:
        return _concrete(self, "<") < _data(other, "<")

    def __le__(self, other: Scalar) -> bool:
        return _concrete(self, "<=") <= _data(other, "<=")

    def __gt__(self, other: Scalar) -> bool:
        return _concrete(self, ">") > _data(other, ">")

    def __ge__(self, other: Scalar) -> bool:
        return _concrete(self, ">=") >= _data(other, ">=")

    def __pos__(self) -> Value:
        return self

    if TYPE_CHECKING:  # given by the op families (tape.ops) next to their rules

        def __add__(self, other: Scalar) -> Value: ...
        def __radd__(self, other: float) -> Value: ...
        def __sub__(self, other: Scalar) -> Value: ...
        def __rsub__(self, other: float) -> Value: ...
        def __mul__(self, other: Scalar) -> Value: ...
        def __rmul__(self, other: float) -> Value: ...
        def __truediv__(self, other: Scalar) -> Value: ...
        def __rtruediv__(self, other: float) -> Value: ...
        def __pow__(self, other: Scalar) -> Value: ...
        def __rpow__(self, other: float) -> Value: ...
        def __neg__(self) -> Value: ...
        def __abs__(self) -> Value: ...
        def exp(self) -> Value:
            """``e ** self`` (``inf`` on overflow)."""

        def log(self) -> Value:
            """Natural log (``-inf`` at 0, ``nan`` below)."""

        def sqrt(self) -> Value:
            """Square root (``nan`` below 0)."""

        def tanh(self) -> Value:
            """Hyperbolic tangent."""

        def sigmoid(self) -> Value:
            """Logistic function, stable for large ``|x|``."""

        def relu(self) -> Value:
            """``max(self, 0)``; its derivative at 0 is 0, as in PyTorch."""

        def leaky_relu(self, slope: Scalar = 0.01) -> Value:
            """``self`` if positive, else ``slope * self``."""


def install(name: str, method: Callable[..., object]) -> None:
    """Give :class:`Value` the operator or method ``name`` (done by the op families)."""
    setattr(Value, name, method)


def _concrete(x: Value, what: str) -> float:
    """``x``'s float for Python control flow; a :class:`TracingError` while a compiler traces it."""
    value = x
    while True:
        recording = value.tape
        if recording is not None and recording.traces:
            raise TracingError(
                f"{what} on a Value that tape.jit is tracing: a branch on a traced number would be "
                "replayed for every later input; mark that argument static (static_argnums), or use "
                "an op whose branch is compiled (relu, abs, leaky_relu)"
            )
        primal = value.primal
        if primal.__class__ is float:
            return primal
        value = cast(Value, primal)


def _data(x: Scalar, what: str) -> float:
    return _concrete(x, what) if isinstance(x, Value) else x


def constant(x: Primal) -> Value:
    """An untracked Value holding ``x``."""
    value: Value = _new(Value)
    value.primal = x
    value.tape = None
    value.position = -1
    return value


def innermost(args: Iterable[object]) -> Recording | None:
    """The most deeply nested recording among the tracked values in ``args`` (``None`` if none)."""
    found: Recording | None = None
    for arg in args:
        if isinstance(arg, Tracked):
            recording = arg.tape
            if recording is None or recording is found:
                continue
            if found is None or found.encloses(recording):
                found = recording
            elif not recording.encloses(found):
                raise TapeError(
                    f"cannot combine Values of two unrelated tapes ({found!r} and {recording!r}); "
                    "a tape only sees Values of its own and of tapes it is nested in"
                )
    return found


def lift(arg: object, recording: Recording | None) -> tuple[Primal, bool]:
    """``arg``'s primal value as ``recording`` sees it, and whether ``recording`` tracks it."""
    if arg.__class__ is Value:
        value = arg
        own = value.tape
        if own is recording and recording is not None:
            return value.primal, True
        if own is None:
            return value.primal, False
        return value, False
    return number(arg, "an operand"), False


def apply(op: Op, *args: Scalar) -> Value:
    """Apply a fixed-arity scalar ``op`` to ``args``, recording it if any is tracked.

    Returns a constant Value when no argument is tracked.
    """
    recording = innermost(args)
    primals: list[Primal] = []
    tracked: list[int] = []
    parents: list[int] = []
    for position, arg in enumerate(args):
        primal, is_tracked = lift(arg, recording)
        primals.append(primal)
        if is_tracked:
            tracked.append(position)
            parents.append(cast(Value, arg).position)
    value = cast(Primal, op.forward(*primals))
    if recording is None:
        return constant(value)
    partials = tuple(op.partials[k](value, *primals) for k in tracked)
    if recording.traces:
        operands = tuple(None if k in tracked else primal for k, primal in enumerate(primals))
        return recording.record_traced(op, tuple(parents), value, partials, operands, Value)
    return recording.record(op, tuple(parents), value, partials, Value)


def apply_nary(op: Op, *sequences: Sequence[Scalar]) -> Scalar:
    """Apply an n-ary ``op`` whose arguments are sequences; floats only give a float."""
    recording = innermost(item for sequence in sequences for item in sequence)
    lifted = [[lift(item, recording) for item in sequence] for sequence in sequences]
    primals = [[primal for primal, _ in items] for items in lifted]
    value = cast(Primal, op.forward(*primals))
    if recording is None:
        return value
    parents: list[int] = []
    partials: list[object] = []
    for rule, sequence, items in zip(op.partials, sequences, lifted, strict=True):
        wanted = [j for j, (_, is_tracked) in enumerate(items) if is_tracked]
        if not wanted:
            continue
        local = cast("Sequence[object]", rule(value, *primals))
        for j in wanted:
            parents.append(cast(Value, sequence[j]).position)
            partials.append(local[j])
    if recording.traces:
        operands = tuple(
            tuple(None if is_tracked else primal for primal, is_tracked in items) for items in lifted
        )
        return recording.record_traced(op, tuple(parents), value, tuple(partials), operands, Value)
    return recording.record(op, tuple(parents), value, tuple(partials), Value)


def watch_leaf(recording: Recording, x: Scalar) -> Value:
    """A leaf Value for ``x`` on ``recording`` (what ``watch`` records).

    ``x`` is a float, or a Value of an enclosing recording (for higher-order
    derivatives); a Value already on ``recording`` is returned as it is.
    """
    if isinstance(x, Value):
        own = x.tape
        if own is recording:
            return x
        if own is None:
            primal: Primal = x.primal
        elif own.encloses(recording):
            primal = x
        else:
            raise TapeError(f"cannot watch a Value of {own!r}: that tape does not enclose {recording!r}")
    else:
        primal = number(x, "watch(x)")
    return recording.record(LEAF, (), primal, (), Value)


def _bind_scalar(op: Op, *args: object) -> object:
    if op.nary:
        return apply_nary(op, *cast("tuple[Sequence[Scalar], ...]", args))
    if all(arg.__class__ is float for arg in args) and op.float_kernel is not None:
        return op.float_kernel(*args)
    result = apply(op, *cast("tuple[Scalar, ...]", args))
    return result.primal if result.tape is None and result.primal.__class__ is float else result


register_binder("scalar", _bind_scalar)
