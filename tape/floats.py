"""IEEE-754 float arithmetic that never raises, as NumPy and PyTorch behave.

Python's ``math`` raises on ``exp(800)``, ``log(0)`` or ``1.0 / 0.0``; a graph
mid-training must instead carry ``inf`` or ``nan`` onwards (and let
``Tape(check_finite=True)`` say where it first appeared).
"""

from __future__ import annotations

import math

INF = math.inf
NAN = math.nan


def exp(x: float) -> float:
    """``e ** x``; ``inf`` on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def log(x: float) -> float:
    """Natural log; ``-inf`` at 0, ``nan`` below 0."""
    if x > 0.0:
        return math.log(x)
    if x == 0.0:
        return -INF
    return NAN


def sqrt(x: float) -> float:
    """Square root; ``nan`` below 0."""
    return math.sqrt(x) if x >= 0.0 else NAN


def tanh(x: float) -> float:
    """Hyperbolic tangent."""
    return math.tanh(x)


def sigmoid(x: float) -> float:
    """Logistic function ``1 / (1 + e ** -x)``, stable for large ``|x|``."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = exp(x)
    return z / (1.0 + z)


def div(x: float, y: float) -> float:
    """``x / y`` with IEEE results for a zero divisor: ``+-inf``, or ``nan`` for ``0 / 0``."""
    try:
        return x / y
    except ZeroDivisionError:
        if x == 0.0 or x != x:
            return NAN
        return math.copysign(INF, x) * math.copysign(1.0, y)


def _is_odd_integer(y: float) -> bool:
    return y.is_integer() and abs(y) < 2.0**53 and int(y) % 2 == 1


def pow(x: float, y: float) -> float:  # mirrors math.pow on purpose
    """``x ** y`` as C's ``pow``: ``nan`` for a negative base and fractional power, ``inf`` on overflow."""
    try:
        return math.pow(x, y)
    except OverflowError:
        negative = x < 0.0 and _is_odd_integer(y)
        return -INF if negative else INF
    except ValueError:
        if x == 0.0 and y < 0.0:
            negative = math.copysign(1.0, x) < 0.0 and _is_odd_integer(y)
            return -INF if negative else INF
        return NAN


def is_finite(x: float) -> bool:
    """Neither ``inf`` nor ``nan``."""
    return math.isfinite(x)
