"""Hand-written references of the update formulas (torch.optim's), on flat lists of floats.

Each gives the trajectory: the params after every step. ``decayed[i]`` says whether
weight decay applies to leaf ``i``; ``lr(t)`` is the rate of update ``t`` (from 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def sgd_trajectory(
    params: list[float],
    grads: Sequence[list[float]],
    lr: Callable[[int], float],
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    decayed: list[bool],
) -> list[list[float]]:
    p = list(params)
    velocity: list[float] | None = None
    out = []
    for t, grad in enumerate(grads):
        g = list(grad)
        if weight_decay > 0:
            for i in range(len(p)):
                if decayed[i]:
                    g[i] = g[i] + weight_decay * p[i]
        if momentum > 0:
            # torch: the buffer starts as a copy of the gradient
            velocity = list(g) if velocity is None else [momentum * velocity[i] + g[i] for i in range(len(p))]
            direction = [g[i] + momentum * velocity[i] for i in range(len(p))] if nesterov else velocity
        else:
            direction = g
        rate = lr(t)
        p = [p[i] - rate * direction[i] for i in range(len(p))]
        out.append(p)
    return out


def adam_trajectory(
    params: list[float],
    grads: Sequence[list[float]],
    lr: Callable[[int], float],
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
    decayed: list[bool],
    decoupled: bool,
) -> list[list[float]]:
    """Adam (L2 decay added to the gradient) or, with ``decoupled``, AdamW."""
    p = list(params)
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    out = []
    for step, grad in enumerate(grads):
        t = step + 1
        rate = lr(step)
        g = list(grad)
        for i in range(len(p)):
            if weight_decay > 0 and decayed[i]:
                if decoupled:
                    p[i] = p[i] * (1 - rate * weight_decay)
                else:
                    g[i] = g[i] + weight_decay * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            p[i] = p[i] - rate * (m_hat / (math.sqrt(v_hat) + eps))
        out.append(list(p))
    return out
