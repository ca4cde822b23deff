"""Graphviz DOT text of a recording: every frozen node with its op, value and gradient.

In the spirit of micrograd's ``draw_dot``: render it with the ``dot`` program
(``dot -Tsvg graph.dot``) or the ``graphviz`` package; neither is needed to get the text.

>>> from tape import Tape
>>> with Tape() as t:
...     x = t.watch(2.0)
...     y = x * x + 1.0
>>> print(t.to_dot(y))  # doctest: +NORMALIZE_WHITESPACE
digraph tape {
  rankdir=LR;
  node [shape=record, fontname="monospace"];
  n0 [label="{#0 leaf | value 2 | grad 4}"];
  n1 [label="{#1 mul | value 4 | grad 1}"];
  n2 [label="{#2 add | value 5 | grad 1}"];
  n0 -> n1;
  n0 -> n1;
  n1 -> n2;
}
"""

from __future__ import annotations

from typing import Any

from tape.core.node import Tracked
from tape.core.recording import ReverseRecording, is_zero
from tape.errors import TapeError

__all__ = ["to_dot"]


def _number(x: float) -> str:
    return f"{x:.4g}"


def _show(value: object) -> str:
    """A node's value or gradient, short: a number, or an array's shape."""
    while isinstance(value, Tracked):  # an enclosing tape's Value
        value = value.primal
    if isinstance(value, (tuple, list)):
        rows = len(value)
        if rows and isinstance(value[0], (tuple, list)):
            return f"array {rows}x{len(value[0])}"
        return f"array {rows}"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def to_dot(recording: ReverseRecording, target: Tracked | None = None) -> str:
    """DOT text of ``recording``'s nodes; with a ``target`` on it, only the nodes it depends on,
    each labelled with the gradient of ``target`` with respect to it."""
    nodes = recording.nodes
    keep = set(range(len(nodes)))
    grads: list[Any] = []
    if target is not None:
        if target.tape is not recording:
            raise TapeError(f"the target {target!r} is not on this tape ({recording!r})")
        keep = {target.position}
        for i in range(target.position, -1, -1):
            if i in keep:
                keep.update(nodes[i].parents)
        grads = recording.sweep({target.position: 1.0}, 0)
    lines = ["digraph tape {", "  rankdir=LR;", '  node [shape=record, fontname="monospace"];']
    for i, node in enumerate(nodes):
        if i not in keep:
            continue
        fields = [f"#{i} {node.op.name}", f"value {_show(node.value)}"]
        if target is not None:
            g = grads[i] if i < len(grads) else 0.0
            fields.append(f"grad {_show(0.0 if is_zero(g) else g)}")
        lines.append(f'  n{i} [label="{{{" | ".join(fields)}}}"];')
    for i, node in enumerate(nodes):
        if i in keep:
            lines.extend(f"  n{p} -> n{i};" for p in node.parents)
    lines.append("}")
    return "\n".join(lines)
