"""Ready-made optimizers, each a :func:`~optimizers.base.chain` of transformations.

Their updates are ``torch.optim``'s step for step. Each is an
:class:`~optimizers.base.Optimizer` and composes: ``chain(clip_by_global_norm(1.0),
adam(1e-3))``. ``lr`` is a float or a schedule (called with ``0`` for the first
update). Weight decay applies to the parameters ``decay_mask`` picks,
by default weight matrices and not biases or norm scales (:data:`~optimizers.masks.default_decay_mask`).

>>> from pyrsistent import pmap, pvector
>>> opt = sgd(0.1, momentum=0.9)
>>> params = pmap({"w": pvector([1.0, -1.0])})
>>> state = opt.init(params)
>>> params, state = opt.step(params, pmap({"w": pvector([1.0, 2.0])}), state)
>>> params
pmap({'w': pvector([0.9, -1.2])})
"""

from __future__ import annotations

from optimizers._checks import non_negative, unit_interval
from optimizers.base import GradientTransformation, Optimizer, chain
from optimizers.masks import Mask
from optimizers.transforms import (
    LearningRate,
    add_decoupled_weight_decay,
    add_l2_decay,
    scale_by_adam,
    scale_by_learning_rate,
    trace,
)


def _sgd_like(
    name: str,
    lr: LearningRate,
    mu: float,
    nesterov: bool,
    weight_decay: float,
    decay_mask: Mask | None,
) -> Optimizer:
    if nesterov and mu == 0:
        raise ValueError(f"{name}: nesterov=True needs a momentum > 0")
    non_negative("weight_decay", weight_decay)
    parts: list[GradientTransformation] = []
    if weight_decay > 0:
        parts.append(add_l2_decay(weight_decay, decay_mask))
    if mu > 0:
        parts.append(trace(mu, nesterov))
    parts.append(scale_by_learning_rate(lr))
    return chain(*parts, name=name)


def sgd(
    lr: LearningRate,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decay_mask: Mask | None = None,
) -> Optimizer:
    """Stochastic gradient descent, as ``torch.optim.SGD`` with dampening 0.

    ``g = grad + weight_decay * p`` (masked), ``v = momentum * v + g`` (``v = g`` at
    first), ``p -= lr * (g + momentum * v if nesterov else v)``; ``p -= lr * g`` when
    ``momentum`` is 0. ``momentum`` must be >= 0 and > 0 for ``nesterov``.
    """
    non_negative("momentum", momentum)
    return _sgd_like("sgd", lr, momentum, nesterov, weight_decay, decay_mask)


def momentum(
    lr: LearningRate,
    beta: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decay_mask: Mask | None = None,
) -> Optimizer:
    """SGD with momentum ``beta`` in ``[0, 1)``: :func:`sgd`'s formulas with ``momentum=beta``."""
    unit_interval("beta", beta)
    return _sgd_like("momentum", lr, beta, nesterov, weight_decay, decay_mask)


def adam(
    lr: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decay_mask: Mask | None = None,
) -> Optimizer:
    """Adam, as ``torch.optim.Adam``, with L2 decay added to the gradient.

    ``g = grad + weight_decay * p`` (masked), ``m = b1*m + (1-b1)*g``,
    ``v = b2*v + (1-b2)*g*g``, ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``t`` the step number from 1.
    """
    non_negative("weight_decay", weight_decay)
    parts: list[GradientTransformation] = []
    if weight_decay > 0:
        parts.append(add_l2_decay(weight_decay, decay_mask))
    parts += [scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr)]
    return chain(*parts, name="adam")


def adamw(
    lr: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    decay_mask: Mask | None = None,
) -> Optimizer:
    """AdamW, as ``torch.optim.AdamW``: decoupled decay ``p *= 1 - lr*weight_decay``, then Adam.

    The decay applies to the parameters ``decay_mask`` picks; the Adam step sees the
    plain gradient.
    """
    non_negative("weight_decay", weight_decay)
    parts = [scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr)]
    if weight_decay > 0:
        parts.append(add_decoupled_weight_decay(weight_decay, lr, decay_mask))
    return chain(*parts, name="adamw")
