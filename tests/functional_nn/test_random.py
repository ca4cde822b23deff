"""Tests for functional_nn.random: determinism, independence, distributions, validation."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_nn import random as fr
from functional_nn.random import (
    Key,
    bernoulli,
    bits,
    fold_in,
    key,
    normal,
    permutation,
    randint,
    split,
    uniform,
)

seeds = st.integers(min_value=-(2**70), max_value=2**70)


def _mean(xs: list[float] | tuple[float, ...]) -> float:
    return math.fsum(xs) / len(xs)


def _correlation(xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    mx, my = _mean(xs), _mean(ys)
    cov = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = math.fsum((x - mx) ** 2 for x in xs)
    vy = math.fsum((y - my) ** 2 for y in ys)
    return cov / math.sqrt(vx * vy)


def _chi_square(counts: Counter[int] | Counter[tuple[int, ...]], cells: int, total: int) -> float:
    expected = total / cells
    assert len(counts) == cells
    return sum((c - expected) ** 2 / expected for c in counts.values())


# -- golden values: these change only if the algorithm changes ------------------------


def test_golden_key_and_derivations() -> None:
    k = key(0)
    assert k.data == 0x9326A3467E592F7E9D38D883EDA72747
    assert [c.data for c in split(k)] == [
        0xC1FF0A56CC0C92AE3738B5DA41D2C112,
        0x83FC4C83344E12CC7E52A6BD49640C2E,
    ]
    assert fold_in(k, 7).data == 0xEEAD9293DA8403ADC06AD905B933CFCB
    assert key(-1).data == 0x63D3A13F4458BC7532980AD4090D44E8


def test_golden_samples() -> None:
    k = key(0)
    assert bits(k, 3) == (15801281248879284873, 5951372650926615048, 16270974842843519737)
    assert uniform(k, 3) == (0.8565891729044692, 0.32262455787027255, 0.8820513136533966)
    assert normal(k, 3) == (0.8540730861712975, -0.42483508413004883, 0.8058561037224062)
    assert permutation(k, 10) == (4, 7, 5, 6, 8, 2, 0, 1, 9, 3)
    assert randint(k, 5, -3, 3) == (0, -3, -2, 0, -1)
    assert bernoulli(k, 8, 0.5) == (False, True, False, True, True, False, False, True)


# -- keys ------------------------------------------------------------------------------


@given(seeds)
def test_same_seed_same_key_and_numbers(seed: int) -> None:
    assert key(seed) == key(seed)
    assert hash(key(seed)) == hash(key(seed))
    assert uniform(key(seed), 5) == uniform(key(seed), 5)
    assert normal(key(seed), 5) == normal(key(seed), 5)


@given(seeds, seeds)
def test_different_seeds_different_keys(a: int, b: int) -> None:
    if a != b:
        assert key(a) != key(b)
        assert bits(key(a), 2) != bits(key(b), 2)


@given(seeds, st.integers(min_value=0, max_value=8))
def test_split_children_are_distinct_and_differ_from_parent(seed: int, num: int) -> None:
    k = key(seed)
    children = split(k, num)
    assert len(children) == num
    assert len(set(children)) == num
    assert k not in children
    parent_stream = bits(k, 4)
    for child in children:
        assert bits(child, 4) != parent_stream


@given(seeds)
def test_split_is_deterministic_and_prefix_stable(seed: int) -> None:
    k = key(seed)
    assert split(k, 3) == split(k, 3)
    assert split(k, 5)[:2] == split(k, 2)


@given(seeds, st.integers(), st.integers())
def test_fold_in(seed: int, a: int, b: int) -> None:
    k = key(seed)
    assert fold_in(k, a) == fold_in(k, a)
    assert (fold_in(k, a) == fold_in(k, b)) == (a == b)
    assert fold_in(k, a) != k
    assert fold_in(k, 0) not in split(k, 2)


def test_key_is_frozen_and_hashable() -> None:
    k = key(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.data = 4  # type: ignore[misc]
    assert len({key(3), key(3), key(4)}) == 2


def test_split_streams_are_uncorrelated() -> None:
    parent = key(2024)
    a, b = split(parent)
    n = 20_000
    ua, ub, up = uniform(a, n), uniform(b, n), uniform(parent, n)
    # Under independence each correlation has standard deviation 1/sqrt(n) ~ 0.007.
    assert abs(_correlation(ua, ub)) < 0.035
    assert abs(_correlation(ua, up)) < 0.035
    assert abs(_correlation(ub, up)) < 0.035
    # Neighbouring draws within one stream are uncorrelated too.
    assert abs(_correlation(ua[:-1], ua[1:])) < 0.035


def test_fold_in_streams_are_uncorrelated() -> None:
    k = key(5)
    n = 20_000
    assert abs(_correlation(uniform(fold_in(k, 0), n), uniform(fold_in(k, 1), n))) < 0.035


# -- uniform -------------------------------------------------------------------------


@given(
    seeds,
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=1e-9, max_value=1e6),
    st.integers(min_value=0, max_value=50),
)
def test_uniform_within_bounds(seed: int, low: float, width: float, n: int) -> None:
    high = low + width
    if not low < high:
        return
    xs = uniform(key(seed), n, low, high)
    assert len(xs) == n
    assert all(low <= x < high for x in xs)


def test_uniform_never_reaches_high_even_for_a_one_ulp_interval() -> None:
    high = math.nextafter(1.0, 2.0)
    assert set(uniform(key(0), 1000, 1.0, high)) == {1.0}


def test_uniform_moments() -> None:
    xs = uniform(key(1), 20_000)
    assert abs(_mean(xs) - 0.5) < 0.01
    assert abs(_mean([(x - 0.5) ** 2 for x in xs]) - 1 / 12) < 0.005
    deciles = Counter(int(10 * x) for x in xs)
    assert _chi_square(deciles, 10, len(xs)) < 40.0  # 9 dof; p ~ 1e-5


def test_uniform_uses_53_bits() -> None:
    xs = uniform(key(2), 1000)
    assert all((x * 2.0**53).is_integer() for x in xs)
    assert any(not (x * 2.0**52).is_integer() for x in xs)


@given(seeds, st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_streams_are_prefix_consistent(seed: int, m: int, n: int) -> None:
    k = key(seed)
    short, long = min(m, n), max(m, n)
    assert uniform(k, long)[:short] == uniform(k, short)
    assert normal(k, long)[:short] == normal(k, short)
    assert bits(k, long)[:short] == bits(k, short)


# -- normal --------------------------------------------------------------------------


def test_normal_moments_and_tails() -> None:
    zs = normal(key(7), 20_000)
    mean = _mean(zs)
    std = math.sqrt(_mean([(z - mean) ** 2 for z in zs]))
    assert abs(mean) < 0.03
    assert abs(std - 1.0) < 0.03
    outside = sum(1 for z in zs if abs(z) > 1.959964) / len(zs)
    assert abs(outside - 0.05) < 0.008
    skew = _mean([z**3 for z in zs])
    assert abs(skew) < 0.1


@given(
    seeds,
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(min_value=0.0, max_value=1e3),
    st.integers(min_value=0, max_value=30),
)
def test_normal_is_affine_in_mean_and_std(seed: int, mean: float, std: float, n: int) -> None:
    standard = normal(key(seed), n)
    scaled = normal(key(seed), n, mean, std)
    assert len(scaled) == n
    assert scaled == tuple(mean + std * z for z in standard)
    assert all(math.isfinite(z) for z in scaled)


def test_normal_with_zero_std_is_constant() -> None:
    assert normal(key(0), 5, mean=2.5, std=0.0) == (2.5,) * 5


@given(st.floats(min_value=5e-324, max_value=1.0, exclude_min=False))
def test_private_log_matches_math_log(x: float) -> None:
    expected = math.log(x)
    assert abs(fr._log(x) - expected) <= 4 * math.ulp(expected) + 1e-300


# -- integers, permutations, bernoulli --------------------------------------------------


@given(seeds, st.integers(min_value=0, max_value=200))
def test_permutation_is_a_permutation(seed: int, n: int) -> None:
    perm = permutation(key(seed), n)
    assert sorted(perm) == list(range(n))


def test_permutation_is_unbiased() -> None:
    base = key(11)
    trials = 6000
    counts: Counter[tuple[int, ...]] = Counter(permutation(fold_in(base, i), 3) for i in range(trials))
    assert _chi_square(counts, 6, trials) < 25.0  # 5 dof; p ~ 1e-4
    firsts: Counter[int] = Counter(permutation(fold_in(base, -i - 1), 7)[0] for i in range(trials))
    assert _chi_square(firsts, 7, trials) < 30.0  # 6 dof


def test_permutations_differ_between_keys() -> None:
    assert permutation(key(0), 20) != permutation(key(1), 20)


@given(
    seeds,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(min_value=1, max_value=2**130),
    st.integers(min_value=0, max_value=30),
)
def test_randint_within_bounds(seed: int, low: int, width: int, n: int) -> None:
    xs = randint(key(seed), n, low, low + width)
    assert len(xs) == n
    assert all(low <= x < low + width for x in xs)


def test_randint_is_uniform() -> None:
    rolls = randint(key(4), 6000, 1, 7)
    counts: Counter[int] = Counter(rolls)
    assert set(counts) == {1, 2, 3, 4, 5, 6}
    assert _chi_square(counts, 6, len(rolls)) < 25.0


def test_randint_single_value_range() -> None:
    assert randint(key(0), 4, 9, 10) == (9, 9, 9, 9)


def test_bernoulli_frequency_and_extremes() -> None:
    draws = bernoulli(key(9), 20_000, 0.3)
    assert abs(sum(draws) / len(draws) - 0.3) < 0.015
    assert not any(bernoulli(key(9), 1000, 0.0))
    assert all(bernoulli(key(9), 1000, 1.0))
    assert bernoulli(key(9), 0, 0.5) == ()


@given(seeds, st.integers(0, 50), st.floats(0.0, 1.0))
def test_bernoulli_takes_uniforms_argument_order_and_stream(seed: int, n: int, p: float) -> None:
    # (key, n, parameters...), like uniform and normal: True exactly where uniform(key, n) < p.
    k = key(seed)
    assert bernoulli(k, n, p) == tuple(u < p for u in uniform(k, n))
    assert bernoulli(k, n) == bernoulli(k, n, 0.5)


def test_large_draws() -> None:
    k = key(0)
    draws = uniform(k, 100_000)
    assert len(draws) == 100_000 and all(0.0 <= u < 1.0 for u in draws)
    assert len(set(draws)) > 99_000  # no short cycle in the stream
    assert len(normal(k, 100_000)) == 100_000
    assert sorted(permutation(k, 100_000)) == list(range(100_000))


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: key(1.5), TypeError, "seed must be an int"),  # type: ignore[arg-type]
        (lambda: key(True), TypeError, "seed must be an int"),
        (lambda: uniform(key(0), -1), ValueError, "n must be >= 0"),
        (lambda: uniform(key(0), 2.0), TypeError, "n must be an int"),  # type: ignore[arg-type]
        (lambda: uniform(key(0), 3, 1.0, 1.0), ValueError, "low < high"),
        (lambda: uniform(key(0), 3, 2.0, 1.0), ValueError, "low < high"),
        (lambda: uniform(key(0), 3, 0.0, math.inf), ValueError, "high must be finite"),
        (lambda: uniform(key(0), 3, -1e308, 1e308), ValueError, "overflows"),
        (lambda: normal(key(0), 3, std=-1.0), ValueError, "std must be >= 0"),
        (lambda: normal(key(0), 3, mean=math.nan), ValueError, "mean must be finite"),
        (lambda: bernoulli(key(0), 3, 1.5), ValueError, r"p must be in \[0, 1\]"),
        (lambda: bernoulli(key(0), 3, -0.1), ValueError, r"p must be in \[0, 1\]"),
        (lambda: bernoulli(key(0), 3, math.nan), ValueError, "p must be finite"),
        (lambda: bernoulli(key(0), 0.5, 3), TypeError, "n must be an int"),  # type: ignore[arg-type]
        (lambda: permutation(key(0), -2), ValueError, "n must be >= 0"),
        (lambda: randint(key(0), 3, 5, 5), ValueError, "low < high"),
        (lambda: randint(key(0), 3, 0.0, 5), TypeError, "low must be an int"),  # type: ignore[arg-type]
        (lambda: split(key(0), -1), ValueError, "num must be >= 0"),
        (lambda: fold_in(key(0), 1.0), TypeError, "data must be an int"),  # type: ignore[arg-type]
        (lambda: uniform(0, 3), TypeError, "expected a functional_nn.random.Key"),  # type: ignore[arg-type]
        (lambda: split(1234), TypeError, "key\\(seed\\)"),  # type: ignore[arg-type]
        (lambda: Key(-1), ValueError, "Key data must be in"),
        (lambda: Key(2**128), ValueError, "Key data must be in"),
    ],
)
def test_invalid_arguments(call: Callable[[], object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
