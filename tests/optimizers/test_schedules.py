"""Learning-rate schedules: values at their boundaries, joins, and argument checks."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optimizers.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    join_schedules,
    linear_warmup,
    step_decay,
)

steps = st.integers(min_value=0, max_value=10_000)


@given(st.floats(-5.0, 5.0), steps)
def test_constant_is_constant(value: float, step: int) -> None:
    assert constant(value)(step) == value


def test_step_decay_drops_at_multiples_of_step_size() -> None:
    schedule = step_decay(0.8, step_size=3, gamma=0.5)
    assert [schedule(t) for t in range(8)] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]


def test_exponential_decay_is_smooth_and_hits_powers_at_transitions() -> None:
    schedule = exponential_decay(1.0, transition_steps=4, decay_rate=0.5)
    assert schedule(0) == 1.0
    assert schedule(4) == 0.5
    assert schedule(8) == 0.25
    assert math.isclose(schedule(2), math.sqrt(0.5))
    assert schedule(1) > schedule(2) > schedule(3)


def test_exponential_decay_takes_optax_positional_order() -> None:
    # optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin, staircase,
    # end_value): the second positional argument is a step count, never a rate.
    schedule = exponential_decay(1.0, 10, 0.5, 5, True, 0.3)
    assert [schedule(t) for t in (0, 5, 14, 15, 24, 25, 1000)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3]


@given(
    st.floats(0.1, 10.0),
    st.integers(1, 50),
    st.floats(0.05, 0.999),
    st.integers(0, 50),
    st.booleans(),
    st.integers(0, 500),
)
def test_exponential_decay_matches_its_formula(
    init: float, transition_steps: int, rate: float, begin: int, staircase: bool, step: int
) -> None:
    schedule = exponential_decay(init, transition_steps, rate, begin, staircase)
    elapsed = max(0, step - begin)
    exponent = elapsed // transition_steps if staircase else elapsed / transition_steps
    assert math.isclose(schedule(step), init * rate**exponent)
    assert schedule(step) <= init
    if step <= begin:
        assert schedule(step) == init


@given(st.floats(0.05, 0.95), st.floats(0.01, 0.9), steps)
def test_exponential_decay_end_value_is_a_floor_for_decay(rate: float, end: float, step: int) -> None:
    schedule = exponential_decay(1.0, 3, rate, end_value=end)
    assert schedule(step) == max(exponential_decay(1.0, 3, rate)(step), end)
    assert schedule(10_000) == end


def test_exponential_growth_only_when_asked() -> None:
    with pytest.raises(ValueError, match=r"decay_rate must be <= 1.*allow_growth=True"):
        exponential_decay(1.0, 1, 10.0)
    schedule = exponential_decay(1.0, 1, 2.0, allow_growth=True, end_value=5.0)
    assert [schedule(t) for t in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert exponential_decay(0.5, 3, 1.0)(100) == 0.5


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(1, 500))
def test_cosine_decay_boundaries_and_monotonicity(init: float, final: float, decay_steps: int) -> None:
    schedule = cosine_decay(init, decay_steps, final_value=final)
    assert math.isclose(schedule(0), init, abs_tol=1e-15)
    assert schedule(decay_steps) == final
    assert schedule(decay_steps + 7) == final
    values = [schedule(t) for t in range(decay_steps + 1)]
    pairs = list(itertools.pairwise(values))
    if init >= final:
        assert all(a >= b - 1e-15 for a, b in pairs)
    else:
        assert all(a <= b + 1e-15 for a, b in pairs)


def test_cosine_decay_is_half_way_at_the_middle() -> None:
    assert cosine_decay(1.0, 10)(5) == 0.5
    assert cosine_decay(1.0, 10)(0) == 1.0
    assert math.isclose(cosine_decay(0.3, 10, final_value=0.1)(5), 0.2)


def test_linear_warmup_rises_then_stays() -> None:
    schedule = linear_warmup(0.1, 0.5, warmup_steps=4)
    assert schedule(0) == 0.1
    assert math.isclose(schedule(2), 0.3)
    assert schedule(4) == 0.5
    assert schedule(1000) == 0.5
    assert linear_warmup(0.0, 1.0, warmup_steps=0)(0) == 1.0


def test_join_restarts_each_schedule_at_its_boundary() -> None:
    schedule = join_schedules(
        [constant(1.0), linear_warmup(0.0, 2.0, 2), step_decay(4.0, 1, gamma=0.5)], [3, 6]
    )
    assert [schedule(t) for t in range(9)] == [1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 4.0, 2.0, 1.0]


def test_warmup_then_cosine() -> None:
    schedule = join_schedules(
        [linear_warmup(0.0, 1e-3, warmup_steps=10), cosine_decay(1e-3, decay_steps=90)], [10]
    )
    assert schedule(0) == 0.0
    assert math.isclose(schedule(5), 5e-4)
    assert schedule(10) == 1e-3
    assert math.isclose(schedule(55), 5e-4)
    assert schedule(100) == 0.0
    assert schedule(500) == 0.0
    peak = max(range(200), key=schedule)
    assert peak == 10


def test_a_single_schedule_joins_to_itself() -> None:
    inner = step_decay(1.0, 2)
    joined = join_schedules([inner], [])
    assert [joined(t) for t in range(5)] == [inner(t) for t in range(5)]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: step_decay(1.0, 0), "step_size must be an int > 0"),
        (lambda: step_decay(1.0, 2, gamma=-0.1), "gamma must be >= 0"),
        (lambda: exponential_decay(1.0, 1, 0.0), "decay_rate must be > 0"),
        (lambda: exponential_decay(1.0, 1, -0.5), "decay_rate must be > 0"),
        (lambda: exponential_decay(1.0, 0, 0.5), "transition_steps must be an int > 0"),
        (lambda: exponential_decay(1.0, -3, 0.5), "transition_steps must be an int > 0"),
        (lambda: exponential_decay(1.0, 1, 0.5, transition_begin=-1), "transition_begin must be an int >= 0"),
        (lambda: exponential_decay(1.0, 1, 0.5, end_value=math.inf), "end_value must be a finite number"),
        (lambda: cosine_decay(1.0, 0), "decay_steps must be an int > 0"),
        (lambda: linear_warmup(0.0, 1.0, -1), "warmup_steps must be an int >= 0"),
        (lambda: constant(math.nan), "value must be a finite number"),
        (lambda: join_schedules([], []), "at least one schedule"),
        (lambda: join_schedules([constant(1.0), constant(2.0)], []), "one boundary fewer"),
        (lambda: join_schedules([constant(1.0)] * 3, [5, 5]), "boundaries must increase"),
        (lambda: join_schedules([constant(1.0)] * 2, [0]), r"boundaries\[0\] must be an int > 0"),
    ],
)
def test_bad_schedule_arguments_are_named(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
