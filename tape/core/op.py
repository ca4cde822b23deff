"""The op record and the one registry of primitive operations.

An :class:`Op` holds everything about a primitive: its forward rule, its float
kernel, its derivative rules for both modes (per-argument partials for scalar ops;
a ``vjp`` and a ``jvp`` rule for array ops), and room for the code a compiler emits
for it. :func:`define` is the only way an op comes to exist; each op family module
(:mod:`tape.ops`) defines its ops next to their recording functions.

Redefining a name needs ``replace=True``: the existing :class:`Op` object is then
updated in place, so every path holding it (operators, fast paths, the sweep)
follows the new rules, and its ``version`` goes up so that compiled code built on
the old rules can tell it is stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

Rule = Callable[..., object]
"""A forward, partial, vjp or jvp rule (each op family documents its signature)."""


class Branch(NamedTuple):
    """A partial that a scalar op's ``emit`` rule gives as a choice: ``if_true if test else if_false``.

    Each side is a Python expression or another Branch. A compiler multiplies the adjoint
    into each side (so a side of ``1.0`` costs nothing), and a choice between finite
    constants (relu's ``1.0``/``0.0``, abs's signs) needs no test for a zero adjoint.
    """

    test: str
    if_true: str | Branch
    if_false: str | Branch


def times(adjoint: str, partial: str | Branch) -> str:
    """Python code for ``adjoint * partial`` (both expressions): the same float operations, with
    ``adjoint`` itself for a partial of ``1.0`` and a Branch's product taken inside each side."""
    if isinstance(partial, Branch):
        chosen, otherwise = times(adjoint, partial.if_true), times(adjoint, partial.if_false)
        return f"({chosen} if {partial.test} else {otherwise})"
    if partial == "1.0":
        return adjoint
    simple = partial.replace("_", "").replace(".", "").isalnum()
    return f"{adjoint} * {partial if simple else f'({partial})'}"


LINE_WIDTH = 100
"""About how many characters of a list or sum a line of generated code holds before it goes on."""

_CONTINUED = " \\\n        "  # a backslash, and the next line indented once more


def joined(items: Sequence[str], sep: str) -> str:
    """``sep.join(items)`` for generated code, readable when long: past :data:`LINE_WIDTH`
    characters it goes on in lines of about that width, each broken at a ``sep`` (after
    ``", "``, before an operator) with a backslash.

    A backslash break holds anywhere in a statement and changes no token; CPython compiles
    it as it compiles the one long line (a break inside parentheses costs it more).
    """
    text = sep.join(items)
    if len(text) <= LINE_WIDTH:
        return text
    lines: list[str] = []
    start, step = 0, len(sep)
    while len(text) - start > LINE_WIDTH:
        cut = text.rfind(sep, start + 1, start + LINE_WIDTH + step)
        if cut < 0:  # nothing to break at within the width: break at the next one
            cut = text.find(sep, start + LINE_WIDTH)
            if cut < 0:
                break
        lines.append(text[start:cut])
        start = cut + step
    lines.append(text[start:])
    return (("," + _CONTINUED) if sep == ", " else (_CONTINUED + sep.lstrip())).join(lines)


OpKind = Literal["scalar", "array"]

Binder = Callable[..., object]
"""How calling an op applies it: the front-ends register one per kind of op."""

_BINDERS: dict[str, Binder] = {}


def register_binder(kind: OpKind, binder: Binder) -> None:
    """Say how ops of ``kind`` are applied when called (done once by each front-end)."""
    _BINDERS[kind] = binder


class Op:
    """A primitive operation; call it to apply it (``op(x, y)``), recording when inputs are tracked.

    Fields (read-only; :func:`define` sets them):

    - ``forward(*primals)``: the value, from primal values (floats, or Values of an
      enclosing tape while it records: higher-order derivatives).
    - ``partials``: scalar ops, one rule per argument, ``d value / d argument`` from
      ``(value, *primals)``; ``nary`` ops take sequences and give one partial per element.
      They serve both modes: reverse multiplies by the output's adjoint, forward
      sums them times the inputs' tangents.
    - ``constant_partials``: when every partial is a constant (add, sub, neg), those
      constants; the rules are then made from them, and fast paths record them.
    - ``recompute``: a node of this op may save no partials; the sweep recomputes them
      from its inputs' values with the partial rules (a product: each input's partial
      is the other's value, already on the tape).
    - ``vjp(node, adjoint, buffer)`` and ``jvp(value, saved, tangents)``: array ops.
    - ``float_kernel``: the op on plain floats (inference and fast paths).
    - ``emit``: code generation for a compiler, when it has one (``None`` otherwise).
    - ``builtin``: defined by the library and never replaced; only then may a fast
      path inline the op's float kernel.
    - ``residual``: an array op whose forward gives ``(value, residual)``: what its
      forward computed and its rules reuse (attention's probabilities), saved on the node.
    """

    __slots__ = (
        "builtin",
        "constant_partials",
        "emit",
        "float_kernel",
        "forward",
        "jvp",
        "kind",
        "name",
        "nary",
        "partials",
        "recompute",
        "residual",
        "version",
        "vjp",
    )

    name: str
    kind: OpKind
    forward: Rule
    partials: tuple[Rule, ...]
    constant_partials: tuple[float, ...] | None
    nary: bool
    recompute: bool
    residual: bool
    vjp: Rule | None
    jvp: Rule | None
    float_kernel: Rule | None
    emit: Rule | None
    builtin: bool
    version: int

    def __call__(self, *args: object, **kwargs: object) -> Any:  # a float or Value, or array data or an Array
        """Apply the op: floats give floats (or tuples), tracked inputs record one node."""
        return _BINDERS[self.kind](self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


_REGISTRY: dict[str, Op] = {}


def _constant_rule(c: float) -> Rule:
    def partial(*_: object) -> float:
        return c

    return partial


def define(
    name: str,
    forward: Rule,
    *partials: Rule,
    constant_partials: tuple[float, ...] | None = None,
    nary: bool = False,
    recompute: bool = False,
    vjp: Rule | None = None,
    jvp: Rule | None = None,
    float_kernel: Rule | None = None,
    emit: Rule | None = None,
    replace: bool = False,
    builtin: bool = False,
    residual: bool = False,
) -> Op:
    """Register the primitive ``name`` and return its :class:`Op`.

    A scalar op gives ``forward`` and one partial rule per argument (or
    ``constant_partials``); an array op gives ``vjp`` and ``jvp`` instead. Defining a
    name that exists raises ValueError unless ``replace=True``, which updates the
    existing op in place (every path then follows the new rules).

    This is the library's own entry point (array ops here take the sweep-level
    ``vjp(node, adjoint, buffer)``); users define ops with :func:`tape.define`.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"an op's name is a non-empty str, not {name!r}")
    if constant_partials is not None:
        if partials:
            raise ValueError(f"op {name!r}: give partial rules or constant_partials, not both")
        constant_partials = tuple(float(c) for c in constant_partials)
        partials = tuple(_constant_rule(c) for c in constant_partials)
    if bool(partials) == (vjp is not None) or (vjp is None) != (jvp is None):
        raise ValueError(f"op {name!r} needs partial rules, or both a vjp and a jvp rule")
    if recompute and not partials:
        raise ValueError(f"op {name!r}: only scalar ops can recompute their partials")
    if residual and partials:
        raise ValueError(f"op {name!r}: only array ops save a residual")
    existing = _REGISTRY.get(name)
    if existing is not None and not replace:
        raise ValueError(
            f"op {name!r} is already defined; pass replace=True to redefine it (e.g. in a notebook)"
        )
    op = existing if existing is not None else Op()
    op.name = name
    op.kind = "scalar" if partials else "array"
    op.forward = forward
    op.partials = tuple(partials)
    op.constant_partials = constant_partials
    op.nary = nary
    op.recompute = recompute
    op.residual = residual
    op.vjp = vjp
    op.jvp = jvp
    op.float_kernel = forward if float_kernel is None and not partials else float_kernel  # array: floats
    op.emit = emit
    op.builtin = builtin and existing is None
    op.version = 0 if existing is None else existing.version + 1
    _REGISTRY[name] = op
    return op


REGISTRY: Mapping[str, Op] = MappingProxyType(_REGISTRY)
"""Every primitive op by name (read-only)."""

LEAF = define(
    "leaf",
    lambda x: x,
    constant_partials=(1.0,),
    float_kernel=float,
    emit=lambda c, v, x: (x, ("1.0",)),
    builtin=True,
)
"""What ``watch`` records: the identity on a watched value."""
