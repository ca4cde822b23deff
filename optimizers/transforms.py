"""The gradient transformations that optimizers are chained from.

Each returns a :class:`~optimizers.base.GradientTransformation` whose state is a
``PMap`` naming it (``"transform"``) plus whatever it keeps: a step ``"count"``,
moment trees with the params' structure. Updates keep the container types of the
gradients given. Formulas follow ``torch.optim``; ``lr`` may be a float or a
:data:`~optimizers.schedules.Schedule`, called with the count of updates made so
far (``0`` for the first update).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeAlias

from pyrsistent import pmap

from optimizers._checks import non_negative, positive, unit_interval
from optimizers.base import GradientTransformation, from_flat
from optimizers.masks import Mask, checked_mask, decayed_leaves
from optimizers.schedules import Schedule
from optimizers.state import OptState, StateSpec, expect_state, get_int, get_tree, zeros_like
from tape.tree import only_floats, tree_leaves, tree_unflatten

LearningRate: TypeAlias = float | Schedule
"""A learning rate: a float, or a schedule ``step -> rate`` with ``step`` 0 for the first update."""


def _rate_at(lr: LearningRate) -> Callable[[int, str], float]:
    """Check ``lr`` and give ``rate(step, where)``, which checks the rate at each step."""
    if not callable(lr):
        rate = non_negative("lr", lr)
        return lambda step, where: rate
    first = lr(0)
    if not isinstance(first, (int, float)) or isinstance(first, bool) or not first >= 0:
        raise ValueError(f"lr: the schedule gives {first!r} at step 0; a learning rate must be >= 0")

    def scheduled(step: int, where: str) -> float:
        value = lr(step)
        if not value >= 0:
            raise ValueError(f"{where}: the lr schedule gives {value!r} at step {step}; it must be >= 0")
        return value

    return scheduled


def _params_leaves(params: object, count: int, where: str) -> list[float]:
    leaves = tree_leaves(params)
    if len(leaves) != count:
        raise ValueError(f"{where}: params have {len(leaves)} leaves but the updates have {count}")
    return leaves


def scale_by_learning_rate(lr: LearningRate) -> GradientTransformation:
    """``u -> -lr_t * u``: the descent step, with ``lr_t = lr(count)`` for a schedule.

    Negative rates are errors: at construction for a float or a schedule's step 0,
    and at the step where a schedule first goes negative.
    """
    name = "scale_by_learning_rate"
    rate = _rate_at(lr)

    def init(params: object) -> OptState:
        return pmap({"transform": name, "count": 0})

    def scale_flat(state: OptState) -> tuple[float, OptState]:
        state = expect_state(state, name)
        count = get_int(state, "count", name)
        return -rate(count, name), state.set("count", count + 1)

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        factor, new_state = scale_flat(state)
        return [factor * u for u in leaves], new_state

    def apply_flat(
        param_leaves: list[float], leaves: list[float], state: OptState, params: object, floats: bool
    ) -> tuple[list[float], OptState, bool]:
        factor, new_state = scale_flat(state)  # the same product, then the same sum, as update_flat and p + u
        new = [p + factor * u for p, u in zip(param_leaves, leaves, strict=True)]
        return new, new_state, floats and type(factor) is float  # float operations on floats

    return from_flat(init, update_flat, name, apply_flat, scale_flat=scale_flat)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``v = decay * v + u``, giving ``u + decay * v`` if ``nesterov`` else ``v``.

    The velocity starts at zero, so the first step gives ``v = u`` as in
    ``torch.optim.SGD`` (dampening 0). ``decay`` must be >= 0, and > 0 for ``nesterov``.
    """
    name = "trace"
    non_negative("momentum", decay)
    if nesterov and decay == 0:
        raise ValueError("nesterov=True needs a momentum > 0")

    def init(params: object) -> OptState:
        return pmap({"transform": name, "velocity": zeros_like(params)})

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        state = expect_state(state, name)
        velocity, velocity_def, _ = get_tree(state, "velocity", name, len(leaves))
        new_velocity = [decay * v + u for v, u in zip(velocity, leaves, strict=True)]
        out = [u + decay * v for u, v in zip(leaves, new_velocity, strict=True)] if nesterov else new_velocity
        return out, state.set("velocity", tree_unflatten(velocity_def, new_velocity))

    return from_flat(init, update_flat, name)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam's direction: ``m_hat / (sqrt(v_hat) + eps)`` from bias-corrected moments.

    With ``t`` the update number (1 for the first): ``m = b1*m + (1-b1)*u``,
    ``v = b2*v + (1-b2)*u*u``, ``m_hat = m / (1 - b1**t)``, ``v_hat = v / (1 - b2**t)``.
    """
    name = "scale_by_adam"
    # floats, so that float updates give float moments whatever the numbers the state holds
    beta1, beta2, epsilon = (
        float(unit_interval("b1", b1)),
        float(unit_interval("b2", b2)),
        float(positive("eps", eps)),
    )
    rest1, rest2 = 1 - beta1, 1 - beta2
    sqrt = math.sqrt

    def init(params: object) -> OptState:
        zeros = zeros_like(params)
        return pmap({"transform": name, "count": 0, "mu": zeros, "nu": zeros})

    def moments(
        leaves: list[float], state: OptState, floats: bool
    ) -> tuple[list[float], list[float], int, OptState, bool]:
        """The new moments, the update number, the new state, and whether the moments are
        exactly floats (``floats``: the caller knows the updates are)."""
        state = expect_state(state, name)
        count = get_int(state, "count", name) + 1
        mu, mu_def, mu_floats = get_tree(state, "mu", name, len(leaves))
        nu, nu_def, nu_floats = get_tree(state, "nu", name, len(leaves))
        new_mu = [beta1 * m + rest1 * u for m, u in zip(mu, leaves, strict=True)]
        new_nu = [beta2 * v + rest2 * u * u for v, u in zip(nu, leaves, strict=True)]
        # float operations on floats give floats: one check of the updates (if the caller does
        # not know) for the two trees; moments not known to be floats are checked as built
        floats = mu_floats and nu_floats and (floats or only_floats(leaves))
        new_state = (
            state.set("count", count)
            .set("mu", tree_unflatten(mu_def, new_mu, floats=floats))
            .set("nu", tree_unflatten(nu_def, new_nu, floats=floats))
        )
        return new_mu, new_nu, count, new_state, floats

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        new_mu, new_nu, count, new_state, _ = moments(leaves, state, False)
        c1, c2 = 1 - beta1**count, 1 - beta2**count
        return [(m / c1) / (sqrt(v / c2) + epsilon) for m, v in zip(new_mu, new_nu, strict=True)], new_state

    def apply_scaled_flat(
        param_leaves: list[float],
        leaves: list[float],
        state: OptState,
        params: object,
        factor: float,
        floats: bool,
    ) -> tuple[list[float], OptState, bool]:
        new_mu, new_nu, count, new_state, moments_floats = moments(leaves, state, floats)
        c1, c2 = 1 - beta1**count, 1 - beta2**count  # update_flat's direction, then p + factor * it
        new = [
            p + factor * ((m / c1) / (sqrt(v / c2) + epsilon))
            for p, m, v in zip(param_leaves, new_mu, new_nu, strict=True)
        ]
        return new, new_state, floats and moments_floats and type(factor) is float

    return from_flat(init, update_flat, name, apply_scaled_flat=apply_scaled_flat)


def add_l2_decay(weight_decay: float, mask: Mask | None = None) -> GradientTransformation:
    """``u + weight_decay * p`` on the parameters ``mask`` picks (L2 regularisation).

    ``mask`` defaults to :func:`~optimizers.masks.default_decay_mask` (weights, not
    biases). With ``weight_decay > 0``, a mask that picks no parameter is a ValueError.
    """
    name = "add_l2_decay"
    non_negative("weight_decay", weight_decay)
    pick = checked_mask(mask, name)

    def init(params: object) -> OptState:
        if weight_decay > 0:
            decayed_leaves(pick, params, name)
        return pmap({"transform": name})

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        state = expect_state(state, name)
        if weight_decay == 0:
            return list(leaves), state
        values = _params_leaves(params, len(leaves), name)
        flags = decayed_leaves(pick, params, name)
        out = [u + weight_decay * p if f else u for u, p, f in zip(leaves, values, flags, strict=True)]
        return out, state

    return from_flat(init, update_flat, name)


def add_decoupled_weight_decay(
    weight_decay: float, lr: LearningRate, mask: Mask | None = None
) -> GradientTransformation:
    """``u - lr_t * weight_decay * p`` on the parameters ``mask`` picks (AdamW's decay).

    Applied with the params this shrinks them as ``p *= 1 - lr_t * weight_decay`` apart
    from the other updates; chain it after :func:`scale_by_learning_rate` with the same
    ``lr``. ``mask`` defaults to weights, not biases; with ``weight_decay > 0``, a mask
    that picks no parameter is a ValueError.
    """
    name = "add_decoupled_weight_decay"
    non_negative("weight_decay", weight_decay)
    rate = _rate_at(lr)
    pick = checked_mask(mask, name)

    def init(params: object) -> OptState:
        if weight_decay > 0:
            decayed_leaves(pick, params, name)
        return pmap({"transform": name, "count": 0})

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        state = expect_state(state, name)
        count = get_int(state, "count", name)
        new_state = state.set("count", count + 1)
        if weight_decay == 0:
            return list(leaves), new_state
        shrink = rate(count, name) * weight_decay
        values = _params_leaves(params, len(leaves), name)
        flags = decayed_leaves(pick, params, name)
        out = [u - shrink * p if f else u for u, p, f in zip(leaves, values, flags, strict=True)]
        return out, new_state

    return from_flat(init, update_flat, name)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale the updates down so that their global L2 norm is at most ``max_norm``.

    Updates whose norm is already ``<= max_norm`` pass unchanged; others are multiplied
    by ``max_norm / norm`` (rounded down if needed so the new norm never exceeds
    ``max_norm``), which keeps their direction. Chain it first, ahead of any optimizer:
    ``chain(clip_by_global_norm(1.0), adam(1e-3))``.

    >>> from pyrsistent import pmap
    >>> clip = clip_by_global_norm(5.0)
    >>> clipped, _ = clip.update(pmap({"w": 6.0, "b": 8.0}), clip.init(None), None)
    >>> clipped == pmap({"w": 3.0, "b": 4.0})
    True
    """
    name = "clip_by_global_norm"
    positive("max_norm", max_norm)

    def init(params: object) -> OptState:
        return pmap({"transform": name})

    def update_flat(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
        state = expect_state(state, name)
        norm = math.hypot(*leaves)
        if not norm > max_norm:
            return list(leaves), state
        factor = max_norm / norm
        clipped = [u * factor for u in leaves]
        while math.hypot(*clipped) > max_norm and factor > 0:
            factor = math.nextafter(factor, 0.0)
            clipped = [u * factor for u in leaves]
        return clipped, state

    return from_flat(init, update_flat, name)


STATE_SPECS: Mapping[str, StateSpec] = MappingProxyType(
    {
        "scale_by_learning_rate": StateSpec(counts=("count",)),
        "trace": StateSpec(moments=("velocity",)),
        "scale_by_adam": StateSpec(counts=("count",), moments=("mu", "nu"), non_negative=("nu",)),
        "add_l2_decay": StateSpec(),
        "add_decoupled_weight_decay": StateSpec(counts=("count",)),
        "clip_by_global_norm": StateSpec(),
    }
)
"""What the state of each transformation above holds, by its name: :func:`optimizers.check_state` reads it."""
