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
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast, overload

from pyrsistent import PMap, PVector

from tape import floats
from tape.errors import NonFiniteError, TapeError
from tape.ops import LEAF, MUL, Op, Primal
from tape.tree import TreeDef, named_leaves, only_floats, tree_flatten, tree_unflatten
from tape.value import Scalar, Value, _check_number

if TYPE_CHECKING:
    from tape.arrays import Array

T = TypeVar("T")
TapeT = TypeVar("TapeT", bound="Tape")
K = TypeVar("K")

_new_tuple = tuple.__new__
_new_object = object.__new__

# A logical clock ordering tape openings and closings: it decides which of two
# tapes is nested in the other, never what anything computes.
_clock = itertools.count()


class Node(NamedTuple):
    """One recorded operation. Frozen: nothing in it changes after recording.

    ``saved`` is what the op's derivative rule needs: for a scalar op the local
    partials, ``saved[k] = d value / d (value at parents[k])``; for an array op the
    inputs its ``vjp`` rule reads. A product of two tracked Values saves nothing
    (``None``): its partials are its inputs' values, already on the tape.
    """

    op: Op
    parents: tuple[int, ...]
    value: object
    saved: tuple[object, ...] | None

    @property
    def partials(self) -> tuple[object, ...] | None:
        """A scalar op's local partials (the same as ``saved``)."""
        return self.saved


def _float_of(primal: Primal) -> float:
    return primal if isinstance(primal, float) else primal.data


def _all_finite(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_all_finite(v) for v in value)
    return floats.is_finite(_float_of(value))  # type: ignore[arg-type]  # a primal


def _expand_arrays(tree: T) -> T:
    """``tree`` with its Array leaves replaced by nested tuples of their (recorded) Values."""
    from tape.arrays import Array

    flat, treedef = tree_flatten(tree)
    leaves: list[object] = list(flat)
    expanded = [
        (tuple(tuple(row) for row in leaf) if leaf.ndim == 2 else tuple(leaf))
        if isinstance(leaf, Array)
        else leaf
        for leaf in leaves
    ]
    return tree_unflatten(treedef, cast("list[float]", expanded))


def is_float_array(x: object) -> bool:
    """Whether ``x`` is a non-empty vector of floats or a rectangular matrix of floats.

    Sequences here are lists, plain tuples and pyrsistent vectors.
    """
    if not (isinstance(x, (list, PVector)) or type(x) is tuple) or not x:
        return False
    items = cast("Sequence[object]", x)
    if only_floats(items):
        return True
    width = -1
    for row in items:
        if not (isinstance(row, (list, PVector)) or type(row) is tuple) or not row:
            return False
        if width == -1:
            width = len(row)
        if len(row) != width or not only_floats(row):
            return False
    return True


def _frozen_gradient(g: object, shape: tuple[int, ...]) -> object:
    """An array source's gradient as a tuple (vector) or tuple of row tuples (matrix)."""
    if g.__class__ is float:
        if len(shape) == 1:
            return (0.0,) * shape[0]
        return tuple((0.0,) * shape[1] for _ in range(shape[0]))
    if len(shape) == 1:
        return tuple(cast("list[float]", g))
    return tuple(tuple(row) for row in cast("list[list[float]]", g))


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return f"array of {len(value)}"
    return repr(_float_of(value))  # type: ignore[arg-type]  # a primal


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

    __slots__ = ("_check_finite", "_closed", "_nodes", "_opened", "_plain")

    def __init__(self, *, check_finite: bool = False) -> None:
        self._nodes: list[Node] = []
        self._opened = next(_clock)
        self._closed: int | None = None
        self._check_finite = bool(check_finite)
        self._plain = not self._check_finite  # open and unchecked: the common, fast case

    @property
    def check_finite(self) -> bool:
        """Whether recording an ``inf`` or ``nan`` raises :class:`NonFiniteError`."""
        return self._check_finite

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self: TapeT) -> TapeT:
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
            self._plain = False

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
        nodes = self._nodes
        index = len(nodes)
        if not self._plain:
            if self._closed is not None:
                raise TapeError(
                    f"cannot record {op.name!r} on a closed tape; compute with .data or float(v) "
                    "outside the tape, or open a new Tape()"
                )
            if self._check_finite and not floats.is_finite(_float_of(value)):
                self._non_finite(op, parents, index, value)
        nodes.append(_new_tuple(Node, (op, parents, value, partials)))  # Node(...) without its __new__ call
        made: Value = _new_object(Value)
        made._primal = value
        made._tape = self
        made._index = index
        return made

    def _record_product(self, left: Value, right: Value) -> Value:
        """``left * right`` for two Values of this tape, saving no partials (see :class:`Node`)."""
        x, y = left._primal, right._primal
        return self._record(MUL, (left._index, right._index), x * y, None)  # type: ignore[arg-type]  # a product saves no partials

    def _append(self, op: Op, parents: tuple[int, ...], value: object, saved: tuple[object, ...]) -> int:
        """Record a node of any value (e.g. an array) and return its position."""
        if self._closed is not None:
            raise TapeError(f"cannot record {op.name!r} on a closed tape; open a new Tape()")
        index = len(self._nodes)
        if self.check_finite and not _all_finite(value):
            self._non_finite(op, parents, index, value)
        self._nodes.append(Node(op, parents, value, saved))
        return index

    def _non_finite(self, op: Op, parents: tuple[int, ...], index: int, value: object) -> None:
        inputs = ", ".join(_describe(self._nodes[p].value) for p in parents)
        produced = "a non-finite value in an array" if isinstance(value, tuple) else _describe(value)
        raise NonFiniteError(
            f"op {op.name!r} at tape position {index} produced {produced} from tracked inputs ({inputs})"
        )

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

    def watch_array(self, data: Sequence[float] | Sequence[Sequence[float]]) -> Array:
        """A leaf :class:`tape.arrays.Array` for a vector or a (rectangular) matrix of floats."""
        from tape.arrays import _record_array, matrix_data, vector_data

        items = list(data)
        if not items:
            raise ValueError("cannot watch an empty array")
        if isinstance(items[0], (int, float)):
            value: object = vector_data(cast("Sequence[float]", items), "a watched vector")
        else:
            value = matrix_data(cast("Sequence[Sequence[float]]", items), "a watched matrix")
        return _record_array(self, LEAF, (), value, ())  # type: ignore[arg-type]  # vector or matrix

    def _watch_checked_array(self, data: Sequence[object]) -> Array:
        """A leaf Array for data already known to be a float vector or matrix."""
        from tape.arrays import _record_array

        first = data[0]
        value = (
            tuple(tuple(cast("Sequence[float]", row)) for row in data)
            if first.__class__ is not float
            else tuple(cast("Sequence[float]", data))
        )
        return _record_array(self, LEAF, (), value, ())

    def watch_tree(self, tree: T, *, arrays: bool = False) -> T:
        """Watch every leaf of ``tree``; returns the same structure holding Values.

        With ``arrays=True`` every vector or matrix of floats in the tree (see
        :func:`is_float_array`) is watched as one Array node instead of one Value per
        float: much faster for layer-level code such as :func:`tape.arrays.linear`.
        """
        watched, _, treedef = self._watch_flat(tree, arrays)
        return tree_unflatten(treedef, watched)  # type: ignore[arg-type]  # Value or Array leaves

    def _watch_flat(self, tree: T, arrays: bool) -> tuple[list[object], list[float], TreeDef[T]]:
        """Watch each leaf of ``tree``: the watched leaves, the original ones, the structure.

        An enclosing tape's Array is first-order only, so it is watched through its Values.
        """
        from tape.arrays import Array

        is_leaf = is_float_array if arrays else None
        leaves, treedef = tree_flatten(tree, is_leaf)
        watched: list[object] = []
        for leaf in leaves:
            item: object = leaf
            if item.__class__ is float or isinstance(item, Value):
                watched.append(self.watch(item))
            elif arrays and isinstance(item, (list, tuple, PVector)):  # whole only if a float array
                watched.append(self._watch_checked_array(cast("Sequence[object]", item)))
            elif isinstance(item, Array):
                return self._watch_flat(_expand_arrays(tree), arrays)
            else:
                for path, bad in named_leaves(tree, is_leaf):
                    if bad is leaf:
                        raise TypeError(
                            f"leaf at {path or 'the root'} is {type(bad).__name__} ({bad!r}); "
                            "only floats can be watched"
                        )
                raise TypeError(f"a {type(item).__name__} leaf; only floats can be watched")
        return watched, leaves, treedef

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

    def _sweep(self, top: int, bottom: int, seed: Scalar) -> list[Any]:
        """Adjoints of positions ``bottom..top`` by one reverse loop from ``top``.

        Entries are floats (or enclosing-tape Values) for scalar nodes, and 0.0 or
        nested lists owned by the buffer for array nodes.
        """
        return self._sweep_seeds({top: seed}, bottom)

    def _sweep_seeds(self, seeds: dict[int, Any], bottom: int) -> list[Any]:
        """One reverse loop seeded at several positions (a vector-Jacobian product)."""
        nodes = self._nodes
        top = max(seeds)
        grads: list[Any] = [0.0] * (top + 1)
        for at, seed in seeds.items():
            grads[at] = seed
        for i in range(top, bottom - 1, -1):
            g = grads[i]
            if g.__class__ is float and g == 0.0:
                continue
            node = nodes[i]
            parents = node.parents
            if not parents:
                continue
            vjp = node.op.vjp
            if vjp is not None:
                vjp(node, g, grads)
                continue
            partials: tuple[Any, ...] | None = node.saved
            if len(parents) == 2:  # most scalar ops: unpacked, no iterator
                first, second = parents
                if partials is None:  # a product: each input's partial is the other's value
                    grads[first] += g * nodes[second].value
                    grads[second] += g * nodes[first].value
                else:
                    d_first, d_second = partials
                    grads[first] += g * d_first
                    grads[second] += g * d_second
            else:
                for parent, partial in zip(parents, partials or ()):
                    grads[parent] += g * partial
        return grads

    def op_name(self, position: int) -> str:
        """The name of the op recorded at ``position``."""
        return self._nodes[position].op.name

    @overload
    def gradient(self, target: Scalar, sources: Value, *, seed: Scalar = 1.0) -> float: ...
    @overload
    def gradient(
        self, target: Scalar, sources: Array, *, seed: Scalar = 1.0
    ) -> tuple[float, ...] | tuple[tuple[float, ...], ...]: ...
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

        ``sources`` is one Value, a tuple, or any tree of Values on this tape; an
        :class:`tape.Array` source gives a tuple (vector) or tuple of row tuples.
        A target that does not depend on them (a float, a constant) gives zeros.
        Can be called any number of times, during recording or after.
        Inside an enclosing tape the results are that tape's Values (typed as floats;
        :func:`tape.grad` is the typed way to take higher-order derivatives).
        """
        from tape.arrays import Array

        leaves, treedef = tree_flatten(sources)
        for leaf_path, named_leaf in named_leaves(sources):
            leaf: object = named_leaf
            if not (isinstance(leaf, (Value, Array)) and leaf._tape is self):
                where = leaf_path or "the root"
                raise TapeError(f"source at {where} ({leaf!r}) is not a Value on this tape; watch it first")
        sources_at = [cast(Value, leaf)._index for leaf in leaves]
        top = self._target_index(target)
        grads = self._sweep(top, min(sources_at), seed) if top is not None and sources_at else []
        results: list[object] = []
        for leaf, at in zip(leaves, sources_at):
            g = grads[at] if at < len(grads) else 0.0
            source: object = leaf
            results.append(_frozen_gradient(g, source.shape) if isinstance(source, Array) else g)
        return tree_unflatten(treedef, results)  # type: ignore[arg-type]  # floats and array tuples

    def find_non_finite(self) -> Node | None:
        """The first recorded node whose value is ``inf`` or ``nan``, if any."""
        for node in self._nodes:
            if not _all_finite(node.value):
                return node
        return None
