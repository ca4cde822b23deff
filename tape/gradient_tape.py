"""``Tape``: an append-only record of frozen nodes, differentiated by one reverse sweep.

Every operation on a watched Value appends a :class:`Node` (its op, the tape
positions of its inputs, its value and its local partials). Appending keeps the
tape in topological order, so the backward pass is a single loop from the target
down, accumulating into a fresh buffer: no sort, no recursion, and the same
accumulation order every time.

Tapes nest: a tape opened while another is open sees the outer tape's Values as
constants whose arithmetic the outer tape records. The backward sweep of the inner
tape then runs on those outer Values, so its gradient is itself recorded on the
outer tape and can be differentiated again.
"""

from __future__ import annotations

import itertools
from types import TracebackType
from typing import NamedTuple, TypeVar, cast, overload

from pyrsistent import PMap

from tape import floats
from tape.errors import NonFiniteError, TapeError
from tape.ops import LEAF, Op, Primal
from tape.tree import named_leaves, tree_flatten, tree_structure, tree_unflatten
from tape.value import Scalar, Value, _check_number, _make

T = TypeVar("T")
K = TypeVar("K")

# A logical clock ordering tape openings and closings: it decides which of two
# tapes is nested in the other, never what anything computes.
_clock = itertools.count()


class Node(NamedTuple):
    """One recorded operation. Frozen: nothing in it changes after recording.

    ``partials[k]`` is ``d value / d (value at parents[k])``.
    """

    op: Op
    parents: tuple[int, ...]
    value: Primal
    partials: tuple[Primal, ...]


def _float_of(primal: Primal) -> float:
    return primal if isinstance(primal, float) else primal.data


class Tape:
    """Records operations on watched Values and computes gradients by one reverse sweep.

    >>> with Tape() as t:
    ...     x, y = t.watch(2.0), t.watch(5.0)
    ...     z = x * y + x.exp()
    >>> t.gradient(z, y)
    2.0
    >>> t.gradient(z, {"x": x, "y": y})["y"]
    2.0

    ``check_finite=True`` raises :class:`NonFiniteError` naming the first op that
    produces ``inf`` or ``nan``.
    """

    __slots__ = ("_closed", "_nodes", "_opened", "check_finite")

    def __init__(self, *, check_finite: bool = False) -> None:
        self._nodes: list[Node] = []
        self._opened = next(_clock)
        self._closed: int | None = None
        self.check_finite = check_finite

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Tape:
        if self._closed is not None:
            raise TapeError("this tape is closed; open a new Tape()")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop recording; gradients can still be taken."""
        if self._closed is None:
            self._closed = next(_clock)

    @property
    def closed(self) -> bool:
        """Whether recording has stopped."""
        return self._closed is not None

    def encloses(self, other: Tape) -> bool:
        """Whether ``other`` was opened while this tape was open (``other`` nests in it)."""
        return self._opened < other._opened and (self._closed is None or self._closed > other._opened)

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The recorded nodes in recording (topological) order."""
        return tuple(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        state = "closed" if self._closed is not None else "open"
        return f"<Tape #{self._opened} {state}, {len(self._nodes)} nodes>"

    # --- recording ---------------------------------------------------------------

    def _record(self, op: Op, parents: tuple[int, ...], value: Primal, partials: tuple[Primal, ...]) -> Value:
        if self._closed is not None:
            raise TapeError(
                f"cannot record {op.name!r} on a closed tape; compute with .data or float(v) "
                "outside the tape, or open a new Tape()"
            )
        nodes = self._nodes
        index = len(nodes)
        if self.check_finite and not floats.is_finite(_float_of(value)):
            inputs = ", ".join(repr(_float_of(nodes[p].value)) for p in parents)
            raise NonFiniteError(
                f"op {op.name!r} at tape position {index} produced {_float_of(value)!r} "
                f"from tracked inputs ({inputs})"
            )
        nodes.append(Node(op, parents, value, partials))
        return _make(value, self, index)

    def watch(self, x: Scalar) -> Value:
        """A leaf Value for ``x`` that this tape tracks.

        ``x`` is a float, or a Value of an enclosing tape (for higher-order
        derivatives); a Value already on this tape is returned as it is.
        """
        if isinstance(x, Value):
            own = x._tape
            if own is self:
                return x
            if own is None:
                primal: Primal = x._primal
            elif own.encloses(self):
                primal = x
            else:
                raise TapeError(f"cannot watch a Value of {own!r}: that tape does not enclose {self!r}")
        else:
            primal = _check_number(x, "watch(x)")
        return self._record(LEAF, (), primal, ())

    def watch_tree(self, tree: T) -> T:
        """Watch every leaf of ``tree``; returns the same structure holding Values."""
        treedef = tree_structure(tree)
        watched: list[Value] = []
        for path, named_leaf in named_leaves(tree):
            leaf: object = named_leaf
            if not isinstance(leaf, (float, Value)) or isinstance(leaf, bool):
                where = path or "the root"
                raise TypeError(
                    f"leaf at {where} is {type(leaf).__name__} ({leaf!r}); only floats can be watched"
                )
            watched.append(self.watch(leaf))
        return tree_unflatten(treedef, watched)  # type: ignore[arg-type]  # Value leaves

    # --- differentiation -----------------------------------------------------------

    def _target_index(self, target: Scalar) -> int | None:
        """The target's position, or ``None`` when it is constant for this tape."""
        if isinstance(target, Value):
            own = target._tape
            if own is self:
                return target._index
            if own is None or own.encloses(self):
                return None
            raise TapeError(f"the target {target!r} is not on this tape ({self!r})")
        _check_number(target, "the target")
        return None

    def _sweep(self, top: int, bottom: int, seed: Scalar) -> list[Scalar]:
        """Adjoints of positions ``bottom..top`` by one reverse loop from ``top``."""
        nodes = self._nodes
        grads: list[Scalar] = [0.0] * (top + 1)
        grads[top] = seed
        for i in range(top, bottom - 1, -1):
            g = grads[i]
            if g.__class__ is float and g == 0.0:
                continue
            node = nodes[i]
            parents = node.parents
            if not parents:
                continue
            for parent, partial in zip(parents, node.partials):
                grads[parent] += g * partial
        return grads

    @overload
    def gradient(self, target: Scalar, sources: Value, *, seed: Scalar = 1.0) -> float: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[Value, ...], *, seed: Scalar = 1.0
    ) -> tuple[float, ...]: ...
    @overload
    def gradient(self, target: Scalar, sources: list[Value], *, seed: Scalar = 1.0) -> list[float]: ...
    @overload
    def gradient(self, target: Scalar, sources: dict[K, Value], *, seed: Scalar = 1.0) -> dict[K, float]: ...
    @overload
    def gradient(self, target: Scalar, sources: PMap[K, Value], *, seed: Scalar = 1.0) -> PMap[K, float]: ...
    @overload
    def gradient(self, target: Scalar, sources: T, *, seed: Scalar = 1.0) -> T: ...
    def gradient(self, target: Scalar, sources: object, *, seed: Scalar = 1.0) -> object:
        """``d target / d source`` for each source, in the structure of ``sources``.

        ``sources`` is one Value, a tuple, or any tree of Values on this tape.
        A target that does not depend on them (a float, a constant) gives zeros.
        Can be called any number of times, during recording or after.
        Inside an enclosing tape the results are that tape's Values (typed as floats;
        :func:`tape.grad` is the typed way to take higher-order derivatives).
        """
        leaves, treedef = tree_flatten(sources)
        for leaf_path, named_leaf in named_leaves(sources):
            leaf: object = named_leaf
            if not (isinstance(leaf, Value) and leaf._tape is self):
                where = leaf_path or "the root"
                raise TapeError(f"source at {where} ({leaf!r}) is not a Value on this tape; watch it first")
        sources_at = [cast(Value, leaf)._index for leaf in leaves]
        top = self._target_index(target)
        if top is None or not sources_at:
            return tree_unflatten(treedef, [0.0] * len(sources_at))
        grads = self._sweep(top, min(sources_at), seed)
        return tree_unflatten(
            treedef,
            [grads[i] if i <= top else 0.0 for i in sources_at],  # type: ignore[misc]
        )

    def find_non_finite(self) -> Node | None:
        """The first recorded node whose value is ``inf`` or ``nan``, if any."""
        for node in self._nodes:
            if not floats.is_finite(_float_of(node.value)):
                return node
        return None
