"""Functional ops on vectors of logits: ``logsumexp``, ``log_softmax``, ``softmax``, ``argmax``.

Every function takes a sequence of Scalars and works the same on floats and on
:class:`tape.Value`: all floats in, floats out (no tape, no Value created);
with Values in, the computation is recorded and differentiable. Sums go through
the fused :func:`tape.vsum`, so a softmax over ``n`` classes records ``O(n)``
nodes, not a chain of ``n`` additions per output.

All three normalisers subtract the largest input (as a constant, read from the
data) before exponentiating, so nothing overflows and the result is exact where
it can be:

>>> logsumexp([1000.0, 0.0, -1000.0])
1000.0
>>> softmax([1000.0, 0.0, -1000.0])
(1.0, 0.0, 0.0)
>>> predict([0.5, 2.0, -1.0])
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import tape
from tape import Scalar, Value, floats
from tape.validate import batch_lengths, class_target

__all__ = ["accuracy", "argmax", "log_softmax", "logsumexp", "predict", "softmax"]


def _data(x: Scalar) -> float:
    return x.data if isinstance(x, Value) else x


def _as_scalars(xs: Sequence[Scalar], where: str) -> list[Scalar]:
    """``xs`` as a list of floats and Values; ints become floats, anything else is a TypeError."""
    out: list[Scalar] = []
    for i, x in enumerate(xs):
        cls = x.__class__
        if cls is float or cls is Value:
            out.append(x)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            out.append(float(x))
        else:
            raise TypeError(f"{where}: element {i} must be a float or a Value, not {type(x).__name__}: {x!r}")
    return out


def _normalised(xs: Sequence[Scalar], where: str) -> tape.Normaliser:
    """The pieces every normaliser shares, :func:`tape.normaliser` of the checked ``xs``.

    Raises ValueError for an empty ``xs`` (``where`` prefixes the message).
    """
    if len(xs) == 0:
        raise ValueError(f"{where}: needs at least one element, got an empty sequence")
    return tape.normaliser(_as_scalars(xs, where))


def _log_normaliser(xs: Sequence[Scalar], where: str) -> tuple[list[Scalar], Scalar]:
    """``(shifted, log_total)`` with ``log_softmax(xs)[i] == shifted[i] - log_total``.

    Shared with :mod:`functional_nn.loss` so cross-entropy uses exactly the same
    arithmetic as :func:`log_softmax`; ``where`` prefixes error messages.
    """
    _, shifted, _, total = _normalised(xs, where)
    return shifted, tape.log(total)


@overload
def logsumexp(xs: Sequence[float]) -> float: ...
@overload
def logsumexp(xs: Sequence[Scalar]) -> Scalar: ...
def logsumexp(xs: Sequence[Scalar]) -> Scalar:
    """``log(sum(exp(x) for x in xs))``, computed as ``m + log(sum(exp(x - m)))`` with ``m = max(xs)``.

    Exact and finite for widely spread inputs; its gradient is ``softmax(xs)``.
    Raises ``ValueError`` for an empty sequence.

    >>> import math
    >>> logsumexp([0.0, 0.0]) == math.log(2.0)
    True
    >>> logsumexp([1000.0, 0.0, -1000.0])
    1000.0
    """
    shift, _, _, total = _normalised(xs, "logsumexp")
    return shift + tape.log(total)


@overload
def log_softmax(xs: Sequence[float]) -> tuple[float, ...]: ...
@overload
def log_softmax(xs: Sequence[Scalar]) -> tuple[Scalar, ...]: ...
def log_softmax(xs: Sequence[Scalar]) -> tuple[Scalar, ...]:
    """``xs[i] - logsumexp(xs)`` for each ``i``, computed as ``(xs[i] - m) - log(sum(exp(xs - m)))``.

    Finite for any finite logits (no ``log(0)``), so it is the stable way into
    cross-entropy. Raises ``ValueError`` for an empty sequence.

    >>> log_softmax([1000.0, 0.0, -1000.0])
    (0.0, -1000.0, -2000.0)
    """
    shifted, log_total = _log_normaliser(xs, "log_softmax")
    return tuple(d - log_total for d in shifted)


@overload
def softmax(xs: Sequence[float]) -> tuple[float, ...]: ...
@overload
def softmax(xs: Sequence[Scalar]) -> tuple[Scalar, ...]: ...
def softmax(xs: Sequence[Scalar]) -> tuple[Scalar, ...]:
    """Probabilities ``exp(xs[i]) / sum(exp(xs))``, computed from the max-shifted exponentials.

    Every output is in ``[0, 1]`` and they sum to 1 up to rounding. Raises
    ``ValueError`` for an empty sequence.

    >>> softmax([0.0, 0.0, 0.0, 0.0])
    (0.25, 0.25, 0.25, 0.25)
    """
    _, _, exps, total = _normalised(xs, "softmax")
    # total >= 1 for finite inputs (the max contributes exp(0)); 0 only if all are -inf.
    inverse = 1.0 / total if isinstance(total, Value) else floats.div(1.0, total)
    return tuple(e * inverse for e in exps)


def argmax(xs: Sequence[Scalar]) -> int:
    """The index of the largest element (the first one on ties), read from the data.

    A ``nan`` counts as the largest, as in NumPy and PyTorch. Records nothing.
    Raises ``ValueError`` for an empty sequence.

    >>> argmax([0.1, 0.7, 0.7, 0.2])
    1
    """
    if len(xs) == 0:
        raise ValueError("argmax: needs at least one element, got an empty sequence")
    best_index, best = 0, _data(xs[0])
    if best != best:
        return 0
    for i in range(1, len(xs)):
        x = _data(xs[i])
        if x != x:
            return i
        if x > best:
            best_index, best = i, x
    return best_index


def predict(logits: Sequence[Scalar]) -> int:
    """The predicted class: :func:`argmax` of the logits.

    Softmax is increasing, so the same index as the argmax of the probabilities;
    pass logits or probabilities alike. Records nothing.

    >>> predict([-1.0, 3.0, 0.5])
    1
    """
    return argmax(logits)


def accuracy(batch_logits: Sequence[Sequence[Scalar]], targets: Sequence[int]) -> float:
    """The fraction of rows whose :func:`predict` equals its target class.

    Raises ``ValueError`` for an empty batch, lengths that differ, or a target
    out of range for its row; ``TypeError`` for a non-int target.

    >>> accuracy([[2.0, 0.0], [0.0, 1.0], [5.0, 1.0]], [0, 1, 1])
    0.6666666666666666
    """
    batch_lengths(len(batch_logits), len(targets), "accuracy", "rows of logits")
    correct = 0
    for i, (row, target) in enumerate(zip(batch_logits, targets, strict=True)):
        where = f"accuracy: row {i}"
        if len(row) == 0:
            raise ValueError(f"{where}: needs at least one logit, got an empty row")
        correct += predict(row) == class_target(target, len(row), where)
    return correct / len(targets)
