"""Exceptions raised by the tape."""

from __future__ import annotations


class TapeError(ValueError):
    """A tape was misused: a closed tape, Values of unrelated tapes, a target or source not on it."""


class NonFiniteError(TapeError):
    """``Tape(check_finite=True)`` saw an op produce ``inf`` or ``nan``."""


class GradientCheckError(AssertionError):
    """Analytic gradients disagree with numerical ones beyond the tolerance."""
