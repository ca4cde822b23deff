"""A picture of a training run: loss and accuracy curves, and what the model learned.

:func:`save_plot` writes ``training.png``: the loss per epoch (train and
validation), the accuracy in percent for classification, and one more panel when
the data can be drawn — the decision boundary over the (standardized) plane for
2-D classification sets, or the fitted curve through the data for 1-D regression.

matplotlib is an optional extra (``pip install 'functional-nn[plot]'``); it is
imported only when a plot is made, with the non-interactive Agg canvas, so no
display is needed and no global matplotlib state is touched.
"""

from __future__ import annotations

import errno
import io
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from functional_nn.cli.assembly import RunModel, Setup, describe_model
from functional_nn.datasets import linspace
from functional_nn.objective import Params
from functional_nn.serialization import CheckpointError, write_atomically
from functional_nn.train import EpochLog, evaluate, outputs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MISSING_MATPLOTLIB", "PLOT_FILENAME", "class_margins", "save_plot"]

PLOT_FILENAME = "training.png"
"""The name of the file :func:`save_plot` writes into its folder."""

MISSING_MATPLOTLIB = "--plot needs matplotlib: pip install 'functional-nn[plot]'"
"""The ImportError message when matplotlib is not installed."""

DPI = 120
PANEL_SIZE = (5.2, 4.6)  # inches per panel
BOUNDARY_WIDTH = 1.1  # the boundary panel (square plot plus legend) is wider
TRAIN_COLOR = "tab:blue"
VALIDATION_COLOR = "tab:orange"
BOUNDARY_ALPHA = 0.28
PADDING = 0.08  # around the data in the boundary panel, as a fraction of its spread


def class_margins(
    model: RunModel,
    params: Params,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    resolution: int = 150,
) -> tuple[list[float], list[float], list[list[list[float]]]]:
    """How strongly the model predicts each class on a ``resolution`` x ``resolution`` grid.

    Returns the grid's x values, its y values and ``margins[c][i][j]``: class ``c``'s
    logit at ``(xs[j], ys[i])`` minus the largest other logit (rows follow y, as
    matplotlib's ``contourf`` expects). It is positive exactly where ``c`` is the
    predicted class, so its zero level is the decision boundary, and smooth, so the
    boundary can be drawn without a pixel staircase.

    >>> from functional_nn.mlp import MLP
    >>> from functional_nn.random import key
    >>> model = MLP(2, (4, 3))
    >>> xs, ys, margins = class_margins(model, model.init(key(0)), (-1.0, 1.0), (0.0, 2.0), 5)
    >>> xs[0], xs[-1], ys[-1], len(margins), len(margins[0]), len(margins[0][0])
    (-1.0, 1.0, 2.0, 3, 5, 5)
    """
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    if model.n_in != 2 or model.n_out < 2:
        raise ValueError(f"class margins need a classifier with 2 inputs, not {model!r}")
    xs = linspace(*x_range, resolution)
    ys = linspace(*y_range, resolution)
    k = model.n_out
    margins = [[[0.0] * resolution for _ in ys] for _ in range(k)]
    grid = iter(outputs(model, params, [(x, y) for y in ys for x in xs]))
    for i in range(len(ys)):
        for j in range(len(xs)):
            logits = list(next(grid))
            top = max(range(k), key=logits.__getitem__)
            best = logits[top]
            runner_up = max(v for c, v in enumerate(logits) if c != top)
            for c in range(k):
                margins[c][i][j] = logits[c] - (runner_up if c == top else best)
    return xs, ys, margins


def save_plot(
    out_dir: str, setup: Setup, params: Params, history: Sequence[EpochLog], *, resolution: int = 150
) -> str:
    """Write ``training.png`` into ``out_dir`` (atomically) and return its path.

    ``history`` gives the curves; ``setup`` the data, model and standardizer the
    ``params`` belong to. ``resolution`` is the side of the decision-boundary grid.
    Raises ImportError with an install hint when matplotlib is missing, and
    OSError when ``out_dir`` cannot be written.
    """
    figure_class = _import_matplotlib()
    data = setup.train
    classify = data.num_classes is not None
    widths = [1.0, 1.0] if classify else [1.0]  # loss, and accuracy for classification
    extra: str | None = None
    if classify and data.num_features == 2:
        extra = "boundary"
        widths.append(BOUNDARY_WIDTH)
    elif not classify and data.num_features == 1:
        extra = "curve"
        widths.append(1.0)
    fig = figure_class(figsize=(PANEL_SIZE[0] * sum(widths), PANEL_SIZE[1]), dpi=DPI)
    axes = fig.subplots(1, len(widths), squeeze=False, width_ratios=widths)[0]
    _loss_panel(axes[0], history, "cross-entropy" if classify else "mean squared error")
    if classify:
        _accuracy_panel(axes[1], history)
    if extra == "boundary":
        _boundary_panel(axes[-1], setup, params, resolution)
    elif extra == "curve":
        _curve_panel(axes[-1], setup, params)
    fig.suptitle(_headline(setup, params, history), fontsize=12, fontweight="bold")
    fig.tight_layout()
    path = os.path.join(out_dir, PLOT_FILENAME)
    _save_atomically(fig, path)
    return path


# --- matplotlib, lazily ---------------------------------------------------------------------


def _import_matplotlib() -> type[Figure]:
    """matplotlib's Figure class behind an Agg canvas; a one-line ImportError without it."""
    try:
        import matplotlib  # noqa: F401  (the package first: its submodules may be cached)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        if error.name is None or error.name.split(".")[0] == "matplotlib":
            raise ImportError(MISSING_MATPLOTLIB) from error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ImportError(f"--plot needs matplotlib, which failed to import: {reason}") from error

    class AggFigure(Figure):
        """A Figure drawn by the Agg canvas, independent of pyplot and its backend."""

        def __init__(self, *, figsize: tuple[float, float], dpi: float) -> None:
            super().__init__(figsize=figsize, dpi=dpi)
            FigureCanvasAgg(self)

    return AggFigure


def _save_atomically(fig: Figure, path: str) -> None:
    """Render ``fig`` as PNG and write it with :func:`write_atomically` (an OSError if it cannot)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    try:
        write_atomically(path, buffer.getvalue())
    except CheckpointError as error:
        cause = error.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(error)
        code = cause.errno if isinstance(cause, OSError) and cause.errno else errno.EIO
        raise OSError(code, f"cannot write {path}: {reason}") from error


# --- panels -----------------------------------------------------------------------------------


def _headline(setup: Setup, params: Params, history: Sequence[EpochLog]) -> str:
    model = setup.model
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    test_loss, test_accuracy = evaluate(model, params, setup.test)
    score = f"test MSE {test_loss:.4f}" if math.isnan(test_accuracy) else f"test accuracy {test_accuracy:.1%}"
    return f"{setup.train.name}  ·  {describe_model(model)}  ·  {epochs}  ·  {score}"


def _epochs(history: Sequence[EpochLog]) -> list[int]:
    return [log.epoch + 1 for log in history]


def _style_epoch_axis(ax: Axes, history: Sequence[EpochLog]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if not history:
        ax.text(0.5, 0.5, "no finished epochs", ha="center", va="center", transform=ax.transAxes, color="0.4")
    elif len(history) == 1:
        only = history[0].epoch + 1
        ax.set_xlim(only - 1, only + 1)


def _marker(history: Sequence[EpochLog]) -> str:
    return "o" if len(history) <= 25 else ""


def _finite(values: Sequence[float]) -> bool:
    return any(math.isfinite(v) for v in values)


def _loss_panel(ax: Axes, history: Sequence[EpochLog], loss_name: str) -> None:
    epochs = _epochs(history)
    train = [log.train_loss for log in history]
    val = [log.val_loss for log in history]
    marker = _marker(history)
    if _finite(train):
        ax.plot(epochs, train, marker=marker, ms=4, lw=2, color=TRAIN_COLOR, label=f"train ({train[-1]:.4f})")
    if _finite(val):
        ax.plot(
            epochs,
            val,
            marker=marker,
            ms=4,
            lw=2,
            color=VALIDATION_COLOR,
            label=f"validation ({val[-1]:.4f})",
        )
        best = min(range(len(val)), key=lambda i: val[i] if math.isfinite(val[i]) else math.inf)
        if len(history) > 1:
            ax.plot(
                epochs[best],
                val[best],
                ls="",
                marker="*",
                ms=14,
                color=VALIDATION_COLOR,
                mec="black",
                mew=0.8,
                zorder=4,
                label=f"best validation (epoch {epochs[best]})",
            )
    positive = [v for v in (*train, *val) if math.isfinite(v) and v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_yscale("log")
    ax.set_title("Loss")
    ax.set_ylabel(f"{loss_name} (log scale)" if ax.get_yscale() == "log" else loss_name)
    _style_epoch_axis(ax, history)
    if history:
        ax.legend(loc="best", frameon=True, framealpha=0.9)


def _accuracy_panel(ax: Axes, history: Sequence[EpochLog]) -> None:
    from matplotlib.ticker import PercentFormatter

    epochs = _epochs(history)
    marker = _marker(history)
    for values, color, name in (
        ([100 * log.train_accuracy for log in history], TRAIN_COLOR, "train"),
        ([100 * log.val_accuracy for log in history], VALIDATION_COLOR, "validation"),
    ):
        if _finite(values):
            ax.plot(
                epochs, values, marker=marker, ms=4, lw=2, color=color, label=f"{name} ({values[-1]:.1f}%)"
            )
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    bottom, top = ax.get_ylim()
    ax.set_ylim(max(bottom, 0.0), min(top, 101.0))
    ax.set_title("Accuracy")
    ax.set_ylabel("accuracy")
    _style_epoch_axis(ax, history)
    if history:
        ax.legend(loc="best", frameon=True, framealpha=0.9)


def _class_colors(k: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def _boundary_panel(ax: Axes, setup: Setup, params: Params, resolution: int) -> None:
    from matplotlib.lines import Line2D

    k = setup.train.num_classes or 2
    colors = _class_colors(k)
    points = [*setup.train.inputs, *setup.test.inputs]
    x_range, y_range = _square(_padded([row[0] for row in points]), _padded([row[1] for row in points]))
    xs, ys, margins = class_margins(setup.model, params, x_range, y_range, resolution)
    for c, margin in enumerate(margins):
        peak = max(max(row) for row in margin)
        if peak <= 0.0:  # never predicted in view
            continue
        ax.contourf(xs, ys, margin, levels=[0.0, peak + 1.0], colors=[colors[c]], alpha=BOUNDARY_ALPHA)
        ax.contour(xs, ys, margin, levels=[0.0], colors="0.2", linewidths=1.0, alpha=0.7)
    for data, marker, size, edge in ((setup.train, "o", 26, "white"), (setup.test, "D", 30, "black")):
        ax.scatter(
            [row[0] for row in data.inputs],
            [row[1] for row in data.inputs],
            c=[colors[int(t)] for t in data.targets],
            marker=marker,
            s=size,
            edgecolors=edge,
            linewidths=0.7,
            zorder=3,
        )
    names = class_names(setup)
    handles = [
        Line2D([], [], ls="", marker="s", ms=9, mfc=colors[c], mec="0.3", alpha=0.9, label=names[c])
        for c in range(k)
    ]
    handles += [
        Line2D([], [], ls="", marker="o", ms=6, mfc="0.6", mec="white", label=f"train ({len(setup.train)})"),
        Line2D([], [], ls="", marker="D", ms=5, mfc="0.6", mec="black", label=f"test ({len(setup.test)})"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.set_aspect("equal", adjustable="box")
    ax.set_anchor("W")  # the legend takes the room to the right
    ax.set_title("Decision boundary")
    first, second = feature_names(setup)[:2]
    ax.set_xlabel(f"{first} (standardized)")
    ax.set_ylabel(f"{second} (standardized)")


def class_names(setup: Setup) -> list[str]:
    """The legend's class names: a data file's labels, else ``class 0``, ``class 1``, ..."""
    labels = setup.schema.labels if setup.schema is not None else None
    if labels is not None:
        return list(labels)
    return [f"class {c}" for c in range(setup.train.num_classes or 2)]


def feature_names(setup: Setup) -> list[str]:
    """The axes' feature names: a data file's columns, else ``feature 1``, ``feature 2``, ..."""
    if setup.schema is not None:
        return list(setup.schema.features)
    return [f"feature {j + 1}" for j in range(setup.train.num_features)]


def _curve_panel(ax: Axes, setup: Setup, params: Params) -> None:
    mean, scale = setup.standardizer.mean[0], setup.standardizer.scale[0]
    for data, marker, color, size, label in (
        (setup.train, "o", TRAIN_COLOR, 16, "train"),
        (setup.test, "D", VALIDATION_COLOR, 20, "test"),
    ):
        ax.scatter(
            [row[0] * scale + mean for row in data.inputs],
            [float(t) for t in data.targets],
            marker=marker,
            s=size,
            color=color,
            edgecolors="white",
            linewidths=0.5,
            alpha=0.85,
            label=f"{label} ({len(data)})",
            zorder=2,
        )
    lo, hi = _padded([row[0] for row in (*setup.train.inputs, *setup.test.inputs)], padding=0.03)
    grid = linspace(lo, hi, 400)
    fitted = [out[0] for out in outputs(setup.model, params, [(x,) for x in grid])]
    ax.plot([x * scale + mean for x in grid], fitted, color="black", lw=2.2, label="model", zorder=3)
    ax.set_title("Model fit")
    ax.set_xlabel(feature_names(setup)[0] if setup.schema is not None else "x")
    ax.set_ylabel(setup.schema.target if setup.schema is not None else "target")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", framealpha=0.9)


# --- small helpers ----------------------------------------------------------------------------


def _padded(values: Sequence[float], padding: float = PADDING) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    margin = padding * (hi - lo) if hi > lo else 1.0
    return lo - margin, hi + margin


def _square(x_range: tuple[float, float], y_range: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """Both ranges widened about their centres to the larger span (a square at equal aspect)."""
    half = max(x_range[1] - x_range[0], y_range[1] - y_range[0]) / 2
    return tuple(((lo + hi) / 2 - half, (lo + hi) / 2 + half) for lo, hi in (x_range, y_range))
