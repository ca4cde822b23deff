"""Reading users' CSV files: tasks and labels as documented, every bad file one CsvError naming
the file, line and column, and a round trip of any table of finite floats."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_nn.csv_data import (
    CsvError,
    CsvSchema,
    read_csv,
    read_csv_inputs,
    read_csv_like,
)
from functional_nn.datasets import IRIS_CLASS_NAMES, IRIS_FEATURE_NAMES, iris
from tape.validate import int_text, number_text


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_iris(path: Path) -> Path:
    """Iris as a user would have it: named columns, species as text."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([*IRIS_FEATURE_NAMES, "species"])
        for row, label in iris():
            writer.writerow([*row, IRIS_CLASS_NAMES[int(label)]])
    return path


def test_iris_with_string_labels_reads_as_the_shipped_set(tmp_path: Path) -> None:
    path = write_iris(tmp_path / "iris.csv")
    data = read_csv(path)
    assert data.schema == CsvSchema(IRIS_FEATURE_NAMES, "species", "classification", IRIS_CLASS_NAMES)
    assert data.dataset.inputs == iris().inputs
    assert data.dataset.labels() == iris().labels()  # the sorted names are the shipped order
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.inferred is not None and "not numbers" in data.inferred
    assert data.dataset.name == "iris.csv"


def test_integer_labels_sort_by_value_and_the_target_is_chosen_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "label,a,b\n10,1,2\n2,3,4\n10,5,6\n-1,7,8\n")
    data = read_csv(path, target="label")
    assert data.schema.labels == ("-1", "2", "10")
    assert data.schema.features == ("a", "b")
    assert data.dataset.labels() == (2, 1, 2, 0)
    assert list(data.dataset.inputs[3]) == [7.0, 8.0]
    assert data.inferred == "the target column 'label' holds integers"


def test_a_non_integer_numeric_target_is_inferred_regression(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "x,y\n1,0.5\n2,1\n3,1.5e0\n")
    data = read_csv(path)
    assert data.schema.task == "regression" and data.schema.labels is None
    assert data.dataset.num_classes is None
    assert tuple(data.dataset.targets) == (0.5, 1.0, 1.5)
    assert data.inferred == "the target column 'y' holds numbers that are not all integers"


def test_a_given_task_overrides_the_inference(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "x,y\n1,3\n2,4\n3,3\n")
    regression = read_csv(path, task="regression")
    assert regression.schema.task == "regression" and regression.inferred is None
    assert tuple(regression.dataset.targets) == (3.0, 4.0, 3.0)
    assert read_csv(path).schema.task == "classification"


def test_blank_lines_and_spaces_around_cells_are_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "\n x , y \n\n 1 , a \n2,b\n\n")
    data = read_csv(path)
    assert data.schema.features == ("x",) and data.schema.target == "y"
    assert data.dataset.labels() == (0, 1)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "is empty: it needs a header line"),
        ("\n\n", {}, "is empty: it needs a header line"),
        ("a,b,c\n", {}, "has a header (line 1) but no rows of data"),
        ("a,b\n1,x\nno,y\n", {}, "line 3, column 'a': 'no' is not a number"),
        ("a,b\n1,x\n,y\n", {}, "line 3, column 'a': '' is empty"),
        ("a,b\n1,x\n2,y,3\n", {}, "line 3: 3 fields, but the header (line 1) names 2 columns"),
        ("a,b\n1,x\n2\n", {}, "line 3: 1 fields, but the header (line 1) names 2 columns"),
        ("a,b\n1,x\n2,y\n", {"target": "c"}, "line 1: no column named 'c' for the target"),
        ("a,b\n1,x\n2,x\n", {}, "column 'b': every row (lines 2 to 3) has the label 'x'"),
        ("a,b\n1,7\n2,7\n", {}, "has the label '7'; classification needs at least two classes"),
        ("a,b\nnan,x\n2,y\n", {}, "line 2, column 'a': 'nan' is not a finite number"),
        ("a,b\n1,x\n-inf,y\n", {}, "line 3, column 'a': '-inf' is not a finite number"),
        ("a,b\n1,0.5\n2,inf\n", {"task": "regression"}, "line 3, column 'b': 'inf' is not a finite"),
        ("a,b\n1,2\n2,z\n", {"task": "regression"}, "'z' is not a number (a regression target must"),
        ("a,b,a\n1,2,3\n", {}, "line 1, column 3: the name 'a' is also column 1's"),
        ("a,,b\n1,2,3\n", {}, "line 1, column 2: the column has no name"),
        ("a,b\n1,\n2,y\n", {}, "line 2, column 'b': the class label is empty"),
        ("b\n1\n2\n", {}, "only the target column 'b'; there are no features"),
        ('a,b\n1,"x\n', {}, "line 2: not valid CSV"),
        ("a,b\n1_000,x\n2,y\n", {}, "line 2, column 'a': '1_000' is not a number"),
        ("a,b\n1,x\n\u0663,y\n", {}, "line 3, column 'a': '\u0663' is not a number"),
        ("a,b\n1,1_0\n2,2_0\n", {"task": "regression"}, "line 2, column 'b': '1_0' is not a number"),
    ],
)
def test_a_bad_file_is_one_error_naming_file_line_and_column(
    tmp_path: Path, text: str, kwargs: dict[str, str], message: str
) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(CsvError) as caught:
        read_csv(path, **kwargs)  # type: ignore[arg-type]  # task is a str here
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,b\n1,x\n2,\xe9t\xe9\n")
    with pytest.raises(CsvError, match=r"latin\.csv line 3: not UTF-8 text"):
        read_csv(path)


def test_only_regular_files_within_the_size_limit_are_read(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="it is a folder, not a regular file"):
        read_csv(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(CsvError, match=r"it is a FIFO \(named pipe\), not a regular file"):
        read_csv(fifo)  # refused without waiting for a writer
    path = _write(tmp_path / "big.csv", "a,b\n1,x\n2,y\n")
    with pytest.raises(CsvError, match="is 12 bytes, over the limit of 11 bytes"):
        read_csv(path, max_bytes=11)
    assert read_csv(path, max_bytes=12).dataset.num_features == 1
    with pytest.raises(CsvError, match="No such file"):
        read_csv(tmp_path / "missing.csv")


def test_read_csv_like_takes_the_schema_columns_in_any_order(tmp_path: Path) -> None:
    schema = read_csv(write_iris(tmp_path / "iris.csv")).schema
    names = [*reversed(IRIS_FEATURE_NAMES)]
    other = _write(tmp_path / "o.csv", f"species,{','.join(names)}\nvirginica,1,2,3,4\nvirginica,5,6,7,8\n")
    data = read_csv_like(other, schema)
    assert data.dataset.labels() == (2, 2)  # one class is fine here
    assert list(data.dataset.inputs[0]) == [4.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("a,y", "1,x", "line 1: missing the column 'b'"),
        ("y", "x", "line 1: missing the columns 'a', 'b'"),
        ("a,b,c,y", "1,2,3,x", "line 1: the column 'c' is not among the model's (a, b, y)"),
        ("a,b,y", "1,2,z", "line 2, column 'y': the label 'z' is not one the model knows (x, w)"),
    ],
)
def test_read_csv_like_names_missing_extra_columns_and_unknown_labels(
    tmp_path: Path, header: str, row: str, message: str
) -> None:
    schema = CsvSchema(("a", "b"), "y", "classification", ("x", "w"))
    with pytest.raises(CsvError) as caught:
        read_csv_like(_write(tmp_path / "o.csv", f"{header}\n{row}\n"), schema)
    assert message in str(caught.value)


def test_integer_labels_of_another_file_match_by_value(tmp_path: Path) -> None:
    schema = CsvSchema(("a",), "y", "classification", ("-1", "2", "10"))
    data = read_csv_like(_write(tmp_path / "o.csv", "a,y\n1,+10\n2, 2\n3,-1\n"), schema)
    assert data.dataset.labels() == (2, 1, 0)


def test_read_csv_inputs_ignores_the_target_column_if_present(tmp_path: Path) -> None:
    with_target = _write(tmp_path / "t.csv", "b,y,a\n1,x,2\n3,w,4\n")
    without = _write(tmp_path / "n.csv", "a,b\n2,1\n4,3\n")
    for path in (with_target, without):
        rows = read_csv_inputs(path, ("a", "b"), ignore=("y",)).rows
        assert [list(r) for r in rows] == [[2.0, 1.0], [4.0, 3.0]]
    assert read_csv_inputs(without, None).features == ("a", "b")
    with pytest.raises(CsvError, match="missing the column 'b'"):
        read_csv_inputs(_write(tmp_path / "m.csv", "a,y\n1,x\n"), ("a", "b"), ignore=("y",))


_CELL = st.floats(allow_nan=False, allow_infinity=False)


@given(
    rows=st.integers(1, 6).flatmap(
        lambda width: st.lists(
            st.lists(_CELL, min_size=width + 1, max_size=width + 1), min_size=1, max_size=8
        )
    )
)
def test_any_table_of_finite_floats_round_trips(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[float]]
) -> None:
    path = tmp_path_factory.mktemp("round") / "t.csv"
    width = len(rows[0]) - 1
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([f"f{j}" for j in range(width)] + ["target"])
        writer.writerows([[repr(x) for x in row] for row in rows])
    if width == 0:
        with pytest.raises(CsvError, match="there are no features"):
            read_csv(path, task="regression")
        return
    data = read_csv(path, task="regression")
    assert [list(row) for row in data.dataset.inputs] == [row[:-1] for row in rows]
    assert list(data.dataset.targets) == [row[-1] for row in rows]


def test_number_and_int_text() -> None:
    assert number_text("1e3", "w") == 1000.0
    with pytest.raises(ValueError, match=r"^w: 'x' is not a number$"):
        number_text("x", "w")
    with pytest.raises(ValueError, match=r"^w: 'infinity' is not a finite number$"):
        number_text(" infinity", "w")
    for text in ("1_000", "\u0663", "\uff11\uff12", "1\u00a0000"):  # what float reads and a CSV does not hold
        with pytest.raises(ValueError, match=r"^w: .* is not a number$"):
            number_text(text, "w")
    assert number_text("\t-1.5E+2 ", "w") == -150.0
    assert [int_text(t) for t in ("0", "+3", "-0", "٣", "1e3", "", " 12 ")] == [0, 3, 0, None, None, None, 12]
