"""``Tape``: the public face of reverse-mode recording.

A Tape is a :class:`~tape.core.recording.ReverseRecording` (an append-only list of
frozen nodes and one reverse sweep) plus what a user needs around it: watching
floats, vectors and matrices, taking gradients into any tree of sources, and
drawing the recorded graph.

Tapes nest: a tape opened while another is open sees the outer tape's Values as
constants whose arithmetic the outer tape records. The backward sweep of the inner
tape then runs on those outer Values, so its gradient is itself recorded on the
outer tape and can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast, overload

from pyrsistent import PMap, PVector

from tape.array import Array, Data, flatten, nest, record_array
from tape.core.node import Node, Tracked
from tape.core.op import LEAF
from tape.core.recording import ReverseRecording
from tape.errors import TapeError
from tape.graph import to_dot
from tape.kernels.shapes import size
from tape.tree import (
    IsLeaf,
    TreeDef,
    array_layout,
    named_leaves,
    only_floats,
    tree_flatten,
    tree_flatten_floats,
    tree_unflatten,
)
from tape.validate import float_array, number
from tape.value import Scalar, Value, watch_leaf

__all__ = ["Node", "Tape", "is_float_array"]

T = TypeVar("T")
K = TypeVar("K")

FloatTree = float | Sequence["FloatTree"] | Mapping[Any, "FloatTree"]
"""A tree typed with float leaves, as :meth:`Tape.watch_tree` types the Values it watches."""
Watched = TypeVar("Watched", bound=FloatTree)


def _is_sequence(x: object) -> bool:
    return isinstance(x, (list, PVector)) or type(x) is tuple


def is_float_array(x: object) -> bool:
    """Whether ``x`` is a non-empty rectangular nested sequence of floats, of any depth.

    Sequences here are lists, plain tuples and pyrsistent vectors: a vector of floats,
    a matrix (rows of equal length), a stack of matrices, and so on.
    """
    if not _is_sequence(x) or not x:
        return False
    items = cast("Sequence[object]", x)
    if only_floats(items):
        return True
    return _rectangular(items) is not None


def _rectangular(items: Sequence[object]) -> tuple[int, ...] | None:
    """The shape of a rectangular nested sequence of floats with no empty axis, else ``None``."""
    if not items:  # an empty row of a deeper array (``[[[1.0]], []]``): not rectangular
        return None
    first = items[0]
    if not _is_sequence(first) or not first:
        return None
    inner: tuple[int, ...] | None
    if only_floats(cast("Sequence[object]", first)):
        width = len(cast("Sequence[object]", first))
        for row in items:
            if not _is_sequence(row) or len(cast("Sequence[object]", row)) != width:
                return None
            if not only_floats(cast("Sequence[object]", row)):
                return None
        return (len(items), width)
    inner = _rectangular(cast("Sequence[object]", first))
    if inner is None:
        return None
    for row in items[1:]:
        if not _is_sequence(row) or _rectangular(cast("Sequence[object]", row)) != inner:
            return None
    return (len(items), *inner)


def _as_tuples(data: Sequence[object]) -> Data:
    """Nested sequences of floats as nested tuples."""
    if data[0].__class__ is float:
        return tuple(cast("Sequence[float]", data))
    return tuple(_as_tuples(cast("Sequence[object]", row)) for row in data)


def expand_arrays(tree: T) -> T:
    """``tree`` with its Array leaves replaced by nested tuples of their (recorded) Values."""
    flat, treedef = tree_flatten(tree)
    leaves: list[object] = list(flat)
    expanded = [
        (tuple(tuple(row) for row in leaf) if leaf.ndim == 2 else tuple(leaf))
        if isinstance(leaf, Array)
        else leaf
        for leaf in leaves
    ]
    return tree_unflatten(treedef, cast("list[float]", expanded))


def frozen_gradient(g: object, shape: tuple[int, ...]) -> Data:
    """An array source's gradient from the sweep (0.0 or nested lists) as nested tuples of ``shape``."""
    if g.__class__ is float:
        if len(shape) == 1:
            return (0.0,) * shape[0]
        if len(shape) == 2:
            return tuple((0.0,) * shape[1] for _ in range(shape[0]))
        return cast(Data, nest([0.0] * size(shape), shape))
    if len(shape) == 1:
        return tuple(cast("list[float]", g))
    if len(shape) == 2:
        return tuple(tuple(row) for row in cast("list[list[float]]", g))
    return cast(Data, nest(flatten(g), shape))


def not_watchable(tree: object, leaf: object, is_leaf: IsLeaf | None = None) -> TypeError:
    """The error for a ``leaf`` of ``tree`` that cannot be watched (not a float), naming its path.

    ``is_leaf`` is how ``tree`` was flattened (``leaf`` is found by identity among its leaves).
    """
    for path, found in named_leaves(tree, is_leaf):
        if found is leaf:
            kind = type(leaf).__name__
            return TypeError(f"leaf at {path or 'the root'} is {kind} ({leaf!r}); only floats can be watched")
    return TypeError(f"a {type(leaf).__name__} leaf; only floats can be watched")


class Tape(ReverseRecording):
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

    __slots__ = ()

    # --- watching ------------------------------------------------------------------------

    def watch(self, x: Scalar) -> Value:
        """A leaf Value for ``x`` that this tape tracks.

        ``x`` is a float, or a Value of an enclosing tape (for higher-order
        derivatives); a Value already on this tape is returned as it is.
        """
        return watch_leaf(self, x)

    def watch_array(self, data: Sequence[Any]) -> Array:
        """A leaf :class:`tape.Array` for a rectangular nested sequence of floats (any depth)."""
        if isinstance(data, Array):
            data = data.primal
        value = float_array(data, "a watched array")
        if not isinstance(value, tuple) or not value:
            raise ValueError("cannot watch an empty array" if value == () else "watch_array takes a sequence")
        return record_array(self, LEAF, (), value, ())

    def _watch_float_array(self, data: Sequence[object]) -> Array:
        """A leaf Array for data already known to be a rectangular nested sequence of floats."""
        return record_array(self, LEAF, (), _as_tuples(data), ())

    def _watch_layout(
        self, floats: list[float], treedef: TreeDef[T]
    ) -> tuple[list[Value | Array], list[object], TreeDef[T]]:
        """:meth:`watch_flat` with arrays of a tree of floats, from its structure's
        :func:`~tape.tree.array_layout` (no walk of the tree); an array's original is its data."""
        layout = array_layout(treedef)
        watched: list[Value | Array] = []
        originals: list[object] = []
        for start, stop, shape in layout.parts:
            if shape is None:
                originals.append(floats[start])
                watched.append(self.watch(floats[start]))
            else:
                data = nest(floats[start:stop], shape)
                originals.append(data)
                watched.append(record_array(self, LEAF, (), data, ()))
        return watched, originals, cast("TreeDef[T]", layout.treedef)

    def watch_tree(self, tree: T, *, arrays: bool = False) -> T:
        """Watch every leaf of ``tree``; returns the same structure holding Values.

        With ``arrays=True`` every rectangular nested sequence of floats in the tree (see
        :func:`is_float_array`) is watched as one Array node instead of one Value per
        float: much faster for layer-level code such as :func:`tape.arrays.linear`.
        """
        watched, _, treedef = self.watch_flat(tree, arrays=arrays)
        return tree_unflatten(treedef, cast("list[float]", watched))  # Value or Array leaves

    def watch_flat(
        self, tree: T, *, arrays: bool = False
    ) -> tuple[list[Value | Array], list[object], TreeDef[T]]:
        """Watch each leaf of ``tree``: the watched leaves, the original ones, the structure.

        An enclosing tape's Array is first-order only, so it is watched through its Values.
        """
        if arrays:
            floats = tree_flatten_floats(tree, walk=False)  # params an optimizer step built
            if floats is not None:
                return self._watch_layout(*floats)
        is_leaf = is_float_array if arrays else None
        leaves, treedef = tree_flatten(tree, is_leaf)
        watched: list[Value | Array] = []
        for leaf in leaves:
            item: object = leaf
            if item.__class__ is float or isinstance(item, Value):
                watched.append(self.watch(item))
            elif arrays and isinstance(item, (list, tuple, PVector)):  # whole only if a float array
                watched.append(self._watch_float_array(cast("Sequence[object]", item)))
            elif isinstance(item, Array) and item.tape is None:  # an untracked Array (asarray)
                watched.append(record_array(self, LEAF, (), item.primal, ()))
            elif isinstance(item, Array):
                return self.watch_flat(expand_arrays(tree), arrays=arrays)
            else:
                raise not_watchable(tree, item, is_leaf)
        return watched, list(leaves), treedef

    # --- differentiation ----------------------------------------------------------------

    def target_position(self, target: Scalar) -> int | None:
        """The target's position, or ``None`` when it is constant for this tape."""
        if isinstance(target, Value):
            own = target.tape
            if own is self:
                return target.position
            if own is None or own.encloses(self):
                return None
            raise TapeError(f"the target {target!r} is not on this tape ({self!r})")
        number(target, "the target")
        return None

    def adjoints(self, target: Scalar, bottom: int, seed: Scalar = 1.0) -> list[Any]:
        """The sweep's buffer of adjoints of ``target`` down to position ``bottom`` (empty if constant)."""
        top = self.target_position(target)
        return self.sweep({top: seed}, bottom) if top is not None else []

    @overload
    def gradient(self, target: Scalar, sources: Value, *, seed: Scalar = 1.0) -> float: ...
    @overload
    def gradient(self, target: Scalar, sources: Array, *, seed: Scalar = 1.0) -> Data: ...
    @overload
    def gradient(self, target: Scalar, sources: tuple[Value], *, seed: Scalar = 1.0) -> tuple[float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[Value, Value], *, seed: Scalar = 1.0
    ) -> tuple[float, float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[Value, Value, Value], *, seed: Scalar = 1.0
    ) -> tuple[float, float, float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[Value, ...], *, seed: Scalar = 1.0
    ) -> tuple[float, ...]: ...
    @overload
    def gradient(self, target: Scalar, sources: list[Value], *, seed: Scalar = 1.0) -> list[float]: ...
    @overload
    def gradient(self, target: Scalar, sources: PVector[Value], *, seed: Scalar = 1.0) -> PVector[float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[tuple[Value, ...], ...], *, seed: Scalar = 1.0
    ) -> tuple[tuple[float, ...], ...]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: list[list[Value]], *, seed: Scalar = 1.0
    ) -> list[list[float]]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: PVector[PVector[Value]], *, seed: Scalar = 1.0
    ) -> PVector[PVector[float]]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: tuple[Array, ...], *, seed: Scalar = 1.0
    ) -> tuple[Data, ...]: ...
    @overload
    def gradient(self, target: Scalar, sources: list[Array], *, seed: Scalar = 1.0) -> list[Data]: ...
    @overload
    def gradient(self, target: Scalar, sources: dict[K, Value], *, seed: Scalar = 1.0) -> dict[K, float]: ...
    @overload
    def gradient(self, target: Scalar, sources: PMap[K, Value], *, seed: Scalar = 1.0) -> PMap[K, float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: dict[K, list[Value]], *, seed: Scalar = 1.0
    ) -> dict[K, list[float]]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: PMap[K, PVector[Value]], *, seed: Scalar = 1.0
    ) -> PMap[K, PVector[float]]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: PMap[K, PVector[PVector[Value]]], *, seed: Scalar = 1.0
    ) -> PMap[K, PVector[PVector[float]]]: ...
    @overload
    def gradient(self, target: Scalar, sources: dict[K, Array], *, seed: Scalar = 1.0) -> dict[K, Data]: ...
    @overload
    def gradient(self, target: Scalar, sources: PMap[K, Array], *, seed: Scalar = 1.0) -> PMap[K, Data]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Mapping[K, Value], *, seed: Scalar = 1.0
    ) -> Mapping[K, float]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Mapping[K, Array], *, seed: Scalar = 1.0
    ) -> Mapping[K, Data]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Mapping[K, Sequence[Value]], *, seed: Scalar = 1.0
    ) -> Mapping[K, Sequence[float]]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Sequence[Value], *, seed: Scalar = 1.0
    ) -> Sequence[float]: ...
    @overload
    def gradient(self, target: Scalar, sources: Sequence[Array], *, seed: Scalar = 1.0) -> Sequence[Data]: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Sequence[Sequence[Value]], *, seed: Scalar = 1.0
    ) -> Sequence[Sequence[float]]: ...
    @overload
    def gradient(self, target: Scalar, sources: Watched, *, seed: Scalar = 1.0) -> Watched: ...
    @overload
    def gradient(self, target: Scalar, sources: object, *, seed: Scalar = 1.0) -> object: ...
    def gradient(self, target: Scalar, sources: object, *, seed: Scalar = 1.0) -> object:
        """``d target / d source`` for each source, in the structure of ``sources``.

        ``sources`` is one Value, a tuple, or any tree of Values on this tape; an
        :class:`tape.Array` source gives nested tuples of its shape (a tuple for a vector).
        A target that does not depend on them (a float, a constant) gives zeros.
        Can be called any number of times, during recording or after.
        Inside an enclosing tape the results are that tape's Values (typed as floats;
        :func:`tape.grad` is the typed way to take higher-order derivatives).

        Typed for one Value (a float), one Array (a ``Vector`` or ``Matrix``) and the
        common trees of them: tuples (of one to three Values, or any number), lists,
        pyrsistent vectors, dicts and maps, one or two levels deep, and any
        ``Mapping`` or ``Sequence`` of them, each giving the same tree of floats. Any
        other tree is typed ``object``, except a tree typed with float leaves, as
        :meth:`watch_tree` types its Values: its gradient has that same type (but
        from ``watch_tree(tree, arrays=True)`` each watched array comes back as nested
        tuples, whatever sequence type it had).
        """
        leaves, treedef = tree_flatten(sources)
        for leaf_path, named_leaf in named_leaves(sources):
            leaf: object = named_leaf
            if not (isinstance(leaf, (Value, Array)) and leaf.tape is self):
                where = leaf_path or "the root"
                raise TapeError(f"source at {where} ({leaf!r}) is not a Value on this tape; watch it first")
        sources_at = [cast(Tracked, leaf).position for leaf in leaves]
        grads = self.adjoints(target, min(sources_at), seed) if sources_at else []
        results: list[object] = []
        for leaf, at in zip(leaves, sources_at, strict=True):
            g = grads[at] if at < len(grads) else 0.0
            source: object = leaf
            results.append(frozen_gradient(g, source.shape) if isinstance(source, Array) else g)
        return tree_unflatten(treedef, cast("list[float]", results))  # floats and array tuples

    def to_dot(self, target: Value | Array | None = None) -> str:
        """Graphviz DOT text of the recorded nodes (see :func:`tape.graph.to_dot`); with a
        ``target``, only its history, each node labelled with its gradient."""
        return to_dot(self, target)

    def node_of(self, x: Value | Array) -> Node:
        """The node that recorded ``x`` (a Value or Array of this tape)."""
        if x.tape is not self:
            raise TapeError(f"{x!r} is not on this tape ({self!r})")
        return self.node(x.position)
