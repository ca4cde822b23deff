"""Checks of hyperparameters: each raises a ValueError naming the argument."""

from __future__ import annotations

import math


def _number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def non_negative(name: str, value: float) -> float:
    """``value`` if it is a finite number >= 0."""
    if _number(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0."""
    if _number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def unit_interval(name: str, value: float) -> float:
    """``value`` if it is in ``[0, 1)``, as decay rates of moving averages must be."""
    if not 0 <= _number(name, value) < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def positive_int(name: str, value: int) -> int:
    """``value`` if it is an ``int`` > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be an int > 0, got {value!r}")
    return value


def non_negative_int(name: str, value: int) -> int:
    """``value`` if it is an ``int`` >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value
