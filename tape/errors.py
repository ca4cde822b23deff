"""Exceptions raised by the tape."""

from __future__ import annotations


class TapeError(ValueError):
    """A tape was misused: a closed tape, Values of unrelated tapes, a target or source not on it."""


class NonFiniteError(TapeError):
    """``Tape(check_finite=True)`` saw an op produce ``inf`` or ``nan``."""


class TracingError(TapeError):
    """Python code branched on, or converted, a value that ``tape.jit`` is tracing.

    A trace records ops, not Python control flow: a branch taken on a traced number
    would be replayed for every later input. Mark the argument static
    (``static_argnums``) or use an op whose branch is compiled (``relu``, ``abs``).
    """


class GradientCheckError(AssertionError):
    """Analytic gradients disagree with numerical ones beyond the tolerance."""
