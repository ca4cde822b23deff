"""Regularisation: dropout from an explicit key.

Dropout, as ``torch.nn.functional.dropout``: in training each activation is zeroed
with probability ``p`` and the survivors are scaled by ``1 / (1 - p)``, so every
output's expected value is its input; in evaluation it is the identity. The mask is
fixed by the key: same key, same mask.

>>> from functional_nn.random import key
>>> dropout(key(0), [1.0, 2.0, 3.0, 4.0], 0.5, train=False)
(1.0, 2.0, 3.0, 4.0)
>>> sorted(set(dropout(key(0), [1.0] * 100, 0.5)))
[0.0, 2.0]

Weight decay is the optimizers' business: ``optimizers.masks.default_decay_mask``
chooses the parameters it applies to (weights, not biases) by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

from functional_nn.random import Key, bernoulli
from tape import Scalar

__all__ = ["check_dropout_rate", "dropout", "dropout_mask"]


def check_dropout_rate(p: object, *, allow_one: bool = True) -> float:
    """``p`` as a float if it is a valid dropout probability; TypeError or ValueError otherwise.

    Valid is ``0 <= p <= 1``, or ``0 <= p < 1`` with ``allow_one=False``.
    """
    interval = "[0, 1]" if allow_one else "[0, 1)"
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"dropout probability must be a number in {interval}, not {type(p).__name__} {p!r}")
    rate = float(p)
    top_ok = rate <= 1.0 if allow_one else rate < 1.0
    if not (rate >= 0.0 and top_ok):  # also rejects nan
        raise ValueError(f"dropout probability must be in {interval}, got {p!r}")
    return rate


def dropout_mask(key: Key, p: float, n: int) -> tuple[bool, ...]:
    """Which of ``n`` activations survive: each is dropped (``False``) with probability ``p``."""
    rate = check_dropout_rate(p)
    return tuple(not dropped for dropped in bernoulli(key, n, rate))


@overload
def dropout(key: Key | None, xs: Sequence[float], p: float, train: bool = True) -> tuple[float, ...]: ...
@overload
def dropout(key: Key | None, xs: Sequence[Scalar], p: float, train: bool = True) -> tuple[Scalar, ...]: ...
def dropout(key: Key | None, xs: Sequence[Scalar], p: float, train: bool = True) -> tuple[Scalar, ...]:
    """Zero each of ``xs`` with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Floats in, floats out; Values in, Values (and ``0.0`` for the dropped) out.

    The identity (``tuple(xs)``) when ``train`` is false or ``p == 0``; then ``key``
    may be ``None``. As in PyTorch, ``p == 1`` zeroes everything. Dropped entries
    become the float ``0.0`` (no tape node: nothing flows back through them);
    survivors are ``x * (1 / (1 - p))``, one node each while a tape records.

    Raises ValueError unless ``0 <= p <= 1``, and when training with ``p > 0`` and
    no key.
    """
    rate = check_dropout_rate(p)
    if not train or rate == 0.0:
        return tuple(xs)
    if key is None:
        raise ValueError(
            "dropout in training needs a key: pass key=functional_nn.random.key(seed) "
            "(a fresh one per step, e.g. from split), or train=False"
        )
    if rate == 1.0:
        return (0.0,) * len(xs)
    scale = 1.0 / (1.0 - rate)
    drops = bernoulli(key, len(xs), rate)
    return tuple([0.0 if dropped else x * scale for x, dropped in zip(xs, drops, strict=True)])
