"""Trees of floats: flatten, rebuild, map and name their leaves.

A tree is a float (or any non-container leaf) or a container of trees: ``tuple``
(named tuples included), ``list``, ``dict``, pyrsistent ``PMap`` and ``PVector``.
Maps are walked in sorted key order, so flattening is deterministic whatever the
hash seed. Leaves are typed ``float`` because parameter trees hold floats; while a
tape records, the same functions carry :class:`tape.Value` leaves.

>>> from pyrsistent import pmap, pvector
>>> params = pmap({"w": pvector([1.0, 2.0]), "b": 0.5})
>>> named_leaves(params)
[('b', 0.5), ('w.0', 1.0), ('w.1', 2.0)]
>>> tree_map(lambda p: 2 * p, params) == pmap({"w": pvector([2.0, 4.0]), "b": 1.0})
True
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, NamedTuple, TypeVar, cast

from pyrsistent import PMap, PVector, pmap, pvector

T = TypeVar("T")

_LEAF = "leaf"
_TUPLE = "tuple"
_NAMEDTUPLE = "namedtuple"
_LIST = "list"
_DICT = "dict"
_PMAP = "pmap"
_PVECTOR = "pvector"
_MAP_KINDS = (_DICT, _PMAP)


class TreeError(ValueError):
    """Two trees that should share a structure do not, or a tree is malformed."""


@dataclass(frozen=True)
class _Shape:
    """The structure of one tree node: its kind, map keys or type, and children.

    ``flat`` marks a sequence whose children are all leaves, rebuilt in one step.
    """

    kind: str
    aux: Hashable
    children: tuple[_Shape, ...]
    num_leaves: int
    flat: bool = field(default=False, compare=False)
    digest: int = field(default=0, compare=False, repr=False)
    persistent: bool = field(default=False, compare=False, repr=False)
    plain_keys: bool = field(default=False, compare=False, repr=False)
    """Every map key in the structure is exactly a ``str``: equal structures then hold the same keys."""

    def __post_init__(self) -> None:
        # Hash once, from the children's stored hashes: structures are compared and
        # used as cache keys on every optimizer step.
        object.__setattr__(self, "digest", hash((self.kind, self.aux, self.num_leaves, self.children)))
        immutable = self.kind not in (_LIST, _DICT) and all(child.persistent for child in self.children)
        object.__setattr__(self, "persistent", immutable)
        keys = cast("tuple[object, ...]", self.aux) if self.kind in _MAP_KINDS else ()
        own = all(type(key) is str for key in keys)
        object.__setattr__(self, "plain_keys", own and all(child.plain_keys for child in self.children))

    def __hash__(self) -> int:
        return self.digest


_LEAF_SHAPE = _Shape(_LEAF, None, (), 1)

# Flattening a persistent tree (pyrsistent maps and vectors and tuples all the way down)
# always gives the same leaves and structure, so they are remembered by the tree's
# identity for as long as it lives: a training step flattens the same params, grads
# and optimizer moments several times. An entry goes when its tree is collected.
# The entry also says whether every leaf is a float (``None``: not looked at yet), so
# that an optimizer's check of its params, gradients and moments is a lookup too.
_FLATTENED: dict[int, list[Any]] = {}  # id -> [weakref, leaves tuple, shape, floats or None]


def _remember(tree: object, leaves: Sequence[object], shape: _Shape, floats: bool | None) -> None:
    if shape.persistent and isinstance(tree, (PMap, PVector)):
        key = id(tree)

        def forget(_: weakref.ref[object]) -> None:
            _FLATTENED.pop(key, None)

        _FLATTENED[key] = [weakref.ref(tree, forget), tuple(leaves), shape, floats]


_PVECTOR_CLASS: type[PVector[Any]] = type(pvector())

_ROWS: dict[int, tuple[weakref.ref[object], tuple[tuple[Any, ...], ...]]] = {}
"""A persistent matrix's rows as tuples, by its identity, for as long as it lives."""


def rows_of(matrix: Sequence[Sequence[T]]) -> Sequence[Sequence[T]]:
    """``matrix``'s rows as tuples, made once for a pyrsistent vector of rows and remembered
    for as long as it lives; any other matrix as it is.

    Reading a pvector item by item costs several times what a tuple's items cost, and a
    layer's weights are read whole for every example of an inference loop.
    """
    if type(matrix) is not _PVECTOR_CLASS:
        return matrix
    key = id(matrix)
    known = _ROWS.get(key)
    if known is not None and known[0]() is matrix:
        return known[1]
    rows = tuple(map(tuple, matrix))

    def forget(_: weakref.ref[object]) -> None:
        _ROWS.pop(key, None)

    _ROWS[key] = (weakref.ref(matrix, forget), rows)
    return rows


@functools.lru_cache(maxsize=1024)
def _flat_shape(kind: str, length: int) -> _Shape:
    return _Shape(kind, None, (_LEAF_SHAPE,) * length, length, True)


_FLOAT_TYPE = frozenset({float})


def only_floats(items: Iterable[object]) -> bool:
    """Whether every item is exactly a ``float`` (checked in C: ``map(type, ...)``)."""
    return _FLOAT_TYPE.issuperset(map(type, items))


_SEQUENCE_KINDS: dict[type, str] = {_PVECTOR_CLASS: _PVECTOR, list: _LIST, tuple: _TUPLE}
"""Exact types of the plain sequences (a dict lookup is cheaper than an ABC isinstance)."""


def _float_sequence_kind(tree: object) -> str | None:
    """The kind of a non-empty plain sequence holding only floats, else ``None``."""
    kind = _SEQUENCE_KINDS.get(type(tree))
    if kind is None:
        if not isinstance(tree, (PVector, list)):
            return None
        kind = _PVECTOR if isinstance(tree, PVector) else _LIST
    items: Any = tree
    if items and only_floats(items):
        return kind
    return None


@dataclass(frozen=True)
class TreeDef(Generic[T]):
    """The structure of a tree of type ``T`` without its leaves; see :func:`tree_flatten`."""

    shape: _Shape

    @property
    def num_leaves(self) -> int:
        """How many leaves a tree of this structure holds."""
        return self.shape.num_leaves

    def __repr__(self) -> str:
        return f"TreeDef({_describe(self.shape)})"


def _sorted_keys(mapping: object, path: str) -> tuple[Hashable, ...]:
    keys = tuple(cast("Iterable[Hashable]", mapping))
    try:
        return tuple(sorted(keys))  # type: ignore[type-var]  # any mutually orderable keys
    except TypeError as error:
        where = path or "the root"
        raise TreeError(f"map keys at {where} cannot be sorted: {keys!r}") from error


def _children(node: object, path: str = "") -> tuple[str, Hashable, list[object]] | None:
    """Kind, aux data and children of a container node, or ``None`` for a leaf."""
    if type(node) is float:
        return None
    if isinstance(node, PMap):
        keys = _sorted_keys(node, path)
        return _PMAP, keys, [node[k] for k in keys]
    if isinstance(node, dict):
        keys = _sorted_keys(node, path)
        return _DICT, keys, [node[k] for k in keys]
    if isinstance(node, PVector):
        return _PVECTOR, None, list(node)
    if isinstance(node, list):
        return _LIST, None, list(node)
    if isinstance(node, tuple):
        if hasattr(type(node), "_fields"):
            return _NAMEDTUPLE, type(node), list(node)
        return _TUPLE, None, list(node)
    return None


IsLeaf = Callable[[object], bool]
"""A predicate marking subtrees to be treated as single leaves."""


MAX_TREE_DEPTH = 100
"""Trees nested deeper than this are refused with a :class:`TreeError` (parameter trees are a
few levels deep; Python's recursion limit would otherwise end a deeper walk with RecursionError)."""


def _too_deep() -> TreeError:
    return TreeError(
        f"the tree is nested more than {MAX_TREE_DEPTH} levels deep; trees this deep are refused"
    )


def _shape_of(node: object, leaves: list[Any], is_leaf: IsLeaf | None, depth: int = 0) -> _Shape:
    tree: Any = node  # hot path: no typing.cast calls
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return _LEAF_SHAPE
    kind = _float_sequence_kind(tree)
    if kind is not None:  # a vector of floats: no per-leaf recursion
        leaves.extend(tree)
        return _flat_shape(kind, len(tree))
    found = _children(tree)
    if found is None:
        leaves.append(tree)
        return _LEAF_SHAPE
    kind, aux, kids = found
    if depth >= MAX_TREE_DEPTH:
        raise _too_deep()
    shapes = tuple(_shape_of(kid, leaves, is_leaf, depth + 1) for kid in kids)
    return _Shape(kind, aux, shapes, sum(s.num_leaves for s in shapes))


def tree_flatten(tree: T, is_leaf: IsLeaf | None = None) -> tuple[list[float], TreeDef[T]]:
    """Split ``tree`` into its leaves (depth first, maps by sorted key) and its structure.

    ``is_leaf`` marks subtrees to keep whole as leaves (as in JAX).
    """
    if is_leaf is None:
        known = _FLATTENED.get(id(tree))
        if known is not None and known[0]() is tree:
            return list(known[1]), TreeDef(known[2])  # the leaves it had
    leaves: list[float] = []
    shape = _shape_of(tree, leaves, is_leaf)
    if is_leaf is None:
        _remember(tree, leaves, shape, None)
    return leaves, TreeDef(shape)


def tree_flatten_floats(tree: T, *, walk: bool = True) -> tuple[list[float], TreeDef[T]] | None:
    """:func:`tree_flatten` of a tree whose every leaf is exactly a ``float``, else ``None``.

    For a persistent tree flattened or built before (params an optimizer step gave, the
    gradients of :func:`tape.grad`), both the leaves and the answer are remembered, so
    the check costs a lookup. ``walk=False`` gives ``None`` for any other tree, unread.

    >>> from pyrsistent import pmap
    >>> tree_flatten_floats(pmap({"w": 1.0}))[0], tree_flatten_floats(pmap({"w": 1}))
    ([1.0], None)
    """
    known = _FLATTENED.get(id(tree))
    if known is None or known[0]() is not tree:
        if not walk:
            return None
        leaves, treedef = tree_flatten(tree)
        known = _FLATTENED.get(id(tree))
        if known is None or known[0]() is not tree:  # not a persistent tree: nothing to remember
            return (leaves, treedef) if only_floats(leaves) else None
    if known[3] is None:
        known[3] = only_floats(known[1])
    return (list(known[1]), TreeDef(known[2])) if known[3] else None


def _build(shape: _Shape, leaves: Iterator[object]) -> object:
    if shape.kind == _LEAF:
        return next(leaves)
    if shape.flat:
        kids = list(islice(leaves, shape.num_leaves))
    else:
        kids = [_build(child, leaves) for child in shape.children]
    if shape.kind == _TUPLE:
        return tuple(kids)
    if shape.kind == _LIST:
        return kids
    if shape.kind == _PVECTOR:
        return pvector(kids)
    if shape.kind == _NAMEDTUPLE:
        return cast("Callable[..., object]", shape.aux)(*kids)
    keys = cast("tuple[Hashable, ...]", shape.aux)
    built = dict(zip(keys, kids, strict=True))
    return pmap(built) if shape.kind == _PMAP else built


_BUILDER_NODES = 2000
"""The most containers a structure may have for a generated builder (larger ones use :func:`_build`)."""
_BUILDER_DEPTH = 40
"""The deepest structure a generated builder nests (the Python compiler's nesting is bounded)."""
_SEEN_ONCE: set[_Shape] = set()


def _builder_source(shape: _Shape, namespace: dict[str, object]) -> str | None:
    """One Python expression building ``shape`` from the flat list ``x`` (slices for flat sequences),
    or ``None`` for a structure too large or deep for one."""
    at = 0
    nodes = 0

    def name(obj: object) -> str:
        key = f"k{len(namespace)}"
        namespace[key] = obj
        return key

    def build(node: _Shape, depth: int) -> str | None:
        nonlocal at, nodes
        if node.kind == _LEAF:
            at += 1
            return f"x[{at - 1}]"
        nodes += 1
        if nodes > _BUILDER_NODES or depth > _BUILDER_DEPTH:
            return None
        if node.flat and node.kind in (_TUPLE, _LIST, _PVECTOR):
            part = f"x[{at}:{at + node.num_leaves}]"
            at += node.num_leaves
            return {_TUPLE: f"tuple({part})", _LIST: part, _PVECTOR: f"pvector({part})"}[node.kind]
        kids = [build(child, depth + 1) for child in node.children]
        if any(kid is None for kid in kids):
            return None
        listed = ", ".join(cast("list[str]", kids))
        if node.kind == _TUPLE:
            return f"({listed}{',' if kids else ''})"
        if node.kind == _LIST:
            return f"[{listed}]"
        if node.kind == _PVECTOR:
            return f"pvector([{listed}])"
        if node.kind == _NAMEDTUPLE:
            return f"{name(node.aux)}({listed})"
        keys = cast("tuple[Hashable, ...]", node.aux)
        items = ", ".join(f"{name(k)}: {kid}" for k, kid in zip(keys, cast("list[str]", kids), strict=True))
        return f"pmap({{{items}}})" if node.kind == _PMAP else f"{{{items}}}"

    return build(shape, 0)


@functools.lru_cache(maxsize=256)
def _builder(shape: _Shape) -> Callable[[Sequence[object]], object] | None:
    """A compiled function rebuilding ``shape`` from its leaves (cached per structure), or ``None``."""
    namespace: dict[str, object] = {"pmap": pmap, "pvector": pvector}
    source = _builder_source(shape, namespace)
    if source is None:
        return None
    built = eval(f"lambda x: {source}", namespace)  # our own code, from the structure alone
    return cast("Callable[[Sequence[object]], object]", built)


def tree_unflatten(treedef: TreeDef[T], leaves: Iterable[float], *, floats: bool = False) -> T:
    """Rebuild a tree of ``treedef``'s structure from ``leaves`` in flattening order.

    A structure rebuilt more than once gets a compiled builder (one expression of slices
    and constructors, no walk of the structure): training steps rebuild the same trees.
    Structures with map keys other than plain strings are always walked. ``floats=True``
    promises that every leaf is a ``float`` (as arithmetic with a float operand gives),
    which saves checking them for :func:`tree_flatten_floats`.
    """
    items = leaves if type(leaves) is list else list(leaves)
    if len(items) != treedef.num_leaves:
        raise TreeError(f"the structure has {treedef.num_leaves} leaves but {len(items)} were given")
    shape = treedef.shape
    builder = None
    if shape.plain_keys:  # 1, 1.0 and True are equal keys of equal structures: the walk keeps each
        if shape in _SEEN_ONCE:
            builder = _builder(shape)
        else:
            if len(_SEEN_ONCE) >= 1024:
                _SEEN_ONCE.clear()
            _SEEN_ONCE.add(shape)
    built = builder(items) if builder is not None else _build(shape, iter(items))
    if floats or only_floats(items):  # float leaves: no leaf is a subtree an is_leaf flattening kept whole
        _remember(built, items, treedef.shape, True)
    return cast(T, built)


class ArrayLayout(NamedTuple):
    """A structure of float leaves seen as arrays: see :func:`array_layout`."""

    treedef: TreeDef[Any]
    """The structure with every array one leaf (as ``tree_flatten(tree, is_float_array)`` gives)."""
    parts: tuple[tuple[int, int, tuple[int, ...] | None], ...]
    """For each of its leaves: the range ``start, stop`` of its floats, and its shape (``None``: a float)."""


_ARRAY_KINDS = (_LIST, _TUPLE, _PVECTOR)


def _array_shape(node: _Shape) -> tuple[int, ...] | None:
    """The shape of a rectangular nested sequence of floats with no empty axis, else ``None``."""
    if node.kind not in _ARRAY_KINDS or not node.children:
        return None
    kids = node.children
    if all(kid.kind == _LEAF for kid in kids):
        return (len(kids),)
    inner = _array_shape(kids[0])
    if inner is None or any(_array_shape(kid) != inner for kid in kids[1:]):
        return None
    return (len(kids), *inner)


@functools.lru_cache(maxsize=256)
def _layout(shape: _Shape) -> ArrayLayout:
    parts: list[tuple[int, int, tuple[int, ...] | None]] = []

    def visit(node: _Shape, at: int) -> _Shape:
        if node.kind == _LEAF:
            parts.append((at, at + 1, None))
            return node
        found = _array_shape(node)
        if found is not None:
            parts.append((at, at + node.num_leaves, found))
            return _LEAF_SHAPE
        kids = []
        first = len(parts)
        for child in node.children:
            kids.append(visit(child, at))
            at += child.num_leaves
        return _Shape(node.kind, node.aux, tuple(kids), len(parts) - first)

    return ArrayLayout(TreeDef(visit(shape, 0)), tuple(parts))


def array_layout(treedef: TreeDef[T]) -> ArrayLayout:
    """For a tree of floats of structure ``treedef``: its structure with every rectangular
    nested sequence of floats (:func:`tape.gradient_tape.is_float_array`: lists, plain
    tuples and vectors, no empty axis) as one leaf, and where each leaf's floats are.
    Computed once per structure, from the structure alone (which does not tell a tuple
    subclass from a tuple: the trees read this way are the ones this module built or
    remembered).

    >>> layout = array_layout(tree_structure({"w": [[1.0, 2.0], [3.0, 4.0]], "b": 0.5}))
    >>> layout.parts
    ((0, 1, None), (1, 5, (2, 2)))
    """
    return _layout(treedef.shape)


def tree_leaves(tree: object, is_leaf: IsLeaf | None = None) -> list[float]:
    """The leaves of ``tree`` in flattening order."""
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree: T, is_leaf: IsLeaf | None = None) -> TreeDef[T]:
    """The structure of ``tree`` without its leaves."""
    return tree_flatten(tree, is_leaf)[1]


def _join(path: str, part: object) -> str:
    return f"{path}.{part}" if path else str(part)


def _first_mismatch(a: _Shape, b: _Shape, path: str = "") -> str:
    """Path and description of the first place two shapes differ."""
    where = path or "the root"
    if a.kind != b.kind or (a.kind == _NAMEDTUPLE and a.aux != b.aux):
        return f"at {where}: {_describe(a, short=True)} vs {_describe(b, short=True)}"
    if a.kind in _MAP_KINDS and a.aux != b.aux:
        keys_a, keys_b = cast("tuple[object, ...]", a.aux), cast("tuple[object, ...]", b.aux)
        return f"at {where}: keys {list(keys_a)} vs {list(keys_b)}"
    if len(a.children) != len(b.children):
        return f"at {where}: length {len(a.children)} vs {len(b.children)}"
    labels: Sequence[object] = (
        cast("tuple[object, ...]", a.aux) if a.kind in _MAP_KINDS else range(len(a.children))
    )
    for label, x, y in zip(labels, a.children, b.children, strict=True):
        if x != y:
            return _first_mismatch(x, y, _join(path, label))
    return f"at {where}"


def _describe(shape: _Shape, short: bool = False) -> str:
    if shape.kind == _LEAF:
        return "leaf"
    if short:
        return f"{shape.kind} of {len(shape.children)}"
    inner = ", ".join(_describe(child) for child in shape.children)
    return f"{shape.kind}[{inner}]"


def assert_same_structure(
    first: object, second: object, names: tuple[str, str] = ("first", "second")
) -> None:
    """Raise :class:`TreeError` naming the first path where two trees' structures differ."""
    a, b = tree_structure(first).shape, tree_structure(second).shape
    if a != b:
        raise TreeError(f"{names[0]} and {names[1]} differ in structure {_first_mismatch(a, b)}")


def tree_map(fun: Callable[..., float], tree: T, *rest: T) -> T:
    """Apply ``fun`` leaf by leaf to ``tree`` and any trees of the same structure in ``rest``.

    >>> tree_map(lambda a, b: a + b, (1.0, [2.0]), (10.0, [20.0]))
    (11.0, [22.0])
    """
    leaves, treedef = tree_flatten(tree)
    others: list[list[float]] = []
    for index, other in enumerate(rest):
        other_leaves, other_def = tree_flatten(other)
        if other_def.shape != treedef.shape:
            raise TreeError(
                f"tree_map: tree {index + 1} differs from the first "
                f"{_first_mismatch(treedef.shape, other_def.shape)}"
            )
        others.append(other_leaves)
    return tree_unflatten(treedef, [fun(*args) for args in zip(leaves, *others, strict=True)])


def _named(
    tree: object, path: str, out: list[tuple[str, float]], is_leaf: IsLeaf | None, depth: int = 0
) -> None:
    found = None if is_leaf is not None and is_leaf(tree) else _children(tree, path)
    if found is None:
        out.append((path, cast(float, tree)))
        return
    if depth >= MAX_TREE_DEPTH:
        raise _too_deep()
    kind, aux, kids = found
    labels: Sequence[object] = cast("tuple[object, ...]", aux) if kind in _MAP_KINDS else range(len(kids))
    for label, kid in zip(labels, kids, strict=True):
        _named(kid, _join(path, label), out, is_leaf, depth + 1)


def named_leaves(tree: object, is_leaf: IsLeaf | None = None) -> list[tuple[str, float]]:
    """Each leaf with its dotted path through map keys and sequence indices.

    The order is the flattening order. ``{"layers": [{"weight": [[1.0]]}]}`` gives
    ``[("layers.0.weight.0.0", 1.0)]``.
    """
    out: list[tuple[str, float]] = []
    _named(tree, "", out, is_leaf)
    return out


def _parameter_names(tree: object, path: str, current: str | None, out: list[str], depth: int = 0) -> None:
    found = _children(tree, path)
    if found is None:
        out.append(path if current is None else current)
        return
    if depth >= MAX_TREE_DEPTH:
        raise _too_deep()
    kind, aux, kids = found
    is_map = kind in _MAP_KINDS
    labels: Sequence[object] = cast("tuple[object, ...]", aux) if is_map else range(len(kids))
    for label, kid in zip(labels, kids, strict=True):
        child_path = _join(path, label)
        _parameter_names(kid, child_path, child_path if is_map else current, out, depth + 1)


def leaf_parameter_names(tree: object) -> list[str]:
    """For each leaf in flattening order, the name of the parameter it belongs to.

    A parameter's name is the leaf's path cut after its last map key, so every float
    of the matrix at ``layers.0.weight`` is named ``layers.0.weight``. A leaf reached
    through no map key is named by its full path (``""`` for a bare leaf). On
    parameter trees (maps whose values are map-free arrays, or further maps and
    sequences of maps) this agrees with :func:`named_parameters`.
    """
    out: list[str] = []
    _parameter_names(tree, "", None, out)
    return out


def parameter_name(path: str, tree: object) -> str:
    """The parameter name of the leaf at dotted ``path`` in ``tree`` (see :func:`leaf_parameter_names`)."""
    for (leaf_path, _), name in zip(named_leaves(tree), leaf_parameter_names(tree), strict=True):
        if leaf_path == path:
            return name
    raise TreeError(f"no leaf at path {path!r}")


def named_parameters(tree: object) -> list[tuple[str, object]]:
    """Split ``tree`` into its parameters: ``[(name, subtree), ...]`` in flattening order.

    A parameter is a largest subtree that holds no map (with leaves); its name is its
    dotted path.
    For ``pmap({"layers": [pmap({"weight": w, "bias": b})]})`` this is
    ``[("layers.0.bias", b), ("layers.0.weight", w)]``. A tree with no map at all is
    one parameter named ``""``.
    """
    out: list[tuple[str, object]] = []
    _split(tree, "", out)
    return out


def _holds_map(tree: object, depth: int = 0) -> bool:
    """Whether a map with at least one leaf below it sits anywhere in ``tree``."""
    found = _children(tree)
    if found is None:
        return False
    if depth >= MAX_TREE_DEPTH:
        raise _too_deep()
    kind, _, kids = found
    if kind in _MAP_KINDS and any(tree_leaves(kid) for kid in kids):
        return True
    return any(_holds_map(kid, depth + 1) for kid in kids)


def _split(tree: object, path: str, out: list[tuple[str, object]]) -> None:
    found = _children(tree, path)
    if found is None or not _holds_map(tree):
        out.append((path, tree))
        return
    kind, aux, kids = found
    labels: Sequence[object] = cast("tuple[object, ...]", aux) if kind in _MAP_KINDS else range(len(kids))
    for label, kid in zip(labels, kids, strict=True):
        _split(kid, _join(path, label), out)
