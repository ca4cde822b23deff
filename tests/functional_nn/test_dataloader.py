"""Tests for functional_nn.dataloader: Dataset validation, splitting and batching."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from functional_nn.dataloader import Batch, DataLoader, Dataset, train_test_split
from functional_nn.random import Key, key, permutation, split


def _indexed(n: int) -> Dataset:
    """A regression set whose feature and target both hold the example's index."""
    return Dataset.from_rows([[float(i), -float(i)] for i in range(n)], [float(i) for i in range(n)])


def _ids(batch: Batch) -> list[int]:
    ids = [int(row[0]) for row in batch.inputs]
    assert [int(t) for t in batch.targets] == ids  # rows and targets stay paired
    return ids


# -- Dataset ---------------------------------------------------------------------------


def test_from_rows_freezes_and_converts() -> None:
    ds = Dataset.from_rows([[1, 2], [3, 4.5]], [1, 2], name="tiny")
    assert ds.inputs == pvector([pvector([1.0, 2.0]), pvector([3.0, 4.5])])
    assert all(isinstance(x, float) for row in ds.inputs for x in row)
    assert all(isinstance(t, float) for t in ds.targets)  # regression targets become floats
    assert ds.num_classes is None
    assert ds.name == "tiny"
    assert len(ds) == 2
    assert ds.num_features == 2


def test_classification_keeps_int_labels() -> None:
    ds = Dataset.from_rows([[0.0], [1.0], [2.0]], [2, 0, 1], num_classes=3)
    assert ds.targets == pvector([2, 0, 1])
    assert all(type(t) is int for t in ds.targets)
    assert ds.labels() == (2, 0, 1)


def test_indexing_slicing_iteration() -> None:
    ds = _indexed(5)
    row, target = ds[2]
    assert list(row) == [2.0, -2.0]
    assert target == 2.0
    assert ds[-1][1] == 4.0
    part = ds[1:4]
    assert isinstance(part, Dataset)
    assert [t for _, t in part] == [1.0, 2.0, 3.0]
    assert [t for _, t in ds[::2]] == [0.0, 2.0, 4.0]
    assert [t for _, t in ds] == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match="empty"):
        ds[3:3]


def test_subset_and_labels() -> None:
    ds = Dataset.from_rows([[0.0], [1.0], [2.0]], [0, 1, 1], num_classes=2, name="s")
    sub = ds.subset([2, 0, 2])
    assert sub.labels() == (1, 0, 1)
    assert sub.num_classes == 2
    assert sub.name == "s"
    with pytest.raises(IndexError, match="index 3 out of range"):
        ds.subset([3])
    with pytest.raises(ValueError, match="at least one"):
        ds.subset([])
    with pytest.raises(TypeError, match="regression"):
        _indexed(2).labels()


def test_dataset_is_frozen_hashable_and_compares_by_value() -> None:
    a, b = _indexed(3), _indexed(3)
    assert a == b
    assert hash(a) == hash(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]


def test_repr_is_a_summary() -> None:
    ds = Dataset.from_rows([[0.0], [1.0]], [0, 1], num_classes=2, name="pair")
    assert repr(ds) == "Dataset(name='pair', examples=2, features=1, num_classes=2)"
    assert "regression" in repr(_indexed(2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: Dataset.from_rows([], []), ValueError, "at least one example"),
        (lambda: Dataset.from_rows([[1.0], [2.0]], [1.0]), ValueError, "2 input rows but 1 targets"),
        (
            lambda: Dataset.from_rows([[1.0, 2.0], [3.0, 4.0], [5.0]], [1.0, 2.0, 3.0]),
            ValueError,
            "row 2 has 1 features, but row 0 has 2",
        ),
        (lambda: Dataset.from_rows([[]], [1.0]), ValueError, "no features"),
        (
            lambda: Dataset.from_rows([[1.0, 2.0], [3.0, math.nan]], [1.0, 2.0]),
            ValueError,
            "row 1, column 1: the feature must be finite, got nan",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [math.inf]], [1.0, 2.0]),
            ValueError,
            "row 1, column 0",
        ),
        (
            lambda: Dataset.from_rows([[1.0], ["2"]], [1.0, 2.0]),  # type: ignore[list-item]
            TypeError,
            "row 1, column 0: the feature must be a real number, not str",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [0, 1.0], num_classes=2),
            TypeError,
            "row 1: class target must be an int",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0], [3.0]], [0, 1, 3], num_classes=3),
            ValueError,
            r"row 2: class target 3 is out of range for 3 classes",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [-1, 0], num_classes=2),
            ValueError,
            "row 0: class target -1 is out of range",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [True, False], num_classes=2),
            TypeError,
            "row 0: class target must be an int, not bool",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [1.0, math.nan]),
            ValueError,
            "row 1: the regression target must be finite, got nan",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [0, 1], num_classes=1),
            ValueError,
            "num_classes must be >= 2",
        ),
        (
            lambda: Dataset.from_rows([[1.0], [2.0]], [0, 1], num_classes=2.0),  # type: ignore[arg-type]
            TypeError,
            "num_classes must be an int",
        ),
        (
            lambda: Dataset(pvector([pvector([1.0]), pvector([math.nan])]), pvector([0.0, 1.0])),
            ValueError,
            "row 1, column 0",
        ),
        (
            lambda: Dataset(pvector([[1.0]]), pvector([0.0])),  # type: ignore[list-item]
            TypeError,
            "PVector of PVector rows",
        ),
        (
            lambda: Dataset(pvector([pvector([1.0])]), [0.0]),  # type: ignore[arg-type]
            TypeError,
            "targets must be a PVector",
        ),
        (
            lambda: Dataset(pvector([pvector([1.0])]), pvector([5]), num_classes=2),
            ValueError,
            "row 0: class target 5 is out of range",
        ),
    ],
)
def test_dataset_validation(call: Callable[[], object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# -- train_test_split -----------------------------------------------------------------


@given(
    st.integers(min_value=2, max_value=80),
    st.floats(min_value=0.01, max_value=0.99),
    st.integers(min_value=0, max_value=2**32),
)
def test_split_partitions_the_dataset(n: int, fraction: float, seed: int) -> None:
    ds = _indexed(n)
    n_test = round(fraction * n)
    if not 0 < n_test < n:
        with pytest.raises(ValueError, match="both parts must be non-empty"):
            train_test_split(ds, fraction, key=key(seed))
        return
    train, test = train_test_split(ds, fraction, key=key(seed))
    assert len(test) == n_test
    assert len(train) == n - n_test
    train_ids = [int(t) for _, t in train]
    test_ids = [int(t) for _, t in test]
    assert sorted(train_ids + test_ids) == list(range(n))
    assert all(int(row[0]) == int(t) for row, t in [*train, *test])


def test_split_is_fixed_by_the_key() -> None:
    ds = _indexed(40)
    k1, k2 = split(key(0))
    assert train_test_split(ds, 0.25, key=k1) == train_test_split(ds, 0.25, key=k1)
    assert train_test_split(ds, 0.25, key=k1) != train_test_split(ds, 0.25, key=k2)
    train, test = train_test_split(ds, 0.25, key=k1)
    assert [int(t) for _, t in test] == list(permutation(k1, 40)[:10])
    assert [int(t) for _, t in train] != sorted(int(t) for _, t in train)  # shuffled


def test_split_keeps_metadata() -> None:
    ds = Dataset.from_rows([[float(i)] for i in range(10)], [i % 3 for i in range(10)], 3, "m")
    train, test = train_test_split(ds, 0.5, key=key(1))
    assert (train.num_classes, train.name, test.num_classes, test.name) == (3, "m", 3, "m")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_split_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        train_test_split(_indexed(10), fraction, key=key(0))


# -- DataLoader ------------------------------------------------------------------------


@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=70),
    st.booleans(),
    st.booleans(),
    st.integers(min_value=0, max_value=2**32),
)
def test_epoch_covers_every_example_once(
    n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int
) -> None:
    if drop_last and batch_size > n:
        with pytest.raises(ValueError, match="no batches"):
            DataLoader(_indexed(n), batch_size, shuffle=shuffle, drop_last=drop_last)
        return
    loader = DataLoader(_indexed(n), batch_size, shuffle=shuffle, drop_last=drop_last)
    batches = list(loader.epoch(key(seed)))
    assert len(batches) == len(loader)
    sizes = [b.size for b in batches]
    assert all(s == batch_size for s in sizes[:-1])
    assert 1 <= sizes[-1] <= batch_size
    ids = [i for b in batches for i in _ids(b)]
    assert len(ids) == len(set(ids))  # nothing twice
    if drop_last:
        assert all(s == batch_size for s in sizes)
        assert len(ids) == n - n % batch_size
    else:
        assert sorted(ids) == list(range(n))
    if shuffle:
        assert ids == list(permutation(key(seed), n)[: len(ids)])
    else:
        assert ids == list(range(len(ids)))


def test_same_key_same_order_different_keys_different_order() -> None:
    loader = DataLoader(_indexed(50), 8)
    k1, k2 = split(key(3))

    def order(k: Key) -> list[int]:
        return [i for b in loader.epoch(k) for i in _ids(b)]

    assert order(k1) == order(k1)
    assert order(k1) != order(k2)


def test_no_hidden_state_between_epochs() -> None:
    loader = DataLoader(_indexed(20), 3)
    k = key(5)
    first = loader.epoch(k)
    head = next(first)
    second = list(loader.epoch(k))  # a new epoch mid-way through another
    assert second[0] == head
    assert [head, *first] == second


def test_len_and_drop_last() -> None:
    ds = _indexed(10)
    assert len(DataLoader(ds, 3)) == 4
    assert len(DataLoader(ds, 3, drop_last=True)) == 3
    assert len(DataLoader(ds, 5, drop_last=True)) == 2
    assert len(DataLoader(ds, 10)) == 1
    assert len(DataLoader(ds, 11)) == 1
    sizes = [b.size for b in DataLoader(ds, 3, drop_last=True).epoch(key(0))]
    assert sizes == [3, 3, 3]


def test_unshuffled_epochs_need_no_key_and_ignore_one() -> None:
    loader = DataLoader(_indexed(7), 3, shuffle=False)
    plain = list(loader.epoch())
    assert [_ids(b) for b in plain] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(loader.epoch(key(1))) == plain


def test_shuffled_epoch_needs_a_key_immediately() -> None:
    loader = DataLoader(_indexed(7), 3)
    with pytest.raises(ValueError, match="needs a key"):
        loader.epoch()


@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=45),
    st.booleans(),
    st.integers(min_value=0, max_value=2**32),
)
def test_iterating_a_loader_is_one_epoch_with_its_own_key(
    n: int, batch_size: int, drop_last: bool, seed: int
) -> None:
    if drop_last and batch_size > n:
        return
    k = key(seed)
    loader = DataLoader(_indexed(n), batch_size, drop_last=drop_last, key=k)
    batches = list(loader)
    assert batches == list(loader.epoch(k)) == list(loader.epoch())
    assert len(batches) == len(loader)
    assert list(loader) == batches  # a frozen loader: the same epoch every time


def test_iterating_an_unshuffled_loader_needs_no_key() -> None:
    loader = DataLoader(_indexed(7), 3, shuffle=False)
    assert [_ids(b) for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    assert [batch.size for batch in DataLoader(_indexed(7), 3, shuffle=False, drop_last=True)] == [3, 3]


def test_iterating_a_shuffled_loader_without_a_key_says_what_to_do() -> None:
    loader = DataLoader(_indexed(7), 3)
    with pytest.raises(ValueError, match=r"needs a key.*DataLoader\(\.\.\., key=.*shuffle=False"):
        iter(loader)
    with pytest.raises(ValueError, match="needs a key"):
        list(loader)


def test_loader_key_must_be_a_key() -> None:
    with pytest.raises(TypeError, match=r"key must be a functional_nn\.random\.Key or None, got int"):
        DataLoader(_indexed(4), 2, key=0)  # type: ignore[arg-type]


def test_batch_targets_as_labels_or_values() -> None:
    cls = Dataset.from_rows([[0.0], [1.0]], [1, 0], num_classes=2)
    (batch,) = DataLoader(cls, 2, shuffle=False).epoch()
    assert batch.labels() == (1, 0)
    assert batch.values() == (1.0, 0.0)
    (reg,) = DataLoader(_indexed(2), 2, shuffle=False).epoch()
    with pytest.raises(TypeError, match="regression values"):
        reg.labels()
    assert reg.values() == (0.0, 1.0)


@pytest.mark.parametrize(
    ("batch_size", "error", "match"),
    [
        (0, ValueError, "batch_size must be >= 1"),
        (-3, ValueError, "batch_size must be >= 1"),
        (2.0, TypeError, "batch_size must be an int"),
        (True, TypeError, "batch_size must be an int"),
    ],
)
def test_loader_validates_batch_size(batch_size: int, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DataLoader(_indexed(4), batch_size)


def test_loader_is_frozen() -> None:
    loader = DataLoader(_indexed(4), 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loader.batch_size = 3  # type: ignore[misc]


def test_from_rows_names_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"^Dataset.from_rows: inputs must be a sequence, not NoneType"):
        Dataset.from_rows(None, [0.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Dataset.from_rows: targets must be a sequence, not NoneType"):
        Dataset.from_rows([[1.0]], None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^row 0, column 1: the feature is an int too large for a float"):
        Dataset.from_rows([[1.0, 10**400]], [0.0])
