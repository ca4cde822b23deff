"""Datasets as frozen values, and a mini-batch loader whose order comes from a key.

A :class:`Dataset` holds feature rows and one target per row, in persistent
vectors. For classification (``num_classes`` set) the targets are ``int`` class
labels in ``[0, num_classes)``; for regression (``num_classes is None``) they
are finite ``float`` values. A dataset is validated when built and is never
empty, so every ``Dataset`` you hold is well-formed.

>>> from functional_nn.random import key
>>> ds = Dataset.from_rows([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1], num_classes=2)
>>> len(ds), ds.num_features, ds[0]
(3, 2, (pvector([0.0, 1.0]), 0))
>>> loader = DataLoader(ds, batch_size=2)
>>> [batch.size for batch in loader.epoch(key(0))]
[2, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeAlias, overload

from pyrsistent import PVector, pvector

from functional_nn.random import Key, permutation
from tape.validate import class_target, finite_number, sequence

__all__ = ["Batch", "DataLoader", "Dataset", "Row", "Target", "train_test_split"]

Row: TypeAlias = PVector[float]
"""One example's features."""

Target: TypeAlias = int | float
"""One example's target: an ``int`` class label, or a ``float`` regression value."""


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_pvector(value: object) -> bool:
    return isinstance(value, PVector)


def _check_rows(inputs: Sequence[Sequence[float]]) -> None:
    """Every row is a sequence of finite reals, all of the same width."""
    width = -1
    for i, row in enumerate(inputs):
        if not isinstance(row, Sequence):
            raise TypeError(f"row {i}: expected a sequence of numbers, got {type(row).__name__}")
        if width < 0:
            width = len(row)
            if width == 0:
                raise ValueError("row 0 has no features; rows need at least one")
        elif len(row) != width:
            raise ValueError(f"row {i} has {len(row)} features, but row 0 has {width}")
        for j, x in enumerate(row):
            finite_number(x, f"row {i}, column {j}: the feature")


def _check_targets(targets: Sequence[float], num_classes: int | None) -> None:
    """Labels are ints in ``[0, num_classes)``; regression targets are finite reals."""
    for i, t in enumerate(targets):
        if num_classes is not None:
            class_target(t, num_classes, f"row {i}")
        else:
            finite_number(t, f"row {i}: the regression target")


def _check_num_classes(num_classes: object) -> None:
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes must be an int or None, got {type(num_classes).__name__}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (or None for regression), got {num_classes}")


def _labels(targets: Iterable[Target]) -> tuple[int, ...]:
    labels: list[int] = []
    for t in targets:
        if not isinstance(t, int):
            raise TypeError(f"targets are regression values (found {t!r}), not class labels")
        labels.append(t)
    return tuple(labels)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A non-empty, validated, immutable table of examples.

    ``inputs`` holds one row of features per example, all of the same width.
    ``targets`` holds ``int`` labels in ``[0, num_classes)`` when ``num_classes``
    is set (classification) and finite ``float`` values when it is ``None``
    (regression). Build from plain lists with :meth:`from_rows`.
    """

    inputs: PVector[PVector[float]]
    targets: PVector[int] | PVector[float]
    num_classes: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        _check_num_classes(self.num_classes)
        if not (_is_pvector(self.inputs) and all(_is_pvector(row) for row in self.inputs)):
            raise TypeError(
                "Dataset inputs must be a PVector of PVector rows; build from lists with Dataset.from_rows"
            )
        if not _is_pvector(self.targets):
            raise TypeError("Dataset targets must be a PVector; build from lists with Dataset.from_rows")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        if len(self.inputs) == 0:
            raise ValueError("a Dataset needs at least one example")
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"{len(self.inputs)} input rows but {len(self.targets)} targets; need one target per row"
            )
        _check_rows(self.inputs)
        _check_targets(self.targets, self.num_classes)

    @classmethod
    def from_rows(
        cls,
        inputs: Sequence[Sequence[float]],
        targets: Sequence[float],
        num_classes: int | None = None,
        name: str = "",
    ) -> Dataset:
        """Validate plain sequences and freeze them into a Dataset.

        Features become floats; regression targets become floats; class labels
        must already be ints. Errors name the offending row (and column).

        >>> Dataset.from_rows([[1, 2], [3]], [0.5, 1.5])
        Traceback (most recent call last):
        ...
        ValueError: row 1 has 1 features, but row 0 has 2
        """
        sequence(inputs, "Dataset.from_rows: inputs")
        sequence(targets, "Dataset.from_rows: targets")
        _check_num_classes(num_classes)
        if len(inputs) == 0:
            raise ValueError("a Dataset needs at least one example; got no rows")
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} input rows but {len(targets)} targets; need one target per row")
        _check_rows(inputs)
        _check_targets(targets, num_classes)
        rows = pvector(pvector(float(x) for x in row) for row in inputs)
        if num_classes is None:
            return cls(rows, pvector(float(t) for t in targets), None, name)
        return cls(rows, pvector(_labels(targets)), num_classes, name)

    def __len__(self) -> int:
        return len(self.inputs)

    @overload
    def __getitem__(self, index: int) -> tuple[Row, Target]: ...

    @overload
    def __getitem__(self, index: slice) -> Dataset: ...

    def __getitem__(self, index: int | slice) -> tuple[Row, Target] | Dataset:
        """``ds[i]`` is ``(row, target)``; ``ds[i:j]`` is a (non-empty) Dataset."""
        if isinstance(index, slice):
            rows = self.inputs[index]
            if len(rows) == 0:
                raise ValueError(f"slice {index} of a {len(self)}-example dataset is empty")
            return Dataset(rows, self.targets[index], self.num_classes, self.name)
        return self.inputs[index], self.targets[index]

    def __iter__(self) -> Iterator[tuple[Row, Target]]:
        return zip(self.inputs, self.targets, strict=True)

    def __repr__(self) -> str:
        kind = "regression" if self.num_classes is None else f"num_classes={self.num_classes}"
        return f"Dataset(name={self.name!r}, examples={len(self)}, features={self.num_features}, {kind})"

    @property
    def num_features(self) -> int:
        """The width of every row."""
        return len(self.inputs[0])

    def subset(self, indices: Sequence[int]) -> Dataset:
        """The examples at ``indices``, in that order (repeats allowed, not empty)."""
        n = len(self)
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"indices must be ints, got {type(i).__name__} {i!r}")
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for a {n}-example dataset")
        if len(indices) == 0:
            raise ValueError("subset needs at least one index")
        rows = pvector(self.inputs[i] for i in indices)
        targets: PVector[int] | PVector[float] = pvector(self.targets[i] for i in indices)
        return Dataset(rows, targets, self.num_classes, self.name)

    def labels(self) -> tuple[int, ...]:
        """The class labels; raises ``TypeError`` for a regression dataset."""
        if self.num_classes is None:
            raise TypeError(f"dataset {self.name!r} is a regression dataset; it has no labels")
        return _labels(self.targets)


def train_test_split(dataset: Dataset, test_fraction: float, key: Key) -> tuple[Dataset, Dataset]:
    """Shuffle by ``key`` and split off ``round(test_fraction * len(dataset))`` test examples.

    >>> from functional_nn.random import key
    >>> ds = Dataset.from_rows([[float(i)] for i in range(10)], [float(i) for i in range(10)])
    >>> train, test = train_test_split(ds, 0.3, key=key(0))
    >>> len(train), len(test)
    (7, 3)
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a Dataset, got {type(dataset).__name__}")
    if not _is_real(test_fraction):
        raise TypeError(f"test_fraction must be a real number, got {type(test_fraction).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    n = len(dataset)
    n_test = round(test_fraction * n)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_fraction={test_fraction} of {n} examples gives {n_test} test and "
            f"{n - n_test} train examples; both parts must be non-empty"
        )
    order = permutation(key, n)
    return dataset.subset(order[n_test:]), dataset.subset(order[:n_test])


class Batch(NamedTuple):
    """One mini-batch: rows of features and their targets, position by position.

    ``indices`` are the examples' positions in the dataset when the batch came from a
    :class:`DataLoader` (``None`` for a batch built by hand): workers that hold the
    dataset already are sent these instead of the rows (:mod:`functional_nn.sharding`).
    """

    inputs: tuple[Row, ...]
    targets: tuple[Target, ...]
    indices: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        """The number of examples (``len(batch)`` is 3, the tuple's fields)."""
        return len(self.inputs)

    def labels(self) -> tuple[int, ...]:
        """The targets as class labels; ``TypeError`` if they are regression values."""
        return _labels(self.targets)

    def values(self) -> tuple[float, ...]:
        """The targets as floats (regression values, or labels converted)."""
        return tuple(float(t) for t in self.targets)


@dataclass(frozen=True, slots=True)
class DataLoader:
    """Mini-batches over a dataset; each epoch's order is fixed by its key.

    The loader holds no state between epochs: ``loader.epoch(k)`` yields the
    same batches every time it is called with the same ``k``. ``len(loader)`` is
    the number of batches per epoch.

    ``iter(loader)`` (``for batch in loader``) is one epoch with the loader's own
    ``key``, so it gives the same order each time; for a fresh order every epoch call
    ``loader.epoch(fold_in(k, epoch))``. An unshuffled loader needs no key.

    >>> from functional_nn.random import key
    >>> ds = Dataset.from_rows([[float(i)] for i in range(5)], [float(i) for i in range(5)])
    >>> [batch.size for batch in DataLoader(ds, 2, key=key(0))]
    [2, 2, 1]
    >>> len(DataLoader(ds, 2, drop_last=True))
    2
    """

    dataset: Dataset
    batch_size: int
    shuffle: bool = field(default=True, kw_only=True)
    drop_last: bool = field(default=False, kw_only=True)
    key: Key | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, Dataset):
            raise TypeError(f"expected a Dataset, got {type(self.dataset).__name__}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(self.batch_size).__name__}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.drop_last and self.batch_size > len(self.dataset):
            raise ValueError(
                f"drop_last=True with batch_size={self.batch_size} > {len(self.dataset)} "
                "examples would give no batches at all"
            )
        if self.key is not None and not isinstance(self.key, Key):
            raise TypeError(
                f"key must be a functional_nn.random.Key or None, got {type(self.key).__name__}; "
                "make one with functional_nn.random.key(seed)"
            )

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        """One epoch with the loader's own ``key``: ``loader.epoch()``."""
        if self.shuffle and self.key is None:
            raise ValueError(
                "iterating a shuffling DataLoader needs a key: build it with "
                "DataLoader(..., key=functional_nn.random.key(seed)), call loader.epoch(key), "
                "or pass shuffle=False"
            )
        return self.epoch()

    def epoch(self, key: Key | None = None) -> Iterator[Batch]:
        """The batches of one epoch, in an order fixed by ``key`` (by default the loader's own).

        A key is required when ``shuffle`` is true; without shuffling the order
        is the dataset's own and ``key`` is not needed (and ignored if given).
        """
        n = len(self.dataset)
        order: Sequence[int]
        if self.shuffle:
            chosen = self.key if key is None else key
            if chosen is None:
                raise ValueError(
                    "this DataLoader shuffles, so epoch() needs a key "
                    "(or build the loader with DataLoader(..., key=functional_nn.random.key(seed)))"
                )
            order = permutation(chosen, n)
        else:
            order = range(n)
        return self._batches(order)

    def _batches(self, order: Sequence[int]) -> Iterator[Batch]:
        inputs, targets = self.dataset.inputs, self.dataset.targets
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            chunk = tuple(order[start : min(start + self.batch_size, stop)])
            yield Batch(tuple(inputs[i] for i in chunk), tuple(targets[i] for i in chunk), chunk)
