"""A small linear layer's kernels written out for its weight's shape, compiled once per shape.

The forward pass (:func:`linear`), the input gradient (:func:`input_grad`, and
:func:`masked_input_grad` for ``relu_linear``) and the weight and bias gradients
(:func:`weight_grad`).

``sum(map(mul, w, x))`` makes a call and a float object per product. The same dot
product written as ``0.0 + w0_0 * x0 + w0_1 * x1 + ...`` over local names runs about
twice as fast in CPython. A weight gradient kept as running sums in local names,
example by example, saves the transposes and a call per entry. For a weight of at
most :data:`MAX_WEIGHTS` entries (and at most :data:`MAX_TERMS` terms per dot
product), these functions generate that code for the weight's shape, compile it
once and keep it (up to :data:`MAX_KERNELS` kernels; later shapes run on the loops, so
none is compiled on every call). The loop over the batch stays a loop, so a shape's code does not
grow with the batch.

Each written kernel does the same float operations in the same order as the
generic kernel it stands for in :mod:`tape.ops.linear`, so the results are equal
bit for bit where ``sum`` adds floats one by one (:data:`SUM_ADDS_IN_ORDER`; on
other Pythons nothing is written out): a dot product starts from ``0.0`` as
``sum`` does (so ``-0.0`` terms sum to ``0.0``), and the bias is added last. A property test checks this
for signed zeros, infinities and nans (a nan's sign bit aside: which nan two nans
add to depends on the C code that adds them). Recorded ops and jit-compiled code call the
same kernels, so both give the same floats.

>>> print(linear_source(2, 3, bias=True, narrow=False))
def linear_2x3(W, b, X):
    (
        (w0_0, w0_1, w0_2,),
        (w1_0, w1_1, w1_2,),
    ) = W
    (b0, b1,) = b
    out = []
    append = out.append
    for (x0, x1, x2,) in X:
        append((
            0.0 + w0_0 * x0 + w0_1 * x1 + w0_2 * x2 + b0,
            0.0 + w1_0 * x0 + w1_1 * x1 + w1_2 * x2 + b1,
        ))
    return tuple(out)
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Callable, Sequence
from typing import cast

SUM_ADDS_IN_ORDER = sys.version_info < (3, 12)
"""Whether the builtin ``sum`` of floats adds them one by one, as ``0.0 + a + b + ...`` does.
From Python 3.12 ``sum`` compensates its rounding errors (Neumaier summation), so written-out
additions would give other floats than the generic kernels: then none are written out."""

MAX_WEIGHTS = 2048
"""Weights with more entries than this run on the generic kernels. Compiling costs about 40 µs
per weight for the four kernels (0.15 s for a 32 x 64 layer's, once per process and shape)."""

MAX_TERMS = 256
"""Dot products longer than this (a weight's rows or columns) run on the generic kernels."""

Floats = Sequence[float]
Forward = Callable[[Sequence[Floats], "Floats | None", Sequence[Floats]], tuple[tuple[float, ...], ...]]
"""``(W, b, X) -> X @ W.T + b``, one row per example."""
InputGrad = Callable[[Sequence[Floats], Sequence[Floats]], list[list[float]]]
"""``(W, G) -> G @ W``, one row per example."""
WeightGrad = Callable[[Sequence[Floats], Sequence[Floats]], tuple[list[list[float]], "list[float] | None"]]
"""``(G, X) -> (G.T @ X, the column sums of G or None)``: a layer's weight and bias gradients."""
MaskedInputGrad = Callable[[Sequence[Floats], Sequence[Floats], Sequence[Floats]], list[list[float]]]
"""``(W, G, H) -> G @ W where H > 0, else 0.0``, one row per example."""


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(count)]


def _tuple(items: Sequence[str]) -> str:
    """A tuple display (or unpacking target) of ``items``, with the trailing comma one item needs."""
    return "(" + ", ".join(items) + ",)"


def _weights(rows: int, columns: int) -> list[list[str]]:
    return [[f"w{j}_{k}" for k in range(columns)] for j in range(rows)]


def _unpack_weights(rows: int, columns: int) -> list[str]:
    return ["    (", *(f"        {_tuple(row)}," for row in _weights(rows, columns)), "    ) = W"]


def _fits(rows: int, columns: int) -> bool:
    small = 0 < rows <= MAX_TERMS and 0 < columns <= MAX_TERMS and rows * columns <= MAX_WEIGHTS
    return small and SUM_ADDS_IN_ORDER


def _rows_loop(row: str, entries: list[str], loop: str, result: str) -> list[str]:
    """``for ...: append(row of entries)``, one entry per line, then ``return result``; ``row`` is
    ``(`` or ``[``. A loop, not a comprehension: a comprehension's body is a function of its own,
    and every weight it read would be a cell, one more object per weight and call."""
    close = ")" if row == "(" else "]"
    return [
        "    out = []",
        "    append = out.append",
        f"    {loop}:",
        f"        append({row}",
        *(f"            {e}," for e in entries),
        f"        {close})",
        f"    return {result}",
    ]


def linear_source(rows: int, columns: int, *, bias: bool, narrow: bool) -> str:
    """The written-out ``X @ W.T + b`` for a ``(rows, columns)`` weight.

    ``narrow`` gives the arithmetic of the generic kernel's column-at-a-time path
    (no ``0.0`` start), which it takes for inputs at most four wide and more than one row.
    """
    xs = _names("x", columns)
    outputs = []
    for j, w in enumerate(_weights(rows, columns)):
        if narrow:
            terms = [f"{xk} * {wk}" for wk, xk in zip(w, xs, strict=True)]
        else:
            terms = ["0.0", *(f"{wk} * {xk}" for wk, xk in zip(w, xs, strict=True))]
        outputs.append(" + ".join(terms) + (f" + b{j}" if bias else ""))
    lines = [f"def linear_{rows}x{columns}(W, b, X):", *_unpack_weights(rows, columns)]
    if bias:
        lines.append(f"    {_tuple(_names('b', rows))} = b")
    return "\n".join([*lines, *_rows_loop("(", outputs, f"for {_tuple(xs)} in X", "tuple(out)")])


def input_grad_source(rows: int, columns: int, *, masked: bool) -> str:
    """The written-out ``G @ W`` for a ``(rows, columns)`` weight; ``masked``: 0.0 where ``H <= 0``.

    As the generic kernels: one output unit (``rows == 1``, unmasked) scales the
    weight row, with no sum; otherwise each entry is a dot product from ``0.0``.
    """
    weights = _weights(rows, columns)
    gs = _names("g", rows)
    entries = []
    for k in range(columns):
        products = [f"{g} * {weights[j][k]}" for j, g in enumerate(gs)]
        dot = products[0] if rows == 1 and not masked else " + ".join(["0.0", *products])
        entries.append(f"{dot} if h{k} > 0.0 else 0.0" if masked else dot)
    if masked:
        head = f"def masked_input_grad_{rows}x{columns}(W, G, H):"
        loop = f"for {_tuple(gs)}, {_tuple(_names('h', columns))} in zip(G, H)"
    else:
        head, loop = f"def input_grad_{rows}x{columns}(W, G):", f"for {_tuple(gs)} in G"
    return "\n".join([head, *_unpack_weights(rows, columns), *_rows_loop("[", entries, loop, "out")])


def weight_grad_source(rows: int, columns: int, *, bias: bool) -> str:
    """The written-out ``G.T @ X`` (and, with ``bias``, ``G``'s column sums) for a ``(rows, columns)`` weight.

    Each entry is a running sum over the batch from ``0.0``, example by example: the
    generic kernel's ``sum(map(mul, g_column, x_column))`` in the same order.
    """
    gs, xs = _names("g", rows), _names("x", columns)
    weights = [[f"a{j}_{k}" for k in range(columns)] for j in range(rows)]
    lines = [f"def weight_grad_{rows}x{columns}(G, X):"]
    lines += ["    " + " = ".join(row) + " = 0.0" for row in weights]
    if bias:
        lines.append("    " + " = ".join(_names("c", rows)) + " = 0.0")
    lines.append(f"    for {_tuple(gs)}, {_tuple(xs)} in zip(G, X):")
    lines += [
        f"        {a} += {g} * {x}"
        for g, row in zip(gs, weights, strict=True)
        for a, x in zip(row, xs, strict=True)
    ]
    if bias:
        lines += [f"        c{j} += {g}" for j, g in enumerate(gs)]
    rows_display = "[" + ", ".join("[" + ", ".join(row) + "]" for row in weights) + "]"
    lines.append(
        f"    return {rows_display}, " + ("[" + ", ".join(_names("c", rows)) + "]" if bias else "None")
    )
    return "\n".join(lines)


MAX_KERNELS = 512
"""How many kernels are kept (one per kind, shape and flags). Later shapes run on the generic
loops: a program that cycles through more shapes than this never compiles on every call."""

_KEPT: dict[tuple[object, ...], Callable[..., object]] = {}


def _kept(
    key: tuple[object, ...], rows: int, columns: int, source: Callable[[], str]
) -> Callable[..., object] | None:
    """The compiled kernel for ``key`` (compiled from ``source()`` at its first use), or None for a
    weight too big, where ``sum`` does not add in order, or once :data:`MAX_KERNELS` are kept."""
    try:
        return _KEPT[key]
    except KeyError:
        pass
    if not _fits(rows, columns) or len(_KEPT) >= MAX_KERNELS:
        return None
    text = source()
    filename = f"<tape.kernels.written {key[0]} {rows}x{columns}>"
    linecache.cache[filename] = (
        len(text),
        None,
        text.splitlines(keepends=True),
        filename,
    )  # tracebacks show it
    namespace: dict[str, object] = {}
    exec(compile(text, filename, "exec"), namespace)
    (function,) = (v for v in namespace.values() if callable(v))
    _KEPT[key] = cast("Callable[..., object]", function)
    return _KEPT[key]


def linear(rows: int, columns: int, bias: bool, narrow: bool) -> Forward | None:
    """The written-out forward kernel for a ``(rows, columns)`` weight, or None (see :func:`_kept`)."""
    kernel = _kept(
        ("linear", rows, columns, bias, narrow),
        rows,
        columns,
        lambda: linear_source(rows, columns, bias=bias, narrow=narrow),
    )
    return cast("Forward | None", kernel)


def input_grad(rows: int, columns: int) -> InputGrad | None:
    """The written-out ``G @ W`` for a ``(rows, columns)`` weight, or None (see :func:`_kept`)."""
    kernel = _kept(
        ("input_grad", rows, columns), rows, columns, lambda: input_grad_source(rows, columns, masked=False)
    )
    return cast("InputGrad | None", kernel)


def masked_input_grad(rows: int, columns: int) -> MaskedInputGrad | None:
    """The written-out ``G @ W`` where ``H > 0`` (else 0.0), or None (see :func:`_kept`)."""
    kernel = _kept(
        ("masked_input_grad", rows, columns),
        rows,
        columns,
        lambda: input_grad_source(rows, columns, masked=True),
    )
    return cast("MaskedInputGrad | None", kernel)


def weight_grad(rows: int, columns: int, bias: bool) -> WeightGrad | None:
    """The written-out weight (and bias) gradients for a ``(rows, columns)`` weight, or None
    (see :func:`_kept`)."""
    kernel = _kept(
        ("weight_grad", rows, columns, bias),
        rows,
        columns,
        lambda: weight_grad_source(rows, columns, bias=bias),
    )
    return cast("WeightGrad | None", kernel)
