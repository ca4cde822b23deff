"""What a run shows as it goes: the progress bar, one line per epoch, and metrics.csv."""

from __future__ import annotations

import csv
import importlib
import io
import math
from collections.abc import Callable, Sequence
from typing import TextIO, cast

from functional_nn.train import BatchEnd, EpochEnd, EpochLog, Event


class Progress:
    """One summary line per epoch on ``out``, and a per-epoch bar (tqdm, when installed) on ``bar``.

    ``bar`` is where the bar is drawn (``None``: no bar); the commands pass stderr when
    it is a terminal or ``--progress`` asks for it.
    """

    def __init__(self, total_epochs: int, out: TextIO, quiet: bool, bar: TextIO | None = None) -> None:
        self.total_epochs = total_epochs
        self.out = out
        self.quiet = quiet
        self.bar_stream = bar
        self.bar: object | None = None
        self.tqdm: Callable[..., object] | None = None
        if bar is not None:
            try:
                self.tqdm = importlib.import_module("tqdm").tqdm
            except ImportError:  # plain epoch lines without the optional progress extra
                self.tqdm = None

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, BatchEnd):
            self._batch(event)
        else:
            self._epoch(event)

    def _batch(self, event: BatchEnd) -> None:
        if self.tqdm is None:
            return
        if event.step == 0:
            self.bar = self.tqdm(
                total=event.steps,
                desc=f"epoch {event.epoch + 1}/{self.total_epochs}",
                unit="batch",
                file=self.bar_stream,
                leave=False,
                dynamic_ncols=True,
            )
        bar = cast("_Bar", self.bar)
        postfix = {"loss": f"{event.metrics['loss']:.4f}"}
        if "accuracy" in event.metrics:
            postfix["acc"] = f"{event.metrics['accuracy']:.3f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    def _epoch(self, event: EpochEnd) -> None:
        if self.bar is not None:
            cast("_Bar", self.bar).close()
            self.bar = None
        print(format_epoch(event.log, self.total_epochs), file=self.out, flush=True)


class _Bar:  # the part of tqdm's interface used above
    def set_postfix(self, postfix: dict[str, str], refresh: bool) -> None: ...
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def format_epoch(log: EpochLog, total: int) -> str:
    """One line per epoch: losses, accuracies and time."""
    width = len(str(total))
    parts = [f"epoch {log.epoch + 1:>{width}}/{total}", f"train loss {log.train_loss:.4f}"]
    if not math.isnan(log.train_accuracy):
        parts.append(f"acc {_pct(log.train_accuracy)}")
    parts.append(f"val loss {log.val_loss:.4f}")
    if not math.isnan(log.val_accuracy):
        parts.append(f"acc {_pct(log.val_accuracy)}")
    parts.append(f"{log.seconds:.1f}s")
    return " | ".join(parts)


METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def metrics_csv(history: Sequence[EpochLog]) -> str:
    """The per-epoch metrics as CSV text (epochs counted from 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for log in history:
        writer.writerow(
            [
                log.epoch + 1,
                repr(log.train_loss),
                repr(log.train_accuracy),
                repr(log.val_loss),
                repr(log.val_accuracy),
                f"{log.seconds:.3f}",
            ]
        )
    return buffer.getvalue()
