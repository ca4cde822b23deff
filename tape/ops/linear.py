"""``linear``: ``X @ W.T + b`` for a batch ``X`` as one node (a layer of an MLP), and
``matmul`` (the ``@`` operator) with ``numpy.matmul`` semantics.

The backward rule is written as tight row loops (``sum(map(mul, ...))`` runs in
C); inputs at most four wide (e.g. 2-D points) are multiplied a column at a time
over the whole batch instead of a short dot product per example and unit.

``matmul`` runs on the kernels of :mod:`tape.kernels.matmul`. Forward mode goes
through its jvp rule; its vjp rule runs on floats, so reverse mode over it is first
order: inside a nested tape (``grad`` of ``grad``, ``hvp``), given the enclosing tape's
Values it raises a TypeError.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from operator import add, mul
from typing import Any, cast

from tape.array import (
    Array,
    Data,
    Matrix,
    Rows,
    Shape,
    Vector,
    add_matrix,
    add_vector,
    apply_array_op,
    array_op,
    as_data,
    constant_array,
    flatten,
    install,
    nest,
    record_array,
    shape_of,
    tape_of,
    traced_floats,
    tracked,
)
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import Recording, is_zero
from tape.kernels import written
from tape.kernels.matmul import matmul as matmul_kernel
from tape.kernels.matmul import matmul_vjp
from tape.ops.elementwise import ARRAY_OPS, array_relu, relu_kernel
from tape.ops.reductions import dot
from tape.tree import only_floats
from tape.validate import HoldsTracked
from tape.value import Scalar

_NARROW = 4
"""Inputs this narrow are multiplied a column at a time over the batch."""


def _narrow_forward(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    columns = list(zip(*X, strict=True))
    outputs = []
    for j, w in enumerate(W):
        total = list(map(mul, columns[0], repeat(w[0])))
        for column, weight in zip(columns[1:], w[1:], strict=True):
            total = list(map(add, total, map(mul, column, repeat(weight))))
        if b is not None:
            total = list(map(add, total, repeat(b[j])))
        outputs.append(total)
    return tuple(zip(*outputs, strict=True))


def _is_narrow(W: Matrix, X: Matrix) -> bool:
    return len(W[0]) <= _NARROW and len(X) > 1


def forward_loops(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    """``X @ W.T + b`` by the generic loops, for a weight of any size."""
    if _is_narrow(W, X):
        return _narrow_forward(W, b, X)
    if b is None:
        return tuple(tuple([sum(map(mul, w, x)) for w in W]) for x in X)
    return tuple(tuple([sum(map(mul, w, x)) + bias for w, bias in zip(W, b, strict=True)]) for x in X)


def linear_kernel(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    """``X @ W.T + b`` on floats: one row per example, one column per row of ``W``.

    A small weight runs on the kernel written out for its shape (:mod:`tape.kernels.written`),
    which computes the same floats as :func:`forward_loops`.
    """
    kernel = written.linear(len(W), len(W[0]), b is not None, _is_narrow(W, X))
    return kernel(W, b, X) if kernel is not None else forward_loops(W, b, X)


def input_grad_loops(W: Matrix, g: Sequence[Sequence[float]]) -> list[list[float]]:
    """``g @ W`` by the generic loops, for a weight of any size."""
    if len(W) == 1:  # one output unit: each example's input gradient is a scaled weight row
        (w,) = W
        return [[gn * wi for wi in w] for (gn,) in g]
    columns = list(zip(*W, strict=True))
    return [[sum(map(mul, row, col)) for col in columns] for row in g]


def _input_grad(W: Matrix, g: Sequence[Sequence[float]]) -> list[list[float]]:
    """``g @ W``: the gradient of ``linear`` for its input rows (written out for a small ``W``)."""
    kernel = written.input_grad(len(W), len(W[0]))
    return kernel(W, g) if kernel is not None else input_grad_loops(W, g)


def _weight_grad(g_columns: Sequence[Sequence[float]], X: Sequence[Sequence[float]]) -> list[list[float]]:
    """``g^T X`` from the columns of ``g``: the gradient of ``linear`` for its weights."""
    x_columns = list(zip(*X, strict=True))
    return [[sum(map(mul, gj, xi)) for xi in x_columns] for gj in g_columns]


def _linear_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    W, X, slots = cast("tuple[Matrix, Matrix, tuple[int | None, int | None, int | None]]", node.saved)
    w_at, b_at, x_at = slots
    if x_at is not None:
        add_matrix(grads, x_at, _input_grad(W, g))
    _add_weight_and_bias_grads(grads, g, X, w_at, b_at)


def weight_and_bias_grads_loops(
    g: Sequence[Sequence[float]], X: Sequence[Sequence[float]], bias: bool
) -> tuple[list[list[float]], list[float] | None]:
    """``g^T X`` and (with ``bias``) the column sums of ``g``, by the generic loops."""
    g_columns = list(zip(*g, strict=True))
    return _weight_grad(g_columns, X), (_column_sums(g_columns) if bias else None)


def _column_sums(columns: Iterable[Sequence[float]]) -> list[float]:
    """Each column's sum: the gradient of ``linear`` for its bias, from the columns of ``g``."""
    return [sum(column) for column in columns]


def _bias_grad(g: Sequence[Sequence[float]]) -> list[float]:
    """The column sums of ``g``: the gradient of ``linear`` for its bias alone."""
    return _column_sums(zip(*g, strict=True))


def weight_and_bias_grads(
    g: Sequence[Sequence[float]], X: Sequence[Sequence[float]], bias: bool
) -> tuple[list[list[float]], list[float] | None]:
    """``g^T X`` and (with ``bias``) the column sums of ``g`` (written out for a small weight).

    A ``g`` holding Values (reverse over reverse) runs on the loops: the written kernel's
    running sums, example by example, would record the same products in another order, and
    the enclosing tape's backward pass would add its adjoints up in another order too.
    """
    kernel = written.weight_grad(len(g[0]), len(X[0]), bias)
    if kernel is not None and only_floats(chain.from_iterable(g)):
        return kernel(g, X)
    return weight_and_bias_grads_loops(g, X, bias)


def _add_weight_and_bias_grads(
    grads: list[Any], g: Any, X: Matrix, w_at: int | None, b_at: int | None
) -> None:
    """``g^T X`` into the weight's slot and the column sums of ``g`` into the bias's (when tracked).

    Written out for a small weight (:mod:`tape.kernels.written`), the same floats as the loops.
    """
    if w_at is None:
        if b_at is not None:
            add_vector(grads, b_at, _bias_grad(g))
        return
    gw, gb = weight_and_bias_grads(g, X, b_at is not None)
    add_matrix(grads, w_at, gw)
    if b_at is not None:
        add_vector(grads, b_at, cast("list[float]", gb))


def _linear_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    W, X, slots = saved
    given = iter(tangents)
    dW: Any
    db: Any
    dX: Any
    dW, db, dX = (next(given) if at is not None else 0.0 for at in slots)
    out = []
    for n, x in enumerate(X):
        row = [sum(map(mul, dw, x)) for dw in dW] if not is_zero(dW) else [0.0] * len(W)
        if not is_zero(dX):
            row = [r + sum(map(mul, w, dX[n])) for r, w in zip(row, W, strict=True)]
        if not is_zero(db):
            row = [r + d for r, d in zip(row, db, strict=True)]
        out.append(tuple(row))
    return tuple(out)


def _linear_emit(c: Any, node: Node, operands: Any, v: str, s: str) -> list[str]:
    _, _, slots = cast("tuple[Matrix, Matrix, tuple[int | None, ...]]", node.saved)
    w, b, x = (c.arg(at, data) for at, data in zip(slots, operands, strict=True))
    return [f"{v} = {c.ref(linear_kernel)}({w}, {b}, {x})", f"{s} = ({w}, {x}, {c.local(slots)})"]


LINEAR = define("linear", linear_kernel, vjp=_linear_vjp, jvp=_linear_jvp, emit=_linear_emit, builtin=True)


# --- relu then linear, fused: one op whose input is the relu's pre-activation ------------------


def _relu_linear_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    W, H, slots = cast("tuple[Matrix, Matrix, tuple[int | None, int | None, int | None]]", node.saved)
    w_at, b_at, z_at = slots
    if z_at is not None:
        # d/dZ of linear(W, b, relu(Z)): (g @ W) where Z > 0, else 0 (relu's partial);
        # where the relu is off, the entry is 0 and its dot product is not computed.
        add_matrix(grads, z_at, _masked_input_grad(W, g, H))
    _add_weight_and_bias_grads(grads, g, H, w_at, b_at)  # the relu's output is linear's input


def masked_input_grad_loops(W: Matrix, g: Sequence[Sequence[float]], H: Matrix) -> list[list[float]]:
    """``g @ W`` where ``H > 0``, else 0.0, by the generic loops, for a weight of any size."""
    columns = list(zip(*W, strict=True))
    return [
        [sum(map(mul, row, col)) if h > 0.0 else 0.0 for col, h in zip(columns, hs, strict=True)]
        for row, hs in zip(g, H, strict=True)
    ]


def _masked_input_grad(W: Matrix, g: Sequence[Sequence[float]], H: Matrix) -> list[list[float]]:
    """relu_linear's gradient for its pre-activations (written out for a small ``W``)."""
    kernel = written.masked_input_grad(len(W), len(W[0]))
    return kernel(W, g, H) if kernel is not None else masked_input_grad_loops(W, g, H)


def _relu_linear_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    W, H, slots = saved
    given = iter(tangents)
    dW: Any
    db: Any
    dZ: Any
    dW, db, dZ = (next(given) if at is not None else 0.0 for at in slots)
    if not is_zero(dZ):  # the relu's tangent: dZ where Z > 0
        dZ = [
            [d if h > 0.0 else 0.0 for d, h in zip(dr, hr, strict=True)] for dr, hr in zip(dZ, H, strict=True)
        ]
    if all(is_zero(t) for t in (dW, db, dZ)):
        return 0.0
    return _linear_jvp(value, (W, H, (0, 0, 0)), (dW, db, dZ))  # every tangent given, in order


def _relu_linear_forward(W: Matrix, b: Vector | None, Z: Matrix) -> Matrix:
    return linear_kernel(W, b, tuple(tuple(map(relu_kernel, row)) for row in Z))


def _relu_rows(Z: Matrix) -> Matrix:
    """relu over a tracked Z's data: the array op's forward rule (the data is checked already)."""
    return cast(Matrix, ARRAY_OPS["relu"].forward(Z))


def _relu_linear_emit(c: Any, node: Node, operands: Any, v: str, s: str) -> list[str]:
    _, _, slots = cast("tuple[Matrix, Matrix, tuple[int | None, ...]]", node.saved)
    w, b, z = (c.arg(at, data) for at, data in zip(slots, operands, strict=True))
    return [
        f"{s} = ({w}, {c.ref(_relu_rows)}({z}), {c.local(slots)})",
        f"{v} = {c.ref(linear_kernel)}({w}, {b}, {s}[1])",
    ]


RELU_LINEAR = define(
    "relu_linear",
    _relu_linear_forward,
    vjp=_relu_linear_vjp,
    jvp=_relu_linear_jvp,
    emit=_relu_linear_emit,
    builtin=True,
)
"""``linear(W, b, relu(Z))`` as one op: the relu's output is not a node of its own, and
the backward pass skips the input-gradient entries the relu turns off."""


def relu_linear(
    W: Array | Sequence[Sequence[Scalar]],
    b: Array | Sequence[Scalar] | None,
    Z: Array | Sequence[Sequence[Scalar]],
) -> Array | Rows:
    """``linear(W, b, relu(Z))`` fused: the same numbers, one node, a cheaper backward pass."""
    if not isinstance(Z, Array) or Z.tape is None:
        return linear(W, b, array_relu(Z))
    if Z.ndim != 2:
        raise ValueError("relu_linear takes a matrix Z (a batch of pre-activations)")
    H = _relu_rows(cast(Matrix, Z.primal))
    recording = tape_of(W, b, Z)
    w_data, b_data = _checked(W, b, H, "relu_linear", "Z")
    value = linear_kernel(w_data, b_data, H)
    slots = tuple(cast(Array, v).position if tracked(v) else None for v in (W, b, Z))
    parents = tuple(at for at in slots if at is not None)
    tracking = cast("Recording", recording)
    if tracking.traces:  # b is saved nowhere else
        operands = tuple(None if tracked(v) else d for v, d in ((W, w_data), (b, b_data), (Z, None)))
        return tracking.record_traced(RELU_LINEAR, parents, value, (w_data, H, slots), operands, Array)
    return record_array(tracking, RELU_LINEAR, parents, value, (w_data, H, slots))


def _checked(
    W: object, b: object, x_m: Matrix, op: str = "linear", batch: str = "X"
) -> tuple[Matrix, Vector | None]:
    """``W`` and ``b`` as floats, checked against a batch ``x_m`` (what :func:`linear` checks),
    errors naming ``op`` and its ``batch`` argument."""
    w_data = as_data(W, f"{op}'s W")
    b_data = None if b is None else as_data(b, f"{op}'s b")
    if not (w_data and isinstance(w_data[0], tuple)) or (
        b_data is not None and b_data and isinstance(b_data[0], tuple)
    ):
        raise ValueError(f"{op} takes a matrix W, a vector b (or None) and a matrix {batch}")
    if not w_data[0]:
        raise ValueError(f"{op}: W has no columns (a layer takes at least one input)")
    if len(w_data[0]) != len(x_m[0]):
        raise ValueError(f"{op}: W has {len(w_data[0])} columns but {batch} rows have {len(x_m[0])} values")
    if b_data is not None and len(b_data) != len(w_data):
        raise ValueError(f"{op}: W has {len(w_data)} rows but b has {len(b_data)} values")
    return w_data, cast("Vector | None", b_data)


def linear(
    W: Array | Sequence[Sequence[Scalar]],
    b: Array | Sequence[Scalar] | None,
    X: Array | Sequence[Any],
) -> Array | Rows | Data:
    """``X @ W.T + b`` for a batch ``X`` (rows are examples), weights one row per output.

    ``X`` may have leading axes, ``(..., in) -> (..., out)`` as ``torch.nn.functional.linear``
    (e.g. ``(batch, time, features)``), or be one example ``(in,)``. With a tracked Array
    among the inputs the result is an Array node; with plain floats it is nested tuples
    (rows of Values when a matrix ``X`` and the weights hold Values).
    """
    recording = tape_of(W, b, X)
    try:
        x_data = as_data(X, "linear's X")
        if not (x_data and isinstance(x_data[0], tuple)) or (x_data[0] and isinstance(x_data[0][0], tuple)):
            return _leading_axes_linear(W, b, X, x_data)
        x_m = x_data
        w_m, b_data = _checked(W, b, x_m)
    except HoldsTracked:
        held = traced_floats(X, "linear's X") if isinstance(W, Array) and not isinstance(X, Array) else None
        if held is not None:  # under tape.jit, a batch of floats the function gets as they are
            return linear(W, b, held)
        return _scalar_linear(W, b, X)
    value = linear_kernel(w_m, b_data, x_m)
    if recording is None:
        return constant_array(value) if any(isinstance(v, Array) for v in (W, b, X)) else value
    slots = tuple(cast(Array, v).position if tracked(v) else None for v in (W, b, X))
    parents = tuple(at for at in slots if at is not None)
    if recording.traces:  # b is saved nowhere else
        operands = tuple(None if tracked(v) else d for v, d in ((W, w_m), (b, b_data), (X, x_m)))
        return recording.record_traced(LINEAR, parents, value, (w_m, x_m, slots), operands, Array)
    return record_array(recording, LINEAR, parents, value, (w_m, x_m, slots))


# --- linear over leading axes: X of shape (..., in), or one example (in,) -------------------


def _leading_rows(x: Any) -> tuple[Sequence[Sequence[float]], Shape]:
    """The rows of nested ``x`` of shape ``(..., n)`` (the leading axes merged) and the leading shape."""
    shape = shape_of(x)
    if len(shape) == 1:
        return (x,), ()
    rows = x
    for _ in range(len(shape) - 2):
        rows = list(chain.from_iterable(rows))
    return rows, shape[:-1]


Wanted = tuple[bool, bool, bool]
"""Which of ``W``, ``b`` and ``X`` are tracked: the vjp computes only their gradients."""


def _leading_forward(W: Matrix, b: Vector | None, X: Data, *, wanted: Wanted) -> Data:
    rows, lead = _leading_rows(X)
    w_m, b_data = _checked(W, b, cast(Matrix, rows))
    out = linear_kernel(w_m, b_data, cast(Matrix, rows))
    return cast(Data, nest(list(chain.from_iterable(out)), (*lead, len(w_m))))


def _leading_vjp(
    g: Any, value: Data, W: Matrix, b: Vector | None, X: Data, *, wanted: Wanted
) -> tuple[list[list[float]] | None, list[float] | None, list[float] | None]:
    g_rows, _ = _leading_rows(g)
    w_wanted, b_wanted, x_wanted = wanted
    gx = list(chain.from_iterable(_input_grad(W, g_rows))) if x_wanted else None
    bias = b_wanted and b is not None
    if w_wanted:
        gw, gb = weight_and_bias_grads(g_rows, _leading_rows(X)[0], bias)
        return gw, gb, gx
    return None, (_bias_grad(g_rows) if bias else None), gx


def _leading_jvp(value: Data, args: tuple[Any, ...], tangents: tuple[Any, ...], *, wanted: Wanted) -> Any:
    W, _, X = args
    dW, db, dX = (0.0 if t is None else t for t in tangents)
    x_rows, lead = _leading_rows(X)
    dx_rows = 0.0 if is_zero(dX) else _leading_rows(dX)[0]
    rows = _linear_jvp(value, (W, x_rows, (0, 0, 0)), (dW, db, dx_rows))  # every tangent given
    return nest(list(chain.from_iterable(rows)), (*lead, len(W)))


LINEAR_LEADING = array_op("linear_leading_axes", _leading_forward, _leading_vjp, _leading_jvp)
"""``linear`` of an ``X`` with leading axes ``(..., in)``, or of one example ``(in,)``."""


def _leading_axes_linear(W: object, b: object, X: object, x_data: Data) -> Array | Data:
    if not x_data:
        raise ValueError("linear takes a matrix W, a vector b (or None) and X of shape (..., in)")
    wanted = (tracked(W), tracked(b), tracked(X))
    return cast(
        "Array | Data",
        apply_array_op(LINEAR_LEADING, W, b, X if isinstance(X, Array) else x_data, wanted=wanted),
    )


def _scalar_linear(W: Any, b: Any, X: Any) -> Data:
    """``linear`` on operands holding scalar Values: one ``dot`` node per output (any leading axes)."""
    if X and not isinstance(X[0], Sequence):  # one example
        return cast(Data, _scalar_linear(W, b, (X,))[0])
    if X and X[0] and isinstance(X[0][0], Sequence):
        return tuple(_scalar_linear(W, b, x) for x in X)
    if b is None:
        return tuple(tuple(dot(w, x) for w in W) for x in X)
    return tuple(tuple(dot(w, x) + bias for w, bias in zip(W, b, strict=True)) for x in X)


# --- matmul: numpy.matmul semantics, and the @ operator ----------------------------------------


def _matmul_forward(a: Data, b: Data) -> Any:  # nested tuples, or a float for vector @ vector
    out, out_shape = matmul_kernel(flatten(a), shape_of(a), flatten(b), shape_of(b))
    return nest(out, out_shape)


def _matmul_vjp(g: Any, value: object, a: Data, b: Data) -> tuple[list[float], list[float]]:
    return matmul_vjp(flatten(g), flatten(a), shape_of(a), flatten(b), shape_of(b))


def _matmul_jvp(value: object, args: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
    (a, b), (da, db) = args, tangents
    shape = shape_of(value)
    total: list[float] | None = None
    for left, right in ((da, b), (a, db)):
        if left is not None and right is not None:
            part, shape = matmul_kernel(flatten(left), shape_of(left), flatten(right), shape_of(right))
            total = part if total is None else list(map(add, total, part))
    return nest(total if total is not None else [0.0] * len(flatten(value)), shape)


MATMUL = array_op("matmul", _matmul_forward, _matmul_vjp, _matmul_jvp)


def matmul(a: object, b: object) -> Array | Data | Scalar:
    """``numpy.matmul(a, b)``: a 1-d ``a`` is a row and a 1-d ``b`` a column (their axis
    dropped from the result), more axes are stacks of matrices whose batch axes broadcast.

    Arrays or nested sequences of floats on either side; vector @ vector is a scalar (a
    Value when tracked). Inner sizes that differ are a ValueError naming both shapes.
    """
    return cast("Array | Data | Scalar", apply_array_op(MATMUL, a, b))


def _matmul_method(self: Array, other: object) -> Any:
    return matmul(self, other)


def _rmatmul_method(self: Array, other: object) -> Any:
    return matmul(other, self)


install("__matmul__", _matmul_method)
install("__rmatmul__", _rmatmul_method)
