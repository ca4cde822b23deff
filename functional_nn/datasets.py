"""Ready-made datasets: generated toy problems, and Iris and digits shipped in the package.

Generated sets (:func:`moons`, :func:`circles`, :func:`spirals`, :func:`blobs`,
:func:`sine`) are pure functions of their arguments and a keyword-only key, and
come back shuffled. The real sets (:func:`iris`, :func:`digits`) are read from
``functional_nn/data`` (see the README there for source and licence); nothing
is downloaded. :func:`standardize` rescales features with statistics fitted on a
training set only.

>>> from functional_nn.random import key
>>> ds = moons(100, noise=0.05, key=key(0))
>>> len(ds), ds.num_features, ds.num_classes
(100, 2, 2)
>>> load("iris").num_classes
3
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import overload

from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn.dataloader import Dataset
from functional_nn.random import Key, normal, permutation, split, uniform

__all__ = [
    "DATASET_NAMES",
    "DIGITS_CLASS_COUNTS",
    "IRIS_CLASS_NAMES",
    "IRIS_FEATURE_NAMES",
    "ZERO_SPREAD_ULPS",
    "Standardizer",
    "blobs",
    "circles",
    "digits",
    "iris",
    "linspace",
    "load",
    "moons",
    "sine",
    "spirals",
    "standardize",
]

IRIS_FEATURE_NAMES = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)
IRIS_CLASS_NAMES = ("setosa", "versicolor", "virginica")
DIGITS_CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)
"""Examples per digit 0..9 in the shipped digits set."""

ZERO_SPREAD_ULPS = 2**24
"""A training column whose range is at most this many ulps of its largest magnitude
(about 3.7e-9 relative) counts as constant: :class:`Standardizer` maps it to 0."""


# -- argument checks -------------------------------------------------------------


def _check_size(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_nonnegative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


# -- generated datasets ------------------------------------------------------------


def _class_sizes(n: int, classes: int) -> list[int]:
    """Split ``n`` examples over classes as evenly as possible, earlier classes first."""
    return [n // classes + (1 if c < n % classes else 0) for c in range(classes)]


def linspace(start: float, stop: float, num: int, *, endpoint: bool = True) -> list[float]:
    """``num`` evenly spaced floats from ``start`` to ``stop`` (``stop`` left out if not ``endpoint``).

    Value ``i`` is ``start + (stop - start) * i / steps``, with ``steps`` the number of
    gaps (``num - 1``, or ``num`` without the endpoint), as ``numpy.linspace``.

    >>> linspace(0.0, 1.0, 5), linspace(0.0, 1.0, 4, endpoint=False)
    ([0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.25, 0.5, 0.75])
    """
    count = _check_size(num, "num", 0)
    if count == 1:
        return [start]
    steps = count - 1 if endpoint else count
    return [start + (stop - start) * i / steps for i in range(count)]


def _shuffled(
    rows: Sequence[Sequence[float]],
    labels: Sequence[int],
    num_classes: int,
    name: str,
    key: Key,
) -> Dataset:
    order = permutation(key, len(rows))
    return Dataset.from_rows([rows[i] for i in order], [labels[i] for i in order], num_classes, name)


def moons(n: int = 200, *, noise: float = 0.1, key: Key) -> Dataset:
    """Two interleaving half circles (2 features, 2 classes), Gaussian noise of std ``noise``."""
    n = _check_size(n, "n", 2)
    noise = _check_nonnegative(noise, "noise")
    k_noise, k_order = split(key)
    n_outer, n_inner = _class_sizes(n, 2)
    rows: list[list[float]] = []
    for t in linspace(0.0, math.pi, n_outer):
        rows.append([math.cos(t), math.sin(t)])
    for t in linspace(0.0, math.pi, n_inner):
        rows.append([1.0 - math.cos(t), 0.5 - math.sin(t)])
    jitter = normal(k_noise, 2 * n, std=noise)
    noisy = [[x + jitter[2 * i], y + jitter[2 * i + 1]] for i, (x, y) in enumerate(rows)]
    return _shuffled(noisy, [0] * n_outer + [1] * n_inner, 2, "moons", k_order)


def circles(n: int = 200, *, noise: float = 0.05, factor: float = 0.5, key: Key) -> Dataset:
    """A circle of radius ``factor`` (class 1) inside one of radius 1 (class 0), plus noise."""
    n = _check_size(n, "n", 2)
    noise = _check_nonnegative(noise, "noise")
    factor = _check_nonnegative(factor, "factor")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor (inner radius) must be strictly between 0 and 1, got {factor}")
    k_noise, k_order = split(key)
    n_outer, n_inner = _class_sizes(n, 2)
    rows: list[list[float]] = []
    for radius, count in ((1.0, n_outer), (factor, n_inner)):
        for t in linspace(0.0, 2.0 * math.pi, count, endpoint=False):
            rows.append([radius * math.cos(t), radius * math.sin(t)])
    jitter = normal(k_noise, 2 * n, std=noise)
    noisy = [[x + jitter[2 * i], y + jitter[2 * i + 1]] for i, (x, y) in enumerate(rows)]
    return _shuffled(noisy, [0] * n_outer + [1] * n_inner, 2, "circles", k_order)


def spirals(n: int = 300, *, classes: int = 3, noise: float = 0.2, key: Key) -> Dataset:
    """``classes`` interleaved spiral arms (2 features); ``noise`` jitters the angle (radians)."""
    n = _check_size(n, "n", 1)
    classes = _check_size(classes, "classes", 2)
    if n < classes:
        raise ValueError(f"n={n} is too small for {classes} classes (need n >= classes)")
    noise = _check_nonnegative(noise, "noise")
    k_noise, k_order = split(key)
    jitter = normal(k_noise, n, std=noise)
    rows: list[list[float]] = []
    labels: list[int] = []
    for c, count in enumerate(_class_sizes(n, classes)):
        for i in range(count):
            radius = (i + 1) / count  # from near the centre out to 1
            angle = 2.0 * math.pi * c / classes + 4.0 * radius + jitter[len(rows)]
            rows.append([radius * math.cos(angle), radius * math.sin(angle)])
            labels.append(c)
    return _shuffled(rows, labels, classes, "spirals", k_order)


def blobs(n: int = 300, *, centers: int = 3, std: float = 1.0, features: int = 2, key: Key) -> Dataset:
    """Isotropic Gaussian clusters of std ``std`` around ``centers`` points drawn in [-10, 10)."""
    n = _check_size(n, "n", 1)
    centers = _check_size(centers, "centers", 2)
    if n < centers:
        raise ValueError(f"n={n} is too small for {centers} centers (need n >= centers)")
    features = _check_size(features, "features", 1)
    std = _check_nonnegative(std, "std")
    k_centers, k_noise, k_order = split(key, 3)
    where = uniform(k_centers, centers * features, -10.0, 10.0)
    jitter = normal(k_noise, n * features, std=std)
    rows: list[list[float]] = []
    labels: list[int] = []
    for c, count in enumerate(_class_sizes(n, centers)):
        centre = where[c * features : (c + 1) * features]
        for _ in range(count):
            offset = len(rows) * features
            rows.append([centre[j] + jitter[offset + j] for j in range(features)])
            labels.append(c)
    return _shuffled(rows, labels, centers, "blobs", k_order)


def sine(n: int = 200, *, noise: float = 0.1, key: Key) -> Dataset:
    """Regression: ``x`` uniform on [-pi, pi), target ``sin(x)`` plus noise of std ``noise``."""
    n = _check_size(n, "n", 1)
    noise = _check_nonnegative(noise, "noise")
    k_x, k_noise = split(key)
    xs = uniform(k_x, n, -math.pi, math.pi)
    jitter = normal(k_noise, n, std=noise)
    return Dataset.from_rows(
        [[x] for x in xs], [math.sin(x) + e for x, e in zip(xs, jitter, strict=True)], None, "sine"
    )


# -- shipped datasets --------------------------------------------------------------


def _read_data(filename: str) -> bytes:
    return resources.files("functional_nn").joinpath("data").joinpath(filename).read_bytes()


def _parse_rows(
    lines: list[list[str]], width: int, source: str, first_line: int
) -> tuple[list[list[float]], list[int]]:
    """Rows of ``width`` numbers then an integer label; errors name the file line."""
    rows: list[list[float]] = []
    labels: list[int] = []
    for number, fields in enumerate(lines, start=first_line):
        if len(fields) != width + 1:
            raise ValueError(f"{source} line {number}: expected {width + 1} fields, got {len(fields)}")
        rows.append([float(x) for x in fields[:width]])
        labels.append(int(fields[width]))
    return rows, labels


@functools.cache
def iris() -> Dataset:
    """Fisher's Iris: 150 flowers x 4 measurements (cm), 3 species of 50 (labels in file order).

    Feature and class names are in ``IRIS_FEATURE_NAMES`` and ``IRIS_CLASS_NAMES``.
    """
    text = _read_data("iris.csv").decode("ascii")
    header, *body = list(csv.reader(io.StringIO(text)))
    n, width = int(header[0]), int(header[1])
    rows, labels = _parse_rows(body, width, "iris.csv", 2)
    if len(rows) != n or tuple(header[2:]) != IRIS_CLASS_NAMES:
        raise ValueError(f"iris.csv: header {header} does not match its {len(rows)} rows")
    return Dataset.from_rows(rows, labels, len(IRIS_CLASS_NAMES), "iris")


@functools.cache
def digits() -> Dataset:
    """UCI optical digits as scikit-learn ships it: 1797 8x8 images, pixels 0..16, labels 0..9.

    Row-major pixels, so feature ``8 * r + c`` is row ``r``, column ``c``.
    """
    text = gzip.decompress(_read_data("digits.csv.gz")).decode("ascii")
    rows, labels = _parse_rows(list(csv.reader(io.StringIO(text))), 64, "digits.csv.gz", 1)
    return Dataset.from_rows(rows, labels, 10, "digits")


# -- standardisation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standardizer:
    """Per-feature ``(x - mean) / scale``, with statistics fitted on a training set.

    The rule for a feature without spread: when the training column's range
    ``max - min`` is at most :data:`ZERO_SPREAD_ULPS` units in the last place of its
    largest magnitude (exactly constant columns included), the column carries no
    usable information at float precision (its mean cannot even be centred to 1e-6
    of its spread), so it gets ``scale`` 0 and maps to 0 on every row, training and
    new data alike, instead of dividing by a spread made of rounding error.
    """

    mean: PVector[float]
    scale: PVector[float]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.scale):
            raise ValueError(f"{len(self.mean)} means but {len(self.scale)} scales")
        for j, (m, s) in enumerate(zip(self.mean, self.scale, strict=True)):
            if not (math.isfinite(m) and math.isfinite(s) and s >= 0):
                raise ValueError(f"feature {j}: need a finite mean and scale >= 0, got {m}, {s}")

    @classmethod
    def fit(cls, dataset: Dataset) -> Standardizer:
        """Fit the mean and the (population) standard deviation of every feature."""
        n = len(dataset)
        means: list[float] = []
        scales: list[float] = []
        for j in range(dataset.num_features):
            column = [row[j] for row in dataset.inputs]
            lo, hi = min(column), max(column)
            magnitude = max(abs(lo), abs(hi))
            if hi - lo <= ZERO_SPREAD_ULPS * math.ulp(magnitude):
                means.append(lo)
                scales.append(0.0)
                continue
            try:
                mean = math.fsum(column) / n
            except OverflowError:  # the column's sum is beyond the float range; its mean is not
                mean = math.fsum(x / n for x in column)
            deviations = [x - mean for x in column]
            peak = max(abs(d) for d in deviations)  # pre-scaled so squares neither underflow nor overflow
            std = peak * math.sqrt(math.fsum((d / peak) ** 2 for d in deviations) / n)
            if not math.isfinite(std):
                raise ValueError(f"feature {j}: values too large to standardize ({lo}..{hi})")
            means.append(mean)
            scales.append(std)
        return cls(pvector(means), pvector(scales))

    @property
    def num_features(self) -> int:
        """The row width this standardizer expects."""
        return len(self.mean)

    def apply(self, row: Sequence[float]) -> PVector[float]:
        """Standardize one row of features (e.g. at inference time).

        A finite feature whose standardized value overflows is a ValueError naming it.
        """
        if len(row) != len(self.mean):
            raise ValueError(f"row has {len(row)} features, standardizer expects {len(self.mean)}")
        mean, scale = self.mean, self.scale
        scaled = pvector((x - m) / s if s else 0.0 for x, m, s in zip(row, mean, scale, strict=True))
        for j, (x, z) in enumerate(zip(row, scaled, strict=True)):
            if math.isfinite(x) and not math.isfinite(z):
                raise ValueError(
                    f"feature {j}: {x!r} standardizes to {z!r} (mean {mean[j]!r}, scale {scale[j]!r}); "
                    "it is too far from the training data"
                )
        return scaled

    def transform(self, dataset: Dataset) -> Dataset:
        """Standardize every row of ``dataset``; targets, classes and name are kept."""
        if dataset.num_features != len(self.mean):
            raise ValueError(
                f"dataset {dataset.name!r} has {dataset.num_features} features, "
                f"standardizer expects {len(self.mean)}"
            )
        rows = pvector(self.apply(row) for row in dataset.inputs)
        return Dataset(rows, dataset.targets, dataset.num_classes, dataset.name)


@overload
def standardize(train: Dataset) -> tuple[Dataset, Standardizer]: ...


@overload
def standardize(train: Dataset, other: Dataset, /) -> tuple[Dataset, Dataset, Standardizer]: ...


@overload
def standardize(
    train: Dataset, other: Dataset, another: Dataset, /
) -> tuple[Dataset, Dataset, Dataset, Standardizer]: ...


def standardize(train: Dataset, *others: Dataset) -> tuple[Dataset | Standardizer, ...]:
    """Fit a :class:`Standardizer` on ``train`` alone; return every dataset transformed, then it.

    Typed for up to two other datasets; for more, use ``Standardizer.fit`` and
    ``transform`` directly.

    >>> from functional_nn.random import key
    >>> train, test = blobs(40, key=key(1))[:30], blobs(40, key=key(1))[30:]
    >>> train_s, test_s, scaler = standardize(train, test)
    >>> abs(sum(row[0] for row in train_s.inputs)) < 1e-9
    True
    """
    scaler = Standardizer.fit(train)
    return (*(scaler.transform(ds) for ds in (train, *others)), scaler)


# -- registry ----------------------------------------------------------------------

_GENERATED: PMap[str, Callable[[Key], Dataset]] = pmap(
    {
        "moons": lambda k: moons(key=k),
        "circles": lambda k: circles(key=k),
        "spirals": lambda k: spirals(key=k),
        "blobs": lambda k: blobs(key=k),
        "sine": lambda k: sine(key=k),
    }
)
_SHIPPED: PMap[str, Callable[[], Dataset]] = pmap({"digits": digits, "iris": iris})

DATASET_NAMES = ("digits", "iris", "moons", "circles", "spirals", "blobs", "sine")
"""Every name :func:`load` accepts."""


def load(name: str, *, key: Key | None = None) -> Dataset:
    """A dataset by name, generated ones with their default arguments.

    ``key`` is required for the generated sets and ignored for iris and digits.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    if name in _SHIPPED:
        return _SHIPPED[name]()
    if name in _GENERATED:
        if key is None:
            raise ValueError(f"dataset {name!r} is generated at random and needs key=...")
        return _GENERATED[name](key)
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
