"""The results table, the targets from issue 6, and the JSON dump.

One row per workload: the median time per step of each implementation, the
ratios library/baseline, micrograd/library and library/torch, and each target
marked met or not; plus one row for W2's memory per recorded node.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks.measure import Memory, Timing

__all__ = [
    "IMPLEMENTATIONS",
    "RATIOS",
    "Cell",
    "MemoryRow",
    "Row",
    "Target",
    "format_bytes",
    "format_seconds",
    "machine",
    "render",
    "to_json",
    "write_json",
]

IMPLEMENTATIONS = ("library", "baseline", "micrograd", "torch")
RATIOS: dict[str, tuple[str, str]] = {
    "lib/base": ("library", "baseline"),
    "mg/lib": ("micrograd", "library"),
    "lib/torch": ("library", "torch"),
}
"""Each ratio column: (numerator, denominator) implementations, by median time."""


@dataclass(frozen=True)
class Cell:
    """One implementation on one workload: its timing, or why it was not run."""

    timing: Timing | None = None
    skipped: str = ""
    discrepancy: float | None = None
    """Largest difference from the library's result, relative to its scale (``None``: not compared)."""
    tolerance: float = 1e-9

    @property
    def agrees(self) -> bool | None:
        """Whether the result matches the library's within :attr:`tolerance`."""
        return None if self.discrepancy is None else self.discrepancy <= self.tolerance


@dataclass(frozen=True)
class Target:
    """A target of issue 6: ``what`` (a ratio of :data:`RATIOS`, or bytes) ``<=`` or ``>=`` ``threshold``."""

    what: str
    threshold: float
    at_most: bool
    unit: str = "x"
    value: float | None = None

    @property
    def met(self) -> bool | None:
        """``None`` when the value could not be measured."""
        if self.value is None:
            return None
        return self.value <= self.threshold if self.at_most else self.value >= self.threshold

    def label(self) -> str:
        sign = "<=" if self.at_most else ">="
        verdict = {True: "met", False: "NOT MET", None: "n/a"}[self.met]
        return f"{self.what} {sign} {self.threshold:g}{self.unit}: {verdict}"

    def filled(self, value: float | None) -> Target:
        return Target(self.what, self.threshold, self.at_most, self.unit, value)


@dataclass(frozen=True)
class Row:
    """One workload: a cell per implementation and the targets on its ratios."""

    key: str
    title: str
    unit: str
    cells: dict[str, Cell]
    targets: tuple[Target, ...] = ()

    def median(self, name: str) -> float | None:
        cell = self.cells.get(name)
        return cell.timing.median if cell is not None and cell.timing is not None else None

    def ratio(self, which: str) -> float | None:
        top, bottom = RATIOS[which]
        a, b = self.median(top), self.median(bottom)
        return None if a is None or b is None or b == 0.0 else a / b

    def with_targets(self) -> Row:
        """This row with each target's value filled in from its ratios."""
        filled = tuple(t.filled(self.ratio(t.what)) for t in self.targets)
        return Row(self.key, self.title, self.unit, self.cells, filled)


@dataclass(frozen=True)
class MemoryRow:
    """W2's memory per recorded node: the library's tape, and micrograd's per Value."""

    library: Memory
    micrograd_bytes: int | None
    micrograd_values: int | None
    target: Target = field(default_factory=lambda: Target("tape", 200.0, at_most=True, unit=" B/node"))

    @property
    def micrograd_per_value(self) -> float | None:
        if self.micrograd_bytes is None or not self.micrograd_values:
            return None
        return self.micrograd_bytes / self.micrograd_values

    def with_target(self) -> MemoryRow:
        target = self.target.filled(self.library.tape_per_node)
        return MemoryRow(self.library, self.micrograd_bytes, self.micrograd_values, target)


# --- formatting -----------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    """Three significant digits in s, ms or µs; an em dash for a missing value."""
    if seconds is None:
        return "—"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_bytes(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} B"


def _format_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}x" if value < 1000 else f"{value:.0f}x"


def render(rows: list[Row], memory: MemoryRow | None) -> str:
    """The one table: times, ratios and targets."""
    header = ["workload", *IMPLEMENTATIONS, "lib/base", "mg/lib", "lib/torch", "targets"]
    lines: list[list[str]] = []
    for row in rows:
        filled = row.with_targets()
        lines.append(
            [
                f"{row.key} {row.title}",
                *(format_seconds(row.median(name)) for name in IMPLEMENTATIONS),
                *(_format_ratio(row.ratio(which)) for which in RATIOS),
                "; ".join(t.label() for t in filled.targets),
            ]
        )
    if memory is not None:
        filled_memory = memory.with_target()
        mg = memory.micrograd_per_value
        lines.append(
            [
                "W2 memory held per recorded node",
                format_bytes(memory.library.tape_per_node),
                "—",
                format_bytes(mg),
                "—",
                "—",
                _format_ratio(None if mg is None else mg / memory.library.tape_per_node),
                "—",
                filled_memory.target.label(),
            ]
        )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        middle = [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1])]
        return "  ".join([first, *middle, cells[-1]]).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


# --- machine and JSON -----------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(versions: dict[str, str | None]) -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "packages": versions,
    }


def _timing_json(cell: Cell) -> dict[str, object]:
    out: dict[str, object] = {}
    if cell.timing is not None:
        out["median_seconds"] = cell.timing.median
        out["samples_seconds"] = list(cell.timing.samples)
    else:
        out["skipped"] = cell.skipped
    if cell.discrepancy is not None:
        out["discrepancy_from_library"] = cell.discrepancy
        out["tolerance"] = cell.tolerance
        out["agrees"] = cell.agrees
    return out


def _target_json(target: Target) -> dict[str, object]:
    return {
        "what": target.what,
        "threshold": target.threshold,
        "at_most": target.at_most,
        "value": target.value,
        "met": target.met,
    }


def to_json(
    rows: list[Row], memory: MemoryRow | None, settings: dict[str, object], versions: dict[str, str | None]
) -> dict[str, object]:
    """Every figure of the run, with the machine and settings."""
    workloads: dict[str, object] = {}
    for row in rows:
        filled = row.with_targets()
        workloads[row.key] = {
            "title": row.title,
            "step": row.unit,
            "implementations": {name: _timing_json(cell) for name, cell in row.cells.items()},
            "ratios": {which: row.ratio(which) for which in RATIOS},
            "targets": [_target_json(t) for t in filled.targets],
        }
    out: dict[str, object] = {"machine": machine(versions), "settings": settings, "workloads": workloads}
    if memory is not None:
        filled_memory = memory.with_target()
        out["memory_W2"] = {
            "library_nodes": memory.library.nodes,
            "library_tape_bytes": memory.library.tape_bytes,
            "library_tape_bytes_per_node": memory.library.tape_per_node,
            "library_total_bytes_with_values": memory.library.total_bytes,
            "library_total_bytes_per_node_with_values": memory.library.total_per_node,
            "micrograd_values": memory.micrograd_values,
            "micrograd_bytes": memory.micrograd_bytes,
            "micrograd_bytes_per_value": memory.micrograd_per_value,
            "target": _target_json(filled_memory.target),
        }
    return out


def write_json(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
