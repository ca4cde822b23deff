"""Learning-rate schedules: pure functions from the step count to a value.

A :data:`Schedule` is called with the number of updates made so far, so it gives the
rate of the first update at step ``0`` (as in optax). Join schedules end to end with
:func:`join_schedules`.

>>> warmup_then_cosine = join_schedules(
...     [linear_warmup(0.0, 1.0, warmup_steps=4), cosine_decay(1.0, decay_steps=10)], [4]
... )
>>> [round(warmup_then_cosine(step), 3) for step in (0, 2, 4, 9, 14, 20)]
[0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import TypeAlias

from optimizers._checks import non_negative, non_negative_int, positive, positive_int

Schedule: TypeAlias = Callable[[int], float]
"""A function from the step count (``0`` for the first update) to a value."""


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def constant(value: float) -> Schedule:
    """The same ``value`` at every step.

    >>> constant(0.1)(1000)
    0.1
    """
    _finite("value", value)

    def schedule(step: int) -> float:
        return value

    return schedule


def step_decay(init_value: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``init_value * gamma ** (step // step_size)``: multiply by ``gamma`` every ``step_size`` steps.

    This is PyTorch's ``StepLR``.

    >>> schedule = step_decay(1.0, step_size=10, gamma=0.5)
    >>> [schedule(step) for step in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    """
    _finite("init_value", init_value)
    positive_int("step_size", step_size)
    non_negative("gamma", gamma)

    def schedule(step: int) -> float:
        return init_value * gamma ** (step // step_size)

    return schedule


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
    *,
    allow_growth: bool = False,
) -> Schedule:
    """``init_value * decay_rate ** ((step - transition_begin) / transition_steps)``.

    optax's ``exponential_decay``, same arguments in the same order: the value is
    ``init_value`` up to step ``transition_begin``, then is multiplied by ``decay_rate``
    every ``transition_steps`` steps, smoothly, or all at once at the end of each
    transition when ``staircase`` is true. ``end_value`` bounds the value: from below when
    ``decay_rate < 1``, from above otherwise.

    Unlike optax, a ``decay_rate`` above 1 (a growing "decay") is refused unless
    ``allow_growth=True``, and a ``decay_rate`` of 0, a ``transition_steps`` below 1 or a
    negative ``transition_begin`` is an error rather than a silent fallback.

    >>> schedule = exponential_decay(2.0, transition_steps=2, decay_rate=0.5)
    >>> [schedule(step) for step in (0, 1, 2, 4)]
    [2.0, 1.4142135623730951, 1.0, 0.5]
    >>> stairs = exponential_decay(1.0, 2, 0.5, transition_begin=1, staircase=True, end_value=0.3)
    >>> [stairs(step) for step in (0, 1, 2, 3, 5, 7)]
    [1.0, 1.0, 1.0, 0.5, 0.3, 0.3]
    """
    _finite("init_value", init_value)
    positive_int("transition_steps", transition_steps)
    positive("decay_rate", decay_rate)
    if decay_rate > 1 and not allow_growth:
        raise ValueError(
            f"decay_rate must be <= 1 for a decay, got {decay_rate!r} "
            f"(the value would grow {decay_rate!r}x every {transition_steps} steps; "
            "pass allow_growth=True if that is meant)"
        )
    non_negative_int("transition_begin", transition_begin)
    if end_value is not None:
        _finite("end_value", end_value)
    bound = max if decay_rate < 1 else min

    def schedule(step: int) -> float:
        elapsed = step - transition_begin
        exponent = elapsed // transition_steps if staircase else elapsed / transition_steps
        value = init_value if elapsed <= 0 else init_value * float(decay_rate**exponent)
        return value if end_value is None else bound(value, end_value)

    return schedule


def cosine_decay(init_value: float, decay_steps: int, final_value: float = 0.0) -> Schedule:
    """Half a cosine from ``init_value`` at step 0 to ``final_value`` at ``decay_steps``, then flat.

    ``final_value + (init_value - final_value) * (1 + cos(pi * step / decay_steps)) / 2``,
    PyTorch's ``CosineAnnealingLR`` over one half period.

    >>> schedule = cosine_decay(1.0, decay_steps=10)
    >>> [schedule(step) for step in (0, 5, 10, 11)]
    [1.0, 0.5, 0.0, 0.0]
    """
    _finite("init_value", init_value)
    positive_int("decay_steps", decay_steps)
    _finite("final_value", final_value)

    def schedule(step: int) -> float:
        if step >= decay_steps:
            return final_value
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / decay_steps))
        return final_value + (init_value - final_value) * cosine

    return schedule


def linear_warmup(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """A straight line from ``init_value`` at step 0 to ``peak_value`` at ``warmup_steps``, then flat.

    >>> schedule = linear_warmup(0.0, 1.0, warmup_steps=4)
    >>> [schedule(step) for step in (0, 1, 4, 100)]
    [0.0, 0.25, 1.0, 1.0]
    """
    _finite("init_value", init_value)
    _finite("peak_value", peak_value)
    non_negative_int("warmup_steps", warmup_steps)

    def schedule(step: int) -> float:
        if step >= warmup_steps:
            return peak_value
        return init_value + (peak_value - init_value) * step / warmup_steps

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[i]`` from ``boundaries[i - 1]`` on, each restarted at its own step 0.

    ``boundaries`` are increasing steps > 0, one fewer than ``schedules``; at step
    ``boundaries[i]`` the schedule ``schedules[i + 1]`` takes over, called with
    ``step - boundaries[i]``.

    >>> schedule = join_schedules([constant(1.0), constant(0.1)], [5])
    >>> [schedule(step) for step in (0, 4, 5, 6)]
    [1.0, 1.0, 0.1, 0.1]
    """
    parts = tuple(schedules)
    starts = tuple(boundaries)
    if not parts:
        raise ValueError("join_schedules needs at least one schedule")
    if len(starts) != len(parts) - 1:
        raise ValueError(
            f"join_schedules needs one boundary fewer than schedules: "
            f"got {len(parts)} schedules and {len(starts)} boundaries"
        )
    for index, boundary in enumerate(starts):
        positive_int(f"boundaries[{index}]", boundary)
        if index and boundary <= starts[index - 1]:
            raise ValueError(f"boundaries must increase, got {list(starts)}")

    def schedule(step: int) -> float:
        index = bisect.bisect_right(starts, step)
        offset = starts[index - 1] if index else 0
        return parts[index](step - offset)

    return schedule
