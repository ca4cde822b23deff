"""One validator per kind of input, shared by the scalar path, the array path and the data layer.

Each raises a TypeError or ValueError whose message starts with ``where`` (the
function or argument at fault) and names what was wrong, so one mistake gets one
message whichever path it takes.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Sequence
from typing import cast

from pyrsistent import PVector, pvector

from tape.core.node import Tracked
from tape.tree import only_floats

__all__ = [
    "HoldsTracked",
    "batch_lengths",
    "class_target",
    "class_targets",
    "int_text",
    "positional_arity",
    "number_text",
    "finite_number",
    "float_array",
    "float_matrix",
    "float_vector",
    "number",
    "sequence",
    "shape_of",
]


class HoldsTracked(Exception):
    """An operand holds tracked Values where plain floats were looked for (take the scalar path)."""


CONSTANTS_UNDER_JIT = (
    "under tape.jit, the floats of an argument grad does not differentiate are Values: "
    "give such data with arrays=True or as tape.array.asarray(...)"
)
"""What an op whose constant operand holds Values says about :func:`tape.jit`."""


def number(x: object, where: str, *, expected: str = "a float or a Value") -> float:
    """``x`` as a float: floats and ints (not bools) pass; anything else is a TypeError
    saying what was ``expected``.

    An int too large for a float is a ValueError naming ``where``, never an OverflowError.
    """
    if x.__class__ is float:
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        try:
            return float(x)
        except OverflowError:
            raise ValueError(f"{where} is an int too large for a float ({len(str(x))} digits)") from None
    raise TypeError(f"{where} must be {expected}, not {type(x).__name__}: {x!r}")


def finite_number(x: object, where: str, *, expected: str = "a real number") -> float:
    """``x`` as a finite float (see :func:`number`); ``inf`` and ``nan`` are a ValueError."""
    value = number(x, where, expected=expected)
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value!r}")
    return value


def sequence(x: object, where: str) -> Sequence[object]:
    """``x`` if it is a sequence (a list, tuple, pyrsistent vector; not a string); else a TypeError."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{where} must be a sequence, not {type(x).__name__}: {x!r}")
    return x


_PLAIN_SEQUENCES = frozenset({tuple, list, type(pvector())})
"""Exact types that are sequences (a set lookup is cheaper than the ``Sequence`` ABC's check)."""


def float_vector(xs: Sequence[float], where: str) -> tuple[float, ...]:
    """``xs`` as a tuple of floats; raises :class:`HoldsTracked` when it holds tracked Values."""
    given: object = xs
    if given.__class__ not in _PLAIN_SEQUENCES and (
        isinstance(given, (str, bytes)) or not isinstance(given, Sequence)
    ):
        raise TypeError(f"{where} must be a sequence of floats, not {type(given).__name__}")
    out = tuple(xs)
    if only_floats(out):
        return out
    for item in out:
        held: object = item
        if isinstance(held, Tracked):
            raise HoldsTracked
    return tuple(number(v, f"{where}: element {i}") for i, v in enumerate(out))


def float_matrix(rows: Sequence[Sequence[float]], where: str) -> tuple[tuple[float, ...], ...]:
    """``rows`` as a rectangular tuple of float tuples (ragged rows are a ValueError naming the row)."""
    given: object = rows
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise TypeError(f"{where} must be a sequence of rows of floats, not {type(given).__name__}")
    out = tuple(float_vector(row, f"{where}: row {i}") for i, row in enumerate(rows))
    for i, row in enumerate(out):
        if len(row) != len(out[0]):
            raise ValueError(f"{where} is ragged: row {i} has {len(row)} entries but row 0 has {len(out[0])}")
    return out


def float_array(x: object, where: str) -> object:
    """``x`` as nested tuples of floats of any depth (a float for depth 0), rectangular.

    A ragged level is a ValueError naming the index path and both lengths; a leaf that
    is not a number a TypeError naming its path; tracked Values raise :class:`HoldsTracked`.
    """
    if x.__class__ is float:
        return x
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        if isinstance(x, Tracked):
            raise HoldsTracked
        return number(x, where, expected="a float or a nested sequence of floats")
    items = tuple(x)
    if only_floats(items):
        return items
    if not items or not any(isinstance(i, Sequence) and not isinstance(i, (str, bytes)) for i in items):
        return float_vector(items, where)
    return _nested(items, where, "")


def _nested(items: tuple[object, ...], where: str, path: str) -> tuple[object, ...]:
    out: list[tuple[object, ...]] = []
    width = -1
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if isinstance(item, Tracked):
            raise HoldsTracked
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
            raise TypeError(
                f"{where}: element {at} is {type(item).__name__} ({item!r}) where the other "
                "elements are sequences; nested input must be rectangular"
            )
        row = tuple(item)
        if width == -1:
            width = len(row)
        elif len(row) != width:
            raise ValueError(f"{where} is ragged: {at} has {len(row)} entries but {path}[0] has {width}")
        if only_floats(row):
            out.append(row)
        elif row and all(isinstance(r, Sequence) and not isinstance(r, (str, bytes)) for r in row):
            out.append(_nested(row, where, at))
        else:
            out.append(float_vector(row, f"{where}: {at}"))
    shape = shape_of(out[0]) if out else ()
    for i, built in enumerate(out):
        if shape_of(built) != shape:
            raise ValueError(
                f"{where} is ragged: {path}[{i}] has shape {shape_of(built)} but {path}[0] has shape {shape}"
            )
    return tuple(out)


def shape_of(data: object) -> tuple[int, ...]:
    """The shape of nested tuples, lists or pyrsistent vectors, read down their first items
    (``()`` for a float; an empty level ends it)."""
    shape: list[int] = []
    while data.__class__ is tuple or data.__class__ is list or isinstance(data, PVector):
        items = cast("Sequence[object]", data)
        shape.append(len(items))
        if not items:
            break
        data = items[0]
    return tuple(shape)


def class_target(target: object, classes: int, where: str) -> int:
    """``target`` as a class index in ``range(classes)``; TypeError or ValueError otherwise."""
    if not isinstance(target, int) or isinstance(target, bool):
        raise TypeError(f"{where}: class target must be an int, not {type(target).__name__}: {target!r}")
    if not 0 <= target < classes:
        raise ValueError(
            f"{where}: class target {target} is out of range for {classes} classes "
            f"(expected 0 <= target < {classes})"
        )
    return target


def batch_lengths(rows: int, targets: int, where: str, what: str = "rows") -> None:
    """Raise ``ValueError`` for an empty batch or for ``rows != targets``."""
    if rows != targets:
        raise ValueError(f"{where}: {rows} {what} but {targets} targets; they must have the same length")
    if rows == 0:
        raise ValueError(f"{where}: empty batch (no examples)")


def class_targets(targets: Sequence[object], rows: int, classes: int, where: str) -> tuple[int, ...]:
    """A batch's class targets: one per row, each an int in ``range(classes)``."""
    given: object = targets
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise TypeError(f"{where}: targets must be a sequence of ints, not {type(targets).__name__}")
    batch_lengths(rows, len(targets), where, "rows of logits")
    return tuple(class_target(t, classes, f"{where}: row {i}") for i, t in enumerate(targets))


def number_text(text: str, where: str) -> float:
    """``text`` (a cell of a text file, say) as a finite float; a ValueError naming ``where`` otherwise.

    Surrounding spaces are allowed; ``nan``, ``inf``, what ``float`` does not read and what it
    reads beyond ASCII numerals (``1_000``, other scripts' digits) are not.

    >>> number_text(" 2.5e1 ", "line 2"), number_text("-3", "line 2")
    (25.0, -3.0)
    >>> number_text("nan", "line 4, column 'x'")
    Traceback (most recent call last):
    ...
    ValueError: line 4, column 'x': 'nan' is not a finite number
    """
    shown = text.strip()
    value: float | None = None
    if shown.isascii() and "_" not in shown:  # float reads "1_000" and other scripts' digits too
        with contextlib.suppress(ValueError):
            value = float(shown)
    if value is None:
        raise ValueError(f"{where}: {shown!r} is {'empty' if not shown else 'not a number'}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {shown!r} is not a finite number")
    return value


def int_text(text: str) -> int | None:
    """``text`` as an int if it is one written in decimal digits (a sign and spaces allowed), else None.

    >>> int_text(" -7 "), int_text("7.0"), int_text("1_000"), int_text("seven")
    (-7, None, None, None)
    """
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(stripped)


def positional_arity(fun: Callable[..., object]) -> tuple[int, int] | None:
    """How many positional arguments ``fun`` needs and takes at most, from its signature.

    ``None`` when that is not known: ``fun`` takes ``*args``, or has no signature (some builtins).
    A wrapper's own parameters are what it takes (a ``functools.wraps`` wrapper may take more
    than the function it wraps); only a wrapper of ``*args`` is read as the function it wraps
    (``__wrapped__``), as a transformation such as ``tape.grad`` passes its arguments on.
    """
    try:
        parameters = inspect.signature(fun, follow_wrapped=False).parameters.values()
        if any(p.kind is p.VAR_POSITIONAL for p in parameters):
            parameters = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return sum(1 for p in positional if p.default is p.empty), len(positional)
