"""``fnn`` on a user's CSV files, each command a real subprocess: ``train --data``, resuming and
evaluating only while the file is unchanged, ``evaluate --data`` on another file, ``predict``
with the user's label names and ``--input-file``, regression's RMSE and MAE, and every bad
file or flag one line on stderr."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functional_nn import random
from functional_nn.cli.checkpoints import RUN_FORMAT, read_run
from functional_nn.datasets import IRIS_CLASS_NAMES, IRIS_FEATURE_NAMES, iris, sine
from functional_nn.serialization import load_checkpoint
from tests.functional_nn.cli_helpers import Job, Run, rewrite_checkpoint, run_cli, run_many

NET = ("--hidden", "8", "--no-progress")


def write_iris(path: Path, *, columns: tuple[str, ...] = (*IRIS_FEATURE_NAMES, "species")) -> Path:
    """Iris with named columns (in the order given) and the species as text."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row, label in iris():
            cells = dict(
                zip(IRIS_FEATURE_NAMES, map(repr, row), strict=True), species=IRIS_CLASS_NAMES[int(label)]
            )
            writer.writerow([cells[c] for c in columns])
    return path


def write_sine(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["x", "y"])
        writer.writerows([repr(row[0]), repr(t)] for row, t in sine(120, key=random.key(3)))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The training runs the tests read, made concurrently; each folder holds its own data file."""
    base = tmp_path_factory.mktemp("csv")
    for name in ("iris-csv", "iris-short"):
        (base / name).mkdir()
        write_iris(base / name / "iris.csv")
    (base / "sine-csv").mkdir()
    write_sine(base / "sine-csv" / "sine.csv")
    jobs = {
        "iris-csv": Job(
            ("train", "--data", "iris.csv", *NET, "--epochs", "4", "--out", "out"), base / "iris-csv"
        ),
        "iris-builtin": Job(
            ("train", "--dataset", "iris", *NET, "--epochs", "4", "--out", "out"), base / "builtin"
        ),
        "iris-short": Job(
            ("train", "--data", "iris.csv", *NET, "--epochs", "2", "--out", "out"), base / "iris-short"
        ),
        "sine-csv": Job(
            ("train", "--data", "sine.csv", *NET, "--activation", "tanh", "--epochs", "5", "--out", "out"),
            base / "sine-csv",
        ),
    }
    return run_many(jobs)


def _checkpoint(run: Run) -> Path:
    path = run.ok().out / "checkpoint.json"
    assert path.is_file(), run.describe()
    return path


def test_training_on_the_iris_csv_is_training_on_the_shipped_iris(runs: dict[str, Run]) -> None:
    """Same rows, same order: the same splits, standardization and params, bit for bit."""
    from_file = load_checkpoint(_checkpoint(runs["iris-csv"]))
    shipped = load_checkpoint(_checkpoint(runs["iris-builtin"]))
    assert from_file.params == shipped.params
    assert from_file.metadata["standardizer"] == shipped.metadata["standardizer"]
    tail = [line for line in runs["iris-csv"].lines() if line.startswith("test ")]
    assert tail == [line for line in runs["iris-builtin"].lines() if line.startswith("test ")]


def test_the_config_holds_the_file_path_sha256_target_and_task(runs: dict[str, Run]) -> None:
    run = runs["iris-csv"]
    meta = load_checkpoint(_checkpoint(run)).metadata
    config = meta["config"]
    assert isinstance(config, dict) and meta["run_format"] == RUN_FORMAT == 4
    data = run.cwd / "iris.csv"
    assert config["dataset"] == "csv"
    assert config["data"] == str(data.resolve())
    assert config["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert (config["target"], config["task"]) == ("species", "classification")
    assert meta["columns"] == {"features": list(IRIS_FEATURE_NAMES), "labels": list(IRIS_CLASS_NAMES)}
    lines = run.lines()
    assert lines[0] == (
        "data: 150 rows, 4 features, target 'species': classification into 3 classes "
        "(setosa, versicolor, virginica); task inferred: the target column 'species' holds labels "
        "that are not numbers (--task sets it)"
    )
    assert lines[1].startswith("training iris.csv: 108 train / 12 validation / 30 test examples, MLP 4-8-3")


def test_predict_names_the_users_labels_and_reads_a_file_of_rows(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    checkpoint = _checkpoint(runs["iris-csv"])
    one = run_cli(tmp_path, "predict", str(checkpoint), "--input", "5.1,3.5,1.4,0.2").ok()
    names = [line.split(":")[0] for line in one.lines()]
    assert names == list(IRIS_CLASS_NAMES)
    probabilities = [line.split(": ")[1].split()[0] for line in one.lines()]
    predicted = next(line.split(":")[0] for line in one.lines() if line.endswith("<- predicted"))
    with_target = write_iris(tmp_path / "with.csv")
    without = write_iris(tmp_path / "without.csv", columns=tuple(reversed(IRIS_FEATURE_NAMES)))
    outputs = []
    for path in (with_target, without):
        result = run_cli(tmp_path, "predict", str(checkpoint), "--input-file", str(path)).ok()
        table = list(csv.reader(io.StringIO(result.stdout)))
        assert table[0] == ["predicted", "P(setosa)", "P(versicolor)", "P(virginica)"]
        assert len(table) == 1 + len(iris())
        assert table[1] == [predicted, *probabilities]  # the first row is the one predicted above
        for row in table[1:]:
            assert row[0] in IRIS_CLASS_NAMES and abs(sum(map(float, row[1:])) - 1.0) < 2e-4
            assert row[0] == IRIS_CLASS_NAMES[max(range(3), key=lambda k: float(row[1 + k]))]
        outputs.append(table)
    assert outputs[0] == outputs[1]  # the target column is ignored, the order of columns does not matter


def test_evaluate_scores_the_test_split_or_another_file(runs: dict[str, Run], tmp_path: Path) -> None:
    run = runs["iris-csv"]
    checkpoint = _checkpoint(run)
    split = run_cli(run.cwd, "evaluate", str(checkpoint)).ok().lines()
    assert split[0] == "evaluated on the iris.csv test split (30 examples)"
    trained = {line.split(": ")[0].removeprefix("test "): line.split(": ")[1] for line in run.lines()[-2:]}
    assert split[1] == f"loss: {trained['loss']}" and split[2] == f"accuracy: {trained['accuracy']}"
    assert split[3] == "classes: 0 setosa, 1 versicolor, 2 virginica"
    other = write_iris(tmp_path / "other.csv", columns=("species", *IRIS_FEATURE_NAMES))
    whole = run_cli(tmp_path, "evaluate", str(checkpoint), "--data", str(other)).ok().lines()
    assert whole[0] == "evaluated on all of other.csv (150 examples)"
    matrix = [list(map(int, line.split()[1:])) for line in whole[-3:]]
    assert [sum(row) for row in matrix] == [50, 50, 50]
    short = tmp_path / "short.csv"
    short.write_text("sepal length (cm),species\n5.1,setosa\n")
    bad = run_cli(tmp_path, "evaluate", str(checkpoint), "--data", str(short))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "missing the columns 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'" in bad.stderr


def test_a_changed_data_file_stops_resume_and_evaluate_but_not_predict(runs: dict[str, Run]) -> None:
    run = runs["iris-short"]
    checkpoint = _checkpoint(run)
    data = run.cwd / "iris.csv"
    data.write_text(data.read_text().replace("5.1,3.5", "5.2,3.5", 1))
    for args in (("train", "--resume", str(checkpoint), "--epochs", "3"), ("evaluate", str(checkpoint))):
        result = run_cli(run.cwd, *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.describe()
        assert (
            f"{data.resolve()} has changed since the run trained on it (its SHA-256 is now" in result.stderr
        )
    data.unlink()
    assert run_cli(run.cwd, "predict", str(checkpoint), "--input", "5,3,1,0").ok().lines()
    gone = run_cli(run.cwd, "evaluate", str(checkpoint))
    assert gone.returncode == 2 and "No such file or directory" in gone.stderr


def test_resuming_a_csv_run_gives_the_straight_runs_params(runs: dict[str, Run], tmp_path: Path) -> None:
    folder = tmp_path / "resumed"
    folder.mkdir()
    write_iris(folder / "iris.csv")
    assert run_cli(
        folder, "train", "--data", "iris.csv", *NET, "--epochs", "2", "--out", "out", "--quiet"
    ).ok()
    resumed = run_cli(folder, "train", "--resume", "out/checkpoint.json", "--epochs", "4", "--quiet").ok()
    assert (
        load_checkpoint(folder / "out" / "checkpoint.json").params
        == load_checkpoint(_checkpoint(runs["iris-csv"])).params
    )
    assert resumed.lines()[-1] == runs["iris-csv"].lines()[-1]


def test_regression_is_inferred_and_reports_rmse_and_mae(runs: dict[str, Run], tmp_path: Path) -> None:
    run = runs["sine-csv"]
    lines = run.lines()
    assert lines[0].startswith("data: 120 rows, 1 feature, target 'y': regression; task inferred: the target")
    summary = dict(line.split(": ") for line in lines[-3:])
    loss, rmse, mae = (float(summary[f"test {m}"]) for m in ("loss", "rmse", "mae"))
    assert math.isclose(rmse**2, loss, rel_tol=2e-3) and 0 < mae <= rmse
    evaluated = run_cli(run.cwd, "evaluate", str(_checkpoint(run))).ok().lines()
    assert evaluated[1:] == [
        f"loss: {summary['test loss']}",
        f"rmse: {summary['test rmse']}",
        f"mae: {summary['test mae']}",
    ]
    xs = tmp_path / "xs.csv"
    xs.write_text("x\n0\n1.5\n-1.5\n")
    table = list(
        csv.reader(
            io.StringIO(
                run_cli(tmp_path, "predict", str(_checkpoint(run)), "--input-file", str(xs)).ok().stdout
            )
        )
    )
    assert table[0] == ["predicted"] and len(table) == 4
    single = run_cli(tmp_path, "predict", str(_checkpoint(run)), "--input", "1.5").ok().lines()
    assert single == [f"prediction: {float(table[2][0]):.6g}"]


def test_a_format_2_checkpoint_still_evaluates(runs: dict[str, Run], tmp_path: Path) -> None:
    def to_format_2(payload: dict[str, object]) -> None:
        meta = payload["metadata"]
        assert isinstance(meta, dict)
        del meta["columns"], meta["config"]["target"], meta["config"]["task"], meta["config"]["channels"]
        meta["run_format"] = 2

    old = tmp_path / "v2.json"
    rewrite_checkpoint(_checkpoint(runs["iris-builtin"]), old, to_format_2)
    assert read_run(old).run_format == 2 and read_run(old).schema is None
    then = run_cli(runs["iris-builtin"].cwd, "evaluate", "out/checkpoint.json").ok().lines()
    assert run_cli(tmp_path, "evaluate", str(old)).ok().lines() == then


def test_a_format_3_checkpoint_of_a_data_file_keeps_its_columns(runs: dict[str, Run], tmp_path: Path) -> None:
    def to_format_3(payload: dict[str, object]) -> None:
        meta = payload["metadata"]
        assert isinstance(meta, dict)
        del meta["config"]["channels"]
        meta["run_format"] = 3

    old = tmp_path / "v3.json"
    rewrite_checkpoint(_checkpoint(runs["iris-csv"]), old, to_format_3)
    saved, current = read_run(old), read_run(_checkpoint(runs["iris-csv"]))
    assert saved.run_format == 3 and saved.schema == current.schema is not None
    assert saved.config == current.config and saved.checkpoint.metadata == current.checkpoint.metadata
    then = run_cli(runs["iris-csv"].cwd, "evaluate", "out/checkpoint.json").ok().lines()
    assert run_cli(tmp_path, "evaluate", str(old)).ok().lines() == then


@pytest.mark.parametrize(
    ("text", "flags", "says"),
    [
        ("a,b\n1,x\nz,y\n", (), "bad.csv line 3, column 'a': 'z' is not a number"),
        ("a,b\n1,x\n2,y\n", ("--target", "c"), "bad.csv line 1: no column named 'c' for the target"),
        ("a,b\n1,x\n2,y\n", ("--task", "regression"), "bad.csv line 2, column 'b': 'x' is not a number"),
        ("a,b\n" + "1,x\n2,y\n", (), "bad.csv has 2 rows, too few to split off test and validation rows"),
        ("a,b\n1,x\n2,y\n", ("--dataset", "iris"), "--data and --dataset each name the data to train on"),
        ("", (), "bad.csv is empty"),
        (
            "a,b\n" + "1.7e308,x\n-1.7e308,y\n" * 10,
            (),
            "bad.csv: cannot standardize the features: feature 0: values too large to standardize",
        ),
    ],
)
def test_a_bad_data_file_or_flag_is_one_line(
    tmp_path: Path, text: str, flags: tuple[str, ...], says: str
) -> None:
    (tmp_path / "bad.csv").write_text(text)
    result = run_cli(tmp_path, "train", "--data", "bad.csv", *flags)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.describe()
    assert says in result.stderr and "Traceback" not in result.stderr


def test_inputs_too_far_from_the_training_data_are_one_line(runs: dict[str, Run], tmp_path: Path) -> None:
    """A finite feature whose standardized value overflows is refused, not predicted as nan."""
    checkpoint = str(_checkpoint(runs["iris-csv"]))
    far = "5.1,1.7e308,1.4,0.2"
    far_file = write_iris(tmp_path / "far.csv")
    with far_file.open("a", encoding="utf-8") as stream:
        stream.write(f"{far},setosa\n")
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(IRIS_FEATURE_NAMES) + f"\n5.1,3.5,1.4,0.2\n{far}\n")
    for flags, says in (
        (("predict", checkpoint, "--input", far), "--input: feature 1: 1.7e+308 standardizes to inf"),
        (("predict", checkpoint, "--input-file", str(rows)), "rows.csv row 2: feature 1: 1.7e+308"),
        (("evaluate", checkpoint, "--data", str(far_file)), "far.csv: feature 1: 1.7e+308 standardizes"),
    ):
        result = run_cli(tmp_path, *flags)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.describe()
        assert says in result.stderr and "too far from the training data" in result.stderr, result.describe()
        assert result.stdout == "", result.describe()


def test_data_flags_without_a_file_and_files_for_other_runs_are_refused(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    for flags, says in (
        (("train", "--target", "y"), "--target applies to a data file: add --data FILE.csv"),
        (("train", "--task", "regression"), "--task applies to a data file"),
        (
            ("train", "--resume", str(_checkpoint(runs["iris-csv"])), "--data", "x.csv", "--target", "y"),
            "drop --data, --target (only --epochs",
        ),
        (
            ("evaluate", str(_checkpoint(runs["iris-builtin"])), "--data", "x.csv"),
            "--data needs a run trained on a CSV file (fnn train --data)",
        ),
        (
            ("evaluate", str(_checkpoint(runs["iris-csv"])), "--dataset", "iris"),
            "was trained on iris.csv; evaluate it on a file of the same columns with --data",
        ),
    ):
        result = run_cli(tmp_path, *flags)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.describe()
        assert says in result.stderr
    assert re.search(r"--input-file FILE\.csv", run_cli(tmp_path, "predict", "--help").ok().stdout)


def _set(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        inner = payload["metadata"]
        for key in path[:-1]:
            inner = inner[key]
        inner[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("run_name", "edit", "says"),
    [
        ("iris-csv", _set(("columns",), None), "columns are not an object with features and labels"),
        ("iris-csv", _set(("columns", "labels"), ["setosa"]), "class labels are fewer than two"),
        (
            "iris-csv",
            _set(("columns", "labels"), ["a", "a", "b"]),
            "are not a list of distinct non-empty names",
        ),
        (
            "iris-csv",
            _set(("columns", "features"), ["a", "species"]),
            "feature columns are empty or hold the target",
        ),
        ("iris-csv", _set(("columns", "labels"), ["a", "b", "c", "d"]), "does not fit the model its config"),
        ("iris-csv", _set(("columns", "features"), ["a", "b"]), "does not fit the model its config"),
        ("iris-csv", _set(("config", "task"), "regression"), "has class labels for a regression run"),
        (
            "iris-csv",
            _set(("config", "task"), "clustering"),
            "--task must be one of classification, regression",
        ),
        (
            "iris-csv",
            _set(("config", "target"), None),
            "a data file, its target column and its task go together",
        ),
        ("iris-csv", _set(("config", "dataset"), "iris"), "unknown dataset 'iris'; choose one of: csv"),
        (
            "iris-builtin",
            _set(("columns",), {"features": ["a"], "labels": None}),
            "names data columns but its config",
        ),
    ],
)
def test_tampered_data_columns_are_one_line(
    runs: dict[str, Run], tmp_path: Path, run_name: str, edit: Callable[[dict[str, Any]], None], says: str
) -> None:
    tampered = tmp_path / "checkpoint.json"
    rewrite_checkpoint(_checkpoint(runs[run_name]), tampered, edit)
    result = run_cli(tmp_path, "predict", str(tampered), "--input", "1,2,3,4")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.describe()
    assert says in result.stderr and "Traceback" not in result.stderr, result.describe()


def test_predict_input_file_for_a_builtin_run_takes_the_columns_in_order(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    checkpoint = str(_checkpoint(runs["iris-builtin"]))
    rows = tmp_path / "rows.csv"
    rows.write_text("w,x,y,z\n5.1,3.5,1.4,0.2\n6.3,2.8,5.1,1.5\n")
    table = list(
        csv.reader(
            io.StringIO(run_cli(tmp_path, "predict", checkpoint, "--input-file", str(rows)).ok().stdout)
        )
    )
    assert table[0] == ["predicted", "P(0)", "P(1)", "P(2)"] and len(table) == 3
    single = run_cli(tmp_path, "predict", checkpoint, "--input", "6.3,2.8,5.1,1.5").ok().lines()
    assert [line.split(": ")[1].split()[0] for line in single] == table[2][1:]
    assert table[2][0] == next(line for line in single if "<- predicted" in line).split(":")[0].removeprefix(
        "class "
    )
    rows.write_text("w,x,y\n1,2,3\n")
    wrong = run_cli(tmp_path, "predict", checkpoint, "--input-file", str(rows))
    assert wrong.returncode == 2 and "rows.csv has 3 columns; the model takes 4 features" in wrong.stderr
