"""Tests for functional_nn.cli.plot: the training figure, its atomic write, and the missing-extra message."""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path

import pytest

from functional_nn import random
from functional_nn.cli import Config, Setup, build
from functional_nn.cli.plot import (
    MISSING_MATPLOTLIB,
    PLOT_FILENAME,
    class_margins,
    class_names,
    feature_names,
    save_plot,
)
from functional_nn.functional import argmax
from functional_nn.mlp import MLP, Params
from functional_nn.train import EpochLog

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RESOLUTION = 40  # a coarse boundary grid keeps the tests fast


def _setup(dataset: str, hidden: tuple[int, ...] = (8,)) -> tuple[Setup, Params]:
    setup = build(Config(dataset=dataset, epochs=1, hidden=hidden))
    return setup, setup.model.init(random.key(3))


def _history(epochs: int, *, classify: bool = True) -> list[EpochLog]:
    def accuracy(e: int, top: float) -> float:
        return top * (1 - math.exp(-e)) if classify else math.nan

    return [
        EpochLog(e, 1.0 / (e + 1), accuracy(e + 1, 0.99), 1.2 / (e + 1), accuracy(e + 1, 0.95), 0.1)
        for e in range(epochs)
    ]


def _check_png(path: str, folder: Path, min_width: int) -> None:
    assert path == os.path.join(str(folder), PLOT_FILENAME)
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert 10_000 < len(data) < 2_000_000
    width = int.from_bytes(data[16:20], "big")  # the IHDR chunk follows the signature
    height = int.from_bytes(data[20:24], "big")
    assert width >= min_width and 400 <= height <= 800
    assert sorted(os.listdir(folder)) == [PLOT_FILENAME]  # no temporary files left
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600


# --- without matplotlib ------------------------------------------------------------------------


def test_missing_matplotlib_gives_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup, params = _setup("moons")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise
    with pytest.raises(ImportError) as caught:
        save_plot(str(tmp_path), setup, params, _history(2))
    message = str(caught.value)
    assert message == MISSING_MATPLOTLIB
    assert message == "--plot needs matplotlib: pip install 'functional-nn[plot]'"
    assert "\n" not in message
    assert os.listdir(tmp_path) == []


def test_class_margins_are_positive_exactly_for_the_predicted_class() -> None:
    model = MLP(2, (6, 3), activation="tanh")
    params = model.init(random.key(7))
    # 8 points a side miss the origin, where zero biases make all logits tie
    xs, ys, margins = class_margins(model, params, (-2.0, 2.0), (-1.0, 3.0), 8)
    assert (xs[0], xs[-1], ys[0], ys[-1]) == (-2.0, 2.0, -1.0, 3.0)
    assert len(margins) == 3 and all(len(m) == 8 and all(len(row) == 8 for row in m) for m in margins)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            predicted = argmax(model.apply(params, (x, y)))
            assert [c for c in range(3) if margins[c][i][j] > 0] == [predicted]


def test_class_margins_rejects_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="2 inputs"):
        class_margins(MLP(3, (2,)), MLP(3, (2,)).init(random.key(0)), (0.0, 1.0), (0.0, 1.0))
    model = MLP(2, (2,))
    with pytest.raises(ValueError, match="resolution"):
        class_margins(model, model.init(random.key(0)), (0.0, 1.0), (0.0, 1.0), 1)


# --- with matplotlib ---------------------------------------------------------------------------


@pytest.fixture
def matplotlib_installed() -> None:
    pytest.importorskip("matplotlib")


@pytest.mark.usefixtures("matplotlib_installed")
def test_two_feature_classification_has_a_boundary_panel(tmp_path: Path) -> None:
    setup, params = _setup("moons")
    path = save_plot(str(tmp_path), setup, params, _history(5), resolution=RESOLUTION)
    _check_png(path, tmp_path, min_width=1800)  # three panels


@pytest.mark.usefixtures("matplotlib_installed")
def test_digits_has_curves_only(tmp_path: Path) -> None:
    setup, params = _setup("digits")
    path = save_plot(str(tmp_path), setup, params, _history(3))
    _check_png(path, tmp_path, min_width=1000)
    width = int.from_bytes(Path(path).read_bytes()[16:20], "big")
    assert width < 1500  # two panels, no boundary


@pytest.mark.usefixtures("matplotlib_installed")
def test_regression_has_a_fit_panel(tmp_path: Path) -> None:
    setup, params = _setup("sine")
    path = save_plot(str(tmp_path), setup, params, _history(4, classify=False))
    _check_png(path, tmp_path, min_width=1000)


@pytest.mark.usefixtures("matplotlib_installed")
def test_short_histories_and_rewrites(tmp_path: Path) -> None:
    setup, params = _setup("spirals")
    save_plot(str(tmp_path), setup, params, [], resolution=RESOLUTION)
    path = save_plot(str(tmp_path), setup, params, _history(1), resolution=RESOLUTION)  # replaces it
    _check_png(path, tmp_path, min_width=1800)


@pytest.mark.usefixtures("matplotlib_installed")
def test_an_unwritable_folder_raises_oserror_and_leaves_nothing(tmp_path: Path) -> None:
    setup, params = _setup("digits")
    missing = tmp_path / "missing"
    with pytest.raises(OSError):
        save_plot(str(missing), setup, params, _history(2))
    assert os.listdir(tmp_path) == []


@pytest.mark.usefixtures("matplotlib_installed")
def test_a_failed_render_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Figure, "savefig", broken)
    setup, params = _setup("digits")
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_plot(str(tmp_path), setup, params, _history(2))
    assert os.listdir(tmp_path) == []


def test_a_data_files_labels_and_columns_name_the_legend_and_axes(tmp_path: Path) -> None:
    data = tmp_path / "m.csv"
    moons = build(Config(dataset="moons", hidden=(4,)))
    rows = [*moons.train, *moons.validation, *moons.test]
    data.write_text("u,v,kind\n" + "".join(f"{x!r},{y!r},{'ab'[int(t)]}\n" for (x, y), t in rows))
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    config = Config(
        dataset="csv", hidden=(4,), data=str(data), data_sha256=sha, target="kind", task="classification"
    )
    setup = build(config)
    assert (class_names(setup), feature_names(setup)) == (["a", "b"], ["u", "v"])
    assert (class_names(moons), feature_names(moons)) == (["class 0", "class 1"], ["feature 1", "feature 2"])
