"""Recordings: where ops are recorded, in order, and how derivatives run through them.

A :class:`Recording` has a lifecycle (open, then closed for good) and a place on a
logical clock of openings and closings that decides which of two recordings is
nested in the other (never what anything computes). :meth:`Recording.record` is the
one constructor of tracked values: every Value and Array a tape tracks is made there.

- :class:`ReverseRecording` appends one frozen :class:`~tape.core.node.Node` per op.
  Appending keeps it in topological order, so the backward pass,
  :meth:`ReverseRecording.sweep`, is one loop from the top down into a fresh buffer:
  no sort, no recursion, the same accumulation order every time.
- :class:`ForwardRecording` keeps no graph: each op computes its output's tangent
  from its inputs' tangents as it is recorded (dual numbers), with the same rules.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from tape.core.node import Node, Tracked
from tape.core.op import REGISTRY, Op
from tape.errors import NonFiniteError, TapeError

H = TypeVar("H", bound=Tracked)
R = TypeVar("R", bound="Recording")

_new_tuple = tuple.__new__
_new_object = object.__new__

# A logical clock ordering openings and closings: it decides which of two
# recordings is nested in the other, never what anything computes.
_clock = itertools.count()


def is_zero(x: object) -> bool:
    """An adjoint or tangent that is exactly the float 0.0 (a symbolic zero)."""
    return x.__class__ is float and x == 0.0


def _float_of(primal: object) -> float:
    while isinstance(primal, Tracked):
        primal = primal.primal
    return primal  # type: ignore[return-value]  # a float once every enclosing level is peeled


def all_finite(value: object) -> bool:
    """Whether a recorded value (a primal, or nested tuples of them) holds no ``inf`` or ``nan``."""
    if isinstance(value, tuple):
        return all(all_finite(v) for v in value)
    return math.isfinite(_float_of(value))


def describe(value: object) -> str:
    """A short description of a recorded value for error messages."""
    if isinstance(value, tuple):
        return f"array of {len(value)}"
    return repr(_float_of(value))


def pause_collector() -> bool:
    """Pause the cyclic garbage collector; whether this call paused it (``False`` if it was off)."""
    if gc.isenabled():
        gc.disable()
        return True
    return False


def resume_collector(paused: bool) -> None:
    """Undo :func:`pause_collector` (given what it returned)."""
    if paused:
        gc.enable()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a block that makes many objects and no cycles."""
    paused = pause_collector()
    try:
        yield
    finally:
        resume_collector(paused)


class Recording:
    """The lifecycle and nesting every recording shares; see the module docstring."""

    __slots__ = ("_check_finite", "_closed", "_opened", "_paused_gc", "_plain")

    traces = False
    """Whether a compiler is tracing this recording (:mod:`tape.jit`): its values stand for
    later inputs, so recording keeps every operand (:meth:`record_traced`) and Python
    branches on its values are refused."""

    def __init__(self, *, check_finite: bool = False) -> None:
        self._opened = next(_clock)
        self._closed: int | None = None
        self._check_finite = bool(check_finite)
        self._plain = not self._check_finite  # open and unchecked: the common, fast case
        self._paused_gc = False

    @property
    def check_finite(self) -> bool:
        """Whether recording an ``inf`` or ``nan`` raises :class:`NonFiniteError`."""
        return self._check_finite

    def __enter__(self: R) -> R:
        """Open the ``with`` block; the cyclic garbage collector pauses until it ends.

        Recording makes no reference cycles (nodes point only to earlier positions), so
        the collector's passes over a growing tape are pure cost; it is restored when the
        block ends, normally or by an exception, and nested blocks leave it to the outermost.
        """
        if self._closed is not None:
            raise TapeError("this tape is closed; open a new Tape()")
        if pause_collector():  # re-entering an open tape keeps the outer entry's pause
            self._paused_gc = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        paused, self._paused_gc = self._paused_gc, False
        resume_collector(paused)

    def close(self) -> None:
        """Stop recording; what was recorded stays usable."""
        if self._closed is None:
            self._closed = next(_clock)
            self._plain = False

    @property
    def closed(self) -> bool:
        """Whether recording has stopped."""
        return self._closed is not None

    @property
    def opened(self) -> int:
        """When this recording was opened, on the logical clock of openings and closings."""
        return self._opened

    def encloses(self, other: Recording) -> bool:
        """Whether ``other`` was opened while this one was open (``other`` nests in it)."""
        opened = other.opened
        return self._opened < opened and (self._closed is None or self._closed > opened)

    def __repr__(self) -> str:
        state = "closed" if self._closed is not None else "open"
        return f"<{type(self).__name__} #{self._opened} {state}, {len(self)} nodes>"

    def __len__(self) -> int:
        raise NotImplementedError

    def op_name(self, position: int) -> str:
        """The name of the op recorded at ``position``."""
        raise NotImplementedError

    def record(
        self, op: Op, parents: tuple[int, ...], value: object, saved: tuple[object, ...] | None, kind: type[H]
    ) -> H:
        """Record ``op`` (inputs at ``parents``) and return a new ``kind`` handle for its value."""
        raise NotImplementedError

    def record_traced(
        self,
        op: Op,
        parents: tuple[int, ...],
        value: object,
        saved: tuple[object, ...] | None,
        operands: tuple[object, ...],
        kind: type[H],
    ) -> H:
        """:meth:`record`, also given every operand (``None`` for a tracked one), for a tracing recording."""
        return self.record(op, parents, value, saved, kind)

    def _refuse(self, op: Op) -> None:
        """Raise for a closed recording (called only off the fast path)."""
        if self._closed is not None:
            raise TapeError(
                f"cannot record {op.name!r} on a closed tape; compute with .data or float(v) "
                "outside the tape, or open a new Tape()"
            )


def _handle(kind: type[H], value: object, recording: Recording, position: int) -> H:
    made: H = _new_object(kind)
    made.primal = value
    made.tape = recording
    made.position = position
    return made


class ReverseRecording(Recording):
    """An append-only list of frozen nodes, differentiated by one reverse sweep."""

    __slots__ = ("_nodes",)

    def __init__(self, *, check_finite: bool = False) -> None:
        super().__init__(check_finite=check_finite)
        self._nodes: list[Node] = []

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The recorded nodes in recording (topological) order."""
        return tuple(self._nodes)

    def node(self, position: int) -> Node:
        """The node recorded at ``position``."""
        return self._nodes[position]

    def op_name(self, position: int) -> str:
        """The name of the op recorded at ``position``."""
        return self._nodes[position].op.name

    def record(
        self, op: Op, parents: tuple[int, ...], value: object, saved: tuple[object, ...] | None, kind: type[H]
    ) -> H:
        """Append one node and return the handle of its value (see :class:`Recording`)."""
        nodes = self._nodes
        index = len(nodes)
        if not self._plain:
            self._refuse(op)
            if self._check_finite and not all_finite(value):
                inputs = ", ".join(describe(nodes[p].value) for p in parents)
                produced = "a non-finite value in an array" if isinstance(value, tuple) else describe(value)
                raise NonFiniteError(
                    f"op {op.name!r} at tape position {index} produced {produced} "
                    f"from tracked inputs ({inputs})"
                )
        nodes.append(_new_tuple(Node, (op, parents, value, saved)))  # Node(...) without its __new__ call
        made: H = _new_object(kind)
        made.primal = value
        made.tape = self
        made.position = index
        return made

    def sweep(self, seeds: dict[int, Any], bottom: int) -> list[Any]:
        """Adjoints of positions ``bottom..top`` by one reverse loop, seeded at ``seeds``.

        Entries are floats (or enclosing-tape Values) for scalar nodes, and 0.0 or nested
        lists owned by the buffer for array nodes; array ops' ``vjp`` rules add into it.
        A node whose adjoint is exactly 0.0 passes nothing down.
        """
        nodes = self._nodes
        top = max(seeds)
        grads: list[Any] = [0.0] * (top + 1)
        for at, seed in seeds.items():
            grads[at] = seed
        for i in range(top, bottom - 1, -1):
            g = grads[i]
            if g == 0.0 and g.__class__ is float:  # the float test second: most adjoints are not zero
                continue
            op, parents, value, saved = nodes[i]  # one unpacking, not four field reads
            if not parents:
                continue
            vjp = op.vjp
            if vjp is not None:
                vjp(nodes[i], g, grads)
                continue
            partials: tuple[Any, ...] | None = saved
            if len(parents) == 2:  # most scalar ops: unpacked, no iterator
                first, second = parents
                if partials is None:  # recomputed from the inputs' values by the op's own rules
                    x, y = nodes[first].value, nodes[second].value
                    rule_x, rule_y = op.partials
                    grads[first] += g * rule_x(value, x, y)
                    grads[second] += g * rule_y(value, x, y)
                else:
                    d_first, d_second = partials
                    grads[first] += g * d_first
                    grads[second] += g * d_second
            elif len(parents) == 1 and partials is not None:  # unary ops, and a product with a constant
                (only,) = parents
                (partial,) = partials
                grads[only] += g * partial
            else:
                if partials is None:
                    values = [nodes[p].value for p in parents]
                    partials = tuple(rule(value, *values) for rule in op.partials)
                for parent, partial in zip(parents, partials, strict=True):
                    grads[parent] += g * partial
        return grads

    def find_non_finite(self) -> Node | None:
        """The first recorded node whose value is ``inf`` or ``nan``, if any."""
        for node in self._nodes:
            if not all_finite(node.value):
                return node
        return None


class ForwardRecording(Recording):
    """Forward mode: each op computes its output's tangent as it is recorded; no graph is kept."""

    __slots__ = ("_ops", "_tangents", "_values")

    def __init__(self, *, check_finite: bool = False) -> None:
        super().__init__(check_finite=check_finite)
        self._tangents: list[Any] = []
        self._values: list[object] = []
        self._ops: list[Op] = []

    def __len__(self) -> int:
        return len(self._tangents)

    def op_name(self, position: int) -> str:
        """The name of the op recorded at ``position``."""
        return self._ops[position].name

    def tangent_at(self, position: int) -> object:
        """The tangent of the value recorded at ``position``."""
        return self._tangents[position]

    def set_tangent(self, position: int, tangent: object) -> None:
        """Give the leaf at ``position`` its tangent (the direction of differentiation)."""
        if self._ops[position].name != "leaf":
            raise TapeError("only a watched leaf's tangent can be set")
        self._tangents[position] = tangent

    def record(
        self, op: Op, parents: tuple[int, ...], value: object, saved: tuple[object, ...] | None, kind: type[H]
    ) -> H:
        """Record ``op``, computing its tangent at once, and return the handle of its value."""
        if not self._plain:
            self._refuse(op)
            if self._check_finite and not all_finite(value):
                raise NonFiniteError(
                    f"op {op.name!r} at tape position {len(self._tangents)} produced a non-finite value"
                )
        tangents = self._tangents
        incoming = tuple(tangents[p] for p in parents)
        tangent: Any = 0.0
        if op.jvp is not None:
            if not all(is_zero(t) for t in incoming):
                tangent = op.jvp(value, saved, incoming)
        else:
            partials: tuple[Any, ...] | None = saved
            if partials is None:
                values = [self._values[p] for p in parents]
                partials = tuple(rule(value, *values) for rule in op.partials)
            for partial, t in zip(partials, incoming, strict=True):
                if t.__class__ is float:
                    if t != 0.0:  # an unperturbed input contributes nothing, not nan * 0
                        tangent = tangent + partial * t
                else:  # a Value (traced, or differentiated again): the skip is the op's, with the data
                    tangent = tangent + REGISTRY["tangent_term"](partial, t)
        index = len(tangents)
        tangents.append(tangent)
        self._values.append(value)
        self._ops.append(op)
        return _handle(kind, value, self, index)
