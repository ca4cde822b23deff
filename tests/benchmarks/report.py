"""The results table and the JSON dump.

One line per workload with the median time of each implementation, and under it
one line per ratio: the median and the range (min..max) of the per-round ratios,
and the targets on that ratio marked met or not by the median. A last row gives
W2's memory per recorded node.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks.measure import Memory, Rounds, Spread
from tests.benchmarks.suite import IMPLEMENTATIONS, RATIOS, Target, Workload

__all__ = [
    "MemoryRow",
    "Row",
    "format_bytes",
    "format_ratio",
    "format_seconds",
    "machine",
    "render",
    "to_json",
    "write_json",
]


@dataclass(frozen=True)
class Row:
    """A workload with its rounds of timings and the discrepancies its cross-check found."""

    workload: Workload
    rounds: Rounds
    discrepancies: dict[str, float] = field(default_factory=dict)

    def median(self, name: str) -> float | None:
        """``name``'s median seconds per run, ``None`` when it was not timed."""
        return self.rounds.median(name) if name in self.rounds.names else None

    def ratio(self, which: str) -> Spread | None:
        """The spread of the per-round ratio ``which`` (a key of :data:`RATIOS`), if both sides ran."""
        top, bottom = RATIOS[which]
        if top not in self.rounds.names or bottom not in self.rounds.names:
            return None
        values = self.rounds.ratios(top, bottom)
        return Spread.of(values) if values else None

    def targets_on(self, which: str) -> tuple[Target, ...]:
        """The workload's targets on ratio ``which``."""
        return tuple(t for t in self.workload.targets if t.what == which)


@dataclass(frozen=True)
class MemoryRow:
    """W2's memory per recorded node: the library's tape, and micrograd's per Value."""

    library: Memory
    micrograd_bytes: int | None
    micrograd_values: int | None
    target: Target = field(default_factory=lambda: Target("tape", 200.0, at_most=True, unit=" B/node"))

    @property
    def micrograd_per_value(self) -> float | None:
        """Bytes micrograd allocates per Value, when it was measured."""
        if self.micrograd_bytes is None or not self.micrograd_values:
            return None
        return self.micrograd_bytes / self.micrograd_values


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
    """Whole bytes, or an em dash."""
    return "—" if value is None else f"{value:.0f} B"


def format_ratio(value: float | None) -> str:
    """Three significant digits (whole numbers from 1000 on) and an ``x``; an em dash for none."""
    if value is None:
        return "—"
    return f"{value:.3g}x" if value < 1000 else f"{value:.0f}x"


def _targets(targets: Sequence[Target], spread: Spread | None) -> str:
    return "; ".join(f"target {t.label()}: {t.verdict(spread)}" for t in targets)


def render(rows: Sequence[Row], memory: MemoryRow | None) -> str:
    """The table: median times per workload, then each ratio's median, range and targets."""
    columns = [name for name in IMPLEMENTATIONS if any(name in row.workload.implementations for row in rows)]
    header = ["workload", *columns, "rounds"]
    mains: list[list[str]] = []
    subs: list[list[list[str]]] = []
    for row in rows:
        cells = [
            format_seconds(row.median(name)) if name in row.workload.implementations else ""
            for name in columns
        ]
        mains.append([f"{row.workload.key} {row.workload.title}", *cells, str(len(row.rounds.seconds))])
        lines = []
        for which in row.workload.ratios:
            spread = row.ratio(which)
            ranged = "" if spread is None else f"({format_ratio(spread.low)}..{format_ratio(spread.high)})"
            median = None if spread is None else spread.median
            lines.append([which, format_ratio(median), ranged, _targets(row.targets_on(which), spread)])
        subs.append(lines)
    if memory is not None:
        mg = memory.micrograd_per_value
        per_node = memory.library.tape_per_node
        cells = [
            {"library": format_bytes(per_node), "micrograd": format_bytes(mg)}.get(n, "—") for n in columns
        ]
        mains.append(["W2 memory held per recorded node", *cells, ""])
        tape_spread = Spread(per_node, per_node, per_node)
        subs.append(
            [
                ["mg/lib", format_ratio(None if mg is None else mg / per_node), "", ""],
                ["tape", format_bytes(per_node), "", _targets((memory.target,), tape_spread)],
            ]
        )
    widths = [max(len(line[i]) for line in [header, *mains]) for i in range(len(header))]
    sub_widths = [max([0, *(len(line[i]) for lines in subs for line in lines)]) for i in range(3)]

    def main_line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    def sub_line(cells: list[str]) -> str:
        name, median, ranged, targets = cells
        parts = [name.ljust(sub_widths[0]), median.rjust(sub_widths[1]), ranged.ljust(sub_widths[2]), targets]
        return ("    " + "  ".join(parts)).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [main_line(header), rule]
    for cells, lines in zip(mains, subs, strict=True):
        out.append(main_line(cells))
        out.extend(sub_line(line) for line in lines)
    return "\n".join(out)


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


def _spread_json(spread: Spread | None) -> dict[str, float] | None:
    return None if spread is None else {"median": spread.median, "min": spread.low, "max": spread.high}


def _target_json(target: Target, spread: Spread | None) -> dict[str, object]:
    return {
        "what": target.what,
        "threshold": target.threshold,
        "at_most": target.at_most,
        "note": target.note,
        "value": None if spread is None else spread.median,
        "met": None if spread is None else target.meets(spread.median),
        "verdict": target.verdict(spread),
    }


def _row_json(row: Row) -> dict[str, object]:
    implementations: dict[str, object] = {}
    for name in row.workload.implementations:
        if name in row.rounds.names:
            timed: dict[str, object] = {
                "median_seconds": row.rounds.median(name),
                "seconds_per_round": list(row.rounds.samples(name)),
            }
            if name in row.discrepancies:
                timed["discrepancy_from_library"] = row.discrepancies[name]
            implementations[name] = timed
        else:
            implementations[name] = {"skipped": row.workload.skipped().get(name, "not run")}
    ratios: dict[str, object] = {}
    for which in row.workload.ratios:
        top, bottom = RATIOS[which]
        per_round = row.rounds.ratios(top, bottom) if {top, bottom} <= set(row.rounds.names) else ()
        ratios[which] = {**(_spread_json(row.ratio(which)) or {}), "per_round": list(per_round)}
    return {
        "title": row.workload.title,
        "step": row.workload.unit,
        "rounds": len(row.rounds.seconds),
        "clock": getattr(row.workload.clock, "__qualname__", repr(row.workload.clock)),
        "implementations": implementations,
        "ratios": ratios,
        "targets": [_target_json(t, row.ratio(t.what)) for t in row.workload.targets],
    }


def to_json(
    rows: Sequence[Row],
    memory: MemoryRow | None,
    settings: dict[str, object],
    versions: dict[str, str | None],
) -> dict[str, object]:
    """Every figure of the run, with the machine and settings."""
    out: dict[str, object] = {
        "machine": machine(versions),
        "settings": settings,
        "workloads": {row.workload.key: _row_json(row) for row in rows},
    }
    if memory is not None:
        per_node = memory.library.tape_per_node
        out["memory_W2"] = {
            "library_nodes": memory.library.nodes,
            "library_tape_bytes": memory.library.tape_bytes,
            "library_tape_bytes_per_node": per_node,
            "library_total_bytes_with_values": memory.library.total_bytes,
            "library_total_bytes_per_node_with_values": memory.library.total_per_node,
            "micrograd_values": memory.micrograd_values,
            "micrograd_bytes": memory.micrograd_bytes,
            "micrograd_bytes_per_value": memory.micrograd_per_value,
            "target": _target_json(memory.target, Spread(per_node, per_node, per_node)),
        }
    return out


def write_json(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` to ``path`` as indented JSON, atomically (a temporary file, then a rename)."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
