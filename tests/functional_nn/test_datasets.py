"""Tests for functional_nn.datasets: shipped data, generators, standardisation, registry."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from importlib import resources

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyrsistent import pvector

from functional_nn import datasets as D
from functional_nn.dataloader import Dataset, train_test_split
from functional_nn.random import Key, key, split

GENERATORS: dict[str, Callable[[Key], Dataset]] = {
    "moons": lambda k: D.moons(60, key=k),
    "circles": lambda k: D.circles(60, key=k),
    "spirals": lambda k: D.spirals(60, key=k),
    "blobs": lambda k: D.blobs(60, key=k),
    "sine": lambda k: D.sine(60, key=k),
}


def _column(ds: Dataset, j: int) -> list[float]:
    return [row[j] for row in ds.inputs]


# -- shipped data ----------------------------------------------------------------------


def test_iris_shape_classes_and_values() -> None:
    ds = D.iris()
    assert (len(ds), ds.num_features, ds.num_classes, ds.name) == (150, 4, 3, "iris")
    assert Counter(ds.labels()) == {0: 50, 1: 50, 2: 50}
    assert list(ds[0][0]) == [5.1, 3.5, 1.4, 0.2]
    assert ds[0][1] == 0
    assert list(ds[-1][0]) == [5.9, 3.0, 5.1, 1.8]
    assert ds[-1][1] == 2
    lows = [min(_column(ds, j)) for j in range(4)]
    highs = [max(_column(ds, j)) for j in range(4)]
    assert lows == [4.3, 2.0, 1.0, 0.1]
    assert highs == [7.9, 4.4, 6.9, 2.5]
    assert len(D.IRIS_FEATURE_NAMES) == 4
    assert D.IRIS_CLASS_NAMES == ("setosa", "versicolor", "virginica")


def test_digits_shape_classes_and_values() -> None:
    ds = D.digits()
    assert (len(ds), ds.num_features, ds.num_classes, ds.name) == (1797, 64, 10, "digits")
    counts = Counter(ds.labels())
    expected = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)
    assert tuple(counts[d] for d in range(10)) == expected == D.DIGITS_CLASS_COUNTS
    pixels = {x for row in ds.inputs for x in row}
    assert pixels == {float(v) for v in range(17)}
    assert all(x == 0.0 for x in _column(ds, 0))  # a corner pixel is always blank
    first_row, first_label = ds[0]
    assert first_label == 0
    assert list(first_row[:8]) == [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]


def test_shipped_data_is_cached_and_documented() -> None:
    assert D.iris() is D.iris()
    assert D.digits() is D.digits()
    readme = resources.files("functional_nn").joinpath("data").joinpath("README.md").read_text()
    assert "CC BY 4.0" in readme
    assert "Alpaydin" in readme


# -- generated data ----------------------------------------------------------------------


def test_linspace_spaces_evenly_with_or_without_the_endpoint() -> None:
    assert D.linspace(0.0, 1.0, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert D.linspace(0.0, 1.0, 4, endpoint=False) == [0.0, 0.25, 0.5, 0.75]
    assert D.linspace(-1.0, 1.0, 1) == [-1.0]
    assert D.linspace(2.0, 3.0, 0) == []
    assert D.linspace(3.0, 1.0, 3) == [3.0, 2.0, 1.0]


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.integers(2, 200))
def test_linspace_runs_from_start_to_stop_in_equal_steps(start: float, stop: float, num: int) -> None:
    xs = D.linspace(start, stop, num)
    assert len(xs) == num
    assert xs[0] == start
    assert math.isclose(xs[-1], stop, rel_tol=1e-15, abs_tol=1e-9)
    step = (stop - start) / (num - 1)
    assert all(math.isclose(b - a, step, rel_tol=1e-6, abs_tol=1e-6) for a, b in itertools.pairwise(xs))


@pytest.mark.parametrize(
    ("num", "error", "match"),
    [(-1, ValueError, "num must be >= 0, got -1"), (2.0, TypeError, "num must be an int, got float")],
)
def test_linspace_rejects_a_bad_count(num: int, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        D.linspace(0.0, 1.0, num)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_sets_are_reproducible_from_the_key(name: str) -> None:
    make = GENERATORS[name]
    k1, k2 = split(key(0))
    assert make(k1) == make(k1)
    assert make(k1) != make(k2)
    ds = make(k1)
    assert len(ds) == 60
    assert ds.name == name
    assert all(math.isfinite(x) for row in ds.inputs for x in row)


@pytest.mark.parametrize("name", ["moons", "circles", "spirals", "blobs"])
def test_generated_classification_sets_are_balanced_and_shuffled(name: str) -> None:
    ds = GENERATORS[name](key(1))
    assert ds.num_classes is not None
    counts = Counter(ds.labels())
    assert set(counts) == set(range(ds.num_classes))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert list(ds.labels()) != sorted(ds.labels())


def test_golden_generated_values() -> None:
    # Approximate where sin and cos (from the platform's maths library) are involved.
    row, label = D.moons(10, key=key(0))[0]
    assert list(row) == pytest.approx([-0.06678635707573015, 0.5502539862319253], abs=1e-12)
    assert label == 1
    (x,), y = D.sine(3, noise=0.0, key=key(0))[0]
    assert x == -1.1566418315617355  # uniform draws are exact everywhere
    assert y == pytest.approx(-0.9154568923637122, abs=1e-12)


def test_noiseless_moons_lie_on_their_arcs() -> None:
    ds = D.moons(50, noise=0.0, key=key(2))
    for (x, y), label in ds:
        if label == 0:
            assert math.hypot(x, y) == pytest.approx(1.0) and y >= -1e-12
        else:
            assert math.hypot(x - 1.0, y - 0.5) == pytest.approx(1.0) and y <= 0.5 + 1e-12


@given(st.floats(min_value=0.05, max_value=0.95), st.integers(min_value=2, max_value=40))
def test_noiseless_circles_have_two_radii(factor: float, n: int) -> None:
    ds = D.circles(n, noise=0.0, factor=factor, key=key(3))
    for (x, y), label in ds:
        assert math.hypot(x, y) == pytest.approx(1.0 if label == 0 else factor)


def test_spirals_stay_in_the_unit_disc_and_use_every_class() -> None:
    ds = D.spirals(100, classes=4, noise=0.3, key=key(4))
    assert ds.num_classes == 4
    assert Counter(ds.labels()) == {0: 25, 1: 25, 2: 25, 3: 25}
    assert all(math.hypot(x, y) <= 1.0 + 1e-12 for x, y in ds.inputs)


def test_blobs_cluster_around_their_centres() -> None:
    ds = D.blobs(200, centers=4, std=0.01, features=3, key=key(5))
    assert (ds.num_features, ds.num_classes) == (3, 4)
    for c in range(4):
        points = [row for row, label in ds if label == c]
        centre = [math.fsum(p[j] for p in points) / len(points) for j in range(3)]
        assert all(-10.0 <= v < 10.0 for v in centre)
        assert all(math.dist(p, centre) < 0.1 for p in points)


def test_sine_is_regression_on_the_sine_curve() -> None:
    clean = D.sine(100, noise=0.0, key=key(6))
    assert clean.num_classes is None
    assert clean.num_features == 1
    for (x,), y in clean:
        assert -math.pi <= x < math.pi
        assert y == math.sin(x)
    noisy = D.sine(2000, noise=0.1, key=key(6))
    residuals = [y - math.sin(x) for (x,), y in noisy]
    spread = math.sqrt(math.fsum(r * r for r in residuals) / len(residuals))
    assert spread == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: D.moons(1, key=key(0)), ValueError, "n must be >= 2"),
        (lambda: D.moons(10, noise=-0.1, key=key(0)), ValueError, "noise must be finite and >= 0"),
        (lambda: D.circles(10, factor=1.0, key=key(0)), ValueError, "strictly between 0 and 1"),
        (lambda: D.circles(10, factor=0.0, key=key(0)), ValueError, "strictly between 0 and 1"),
        (lambda: D.spirals(10, classes=1, key=key(0)), ValueError, "classes must be >= 2"),
        (lambda: D.spirals(2, classes=3, key=key(0)), ValueError, "too small for 3 classes"),
        (lambda: D.blobs(10, std=math.inf, key=key(0)), ValueError, "std must be finite"),
        (lambda: D.blobs(10, features=0, key=key(0)), ValueError, "features must be >= 1"),
        (lambda: D.sine(10.0, key=key(0)), TypeError, "n must be an int"),  # type: ignore[arg-type]
    ],
)
def test_generator_validation(call: Callable[[], object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# -- standardisation -----------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def test_standardize_fits_on_train_only() -> None:
    train, test = train_test_split(D.iris(), 0.2, key=key(7))
    train_s, test_s, scaler = D.standardize(train, test)
    assert scaler == D.Standardizer.fit(train)
    for j in range(4):
        mean, std = _mean_std(_column(train_s, j))
        assert mean == pytest.approx(0.0, abs=1e-12)
        assert std == pytest.approx(1.0)
    assert test_s.inputs == pvector(scaler.apply(row) for row in test.inputs)
    assert scaler != D.Standardizer.fit(test)
    assert (test_s.targets, test_s.num_classes, test_s.name) == (test.targets, 3, "iris")


def test_standardize_constant_features_without_dividing_by_zero() -> None:
    ds = D.digits()
    (scaled, scaler) = D.standardize(ds)
    assert scaler.scale[0] == 0.0
    assert all(x == 0.0 for x in _column(scaled, 0))
    assert all(math.isfinite(x) for row in scaled.inputs for x in row)
    constant = Dataset.from_rows([[0.1, 1.0], [0.1, 2.0], [0.1, 3.0]], [0.0, 1.0, 2.0])
    (scaled_constant, fitted) = D.standardize(constant)
    assert _column(scaled_constant, 0) == [0.0, 0.0, 0.0]
    assert fitted.apply([7.0, 2.0])[0] == 0.0  # no spread in training: new values map to 0 too


@pytest.mark.parametrize(
    "column",
    [
        [0.0, 5e-324],  # the mean rounds to 0 and the spread is one subnormal
        [1.0, 1.0 + 2.2e-16],  # one ulp apart
        [1e6, 1e6 + 1e-4, 1e6],  # about 1e-10 relative
        [-3.0, -3.0, -3.0],
    ],
)
def test_spread_within_float_resolution_is_zero_spread(column: list[float]) -> None:
    scaler = D.Standardizer.fit(Dataset.from_rows([[x] for x in column], [0.0] * len(column)))
    assert scaler.scale[0] == 0.0
    assert all(scaler.apply([x])[0] == 0.0 for x in column)


def test_spread_just_above_the_rule_is_standardized() -> None:
    spread = 2 * D.ZERO_SPREAD_ULPS * math.ulp(1.0)
    scaler = D.Standardizer.fit(Dataset.from_rows([[1.0], [1.0 + spread]], [0.0, 0.0]))
    assert scaler.scale[0] > 0.0
    assert [scaler.apply([x])[0] for x in (1.0, 1.0 + spread)] == pytest.approx([-1.0, 1.0], abs=1e-6)


@given(
    st.lists(
        st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=3, max_size=3),
        min_size=1,
        max_size=30,
    )
)
@example([[0.0, 0.0, 0.0], [0.0, 0.0, 5e-324]])
@example([[1.0, 0.0, 0.0], [1.0 + 2.2e-16, 0.0, 0.0]])
@example([[1e6, -1e6, 0.5]] * 29 + [[1e6 - 2**-28, -1e6 + 2**-20, 0.5 + 2**-50]])
def test_standardized_columns_have_zero_mean_and_unit_or_zero_spread(
    rows: list[list[float]],
) -> None:
    ds = Dataset.from_rows(rows, [0.0] * len(rows))
    (scaled, scaler) = D.standardize(ds)
    assert scaler.num_features == 3
    for j in range(3):
        column = _column(scaled, j)
        assert all(math.isfinite(x) for x in column)
        mean, std = _mean_std(column)
        assert abs(mean) < 1e-6
        assert std == pytest.approx(1.0, abs=1e-6) or std == 0.0


def test_standardizer_validation() -> None:
    scaler = D.Standardizer(pvector([0.0, 1.0]), pvector([1.0, 2.0]))
    assert scaler.apply([1.0, 5.0]) == pvector([1.0, 2.0])
    with pytest.raises(ValueError, match="row has 3 features, standardizer expects 2"):
        scaler.apply([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="has 4 features, standardizer expects 2"):
        scaler.transform(D.iris())
    with pytest.raises(ValueError, match="scale >= 0"):
        D.Standardizer(pvector([0.0]), pvector([-1.0]))
    assert D.Standardizer(pvector([3.0]), pvector([0.0])).apply([5.0]) == pvector([0.0])
    with pytest.raises(ValueError, match="1 means but 2 scales"):
        D.Standardizer(pvector([0.0]), pvector([1.0, 1.0]))


def test_a_column_whose_sum_overflows_standardizes_to_finite_values() -> None:
    column = [1.7e308] * 9 + [1.6e308, 1e308]  # the sum is beyond the float range, the mean is not
    (scaled, scaler) = D.standardize(Dataset.from_rows([[x] for x in column], [0.0] * len(column)))
    assert scaler.mean[0] == pytest.approx(math.fsum(x / len(column) for x in column)) and scaler.scale[0] > 0
    assert all(math.isfinite(x) for x in _column(scaled, 0))


@pytest.mark.parametrize(
    "column",
    [
        [1.7e308, -1.7e308, 1e308] * 4,  # the sum overflows, then the deviations from the mean
        [1.7e308] * 9 + [-1.7e308],
        [1.7e308, -1.7e308, -1.7e308],  # the sum does not, the deviations do
    ],
)
def test_a_column_whose_spread_overflows_is_a_value_error(column: list[float]) -> None:
    with pytest.raises(ValueError, match=r"feature 0: values too large to standardize"):
        D.Standardizer.fit(Dataset.from_rows([[x] for x in column], [0.0] * len(column)))


def test_a_value_that_standardizes_beyond_the_float_range_is_a_value_error() -> None:
    scaler = D.Standardizer(pvector([0.5, 0.0]), pvector([0.25, 1.0]))
    assert scaler.apply([1e300, 1e308]) == pvector([(1e300 - 0.5) / 0.25, 1e308])
    with pytest.raises(ValueError, match=r"feature 0: 1e\+308 standardizes to inf \(mean 0.5, scale 0.25\)"):
        scaler.apply([1e308, 0.0])
    with pytest.raises(ValueError, match=r"feature 0: .* standardizes to inf"):
        scaler.transform(Dataset.from_rows([[0.0, 0.0], [1.7e308, 0.0]], [0.0, 0.0]))


# -- registry --------------------------------------------------------------------------


@pytest.mark.parametrize("name", D.DATASET_NAMES)
def test_load_by_name(name: str) -> None:
    ds = D.load(name, key=key(8))
    assert ds.name == name
    assert ds == D.load(name, key=key(8))


def test_load_matches_the_generators_and_ignores_key_for_shipped_sets() -> None:
    k = key(9)
    assert D.load("moons", key=k) == D.moons(key=k)
    assert D.load("blobs", key=k) == D.blobs(key=k)
    assert D.load("iris") is D.iris()
    assert D.load("digits", key=k) is D.digits()


def test_load_errors() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of: digits, iris"):
        D.load("mnist")
    with pytest.raises(ValueError, match="'spirals' is generated at random and needs key"):
        D.load("spirals")
    assert set(D.DATASET_NAMES) == {"digits", "iris", "moons", "circles", "spirals", "blobs", "sine"}
