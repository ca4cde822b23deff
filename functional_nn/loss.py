"""Loss functions with PyTorch's definitions, on floats and on tape Values alike.

Each loss comes per example (``mse_loss``, ``bce_loss``, ...) and as a batch
helper named ``<loss>_batch`` that averages the per-example losses over the
examples (PyTorch's ``reduction="mean"``). All floats in gives a float out and
records nothing; with :class:`tape.Value` inputs the loss is recorded and
differentiable. Sums and means go through the fused :func:`tape.vsum` and
:func:`tape.dot`.

==========================================  ==========================================================
``mse_loss(p, t)``                          ``(p - t) ** 2``; for sequences, the mean over elements
``bce_loss(p, t)``                          ``-(t * log(p) + (1 - t) * log(1 - p))``, each log clamped
                                            at ``>= LOG_FLOOR`` (``-100``) as in ``torch.nn.BCELoss``
``bce_with_logits(x, t)``                   ``max(x, 0) - x * t + log(1 + exp(-|x|))``
``cross_entropy(probs, k)``                 ``-max(log(probs[k]), LOG_FLOOR)`` (``nll_loss`` of the
                                            clamped log)
``cross_entropy_with_logits(logits, k)``    ``-log_softmax(logits)[k]`` (``torch.nn.CrossEntropyLoss``)
``hinge_loss(s, t)``                        ``max(0, margin - t * s)`` for ``t`` in ``{-1, 1}``
``multi_margin_loss(logits, k)``            ``sum(max(0, margin - x[k] + x[i]) for i != k) / len(x)``
                                            (``torch.nn.MultiMarginLoss`` with ``p=1``)
==========================================  ==========================================================

Derivatives are those of the function computed: where a log is clamped the loss
is constant and its gradient is 0 (PyTorch's BCE backward instead divides by
``max(p * (1 - p), 1e-12)``); at a hinge's kink the gradient is 0, as for
``relu``. Prefer the ``_with_logits`` losses: they never clamp and stay exact
for any finite logit.

Bad inputs raise at once: ``ValueError`` for class targets out of range, empty
batches, lengths that differ, BCE probabilities or targets outside ``[0, 1]``
and hinge targets other than ``-1`` and ``1``; ``TypeError`` for class targets
that are not ints. Batch helpers name the offending row.

>>> from functional_nn.functional import log_softmax
>>> cross_entropy_with_logits([2.0, 0.0, -1.0], 0) == -log_softmax([2.0, 0.0, -1.0])[0]
True
>>> bce_loss(0.0, 1.0)
100.0
>>> mse_loss_batch([1.0, 2.0], [0.0, 0.0])
2.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import tape
from functional_nn.functional import (
    _as_scalars,
    _data,
    _log_normaliser,
)
from tape import Array, Scalar, Value, arrays
from tape.validate import batch_lengths, class_target

__all__ = [
    "LOG_FLOOR",
    "bce_loss",
    "bce_loss_batch",
    "bce_with_logits",
    "bce_with_logits_batch",
    "cross_entropy",
    "cross_entropy_batch",
    "cross_entropy_with_logits",
    "cross_entropy_with_logits_batch",
    "hinge_loss",
    "hinge_loss_batch",
    "mse_loss",
    "mse_loss_batch",
    "multi_margin_loss",
    "multi_margin_loss_batch",
]

LOG_FLOOR = -100.0
"""The floor on log-probabilities in ``bce_loss`` and ``cross_entropy``, as in ``torch.nn.BCELoss``."""

# --- helpers -----------------------------------------------------------------------


def _scalar(x: object, what: str) -> Scalar:
    """``x`` as a float or a Value (ints become floats); TypeError for anything else."""
    if isinstance(x, Value):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"{what} must be a float or a Value, not {type(x).__name__}: {x!r}")


def _in_unit_interval(x: Scalar, what: str) -> float:
    value = _data(x)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return value


def _log_of(argument: Scalar, exact: float) -> Scalar:
    """``log(argument)`` whose value is ``exact``, a more accurate float for it.

    The tape has no ``log1p``: ``log(1 + u)`` has the right derivative ``1 / (1 + u)``
    but loses ``u`` when it is tiny. On Values, record ``log(argument)`` and add the
    rounding error as a constant, so floats and Values give the same value.
    """
    if not isinstance(argument, Value):
        return exact
    approx = argument.log()
    error = exact - approx.data
    return approx + error if error != 0.0 and math.isfinite(error) else approx


def _clamped_log(p: Scalar) -> Scalar:
    """``max(log(p), LOG_FLOOR)`` for ``p`` in ``[0, 1]``; the floor is a constant."""
    exact = math.log(_data(p)) if _data(p) > 0.0 else -math.inf
    return LOG_FLOOR if exact < LOG_FLOOR else _log_of(p, exact)


def _clamped_log1m(p: Scalar) -> Scalar:
    """``max(log(1 - p), LOG_FLOOR)`` for ``p`` in ``[0, 1]``, valued as ``log1p(-p)``."""
    exact = math.log1p(-_data(p)) if _data(p) < 1.0 else -math.inf
    return LOG_FLOOR if exact < LOG_FLOOR else _log_of(1.0 - p, exact)


def _log1p_exp(x: Scalar) -> Scalar:
    """``log(1 + exp(x))`` for ``x <= 0`` (no overflow; exact when ``exp(x)`` is tiny)."""
    e = tape.exp(x)
    return _log_of(1.0 + e, math.log1p(_data(e)))


def _mean(losses: Sequence[Scalar]) -> Scalar:
    return tape.vsum(losses) / len(losses)


def _rows(where: str, what: str, inputs: Sequence[object], targets: Sequence[object]) -> list[str]:
    """Validate a batch; return the error prefix for each row."""
    batch_lengths(len(inputs), len(targets), where, what)
    return [f"{where}: row {i}" for i in range(len(inputs))]


def _class_rows(
    where: str, what: str, inputs: Sequence[Sequence[object]], targets: Sequence[object]
) -> list[str]:
    """Validate a batch of rows that score the same classes (all of one width); the rows' error prefixes."""
    wheres = _rows(where, what, inputs, targets)
    width = len(inputs[0])
    for i, row in enumerate(inputs):
        if len(row) != width:
            raise ValueError(
                f"{where}: {what} are ragged: row {i} has {len(row)} entries but row 0 has {width}"
            )
    return wheres


# --- implementations, with the error prefix as an argument ------------------------------


def _same_length(predictions: int, targets: int, where: str) -> None:
    if predictions != targets:
        raise ValueError(
            f"{where}: prediction has {predictions} elements but target has {targets}; "
            "they must have the same length"
        )


def _target_row(target: Scalar | Sequence[Scalar], width: int, where: str) -> list[float]:
    """One example's regression target for a prediction row of ``width`` (as :func:`_mse` checks it)."""
    if not isinstance(target, Sequence):
        return [float(_scalar(target, f"{where}: target"))]
    values = [float(t) for t in _as_scalars(target, f"{where}: target")]
    _same_length(width, len(values), where)
    return values


def _mse(prediction: Scalar | Sequence[Scalar], target: Scalar | Sequence[Scalar], where: str) -> Scalar:
    if isinstance(prediction, Sequence) != isinstance(target, Sequence):
        kinds = ["a sequence" if isinstance(x, Sequence) else "a scalar" for x in (prediction, target)]
        raise TypeError(
            f"{where}: prediction is {kinds[0]} but target is {kinds[1]}; pass two scalars or two sequences"
        )
    if not isinstance(prediction, Sequence) or not isinstance(target, Sequence):
        diff = _scalar(prediction, f"{where}: prediction") - _scalar(target, f"{where}: target")
        return diff * diff
    predictions = _as_scalars(prediction, f"{where}: prediction")
    targets = _as_scalars(target, f"{where}: target")
    _same_length(len(predictions), len(targets), where)
    if not predictions:
        raise ValueError(f"{where}: prediction and target are empty")
    diffs = [p - t for p, t in zip(predictions, targets, strict=True)]
    return tape.dot(diffs, diffs) / len(diffs)


def _bce(probability: Scalar, target: Scalar, where: str) -> Scalar:
    p = _scalar(probability, f"{where}: probability")
    t = _scalar(target, f"{where}: target")
    _in_unit_interval(p, f"{where}: probability")
    _in_unit_interval(t, f"{where}: target")
    return (t - 1.0) * _clamped_log1m(p) - t * _clamped_log(p)


def _bce_with_logits(logit: Scalar, target: Scalar, where: str) -> Scalar:
    x = _scalar(logit, f"{where}: logit")
    t = _scalar(target, f"{where}: target")
    _in_unit_interval(t, f"{where}: target")
    # One smooth formula per sign of x (max(x, 0) and |x| would put kinks at 0 and
    # give a wrong derivative there): x >= 0: (1 - t) x + log(1 + e^-x); else log(1 + e^x) - t x.
    if _data(x) >= 0.0:
        return (1.0 - t) * x + _log1p_exp(-x)
    return _log1p_exp(x) - t * x


def _cross_entropy(probs: Sequence[Scalar], target: int, where: str) -> Scalar:
    if len(probs) == 0:
        raise ValueError(f"{where}: needs at least one class probability, got an empty sequence")
    k = class_target(target, len(probs), where)
    p = _scalar(probs[k], f"{where}: probability of the target class")
    _in_unit_interval(p, f"{where}: probability of the target class {k}")
    return -_clamped_log(p)


def _cross_entropy_with_logits(logits: Sequence[Scalar], target: int, where: str) -> Scalar:
    if len(logits) == 0:
        raise ValueError(f"{where}: needs at least one logit, got an empty sequence")
    k = class_target(target, len(logits), where)
    shifted, log_total = _log_normaliser(logits, where)
    return log_total - shifted[k]  # == -log_softmax(logits)[k], bit for bit


def _hinge(score: Scalar, target: float, margin: float, where: str) -> Scalar:
    s = _scalar(score, f"{where}: score")
    if not isinstance(target, (int, float)) or isinstance(target, bool):
        raise TypeError(f"{where}: target must be -1 or 1 (int or float), not {type(target).__name__}")
    if target not in (-1.0, 1.0):
        raise ValueError(f"{where}: target must be -1 or 1, got {target!r}")
    return tape.relu(margin - s if target > 0.0 else margin + s)


def _multi_margin(logits: Sequence[Scalar], target: int, margin: float, where: str) -> Scalar:
    if len(logits) == 0:
        raise ValueError(f"{where}: needs at least one logit, got an empty sequence")
    k = class_target(target, len(logits), where)
    xs = _as_scalars(logits, f"{where}: logits")
    base = margin - xs[k]
    terms = [tape.relu(base + x) for i, x in enumerate(xs) if i != k]
    return tape.vsum(terms) / len(xs)


# --- mean squared error --------------------------------------------------------------


@overload
def mse_loss(prediction: float, target: float) -> float: ...
@overload
def mse_loss(prediction: Sequence[float], target: Sequence[float]) -> float: ...
@overload
def mse_loss(prediction: Scalar | Sequence[Scalar], target: Scalar | Sequence[Scalar]) -> Scalar: ...
def mse_loss(prediction: Scalar | Sequence[Scalar], target: Scalar | Sequence[Scalar]) -> Scalar:
    """Squared error ``(prediction - target) ** 2``; for two sequences, its mean over elements.

    As ``torch.nn.functional.mse_loss(..., reduction="mean")``.

    >>> mse_loss(3.0, 1.0)
    4.0
    >>> mse_loss([1.0, 2.0], [1.0, 0.0])
    2.0
    """
    return _mse(prediction, target, "mse_loss")


@overload
def mse_loss_batch(
    predictions: Sequence[float] | Sequence[Sequence[float]],
    targets: Sequence[float] | Sequence[Sequence[float]],
) -> float: ...
@overload
def mse_loss_batch(
    predictions: Sequence[Scalar] | Sequence[Sequence[Scalar]] | Array,
    targets: Sequence[Scalar] | Sequence[Sequence[Scalar]],
) -> Scalar: ...
def mse_loss_batch(
    predictions: Sequence[Scalar] | Sequence[Sequence[Scalar]] | Array,
    targets: Sequence[Scalar] | Sequence[Sequence[Scalar]],
) -> Scalar:
    """The mean over examples of :func:`mse_loss` (scalar or vector examples).

    With equally long vector examples this is PyTorch's mean over all elements.
    A :class:`tape.Array` of predictions (one row per example) is one fused node.
    """
    if isinstance(predictions, Array):
        n, width = predictions.shape[0], predictions.shape[-1]
        batch_lengths(n, len(targets), "mse_loss_batch", "predictions")
        rows = [_target_row(t, width, f"mse_loss_batch: row {i}") for i, t in enumerate(targets)]
        return arrays.mse(predictions, rows, where="mse_loss_batch")
    wheres = _rows("mse_loss_batch", "predictions", predictions, targets)
    return _mean([_mse(p, t, w) for p, t, w in zip(predictions, targets, wheres, strict=True)])


# --- binary cross-entropy --------------------------------------------------------------


@overload
def bce_loss(probability: float, target: float) -> float: ...
@overload
def bce_loss(probability: Scalar, target: Scalar) -> Scalar: ...
def bce_loss(probability: Scalar, target: Scalar) -> Scalar:
    """Binary cross-entropy of a probability: ``-(t log p + (1 - t) log(1 - p))``.

    Each log is clamped at ``>= LOG_FLOOR`` (-100) as in ``torch.nn.BCELoss``, so
    ``p`` of exactly 0 or 1 gives a finite loss (at most 100) and a finite
    gradient (0 where clamped). ``probability`` and ``target`` must be in ``[0, 1]``.

    >>> bce_loss(0.5, 1.0) == math.log(2.0)
    True
    >>> bce_loss(1.0, 0.0)
    100.0
    """
    return _bce(probability, target, "bce_loss")


@overload
def bce_loss_batch(probabilities: Sequence[float], targets: Sequence[float]) -> float: ...
@overload
def bce_loss_batch(probabilities: Sequence[Scalar], targets: Sequence[Scalar]) -> Scalar: ...
def bce_loss_batch(probabilities: Sequence[Scalar], targets: Sequence[Scalar]) -> Scalar:
    """The mean over examples of :func:`bce_loss`."""
    wheres = _rows("bce_loss_batch", "probabilities", probabilities, targets)
    return _mean([_bce(p, t, w) for p, t, w in zip(probabilities, targets, wheres, strict=True)])


@overload
def bce_with_logits(logit: float, target: float) -> float: ...
@overload
def bce_with_logits(logit: Scalar, target: Scalar) -> Scalar: ...
def bce_with_logits(logit: Scalar, target: Scalar) -> Scalar:
    """Binary cross-entropy of ``sigmoid(logit)``: ``max(x, 0) - x t + log(1 + exp(-|x|))``.

    As ``torch.nn.functional.binary_cross_entropy_with_logits``; exact and finite
    for any finite logit, no clamping. ``target`` must be in ``[0, 1]``.

    >>> bce_with_logits(0.0, 1.0) == math.log(2.0)
    True
    >>> bce_with_logits(-1e4, 1.0)
    10000.0
    """
    return _bce_with_logits(logit, target, "bce_with_logits")


@overload
def bce_with_logits_batch(logits: Sequence[float], targets: Sequence[float]) -> float: ...
@overload
def bce_with_logits_batch(logits: Sequence[Scalar], targets: Sequence[Scalar]) -> Scalar: ...
def bce_with_logits_batch(logits: Sequence[Scalar], targets: Sequence[Scalar]) -> Scalar:
    """The mean over examples of :func:`bce_with_logits`."""
    wheres = _rows("bce_with_logits_batch", "logits", logits, targets)
    return _mean([_bce_with_logits(x, t, w) for x, t, w in zip(logits, targets, wheres, strict=True)])


# --- categorical cross-entropy ------------------------------------------------------------


@overload
def cross_entropy(probs: Sequence[float], target: int) -> float: ...
@overload
def cross_entropy(probs: Sequence[Scalar], target: int) -> Scalar: ...
def cross_entropy(probs: Sequence[Scalar], target: int) -> Scalar:
    """Cross-entropy of class probabilities: ``-log(probs[target])``, the log clamped at ``>= LOG_FLOOR``.

    The clamp (as in ``torch.nn.BCELoss``) keeps a zero probability finite: the
    loss is then 100 with gradient 0. ``probs`` are not renormalised; only the
    target's probability is read, and it must be in ``[0, 1]``. Prefer
    :func:`cross_entropy_with_logits` when you have logits.

    >>> cross_entropy([0.25, 0.75], 1) == -math.log(0.75)
    True
    >>> cross_entropy([1.0, 0.0], 1)
    100.0
    """
    return _cross_entropy(probs, target, "cross_entropy")


@overload
def cross_entropy_batch(batch_probs: Sequence[Sequence[float]], targets: Sequence[int]) -> float: ...
@overload
def cross_entropy_batch(batch_probs: Sequence[Sequence[Scalar]], targets: Sequence[int]) -> Scalar: ...
def cross_entropy_batch(batch_probs: Sequence[Sequence[Scalar]], targets: Sequence[int]) -> Scalar:
    """The mean over examples of :func:`cross_entropy`."""
    wheres = _class_rows("cross_entropy_batch", "rows of probabilities", batch_probs, targets)
    return _mean([_cross_entropy(p, k, w) for p, k, w in zip(batch_probs, targets, wheres, strict=True)])


@overload
def cross_entropy_with_logits(logits: Sequence[float], target: int) -> float: ...
@overload
def cross_entropy_with_logits(logits: Sequence[Scalar], target: int) -> Scalar: ...
def cross_entropy_with_logits(logits: Sequence[Scalar], target: int) -> Scalar:
    """Cross-entropy of logits: ``-log_softmax(logits)[target]``, as ``torch.nn.CrossEntropyLoss``.

    Computed from the same max-shifted terms as :func:`log_softmax` (and equal to
    it bit for bit) without building the other classes' outputs: finite and exact
    for logits of any size; its gradient is ``softmax(logits) - one_hot(target)``.

    >>> cross_entropy_with_logits([0.0, 0.0], 1) == math.log(2.0)
    True
    >>> cross_entropy_with_logits([1e4, 0.0, -1e4], 2)
    20000.0
    """
    return _cross_entropy_with_logits(logits, target, "cross_entropy_with_logits")


@overload
def cross_entropy_with_logits_batch(
    batch_logits: Sequence[Sequence[float]], targets: Sequence[int]
) -> float: ...
@overload
def cross_entropy_with_logits_batch(
    batch_logits: Sequence[Sequence[Scalar]] | Array, targets: Sequence[int]
) -> Scalar: ...
def cross_entropy_with_logits_batch(
    batch_logits: Sequence[Sequence[Scalar]] | Array, targets: Sequence[int]
) -> Scalar:
    """The mean over examples of :func:`cross_entropy_with_logits` (``F.cross_entropy`` on a batch).

    A :class:`tape.Array` of logits (from ``MLP.apply_batch`` under
    ``grad(..., arrays=True)``) is one fused node.
    """
    if isinstance(batch_logits, Array):
        return arrays.cross_entropy_with_logits(
            batch_logits, targets, where="cross_entropy_with_logits_batch"
        )
    wheres = _class_rows("cross_entropy_with_logits_batch", "rows of logits", batch_logits, targets)
    return _mean(
        [_cross_entropy_with_logits(x, k, w) for x, k, w in zip(batch_logits, targets, wheres, strict=True)]
    )


# --- hinge losses ---------------------------------------------------------------------------


@overload
def hinge_loss(score: float, target: float, *, margin: float = 1.0) -> float: ...
@overload
def hinge_loss(score: Scalar, target: float, *, margin: float = 1.0) -> Scalar: ...
def hinge_loss(score: Scalar, target: float, *, margin: float = 1.0) -> Scalar:
    """Binary hinge loss ``max(0, margin - target * score)`` with ``target`` in ``{-1, 1}``.

    The SVM hinge, not ``torch.nn.HingeEmbeddingLoss`` (which takes distances).
    Its gradient at the kink is 0, as for ``relu``.

    >>> hinge_loss(0.25, 1)
    0.75
    >>> hinge_loss(0.25, -1)
    1.25
    """
    return _hinge(score, target, margin, "hinge_loss")


@overload
def hinge_loss_batch(scores: Sequence[float], targets: Sequence[float], *, margin: float = 1.0) -> float: ...
@overload
def hinge_loss_batch(
    scores: Sequence[Scalar], targets: Sequence[float], *, margin: float = 1.0
) -> Scalar: ...
def hinge_loss_batch(scores: Sequence[Scalar], targets: Sequence[float], *, margin: float = 1.0) -> Scalar:
    """The mean over examples of :func:`hinge_loss`."""
    wheres = _rows("hinge_loss_batch", "scores", scores, targets)
    return _mean([_hinge(s, t, margin, w) for s, t, w in zip(scores, targets, wheres, strict=True)])


@overload
def multi_margin_loss(logits: Sequence[float], target: int, *, margin: float = 1.0) -> float: ...
@overload
def multi_margin_loss(logits: Sequence[Scalar], target: int, *, margin: float = 1.0) -> Scalar: ...
def multi_margin_loss(logits: Sequence[Scalar], target: int, *, margin: float = 1.0) -> Scalar:
    """Multi-class hinge: ``sum(max(0, margin - x[target] + x[i]) for i != target) / len(x)``.

    As ``torch.nn.functional.multi_margin_loss`` with ``p=1`` (mean over classes).

    >>> multi_margin_loss([1.0, 1.5, -2.0], 0)
    0.5
    """
    return _multi_margin(logits, target, margin, "multi_margin_loss")


@overload
def multi_margin_loss_batch(
    batch_logits: Sequence[Sequence[float]], targets: Sequence[int], *, margin: float = 1.0
) -> float: ...
@overload
def multi_margin_loss_batch(
    batch_logits: Sequence[Sequence[Scalar]], targets: Sequence[int], *, margin: float = 1.0
) -> Scalar: ...
def multi_margin_loss_batch(
    batch_logits: Sequence[Sequence[Scalar]], targets: Sequence[int], *, margin: float = 1.0
) -> Scalar:
    """The mean over examples of :func:`multi_margin_loss`."""
    wheres = _class_rows("multi_margin_loss_batch", "rows of logits", batch_logits, targets)
    return _mean(
        [_multi_margin(x, k, margin, w) for x, k, w in zip(batch_logits, targets, wheres, strict=True)]
    )
