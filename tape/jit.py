"""``jit``: compile a function's recorded tape to straight-line Python, and replay it.

On the first call for an input structure, :func:`jit` runs the function once on a
tracing tape (every float of the arguments watched), turns the frozen nodes into
Python source, a line per op (a value read once, by a later op, is computed in that
op's line), compiles it and caches it; later calls with new
numbers run the compiled code only. For what :func:`tape.grad` and
:func:`tape.value_and_grad` return, the trace is of the differentiated function and
the generated code holds its forward pass and its backward pass (the reverse sweep,
written out), so ``jit(value_and_grad(loss))`` is the one-line speed-up.

Each op's ``emit`` rule, beside its other rules in its family file, gives the code:

- a scalar op: ``emit(c, v, *args) -> (forward, partials)``, Python expressions of
  the operands' expressions ``args`` (sequences of them for an ``nary`` op), the
  partials also of the value's name ``v`` (a partial chosen by a comparison, as
  relu's, is a :class:`tape.core.op.Branch`); ``c.ref(obj)`` names a kernel the code calls.
- an array op: ``emit(c, node, operands, v, s) -> lines``, statements setting the
  value ``v`` and what the op's own ``vjp`` rule reads, ``s``; the backward pass
  calls that ``vjp``. ``c.var(position)``, ``c.arg(position, data)``,
  ``c.constant(data)``, ``c.ints(targets)`` and ``c.local(slots)`` give expressions.

An op without an ``emit`` rule (a user's op, or an N-d op of :func:`tape.array.array_op`)
compiles to calls of its own rules, with the node's operands and keyword parameters.
The generated code makes the same float operations in the same order as the
interpreted tape, so results are equal bit for bit, and branches inside ops
(``relu``, ``abs``, ``leaky_relu``) stay data-dependent code.

What is traced, and what is not (as in JAX):

- Every float of the arguments is an input, as is an untracked :class:`tape.Array`
  (from ``tape.array.asarray``), and with ``arrays=True`` (or the ``arrays`` of the
  differentiated function) every rectangular nested sequence of floats, of any depth
  (see :func:`tape.gradient_tape.is_float_array`), is one; its shape is part of the
  cache key. A float or an untracked Array of an argument that ``grad`` does not
  differentiate (or of a plain function's argument) is watched too (it reaches the
  function as a Value or Array; its derivative is not computed). Such a Value, and
  a Value computed only from such Values and Arrays, stands for the plain float the
  uncompiled function has there; an Array so computed stands for plain nested tuples,
  unless without jit it is an untracked Array (such an argument, ``asarray`` of
  stand-ins, or an op's result on one of these). Where an array op (or ``asarray``,
  ``mean``, ``reshape``, ``transpose``) takes a nested sequence holding stand-ins for
  floats and tuples and no other Value or Array, it takes their stack, one traced
  Array, as it takes the floats without jit, so ``sum(Y)`` and ``Y[0] * x`` both
  replay with new numbers. A sequence holding any other Value or Array (one computed
  from a differentiated argument, or an untracked Array's stand-in) is the TypeError
  it is without jit, and a plain function's result that is an untracked Array
  without jit is one under jit (an Array standing for tuples comes back as the
  tuples). ``linear`` takes a batch of stand-ins as one Array when its weights are an
  Array, and ``cross_entropy_with_logits`` takes logits of stand-ins as one Array.
  ``mse``'s targets and ``scale``'s factors (constants of their ops) do not take
  stand-ins (a TypeError says so), nor does ``linear`` with weights of Values (it gives rows of
  Values): give such data with ``arrays=True`` or as ``asarray(data)``. With ``arrays``, a
  nested sequence of floats of an argument not differentiated reaches the function as
  plain floats, as without jit: an array op that takes it with a traced operand
  (``linear``'s batch, ``mse``'s targets, ``scale``'s mask) reads it from the inputs
  on later calls, but Python arithmetic on its floats (``Y[0] * Y[1]``, or ``Y[0]``
  given to a scalar op alone), and an op whose operands are all such data
  (``sum(Y)``), run at the first call only and are frozen at its values (pass the
  data as ``asarray(data)`` to have them traced).
- A sequence of ints (a list or tuple, or rectangular nested ones: a ``(batch,
  time)`` token matrix) is an int input. The traced function sees its own int
  objects, so an op's parameter (``indices=``, ``targets=``) holding them is read
  from the inputs on later calls: the whole input, a run of it in order (a row, a
  slice such as ``tokens[1:]``), single ints of it, or nested tuples of these. A
  parameter built of other ints (an ``axis``, a ``shape``, a stride, written in the
  code) is a constant of the code even when it equals an input. An int input that
  reaches the code otherwise (a constant of a scalar op, a list parameter) is part
  of the cache key, and a new value traces again; so is an int input no op reads.
  Python arithmetic or branching on its ints (``t + 1``, ``if t:``) cannot be seen,
  and is frozen. Any other int, and anything that is not a float, is static: the
  cache key holds its value. So does ``static_argnums``; keyword arguments are static.
- Python control flow on a traced Value (``if x > 0``, ``bool(x)``, ``float(x)``)
  cannot be replayed and raises :class:`tape.TracingError`; reading ``x.data`` or
  computing in Python on the floats of an argument cannot be seen, and is frozen at
  the values of the first call. Branch inside ops, or make the argument static.
- An op without the library's ``builtin`` mark (a user's op) runs once per call, in the
  interpreter's order, even when nothing reads its value; library ops whose value is read
  once are computed where it is read, as they neither raise nor have effects on floats.
  A plain function's floats are traced Values, so its float arithmetic follows the
  tape's IEEE rules (``x / 0.0`` is ``inf``, not Python's ZeroDivisionError).
- Nested tapes inside the function (a ``grad`` or ``jvp`` it calls) are traced through
  the library's nesting; an op whose derivative rule branches on its input (relu,
  abs) then raises :class:`tape.TracingError` rather than freezing the branch.

The cache holds the 32 most recently used structures (``cache_size``). Each compiled
function checks, at every call, the ``version`` of every op it uses: redefining one
with ``define(..., replace=True)`` makes it trace again. The code is one function up
to :data:`CHUNK_LINES` lines; a larger graph is split into functions that pass their
live values through one list.

The backward pass is the chain rule written out: each adjoint ``g{i}`` is one sum of
the terms its uses pass back, in the order the interpreted sweep adds them, and an
add's operand takes its consumer's adjoint with no line of its own. A product's term
``g * v`` is untested once the forward values that are such partials are checked finite,
in one line before the backward; a call where one is not runs the code that tests each
term (as the sweep skips a zero adjoint, ``0 * inf`` adds nothing), compiled when first needed.

>>> import tape
>>> f = tape.jit(tape.value_and_grad(lambda x: tape.relu(x) * x))
>>> f(3.0), f(-2.0)
((9.0, 6.0), (-0.0, 0.0))
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, Generic, NamedTuple, ParamSpec, TypeVar, cast

from pyrsistent import PVector, pvector

from tape.array import Array, constant_array, flatten, nest, record_array, shape_of
from tape.core.node import Node, Tracked
from tape.core.op import LEAF, Branch, Op, joined, times
from tape.core.recording import collector_paused
from tape.gradient_tape import Tape, is_float_array, not_watchable
from tape.ops.indexing import stack
from tape.transforms import (
    Differentiated,
    array_gradient,
    differentiated,
    gradient_floats,
    normalize_argnums,
    unwrap,
)
from tape.tree import TreeDef, array_layout, tree_flatten, tree_flatten_floats, tree_unflatten
from tape.validate import float_array, positional_arity
from tape.value import Value

__all__ = ["Compiled", "Jitted", "TraceTape", "jit"]

P = ParamSpec("P")
R = TypeVar("R")

CHUNK_LINES = 200_000
"""The most lines one generated function holds; larger graphs are split into several. One function
replays fastest (its values stay in local variables); parts pass the values that cross them through
a list, and a graph of 100,000 scalar ops (about 150,000 lines) compiles fastest as one function."""
_RESERVED = frozenset(
    {"inputs", "shared", "buffer", "abs", "sum", "map", "Node", "itemgetter", "chain", "isfinite", "fallback"}
)
"""Names the generated code uses for its own globals and builtins: never a kernel's name."""
_LOCAL_NAME = re.compile(r"[vgsrxmn]\d+")
"""The generated code's local variables (values, adjoints, saved operands, residuals, inputs)."""

_CALLED = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\(")
"""The start of a call of a named kernel."""

FUSED_OPS = 8
"""The most ops one statement of the forward pass computes: a value read once, by a later
statement, is computed in it, up to this many (deeper expressions would nest too far for Python)."""

SUM_TERMS = 8
"""The most terms an adjoint's sum waits for: a node used more often has its sum written in parts,
so the consumers' adjoints need not stay alive until the sweep reaches it."""


class _NotStandIn(Exception):
    """A sequence holds a Value that is no stand-in for a plain float."""


class TraceTape(Tape):
    """The tape :func:`jit` traces on: it keeps every op's operands, constants included."""

    __slots__ = ("_arrays", "_standing", "arrays", "operands", "stand_ins")

    traces = True

    def __init__(self) -> None:
        super().__init__()
        self.operands: dict[int, tuple[object, ...]] = {}
        self.stand_ins: set[int] = set()  # watched leaves the uncompiled function gets as they are
        self.arrays: set[int] = set()  # of those and of floats_array's, the untracked Arrays without jit
        self._standing: list[bool] = []  # per position so far: whether the value is a stand-in
        self._arrays: list[bool] = []  # and whether it is an untracked Array without jit

    def without_jit(self, position: int) -> str:
        """What the value at ``position`` is without jit: ``"plain"`` (a float or nested tuples),
        ``"untracked"`` (an untracked Array), or ``"tracked"`` (computed from a differentiated argument).
        """
        nodes, standing, arrays = self.nodes, self._standing, self._arrays
        for i in range(len(standing), position + 1):
            node = nodes[i]
            parents = node.parents
            standing.append(all(standing[p] for p in parents) if parents else i in self.stand_ins)
            arrays.append(  # an array op gives an untracked Array when an operand is one
                node.value.__class__ is tuple and (i in self.arrays or any(arrays[p] for p in parents))
            )
        if not standing[position]:
            return "tracked"
        return "untracked" if arrays[position] else "plain"

    def floats_array(self, x: Sequence[object], where: str, *, array: bool = False) -> Array | None:
        """``x``, a nested sequence whose Values all stand for plain floats, as one tracked Array.

        A Value stands for a plain float when it is a watched float the uncompiled function
        gets as a float (:attr:`stand_ins`), or every operand it was computed from stands
        for its plain value: without jit it is a float. So is an Array computed so, unless
        without jit it is an untracked Array (one of :attr:`arrays`, or computed from one),
        which no array op takes inside a sequence. The Array is their stack (the floats
        ``x`` holds are constants of it), so an array op taking it replays with new
        numbers; with ``array`` it is an untracked Array without jit (``asarray``'s).
        ``None`` when ``x`` holds any other Value or Array; a ragged or non-number ``x``
        is the error the plain floats would give.
        """

        def primal(item: object) -> object:
            if isinstance(item, Tracked):
                if item.tape is self and self.without_jit(item.position) == "plain":  # a Value, or tuples
                    return item.primal
                raise _NotStandIn
            if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
                return item
            return [primal(inner) for inner in cast("Sequence[object]", item)]

        def build(item: object, data: object) -> object:
            if isinstance(item, Tracked):
                return item
            if not isinstance(data, tuple):
                return data
            items = cast("Sequence[object]", item)
            return stack([build(inner, d) for inner, d in zip(items, data, strict=True)])

        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
            return None
        try:
            floats = primal(x)
        except _NotStandIn:
            return None
        data = float_array(floats, where)  # the interpreter's checks, on the plain floats
        made = cast(Array, build(x, data))
        if array:
            self.arrays.add(made.position)
        return made

    def record_traced(
        self,
        op: Op,
        parents: tuple[int, ...],
        value: object,
        saved: tuple[object, ...] | None,
        operands: tuple[object, ...],
        kind: type[Any],
    ) -> Any:
        """Record as :meth:`record` does, keeping ``operands`` (``None`` where tracked)."""
        self.operands[len(self)] = operands
        return self.record(op, parents, value, saved, kind)


# --- input structure --------------------------------------------------------------------


def _int_shape(x: object) -> tuple[int, ...] | None:
    """The shape of a non-empty rectangular nested sequence of ints (not bools), else ``None``."""
    if not (isinstance(x, (list, PVector)) or type(x) is tuple) or not x:
        return None
    items = cast("Sequence[object]", x)
    if type(items[0]) is int:
        return (len(items),) if all(type(item) is int for item in items) else None
    inner = _int_shape(items[0])
    if inner is None or any(_int_shape(row) != inner for row in items[1:]):
        return None
    return (len(items), *inner)


def _is_int_array(x: object) -> bool:
    if not (isinstance(x, (list, PVector)) or type(x) is tuple) or not x:
        return False
    first = cast("Sequence[Any]", x)[0]
    if type(first) is int:  # the common case, a flat sequence: no recursion
        return all(type(item) is int for item in cast("Sequence[object]", x))
    return _int_leaf(first) and _int_shape(x) is not None


def _array_leaf(x: object) -> bool:
    return is_float_array(x) or _is_int_array(x)


def _frozen_ints(x: Any) -> Any:
    """A nested int sequence as nested tuples (hashable, for the cache key)."""
    return tuple(x) if type(x[0]) is int else tuple(map(_frozen_ints, x))


class _Flat(NamedTuple):
    key: Hashable
    leaves: list[Any]
    treedefs: list[TreeDef[Any] | None]  # None for a static argument
    counts: list[int]
    kinds: list[str]  # per leaf: "f" float, "a" float array, "A" untracked Array, "i" ints, "s" static
    float_defs: list[TreeDef[Any] | None]  # per argument, its floats' structure when known to be floats


def _flatten(
    args: tuple[object, ...], static: frozenset[int], arrays: bool, differentiated: Container[int] = ()
) -> _Flat | None:
    """The arguments' leaves and the structure key; ``None`` when one is tracked by a tape.

    A differentiated argument of floats built before is read by its structure's array
    layout (the function sees Arrays there, not its containers)."""
    key: list[Hashable] = []
    leaves: list[Any] = []
    treedefs: list[TreeDef[Any] | None] = []
    counts: list[int] = []
    kinds: list[str] = []
    float_defs: list[TreeDef[Any] | None] = []
    for n, arg in enumerate(args):
        float_defs.append(None)
        if n in static:
            key.append(("static", _hashable(arg, f"static argument {n}")))
            treedefs.append(None)
            counts.append(0)
            continue
        known = tree_flatten_floats(arg, walk=False) if arrays and n in differentiated else None
        if known is not None:  # params a step built: their arrays from the structure, no walk
            floats, float_defs[n] = known
            layout = array_layout(known[1])
            flat = [floats[a] if shape is None else nest(floats[a:b], shape) for a, b, shape in layout.parts]
            treedef = layout.treedef
        else:
            flat, treedef = tree_flatten(arg, _array_leaf if arrays else _is_int_array)
        described: list[Hashable] = [treedef]
        for leaf in flat:
            item: Any = leaf
            if item.__class__ is float:
                kinds.append("f")
                described.append("f")
            elif isinstance(item, (list, tuple, PVector)):
                if type(item[0]) is int:
                    kinds.append("i")
                    described.append(("i", len(item)))
                elif _int_leaf(item):
                    kinds.append("i")
                    described.append(("i", shape_of(item)))
                else:
                    kinds.append("a")
                    described.append(("a", shape_of(item)))
            elif isinstance(item, Tracked) and item.tape is not None:
                return None
            elif isinstance(item, Array):
                kinds.append("A")
                described.append(("A", item.shape))
            else:
                kinds.append("s")
                described.append(("s", type(item), _hashable(item, f"a leaf of argument {n}")))
        key.append(tuple(described))
        leaves.extend(flat)
        treedefs.append(treedef)
        counts.append(len(flat))
    return _Flat(tuple(key), leaves, treedefs, counts, kinds, float_defs)


def _int_leaf(x: Any) -> bool:
    """Whether a nested sequence leaf holds ints (its first number is an int)."""
    while isinstance(x, (list, tuple, PVector)):
        if not x:  # an empty sequence holds no ints
            return False
        x = x[0]
    return type(x) is int


def _hashable(x: object, where: str) -> Hashable:
    try:
        hash(x)
    except TypeError:
        raise TypeError(f"jit: {where} is static and must be hashable, not {type(x).__name__}") from None
    return x


def _fresh(x: Any) -> Any:
    """A copy of a float (or float array) made of new float objects, in the same containers."""
    if x.__class__ is float:
        return x * 1.0  # a new object, the same bits
    items = [_fresh(item) for item in x]
    if isinstance(x, PVector):
        return pvector(items)
    return items if isinstance(x, list) else tuple(items)


def _nested_load(source: str, depth: int) -> str:
    """An expression giving ``source`` (nested sequences ``depth`` deep) as nested tuples."""
    if depth == 1:
        return f"tuple({source})"
    if depth == 2:
        return f"tuple(map(tuple, {source}))"
    inner = f"a{depth}"
    return f"tuple([{_nested_load(inner, depth - 1)} for {inner} in {source}])"


def _flat_load(source: str, depth: int) -> str:
    """An expression giving the numbers of ``source`` (nested ``depth`` deep) as one flat tuple."""
    for _ in range(depth - 1):
        source = f"chain({source})"
    return f"tuple({source})"


class _TracedInt(int):
    """An int of an int input, as the traced function sees it: its identity says where it came from."""

    __slots__ = ()


class _Sources:
    """Where the numbers of the arguments came from, for the code that reads them back."""

    def __init__(self) -> None:
        self.gathered: dict[int, tuple[int, ...]] = {}  # id of a fresh float -> (input, indices...)
        self.shapes: dict[int, tuple[int, ...]] = {}  # input -> shape of a float array gathered from
        self.flat_ids: dict[int, list[int]] = {}  # input -> ids of its fresh floats, row-major
        self.int_ids: dict[int, tuple[int, int]] = {}  # id of a traced int -> (input, row-major offset)
        self.int_shapes: dict[int, tuple[int, ...]] = {}  # int input -> its shape
        self.int_values: list[tuple[int, tuple[Any, ...]]] = []  # (input, nested tuples) of each
        self.keep: list[object] = []  # the fresh objects, alive while their ids are keys

    def gather(self, index: int, data: Any) -> None:
        """Note every float of ``data`` (fresh objects) as read from input ``index``."""
        self.shapes[index] = shape_of(data)
        ids: list[int] = []

        def walk(x: Any, at: tuple[int, ...]) -> None:
            if x.__class__ is float:
                self.gathered[id(x)] = (index, *at)
                ids.append(id(x))
                return
            for i, item in enumerate(x):
                walk(item, (*at, i))

        walk(data, ())
        self.flat_ids[index] = ids
        self.keep.append(data)

    def traced_ints(self, index: int, ints: Any) -> Any:
        """``ints`` (nested sequences) in the same containers, each int a traced one of input ``index``."""
        self.int_shapes[index] = shape_of(ints)
        self.int_values.append((index, _frozen_ints(ints)))
        offset = 0

        def copy(x: Any) -> Any:
            nonlocal offset
            if type(x) is int:
                made = _TracedInt(x)
                self.int_ids[id(made)] = (index, offset)
                self.keep.append(made)
                offset += 1
                return made
            items = [copy(item) for item in x]
            if isinstance(x, PVector):
                return pvector(items)
            return items if isinstance(x, list) else tuple(items)

        return copy(ints)


# --- code generation -----------------------------------------------------------------------


_NO_NAMES: frozenset[str] = frozenset()


class _Block(NamedTuple):
    lines: list[str]
    defs: frozenset[str]
    uses: frozenset[str]
    tested: list[str] | None = None  # the lines of the fallback code, where they differ


_new_tuple = tuple.__new__
"""``_new_tuple(_Block, (lines, defs, uses, tested))`` makes a block without the Python frame of
its ``__new__``: the generator makes one or more per line of code."""

_UNWRITTEN = _Block([], _NO_NAMES, _NO_NAMES)
"""The place of a forward statement whose line :func:`_fuse` writes (code not split into parts)."""


def _name_of(obj: object, hint: str | None) -> str:
    raw = hint or getattr(obj, "__name__", "") or "k"
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in raw).strip("_") or "k"
    return name if not name[0].isdigit() else f"k{name}"


class _Emitter:
    """What emit rules call to name values, constants and kernels in the generated code."""

    def __init__(self, sources: _Sources):
        self.namespace: dict[str, object] = {}
        self._refs: dict[int, str] = {}
        self._sources = sources
        self.bound_ints: set[int] = set()  # int inputs the code reads
        self.frozen_ints: set[int] = set()  # int inputs some code holds as constants
        self.uses: set[str] = set()
        self.locals: dict[int, int | None] = {}  # parent position -> index in the vjp buffer
        self.input_loads: dict[str, str] = {}  # input variable -> how it is loaded

    def ref(self, obj: object, hint: str | None = None) -> str:
        """A global name for ``obj`` (a kernel, a constant) in the generated code."""
        found = self._refs.get(id(obj))
        if found is not None:
            return found
        base = _name_of(obj, hint)
        name, k = base, 1
        while name in self.namespace or name in _RESERVED or _LOCAL_NAME.fullmatch(name):
            k += 1
            name = f"{base}_{k}"
        self.namespace[name] = obj
        self._refs[id(obj)] = name
        return name

    def var(self, position: int) -> str:
        """The variable holding the value recorded at ``position``."""
        name = f"v{position}"
        self.uses.add(name)
        return name

    def _input(self, index: int, load: str) -> str:
        name = f"x{index}"
        self.input_loads.setdefault(name, load)
        self.uses.add(name)
        return name

    def constant(self, data: object) -> str:
        """An expression for an untracked operand: read from the inputs where it came from them."""
        if data is None or isinstance(data, (bool, int)):
            self.freeze(data)
            return repr(int(data)) if type(data) is _TracedInt else repr(data)
        if data.__class__ is float:
            value: float = data
            where = self._sources.gathered.get(id(data))
            if where is not None:
                index, *at = where
                return self._input(index, f"inputs[{index}]") + "".join(f"[{i}]" for i in at)
            if math.isfinite(value):
                return (
                    f"({value!r})"
                    if value < 0.0 or (value == 0.0 and math.copysign(1.0, value) < 0)
                    else repr(value)
                )
            return self.ref(data, "nan" if math.isnan(value) else ("inf" if value > 0 else "minus_inf"))
        if isinstance(data, tuple) and data:
            whole = self._whole_input(data)
            if whole is not None:
                return whole
            if any(self._holds_gathered(item) for item in data):
                return f"({', '.join(self.constant(item) for item in data)},)"
        self.freeze(data)
        return self.ref(data, "constant")

    def _holds_gathered(self, item: object) -> bool:
        if item.__class__ is float:
            return id(item) in self._sources.gathered
        return isinstance(item, tuple) and any(self._holds_gathered(x) for x in item)

    def _whole_input(self, data: tuple[Any, ...]) -> str | None:
        """The name of an input array that ``data`` is, element for element, or ``None``."""
        probe: Any = data
        while probe.__class__ is tuple and probe:
            probe = probe[0]
        where = self._sources.gathered.get(id(probe))
        if where is None:
            return None
        index = where[0]
        shape = self._sources.shapes[index]
        if shape_of(data) != shape or [id(x) for x in flatten(data)] != self._sources.flat_ids[index]:
            return None
        name = f"m{index}"
        self.input_loads.setdefault(name, _nested_load(f"inputs[{index}]", len(shape)))
        self.uses.add(name)
        return name

    def freeze(self, data: object) -> None:
        """Note the int inputs whose traced ints ``data`` holds as constants of the code."""
        if type(data) is _TracedInt:
            where = self._sources.int_ids.get(id(data))
            if where is not None:
                self.frozen_ints.add(where[0])
        elif isinstance(data, (tuple, list)):
            for item in cast("Sequence[object]", data):
                self.freeze(item)

    def _int_flat(self, index: int) -> str:
        """The variable holding int input ``index`` as one flat tuple."""
        self.bound_ints.add(index)
        return self._input(index, _flat_load(f"inputs[{index}]", len(self._sources.int_shapes[index])))

    def _int_nested(self, index: int) -> str:
        """The variable holding int input ``index`` (two or more axes) as nested tuples."""
        self.bound_ints.add(index)
        name = f"n{index}"
        self.input_loads.setdefault(
            name, _nested_load(f"inputs[{index}]", len(self._sources.int_shapes[index]))
        )
        self.uses.add(name)
        return name

    def traced(self, value: object) -> str | None:
        """An expression reading the traced ints ``value`` holds from the inputs; ``None`` if it holds none.

        ``value`` is an int or nested tuples of ints; an int of an input is read from it,
        a run of one input's ints in order as a slice (the whole input as it is).
        """
        sources = self._sources
        if type(value) is _TracedInt:
            where = sources.int_ids.get(id(value))
            return None if where is None else f"{self._int_flat(where[0])}[{where[1]}]"
        if not (isinstance(value, tuple) and value):
            return None
        items = flatten(value)
        found = [sources.int_ids.get(id(x)) if type(x) is _TracedInt else None for x in items]
        if not any(found):
            return None
        first = found[0]
        if first is not None and all(
            at is not None and at[0] == first[0] and at[1] == first[1] + k for k, at in enumerate(found)
        ):
            index, start = first
            shape = shape_of(value)
            full = sources.int_shapes[index]
            if shape == full and len(shape) > 1:
                return self._int_nested(index)
            if len(shape) == 1:
                flat = self._int_flat(index)
                whole = start == 0 and len(items) == math.prod(full)
                return flat if whole else f"{flat}[{start}:{start + len(items)}]"
        parts = []
        for item in value:
            expr = self.traced(item)
            parts.append(expr if expr is not None else self.constant(item))
        return f"({', '.join(parts)},)"

    def ints(self, values: tuple[int, ...]) -> str:
        """An expression for ints an op saved: read from the inputs they came from, else a constant.

        Ints that are not the inputs' own (copies) are read from the one int input equal
        to them, when there is exactly one.
        """
        expr = self.traced(values)
        if expr is not None:
            return expr
        matches = [index for index, given in self._sources.int_values if given == values]
        if len(matches) == 1:
            index = matches[0]
            return (
                self._int_flat(index)
                if len(self._sources.int_shapes[index]) == 1
                else self._int_nested(index)
            )
        return repr(values)

    def arg(self, position: int | None, data: object) -> str:
        """The operand at ``position`` when tracked, else the constant ``data``."""
        return self.var(position) if position is not None else self.constant(data)

    def local(self, slots: Sequence[int | None]) -> str:
        """Tape positions as indices into the backward buffer (``None`` where no gradient is wanted)."""
        return repr(tuple(None if at is None else self.locals.get(at) for at in slots))

    def take_uses(self) -> frozenset[str]:
        used = frozenset(self.uses)
        self.uses = set()
        return used


def _is_number(expr: str | Branch) -> bool:
    """Whether a partial is a finite constant (a Branch: whichever side it takes)."""
    if isinstance(expr, Branch):
        return _is_number(expr.if_true) and _is_number(expr.if_false)
    if expr[:1].isalpha() or expr[:1] == "_":  # a name or a call (inf and nan are not finite either)
        return False
    try:
        return math.isfinite(float(expr))
    except ValueError:
        return False


class _Program(NamedTuple):
    source: str
    namespace: dict[str, object]
    ops: tuple[tuple[Op, int], ...]
    bound_ints: frozenset[int]
    lines: int
    fallback: list[_Block] | None  # the blocks of the code testing each product's adjoint (one function)


def _generate(
    trace: TraceTape,
    inputs_at: dict[int, tuple[int, str]],
    outputs: list[object],
    target: int | None,
    wanted: list[int],
    emitter: _Emitter,
    name: str,
    tracked: bool,
) -> _Program | None:
    """Python source for the traced graph: forward, then (with a ``target``) the reverse sweep.

    ``inputs_at`` maps a watched leaf's position to its input index and kind; ``outputs``
    are positions (ints) or constants (anything else, wrapped in a 1-tuple); ``wanted``
    the leaves whose gradients are returned after the outputs. Code split into parts
    passes its live variables on, so it needs the names each line reads and sets
    (``tracked``); without them, a graph past :data:`CHUNK_LINES` gives ``None``.
    """
    nodes = trace.nodes
    count = len(nodes)
    names = [f"v{i}" for i in range(count)]  # each value's variable, and its adjoint's
    adjoints = [f"g{i}" for i in range(count)] if target is not None else []
    # what the results need, and every op of a user's (its kernel may log or raise, as uncompiled)
    builtin = [node.op.builtin for node in nodes]
    needed = [not b for b in builtin]
    for out in outputs:
        if isinstance(out, int):
            needed[out] = True
    if target is not None:
        needed[target] = True
    for i in range(count - 1, -1, -1):
        if needed[i]:
            for p in nodes[i].parents:
                needed[p] = True
    relevant = [False] * count
    reached = [False] * count
    if target is not None and wanted:
        for at in wanted:
            relevant[at] = True
        for i in range(min(wanted), count):
            if not relevant[i] and any(map(relevant.__getitem__, nodes[i].parents)):
                relevant[i] = True
        reached[target] = relevant[target]

    blocks: list[_Block] = []
    ops: dict[int, tuple[Op, int]] = {}
    # a scalar node's partials for the backward
    kept: dict[int, tuple[list[str | Branch], frozenset[str]]] = {}

    # how often the code reads each forward value (2: more than once, or not only by forward code)
    reads: dict[str, int] = {f"v{out}": 2 for out in outputs if isinstance(out, int)}
    statements: list[tuple[str, int, str, bool]] = []  # the scalar statements of the forward pass
    readers: dict[str, int] = {}  # a value -> the (last) statement that reads it

    def add(lines: list[str], defs: set[str], tested: list[str] | None = None) -> None:
        if tracked:
            blocks.append(_Block(lines, frozenset(defs), emitter.take_uses(), tested))
        else:
            emitter.uses.clear()
            blocks.append(_new_tuple(_Block, (lines, _NO_NAMES, _NO_NAMES, tested)))

    # forward
    for i, node in enumerate(nodes):
        if not needed[i]:
            continue
        op = node.op
        if id(op) not in ops:  # each op the code uses, with the version it was traced at
            ops[id(op)] = (op, op.version)
        v = names[i]
        if not node.parents:
            index, load = inputs_at[i]
            add([f"{v} = {load}  # input {index}"], {v})
            continue
        if op.kind == "scalar":
            forward, partials = _scalar_code(emitter, trace, i, node, names)
            mentioned = _mentions(partials) if relevant[i] and partials else ""
            at = len(statements)
            for read in emitter.uses:
                reads[read] = reads.get(read, 0) + (2 if read in mentioned else forward.count(read))
                readers[read] = at
            if v in mentioned:
                reads[v] = 2
            # a library op is moved only on operands of library ops: floats, on which it cannot raise
            movable = op.builtin and all(map(builtin.__getitem__, node.parents))
            statements.append((v, len(blocks), forward, movable))
            if tracked:
                add([f"{v} = {forward}"], {v})  # no comment: a scalar op reads as what it computes
                if relevant[i]:
                    kept[i] = (partials, blocks[-1].uses | {v})
            else:
                emitter.uses.clear()
                blocks.append(_UNWRITTEN)  # written by _fuse, with what it computes in it
                if relevant[i]:
                    kept[i] = (partials, _NO_NAMES)
        else:
            emitter.locals = {p: k for k, p in enumerate(dict.fromkeys(node.parents)) if relevant[p]}
            code = _array_code(emitter, trace, i, node)
            for read in emitter.uses:
                reads[read] = 2
            add([f"{code[0]}  # {op.name}", *code[1:]], {v, f"s{i}"})
    fusing: list[_Block | None] = list(blocks)
    _fuse(fusing, statements, reads, readers, tracked)
    blocks = [block for block in fusing if block is not None]

    # backward: the sweep written out, top down. Each adjoint is one sum of the terms its uses
    # contribute, in the interpreter's order (``g{i} * partial`` from each consumer, the latest
    # first), written when the sweep reaches it; an adjoint that is one consumer's adjoint (an
    # add's operand) is that variable (``alias``), with no copy. The interpreter starts every
    # adjoint at 0.0, adds each term and skips a node whose adjoint is exactly zero; here the sum
    # starts at its first term, and a zero adjoint's term is 0.0 (or, times a finite constant,
    # a zero). The two differ at most in the sign of a zero adjoint, which no later step can tell
    # apart (products and sums of equal floats are equal), and the returned gradients are
    # ``0.0 + g``: bit for bit the interpreter's.
    # terms not yet summed into g{p}: the terms, the fallback code's terms, the names they read
    # (these only when ``tracked``)
    pending: dict[int, tuple[list[str], list[str], list[frozenset[str]]]] = {}
    guarded: set[str] = set()  # forward values whose finiteness lets a product's term go untested
    backward_at = len(blocks)
    alias: dict[int, str] = {}
    initialised: set[int] = set()

    def adjoint(at: int) -> str:
        return alias.get(at) or adjoints[at]

    def held_in_variable(at: int) -> None:
        """``at``'s adjoint so far is in ``g{at}``: later terms add to it."""
        held = adjoints[at]
        pending[at] = ([held], [held], [frozenset({held})] if tracked else [])

    def settle(at: int, comment: str) -> None:
        """Write the sum of ``at``'s pending terms (or make it an alias of a lone adjoint)."""
        entry = pending.pop(at, None)
        if entry is None:
            return
        terms, tested_terms, used = entry
        initialised.add(at)
        adj = adjoints[at]
        if len(terms) == 1 and terms[0].isidentifier():
            if terms[0] != adj:
                alias[at] = terms[0]
            return
        if tracked:
            emitter.uses.update(*used)
        line = f"{adj} = {joined(terms, ' + ')}{comment}"
        tested = f"{adj} = {joined(tested_terms, ' + ')}{comment}" if tested_terms != terms else line
        add([line], {adj}, [tested] if tested != line else None)

    if target is not None and reached[target]:
        pending[target] = (["1.0"], ["1.0"], [frozenset()] if tracked else [])
        for i in range(target, min(wanted) - 1, -1):
            if not reached[i]:
                continue
            node = nodes[i]
            settle(
                i,
                "  # the seed: d out / d out; below, each g is the sum of what its uses pass back"
                if i == target
                else "",
            )
            if not node.parents or i not in initialised:
                continue
            op = node.op
            g = alias.get(i) or adjoints[i]
            if op.kind == "scalar":
                partials, used = kept[i]
                for p, partial in zip(node.parents, partials, strict=True):
                    if not relevant[p]:
                        continue
                    reached[p] = True
                    if partial == "1.0":  # an add's operand: the adjoint itself
                        term = tested = g
                    elif partial.__class__ is str and partial[:1] == "v" and partial[1:].isdecimal():
                        term = f"{g} * {partial}"  # a forward value (a product's other operand): checked once
                        tested = f"({term} if {g} else 0.0)"  # a zero adjoint passes nothing, not 0 * inf
                        guarded.add(partial)
                    else:
                        term = tested = times(g, partial)
                        if not _is_number(partial):
                            term = tested = f"({term} if {g} else 0.0)"
                    entry = pending.get(p)
                    if entry is None:
                        entry = pending[p] = ([], [], [])
                    terms = entry[0]
                    terms.append(term)
                    entry[1].append(tested)
                    if tracked:
                        entry[2].append(used | {g})
                    if len(terms) == SUM_TERMS:  # a long sum is written in parts: its terms need not wait
                        settle(p, "")
                        held_in_variable(p)
                continue
            targets = [p for p in dict.fromkeys(node.parents) if relevant[p]]
            if not targets:
                continue
            lines: list[str] = []
            copied: set[str] = set()  # the adjoints an aliased parent's variable is copied from
            for p in targets:  # the vjp adds into the buffer: each parent's adjoint so far, in its variable
                reached[p] = True
                settle(p, f"  # so far: {op.name} at v{i} adds to it")
                if p in alias:
                    held = alias.pop(p)
                    copied.add(held)
                    lines.append(f"g{p} = {held}")
                elif p not in initialised:
                    lines.append(f"g{p} = 0.0")
                initialised.add(p)
            distinct = list(dict.fromkeys(node.parents))
            local = {p: k for k, p in enumerate(distinct)}
            buffer = ", ".join(f"g{p}" if relevant[p] else "0.0" for p in distinct)
            back = ", ".join(f"g{p}" if relevant[p] else "_" for p in distinct)
            parents = tuple(local[p] for p in node.parents)
            vjp = emitter.ref(op.vjp, f"{op.name}_vjp")
            defs = {f"g{p}" for p in targets}
            emitter.uses.update({g, f"v{i}", f"s{i}", *defs, *copied})
            lines += [
                f"if {g}:  # {op.name}: backward of v{i}, by its vjp rule",
                f"    buffer = [{buffer}]",
                f"    {vjp}(Node({emitter.ref(op, op.name)}, {parents!r}, v{i}, s{i}), {g}, buffer)",
                f"    {back}{',' if len(distinct) == 1 else ''} = buffer",
            ]
            add(lines, defs)
            for p in targets:
                held_in_variable(p)

    results = []
    for out in outputs:
        if isinstance(out, int):
            results.append(emitter.var(out))
        else:
            constant = cast(tuple[object], out)[0]
            results.append(
                emitter.traced(constant) or emitter.ref(constant, "constant")
            )  # an int of an input
    for at in wanted:
        if at in initialised:
            held = adjoint(at)
            emitter.uses.add(held)
            results.append(f"0.0 + {held}" if nodes[at].value.__class__ is float else held)
        else:
            results.append("0.0")
    add([f"return [{joined(results, ', ')}]"], set())

    loads = [
        _Block([f"{var} = {load}"], frozenset({var}), frozenset())
        for var, load in sorted(emitter.input_loads.items(), key=lambda item: int(item[0][1:]))
    ]
    emitter.namespace["Node"] = Node
    emitter.namespace["itemgetter"] = itemgetter
    emitter.namespace["chain"] = chain.from_iterable
    fallback = None
    rerunnable = all(op.builtin for op, _ in ops.values())  # the fallback runs the forward pass again
    written = len(loads) + sum([len(block.lines) for block in blocks])
    if guarded and rerunnable and written + 2 <= CHUNK_LINES:
        # One check instead of a test per product: while every forward value that is some
        # product's partial is finite, a zero adjoint's term g * v is a zero, which is the
        # interpreter's "nothing" up to its sign; otherwise the tested code runs instead.
        values = joined(sorted(guarded, key=lambda v: int(v[1:])), ", ")
        why = "  # a partial is not finite: the code testing each adjoint"
        check = [
            f"if not isfinite(sum(({values},))):{why}"
            if "\n" not in values
            else f"if not isfinite(sum(({why}\n        {values},\n    ))):",
            "    return fallback(inputs)",
        ]
        fallback = loads + blocks  # their tested lines are assembled if needed
        blocks.insert(backward_at, _Block(check, frozenset(), frozenset(guarded)))
        written += len(check)
        emitter.namespace["isfinite"] = math.isfinite
    else:
        blocks = [_Block(b.tested, b.defs, b.uses) if b.tested is not None else b for b in blocks]
        written = len(loads) + sum([len(block.lines) for block in blocks])
    if not tracked and written > CHUNK_LINES:
        return None
    source = _assemble(loads + blocks, name)
    return _Program(
        source,
        emitter.namespace,
        tuple(ops.values()),
        frozenset(emitter.bound_ints - emitter.frozen_ints),
        source.count("\n"),
        fallback,
    )


def _assemble(blocks: list[_Block], name: str) -> str:
    """One function, or, past :data:`CHUNK_LINES`, parts sharing their live variables through a list."""
    lines = [line for block in blocks for line in block.lines]
    if len(lines) <= CHUNK_LINES:
        body = "\n    ".join(lines)  # each line indented once, in one join
        return f"def {name}(inputs):\n    {body}\n" if lines else f"def {name}(inputs):\n"
    chunks: list[list[_Block]] = [[]]
    size = 0
    for block in blocks:
        if size + len(block.lines) > CHUNK_LINES and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(block)
        size += len(block.lines)
    first_def: dict[str, int] = {}
    last_use: dict[str, int] = {}
    for c, chunk in enumerate(chunks):
        for block in chunk:
            for var in block.uses:
                last_use[var] = c
            for var in block.defs:
                first_def.setdefault(var, c)
    latest: dict[str, int] = {}  # a variable's slot in the shared list, as last stored
    size = 0
    out = []
    for c, chunk in enumerate(chunks):
        uses = set().union(*(b.uses for b in chunk))
        defs = set().union(*(b.defs for b in chunk))
        loads = sorted(v for v in uses if first_def.get(v, c) < c)
        stores = sorted(v for v in defs if last_use.get(v, -1) > c)
        out.append(f"def {name}_part{c}(inputs, shared):")
        if len(loads) == 1:
            out.append(f"    {loads[0]} = shared[{latest[loads[0]]}]")
        elif loads:
            out.append(
                f"    {', '.join(loads)} = itemgetter({', '.join(str(latest[v]) for v in loads)})(shared)"
            )
        for block in chunk:
            out += [f"    {line}" for line in block.lines]
        if stores:
            out.append(f"    shared[{size}:{size + len(stores)}] = ({', '.join(stores)},)")
            for k, v in enumerate(stores):
                latest[v] = size + k
            size += len(stores)
        if not chunk[-1].lines[-1].startswith("return"):
            out.append("    return None")
        out.append("")
    calls = [f"    {name}_part{c}(inputs, shared)" for c in range(len(chunks) - 1)]
    out += [f"def {name}(inputs):", f"    shared = [None] * {size}", *calls]
    out.append(f"    return {name}_part{len(chunks) - 1}(inputs, shared)")
    return "\n".join(out) + "\n"


def _scalar_code(
    c: _Emitter, trace: TraceTape, i: int, node: Node, names: list[str]
) -> tuple[str, list[str | Branch]]:
    """A scalar node's forward expression and the partials of its tracked operands, in parent order.

    ``names`` are the values' variables (what ``c.var`` gives): the tracked operands are read,
    the others are constants (``c.constant``)."""
    op = node.op
    operands = trace.operands.get(i)
    v = names[i]
    read = list(map(names.__getitem__, node.parents))  # the tracked operands, in order
    c.uses.update(read)
    if operands is None and op.emit is not None and not op.nary:  # every operand tracked: the common case
        forward, every = cast("tuple[str, Sequence[Any]]", op.emit(c, v, *read))
        if len(every) == len(node.parents):
            return forward, list(every)
    parents = iter(read)
    if operands is None:
        args: list[Any] = read
        tracked: list[Any] = [True] * len(args)
    elif op.nary:
        args, tracked = [], []
        for sequence in cast("tuple[tuple[object, ...], ...]", operands):
            args.append([next(parents) if x is None else c.constant(x) for x in sequence])
            tracked.append([x is None for x in sequence])
    else:
        args = [next(parents) if x is None else c.constant(x) for x in operands]
        tracked = [x is None for x in operands]
    if op.emit is not None:
        forward, partials = cast("tuple[str, Sequence[Any]]", op.emit(c, v, *args))
    else:
        flat = ", ".join(f"[{', '.join(a)}]" if isinstance(a, list) else a for a in args)
        forward = f"{c.ref(op.forward, op.name)}({flat})"
        partials = [f"{c.ref(rule, f'{op.name}_d{k}')}({v}, {flat})" for k, rule in enumerate(op.partials)]
        if op.nary:
            partials = [[f"{p}[{j}]" for j in range(len(a))] for p, a in zip(partials, args, strict=True)]
    chosen: list[str | Branch] = []
    for partial, is_tracked in zip(partials, tracked, strict=True):
        if isinstance(is_tracked, list):
            chosen += [p for p, t in zip(partial, is_tracked, strict=True) if t]
        elif is_tracked:
            chosen.append(cast("str | Branch", partial))
    return forward, chosen


def _array_code(c: _Emitter, trace: TraceTape, i: int, node: Node) -> list[str]:
    op = node.op
    v, s = f"v{i}", f"s{i}"
    if op.emit is not None:
        return cast("list[str]", op.emit(c, node, trace.operands.get(i), v, s))
    saved = node.saved
    if not (isinstance(saved, tuple) and len(saved) == 3 and isinstance(saved[2], dict)):
        raise TypeError(f"jit: op {op.name!r} has no emit rule and is not defined by its rules")
    data, slots, params = cast("tuple[tuple[object, ...], tuple[int | None, ...], dict[str, object]]", saved)
    if op.residual:  # computed by each call's forward, never a constant of the code
        params = {k: p for k, p in params.items() if k != "residual"}
    args = [c.arg(at, d) for at, d in zip(slots, data, strict=True)]
    parameters = [_parameter(c, p) for p in params.values()]
    keywords = "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(params, parameters, strict=True)) + "}"
    forward = c.ref(op.forward, op.name)
    operands = f"({', '.join(args)}{',' if args else ''})"
    if op.residual:  # v, r = forward(...): the node saves the residual its forward gives each call
        call = f"{forward}({', '.join(args)}{', **' + keywords if params else ''})"
        kept = f"{{{keywords[1:-1]}{', ' if params else ''}'residual': r{i}}}"
        number = [] if isinstance(node.value, tuple) else [f"{v} = float({v})"]
        return [f"{v}, r{i} = {call}", *number, f"{s} = ({operands}, {c.local(slots)}, {kept})"]
    saves = f"{s} = ({operands}, {c.local(slots)}, {keywords})"
    if all(_simple(expr) for expr in (*args, *parameters)):
        call = f"{forward}({', '.join(args)}{', **' + keywords if params else ''})"
        return [f"{v} = {call if isinstance(node.value, tuple) else f'float({call})'}", saves]
    call = f"{forward}(*{s}[0]{f', **{s}[2]' if params else ''})"  # operands built once, for both rules
    return [saves, f"{v} = {call if isinstance(node.value, tuple) else f'float({call})'}"]


def _tightest(expr: str) -> bool:
    """Whether ``expr`` (a library op's code) is an atom, a negated atom, a call or wholly in
    parentheses: never put in parentheses again.

    The library writes its binary operators and its calls' arguments with spaces between
    them, so code without a space is one of the first two.
    """
    if " " not in expr:
        return True
    call = _CALLED.match(expr)
    opening = call.end() - 1 if call is not None else 0
    if expr[opening : opening + 1] != "(" or not expr.endswith(")"):
        return False
    depth = 0
    for ch in expr[opening:-1].translate(_PARENTHESES):  # its own parentheses close only at the end
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return False
    return True


_PARENTHESES = {code: None for code in range(128) if chr(code) not in "()"}
"""A ``str.translate`` table keeping an ASCII expression's parentheses only (other characters
are kept and change no depth): the scan of a long expression walks its parentheses alone."""


def _substituted(expr: str, name: str, code: str, tightest: bool) -> str | None:
    """``expr`` with its one read of the variable ``name`` replaced by the expression ``code``
    (in parentheses unless it is ``tightest`` or fills a whole argument); ``None`` if ``expr``
    does not read ``name``."""
    at = expr.find(name)
    while at >= 0:
        end = at + len(name)
        before, after = expr[at - 1 : at], expr[end : end + 1]
        if before not in _NAME_CHARS and after not in _NAME_CHARS:
            whole = (before == "(" or expr[at - 2 : at] == ", ") and after in (")", ",")
            return f"{expr[:at]}{code if tightest or whole else f'({code})'}{expr[end:]}"
        at = expr.find(name, end)
    return None


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
"""The characters of a name: a read of ``v1`` is not the start of ``v12``. (The empty string,
the edge of the code, is not one of them.)"""


def _mentions(partials: Sequence[str | Branch]) -> str:
    """The code of ``partials`` (both sides of a Branch), to find the values they read."""
    try:
        return " ".join(cast("Sequence[str]", partials))
    except TypeError:  # a Branch among them
        return " ".join(_mentions(p) if isinstance(p, Branch) else p for p in cast("Sequence[Any]", partials))


def _fuse(
    blocks: list[_Block | None],
    statements: list[tuple[str, int, str, bool]],
    reads: dict[str, int],
    readers: dict[str, int],
    tracked: bool,
) -> None:
    """Compute each scalar value read once, by a later statement of the forward pass, in that statement.

    ``statements`` are the forward pass's scalar statements, in order: (variable, index in
    ``blocks``, expression, whether it may move: a library op on library ops' results).
    ``reads`` counts how often the code reads each value (2: more than once, or by the
    backward or the results) and
    ``readers`` gives the statement that reads it. A library op's code neither raises nor has
    effects (its float kernels give IEEE results), so it may run later, inside its reader: the
    same operations on the same operands, so the same floats, and fewer statements to compile
    (a statement costs CPython's compiler about as much as a whole expression of a few ops). A
    statement computes at most :data:`FUSED_OPS` ops. Each fused statement's block becomes ``None``;
    without ``tracked`` each other statement's block is :data:`_UNWRITTEN` until written here.
    """
    exprs = [expr for _, _, expr, _ in statements]
    sizes = [1] * len(statements)
    fused = [False] * len(statements)
    readers_fused: list[int] = []
    for k, (name, at, _, movable) in enumerate(statements):
        if not movable or reads.get(name) != 1:
            continue
        m = readers.get(name)
        if m is None or sizes[k] + sizes[m] > FUSED_OPS:
            continue
        substituted = _substituted(exprs[m], name, exprs[k], _tightest(exprs[k]))
        if substituted is None:
            continue
        exprs[m] = substituted
        if sizes[m] == 1:
            readers_fused.append(m)
        sizes[m] += sizes[k]
        if tracked:  # the reader's block reads what the value's did
            reader_at = statements[m][1]
            before, block = blocks[at], blocks[reader_at]
            assert before is not None and block is not None
            blocks[reader_at] = _Block(block.lines, block.defs, (block.uses | before.uses) - {name}, None)
        blocks[at] = None
        fused[k] = True
    if not tracked:  # each statement not fused, with what was fused into it
        for k, (name, at, _, _) in enumerate(statements):
            if not fused[k]:
                blocks[at] = _new_tuple(_Block, ([f"{name} = {exprs[k]}"], _NO_NAMES, _NO_NAMES, None))
        return
    for m in readers_fused:
        name, at = statements[m][:2]
        block = blocks[at]
        if block is not None:  # not itself fused into a later reader
            blocks[at] = _Block([f"{name} = {exprs[m]}"], block.defs, block.uses, None)


def _simple(expr: str) -> bool:
    """Whether ``expr`` is a name or a literal (cheap to write twice), not an expression built per call."""
    if expr.isidentifier():
        return True
    try:
        ast.literal_eval(expr)
    except (ValueError, SyntaxError):
        return False
    return True


def _parameter(c: _Emitter, value: object) -> str:
    """An op's keyword parameter in generated code.

    Ints of an int input (token ids, labels) are read from the inputs; any other
    parameter (an axis, a shape, a stride) is a constant of the code.
    """
    expr = c.traced(value)
    if expr is not None:
        return expr
    if value is None or isinstance(value, (bool, int, str)) or value.__class__ is float:
        return c.constant(value) if value.__class__ is float else repr(value)
    if isinstance(value, tuple) and all(type(i) is int for i in value):
        return repr(value)
    c.freeze(value)
    return c.ref(value, "parameter")


# --- tracing and the compiled function -------------------------------------------------------


class _Fallback:
    """The code that tests each product's adjoint, compiled at its first call (a non-finite partial)."""

    def __init__(self, blocks: list[_Block], namespace: dict[str, object], name: str) -> None:
        self._blocks: list[_Block] | None = blocks
        self._namespace = namespace
        self._name = name
        self._run: Callable[[list[Any]], list[Any]] | None = None

    def __call__(self, inputs: list[Any]) -> list[Any]:
        if self._run is None:
            name = f"{self._name}_tested"
            blocks = cast("list[_Block]", self._blocks)
            lines = [line for b in blocks for line in (b.lines if b.tested is None else b.tested)]
            namespace = dict(self._namespace)
            with collector_paused():
                source = _assemble([_Block(lines, frozenset(), frozenset())], name)
                exec(compile(source, f"<tape.jit {name}>", "exec"), namespace)
            self._run = cast("Callable[[list[Any]], list[Any]]", namespace[name])
            self._blocks = None
        return self._run(inputs)


class Compiled(NamedTuple):
    """One compiled function: its source, what it was built from, and how long building took."""

    run: Callable[[list[Any]], list[Any]]
    source: str
    ops: tuple[tuple[Op, int], ...]
    rebuild: Callable[[list[Any], list[Any], list[TreeDef[Any] | None]], object]
    """``rebuild(results, leaves, float_defs)``: the function's result from the code's results,
    with the arguments' leaves and (where known) their floats' structures."""
    unbound_ints: tuple[int, ...]
    nodes: int
    trace_seconds: float
    compile_seconds: float


def _unwrap_leaf(leaf: object, trace: TraceTape) -> object:
    if isinstance(leaf, (Value, Array)) and leaf.tape is trace:
        return leaf.position
    if isinstance(leaf, Tracked) and leaf.tape is not None:
        raise TypeError(
            "jit: the function returned a Value of a tape it opened itself; return floats from it"
        )
    return (unwrap(leaf, trace),) if isinstance(leaf, Value) else (leaf,)


def _trace(
    fun: Callable[..., object],
    spec: Differentiated | None,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    flat: _Flat,
    static: frozenset[int],
) -> Compiled:
    started = time.process_time()
    nums = normalize_argnums(spec.argnums, len(args)) if spec is not None else ()
    inputs_at: dict[int, tuple[int, str]] = {}
    sources = _Sources()
    with TraceTape() as trace:
        traced_args: list[object] = []
        per_arg: list[tuple[int, int, list[object]]] = []  # (arg, first input, watched leaves) of diff args
        start = 0
        for n, arg in enumerate(args):
            treedef = flat.treedefs[n]
            if treedef is None:
                traced_args.append(arg)
                continue
            leaves = flat.leaves[start : start + flat.counts[n]]
            kinds = flat.kinds[start : start + flat.counts[n]]
            watch = spec is None or n in nums
            new: list[object] = []
            for k, (leaf, kind) in enumerate(zip(leaves, kinds, strict=True)):
                index = start + k
                if kind in "fA" or (kind == "a" and watch):
                    if kind == "f":
                        watched: Value | Array = trace.watch(leaf)
                        load = f"inputs[{index}]"
                    elif kind == "a":
                        watched = trace.watch_array(leaf)
                        load = _nested_load(f"inputs[{index}]", len(shape_of(leaf)))
                    else:
                        watched = record_array(trace, LEAF, (), leaf.primal, ())
                        load = f"inputs[{index}].primal"
                    if spec is None or n not in nums:  # the uncompiled function gets the leaf itself
                        trace.stand_ins.add(watched.position)
                        if kind == "A":
                            trace.arrays.add(watched.position)
                    inputs_at[watched.position] = (index, load)
                    new.append(watched)
                elif kind == "a":
                    copy = _fresh(leaf)
                    sources.gather(index, copy)
                    new.append(copy)
                elif watch and spec is not None:  # as without jit: the leaf's path in its argument
                    raise not_watchable(arg, leaf, _array_leaf if spec.arrays else _is_int_array)
                elif kind == "i":
                    new.append(sources.traced_ints(index, leaf))
                else:
                    new.append(leaf)
            traced_args.append(tree_unflatten(treedef, cast("list[float]", new)))
            if n in nums:
                per_arg.append((n, start, new))
            start += flat.counts[n]
        out = (spec.fun if spec is not None else fun)(*traced_args, **kwargs)
    outputs: list[object] = []
    target: int | None = None
    wanted: list[int] = []
    if spec is None:
        out_leaves, out_def = tree_flatten(out)
        outputs = [_unwrap_leaf(leaf, trace) for leaf in out_leaves]
        untracked = [  # results the uncompiled function gives as untracked Arrays
            k
            for k, leaf in enumerate(cast("list[object]", out_leaves))
            if isinstance(leaf, Array)
            and leaf.tape is trace
            and trace.without_jit(leaf.position) == "untracked"
        ]

        def rebuild(results: list[Any], leaves: list[Any], float_defs: list[TreeDef[Any] | None]) -> object:
            for k in untracked:
                results[k] = constant_array(results[k])
            return tree_unflatten(out_def, results)

    else:
        aux: object = None
        if spec.has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    "with has_aux=True the function must return a pair (value, aux), "
                    f"not {type(out).__name__}"
                )
            out, aux = out
        if not isinstance(out, (float, int, Value)) or isinstance(out, bool):
            raise TypeError(
                f"the differentiated function must return a scalar (float or Value), not {type(out).__name__}"
            )
        if isinstance(out, Value) and out.tape is trace:
            target = out.position
            outputs.append(target)
        else:
            outputs.append((float(cast(float, unwrap(out, trace))),))
        aux_leaves, aux_def = tree_flatten(aux) if spec.has_aux else ([], tree_flatten(None)[1])
        outputs += [_unwrap_leaf(leaf, trace) for leaf in aux_leaves]
        per_arg.sort(key=lambda item: nums.index(item[0]))  # gradients in argnums order
        layout = []  # per diff arg: its treedef, and per leaf the input index when an array
        for n, first, watched_leaves in per_arg:
            arrays_at = []
            for k, leaf in enumerate(watched_leaves):
                at = cast(Tracked, leaf).position
                wanted.append(at)
                arrays_at.append(first + k if isinstance(leaf, Array) else None)
            layout.append((n, flat.treedefs[n], arrays_at))
        n_aux = len(aux_leaves)
        single = isinstance(spec.argnums, int)
        has_aux, with_value = spec.has_aux, spec.with_value

        def rebuild(results: list[Any], leaves: list[Any], float_defs: list[TreeDef[Any] | None]) -> object:
            value = results[0]
            aux_tree: object = (
                tree_unflatten(cast(TreeDef[Any], aux_def), results[1 : 1 + n_aux]) if has_aux else None
            )
            grads = iter(results[1 + n_aux :])
            trees = []
            for n, treedef, arrays_at in layout:
                float_def = float_defs[n]
                if float_def is not None:  # a tree of floats: its gradient from its floats' structure
                    floats: list[Any] = []
                    for at in arrays_at:
                        g = next(grads)
                        if at is None:
                            floats.append(g)
                        else:
                            floats += gradient_floats(leaves[at], g)
                    trees.append(tree_unflatten(float_def, floats))
                    continue
                items: list[Any] = []
                for at in arrays_at:
                    g = next(grads)
                    items.append(g if at is None else array_gradient(leaves[at], g))
                trees.append(tree_unflatten(cast(TreeDef[Any], treedef), items))
            grad_result: object = trees[0] if single else tuple(trees)
            if with_value:
                return ((value, aux_tree), grad_result) if has_aux else (value, grad_result)
            return (grad_result, aux_tree) if has_aux else grad_result

    name = "".join(ch if ch.isalnum() else "_" for ch in getattr(fun, "__name__", "fun")).strip("_") or "fun"
    with collector_paused():  # many strings, lists and sets, and no cycles
        generated = None
        for tracked in (False, True):  # the names each line reads, only if the code is split
            emitter = _Emitter(sources)
            generated = _generate(
                trace, inputs_at, outputs, target, wanted, emitter, f"jitted_{name}"[:60], tracked
            )
            if generated is not None:
                break
        program = cast(_Program, generated)
        traced = time.process_time()
        namespace = dict(program.namespace)
        if program.fallback is not None:
            namespace["fallback"] = _Fallback(program.fallback, program.namespace, f"jitted_{name}"[:60])
        exec(compile(program.source, f"<tape.jit {name}>", "exec"), namespace)
    run = cast("Callable[[list[Any]], list[Any]]", namespace[f"jitted_{name}"[:60]])
    compiled = time.process_time()
    del sources
    unbound = tuple(k for k, kind in enumerate(flat.kinds) if kind == "i" and k not in program.bound_ints)
    return Compiled(
        run, program.source, program.ops, rebuild, unbound, len(trace), traced - started, compiled - traced
    )


class Jitted(Generic[P, R]):
    """A function compiled per input structure by :func:`jit`; call it as the original.

    ``traces`` counts the traces made so far; :meth:`source` gives the generated code;
    :meth:`compiled` the cache entry (with its build times) for some arguments.
    """

    def __init__(
        self, fun: Callable[P, R], static_argnums: tuple[int, ...], arrays: bool, cache_size: int
    ) -> None:
        self._fun = fun
        self._spec = differentiated(fun)
        self._static = frozenset(static_argnums)
        self._arrays = self._spec.arrays if self._spec is not None else arrays
        self._size = cache_size
        self._policies: OrderedDict[Hashable, tuple[int, ...]] = OrderedDict()
        self._cache: OrderedDict[Hashable, Compiled] = OrderedDict()
        self.traces = 0
        self.__name__ = f"jit({getattr(fun, '__name__', 'fun')})"
        self.__doc__ = fun.__doc__

    def _entry(self, args: tuple[object, ...], kwargs: dict[str, object]) -> tuple[Compiled, _Flat] | None:
        differentiated = normalize_argnums(self._spec.argnums, len(args)) if self._spec is not None else ()
        flat = _flatten(args, self._static, self._arrays, differentiated)
        if flat is None:
            return None
        structure = (flat.key, _hashable(tuple(sorted(kwargs.items())), "a keyword argument"))
        policy = self._policies.get(structure)
        if policy is not None:
            key = (structure, tuple(_frozen_ints(flat.leaves[k]) for k in policy))
            entry = self._cache.get(key)
            if entry is not None and all(op.version == version for op, version in entry.ops):
                self._cache.move_to_end(key)
                return entry, flat
        entry = _trace(self._fun, self._spec, args, kwargs, flat, self._static)
        self.traces += 1
        key = (structure, tuple(_frozen_ints(flat.leaves[k]) for k in entry.unbound_ints))
        self._policies[structure] = entry.unbound_ints
        self._policies.move_to_end(structure)
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        while len(self._policies) > self._size:
            self._policies.popitem(last=False)
        return entry, flat

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        found = self._entry(args, kwargs)
        if found is None:  # called on tracked Values (inside a recording tape): run it as it is
            return self._fun(*args, **kwargs)
        entry, flat = found
        return cast(R, entry.rebuild(entry.run(flat.leaves), flat.leaves, flat.float_defs))

    def compiled(self, *args: P.args, **kwargs: P.kwargs) -> Compiled:
        """The compiled function for these arguments (tracing and compiling it if needed)."""
        found = self._entry(args, kwargs)
        if found is None:
            raise TypeError(
                "jit: these arguments hold Values of a recording tape; nothing is compiled for them"
            )
        return found[0]

    def source(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The generated Python for these arguments: the forward pass, then the backward pass."""
        return self.compiled(*args, **kwargs).source

    @property
    def cache_size(self) -> int:
        """How many compiled functions are held now."""
        return len(self._cache)


def jit(
    fun: Callable[P, R],
    *,
    static_argnums: int | tuple[int, ...] = (),
    arrays: bool = False,
    cache_size: int = 32,
) -> Jitted[P, R]:
    """Compile ``fun`` to straight-line Python per input structure; see the module docstring.

    ``fun`` may be a plain function of float trees returning floats, Values, Arrays or
    trees of them, or what :func:`tape.grad` and :func:`tape.value_and_grad` return
    (their ``arrays`` then applies). ``static_argnums`` names arguments whose values
    are part of the cache key; ``arrays=True`` watches each nested sequence of floats
    (any depth) of a plain function as one Array. The ``cache_size`` most recent
    structures are kept.

    >>> import tape
    >>> cube = tape.jit(tape.grad(lambda x: x * x * x))
    >>> cube(2.0), cube(3.0), cube.traces
    (12.0, 27.0, 1)
    """
    if not callable(fun):
        raise TypeError(f"jit: fun must be callable, not {type(fun).__name__} ({fun!r})")
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if any(not isinstance(n, int) or n < 0 for n in nums):
        raise ValueError(f"jit: static_argnums must be non-negative ints, not {static_argnums!r}")
    arity = positional_arity(fun)
    if nums and arity is not None and max(nums) >= arity[1]:
        raise ValueError(
            f"jit: static_argnums names argument {max(nums)}, but fun takes {arity[1]} positional "
            f"argument{'' if arity[1] == 1 else 's'}"
        )
    if not isinstance(cache_size, int) or cache_size < 1:
        raise ValueError(f"jit: cache_size must be a positive int, not {cache_size!r}")
    return Jitted(fun, nums, arrays, cache_size)
