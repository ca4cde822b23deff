"""Reading a user's CSV file into a :class:`~functional_nn.dataloader.Dataset`.

The first line names the columns. One column is the target (by default the last);
every other column is a numeric feature. Class labels may be integers or strings:
the classes are the distinct labels, sorted (integers by value, strings by text),
and label ``k`` of :attr:`CsvSchema.labels` is class index ``k``. The task is
``"classification"`` or ``"regression"``; when not given it is inferred from the
target column: integer labels or any non-numeric label mean classification, numbers
that are not all integers mean regression (:attr:`CsvData.inferred` says why).

The file is read as hostile input, as a checkpoint is: only a regular file of at most
``max_bytes`` (:func:`functional_nn.files.read_regular_file`). Every problem is one
:class:`CsvError` naming the file, the line and the column: a non-numeric, NaN or
infinite cell, a ragged row, a missing or duplicate column name, an empty or
header-only file, a single class. Blank lines are skipped.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.csv")
>>> _ = open(path, "w").write("x1,x2,kind\\n0.5,1,cat\\n-1,2,dog\\n3,0.25,cat\\n")
>>> data = read_csv(path)
>>> data.schema.features, data.schema.target, data.schema.task, data.schema.labels
(('x1', 'x2'), 'kind', 'classification', ('cat', 'dog'))
>>> data.dataset.labels(), data.inferred
((0, 1, 0), "the target column 'kind' holds labels that are not numbers")
>>> _ = open(path, "w").write("x,y\\n1,a\\nb,c\\n")
>>> read_csv(path)
Traceback (most recent call last):
...
functional_nn.csv_data.CsvError: ...tiny.csv line 3, column 'x': 'b' is not a number
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pyrsistent import PVector, pvector

from functional_nn.dataloader import Dataset
from functional_nn.files import FileRefused, read_regular_file
from tape.validate import int_text, number_text

__all__ = [
    "MAX_CSV_BYTES",
    "TASKS",
    "CsvData",
    "CsvError",
    "CsvInputs",
    "CsvSchema",
    "Task",
    "file_sha256",
    "read_csv",
    "read_csv_inputs",
    "read_csv_like",
]

MAX_CSV_BYTES = 64 * 2**20
"""The largest CSV file (64 MiB) the readers take unless given another ``max_bytes``."""

Task: TypeAlias = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


class CsvError(ValueError):
    """A CSV file that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True)
class CsvSchema:
    """What a data file's columns mean: the features in order, the target, the task and,
    for classification, the label of each class index (``None`` for regression)."""

    features: tuple[str, ...]
    target: str
    task: Task
    labels: tuple[str, ...] | None


@dataclass(frozen=True)
class CsvData:
    """A CSV file read as a dataset: the examples, what the columns mean, the SHA-256 of
    the bytes read, and, when the task was inferred, why (``None`` when it was given)."""

    dataset: Dataset
    schema: CsvSchema
    sha256: str
    inferred: str | None


@dataclass(frozen=True)
class CsvInputs:
    """Feature rows read from a CSV file (in the order of the features asked for)."""

    rows: tuple[PVector[float], ...]
    features: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class _Table:
    where: str
    header: tuple[str, ...]
    header_line: int
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    """(line number, cells) of every non-blank row after the header."""
    sha256: str


def file_sha256(data: bytes) -> str:
    """The SHA-256 of a file's bytes as 64 lowercase hex digits (what a run records)."""
    return hashlib.sha256(data).hexdigest()


def _read_table(path: str | os.PathLike[str], max_bytes: int) -> _Table:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
    where = os.fspath(path)
    try:
        raw = read_regular_file(where, max_bytes)
    except FileRefused as error:
        raise CsvError(str(error)) from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CsvError(f"{where} line {line}: not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, tuple[str, ...]]] = []
    header: tuple[str, ...] | None = None
    header_line = 0
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if header is None:
                header = tuple(c.strip() for c in cells)
                header_line = reader.line_num
            else:
                rows.append((reader.line_num, tuple(cells)))
    except csv.Error as error:
        raise CsvError(f"{where} line {reader.line_num}: not valid CSV ({error})") from None
    if header is None:
        raise CsvError(f"{where} is empty: it needs a header line naming the columns, then rows")
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if not name:
            raise CsvError(f"{where} line {header_line}, column {j + 1}: the column has no name")
        if name in seen:
            raise CsvError(
                f"{where} line {header_line}, column {j + 1}: the name {name!r} is also column "
                f"{seen[name] + 1}'s; column names must differ"
            )
        seen[name] = j
    if not rows:
        raise CsvError(f"{where} has a header (line {header_line}) but no rows of data")
    for line, fields in rows:
        if len(fields) != len(header):
            raise CsvError(
                f"{where} line {line}: {len(fields)} fields, but the header (line {header_line}) "
                f"names {len(header)} columns"
            )
    return _Table(where, header, header_line, tuple(rows), file_sha256(raw))


def _cell(table: _Table, line: int, column: str, text: str, what: str = "") -> float:
    try:
        return number_text(text, f"{table.where} line {line}, column {column!r}")
    except ValueError as error:
        raise CsvError(f"{error}{what}") from None


def _features(table: _Table, names: Sequence[str]) -> tuple[PVector[float], ...]:
    index = {name: j for j, name in enumerate(table.header)}
    columns = [index[name] for name in names]
    return tuple(
        pvector(_cell(table, line, names[k], cells[j]) for k, j in enumerate(columns))
        for line, cells in table.rows
    )


def _labels_of(texts: Sequence[str]) -> tuple[list[int], tuple[str, ...]]:
    """Class indices and sorted label names of label cells (integers by value, else text)."""
    ints = [int_text(t) for t in texts]
    if all(i is not None for i in ints):
        values = sorted({i for i in ints if i is not None})
        position = {v: k for k, v in enumerate(values)}
        return [position[i] for i in ints if i is not None], tuple(str(v) for v in values)
    names = tuple(sorted(set(texts)))
    where = {name: k for k, name in enumerate(names)}
    return [where[t] for t in texts], names


def _infer(table: _Table, target: str, texts: Sequence[str]) -> tuple[Task, str]:
    if all(int_text(t) is not None for t in texts):
        return "classification", f"the target column {target!r} holds integers"
    for t in texts:
        try:
            number_text(t, "")
        except ValueError:
            return "classification", f"the target column {target!r} holds labels that are not numbers"
    return "regression", f"the target column {target!r} holds numbers that are not all integers"


def _target_name(table: _Table, target: str | None) -> str:
    if target is None:
        return table.header[-1]
    if target not in table.header:
        raise CsvError(
            f"{table.where} line {table.header_line}: no column named {target!r} for the target; "
            f"the columns are {', '.join(table.header)}"
        )
    return target


def read_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    task: Task | None = None,
    max_bytes: int = MAX_CSV_BYTES,
) -> CsvData:
    """The dataset in the CSV file at ``path``; a :class:`CsvError` naming line and column if bad.

    ``target`` names the target column (default: the last); ``task`` is
    ``"classification"`` or ``"regression"`` (default: inferred, see the module's
    docstring). A classification file needs at least two classes.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")
    table = _read_table(path, max_bytes)
    name = _target_name(table, target)
    if len(table.header) < 2:
        raise CsvError(
            f"{table.where} line {table.header_line}: only the target column {name!r}; there are no features"
        )
    j = table.header.index(name)
    texts = [cells[j].strip() for _, cells in table.rows]
    inferred: str | None = None
    if task is None:
        task, inferred = _infer(table, name, texts)
    features = tuple(n for n in table.header if n != name)
    rows = _features(table, features)
    base = os.path.basename(table.where)
    if task == "regression":
        why = " (a regression target must be a number)"
        values = [_cell(table, line, name, t, why) for (line, _), t in zip(table.rows, texts, strict=True)]
        schema = CsvSchema(features, name, task, None)
        return CsvData(Dataset.from_rows(rows, values, None, base), schema, table.sha256, inferred)
    for (line, _), t in zip(table.rows, texts, strict=True):
        if not t:
            raise CsvError(f"{table.where} line {line}, column {name!r}: the class label is empty")
    indices, labels = _labels_of(texts)
    if len(labels) < 2:
        raise CsvError(
            f"{table.where} column {name!r}: every row (lines {table.rows[0][0]} to {table.rows[-1][0]}) "
            f"has the label {labels[0]!r}; classification needs at least two classes"
        )
    dataset = Dataset.from_rows(rows, indices, len(labels), base)
    return CsvData(dataset, CsvSchema(features, name, "classification", labels), table.sha256, inferred)


def _columns(names: Sequence[str]) -> str:
    return f"column{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}"


def _check_columns(table: _Table, wanted: Sequence[str], optional: Sequence[str]) -> None:
    missing = [n for n in wanted if n not in table.header]
    extra = [n for n in table.header if n not in wanted and n not in optional]
    where = f"{table.where} line {table.header_line}"
    if missing:
        raise CsvError(f"{where}: missing the {_columns(missing)}")
    if extra:
        raise CsvError(
            f"{where}: the {_columns(extra)} {'are' if len(extra) > 1 else 'is'} not among the "
            f"model's ({', '.join(wanted)})"
        )


def read_csv_like(
    path: str | os.PathLike[str], schema: CsvSchema, *, max_bytes: int = MAX_CSV_BYTES
) -> CsvData:
    """The CSV file at ``path`` read with ``schema``'s columns, task and labels (to evaluate a model on).

    The file must have exactly the schema's feature and target columns, in any order.
    Class labels must be among ``schema.labels``; one class alone is fine.
    """
    table = _read_table(path, max_bytes)
    _check_columns(table, (*schema.features, schema.target), ())
    rows = _features(table, schema.features)
    j = table.header.index(schema.target)
    base = os.path.basename(table.where)
    if schema.task == "regression":
        values = [_cell(table, line, schema.target, cells[j]) for line, cells in table.rows]
        dataset = Dataset.from_rows(rows, values, None, base)
        return CsvData(dataset, schema, table.sha256, None)
    labels = schema.labels or ()
    integer = all(int_text(label) is not None for label in labels)
    position = {label: k for k, label in enumerate(labels)}
    indices: list[int] = []
    for line, cells in table.rows:
        text = cells[j].strip()
        as_int = int_text(text) if integer else None
        key = str(as_int) if as_int is not None else text
        if key not in position:
            raise CsvError(
                f"{table.where} line {line}, column {schema.target!r}: the label {text!r} is not one "
                f"the model knows ({', '.join(labels)})"
            )
        indices.append(position[key])
    return CsvData(Dataset.from_rows(rows, indices, len(labels), base), schema, table.sha256, None)


def read_csv_inputs(
    path: str | os.PathLike[str],
    features: Sequence[str] | None,
    *,
    ignore: Sequence[str] = (),
    max_bytes: int = MAX_CSV_BYTES,
) -> CsvInputs:
    """The feature rows of the CSV file at ``path`` (to predict on).

    With ``features`` the file must have those columns (in any order), may have the
    columns in ``ignore`` (a target, say), which are not read, and no others; rows come
    in ``features``' order. With ``features=None`` every column is a feature, in file order.
    """
    table = _read_table(path, max_bytes)
    names = table.header if features is None else tuple(features)
    _check_columns(table, names, ignore)
    return CsvInputs(_features(table, names), names, table.sha256)
