"""Array nodes: one tape node for a whole layer, activation or loss over a batch.

A scalar engine records one node per neuron (or per multiply-add); Python spends
its time on node bookkeeping rather than arithmetic. An :class:`Array` is a vector
or matrix of floats recorded as *one* node, and its ops (``linear``, elementwise
activations, the mean cross-entropy of a batch of logits, ...) have backward rules
written as tight loops over rows (``sum(map(mul, ...))`` runs in C). A batch of 32
examples through a two-layer MLP is then about six nodes instead of thousands.

Arrays live on the same tape as scalar :class:`tape.Value`: indexing an Array gives
Values, ``grad(..., arrays=True)`` watches each vector or matrix of floats in the
arguments as one Array leaf, and gradients come back in the arguments' structure.
Array ops are first-order: inside nested tapes use scalar Values.

Every function here also takes plain (nested) sequences of floats and then returns
plain tuples without recording anything, so inference runs at float speed.

>>> from tape import Tape
>>> with Tape() as t:
...     W = t.watch_array([[1.0, 2.0], [3.0, 4.0]])
...     X = t.watch_array([[1.0, 1.0]])
...     loss = mean(relu(linear(W, None, X)))
>>> loss.data, t.gradient(loss, W)
(5.0, ((0.5, 0.5), (0.5, 0.5)))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import add, mul
from typing import TYPE_CHECKING, Any, Union, cast

from tape import floats
from tape.errors import TapeError
from tape.ops import define
from tape.tree import only_floats
from tape.value import Scalar, Value, dot, vsum
from tape.value import exp as scalar_exp
from tape.value import leaky_relu as scalar_leaky_relu
from tape.value import log as scalar_log
from tape.value import relu as scalar_relu
from tape.value import sigmoid as scalar_sigmoid
from tape.value import tanh as scalar_tanh

if TYPE_CHECKING:
    from tape.gradient_tape import Node, Tape

Vector = tuple[float, ...]
Matrix = tuple[Vector, ...]
Data = Vector | Matrix
FloatVector = Sequence[float]
FloatMatrix = Sequence[Sequence[float]]
Rows = tuple[tuple[Scalar, ...], ...]
"""What array functions give without a tracked Array: rows of floats (or of Values)."""
MatrixLike = Union["Array", Sequence[Sequence[Scalar]]]
VectorLike = Union["Array", Sequence[Scalar]]
_new = object.__new__


class Array:
    """An immutable vector or matrix of floats recorded as one tape node.

    ``.data`` is a tuple (vector) or a tuple of row tuples (matrix); ``.shape`` is
    ``(n,)`` or ``(rows, columns)``. ``a[i]`` is a Value (vector) or a row Array
    (matrix), itself recorded, so code written for sequences of Values still works.
    """

    __slots__ = ("_index", "_primal", "_tape")

    _primal: Data
    _tape: Tape
    _index: int

    @property
    def data(self) -> Data:
        """The floats: a tuple, or a tuple of row tuples."""
        return self._primal

    @property
    def tape(self) -> Tape:
        """The tape recording this Array."""
        return self._tape

    @property
    def position(self) -> int:
        """This Array's position on its tape."""
        return self._index

    @property
    def ndim(self) -> int:
        """1 for a vector, 2 for a matrix."""
        return 2 if self._primal and isinstance(self._primal[0], tuple) else 1

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n,)`` or ``(rows, columns)``."""
        data = self._primal
        if self.ndim == 2:
            return (len(data), len(cast(Matrix, data)[0]))
        return (len(data),)

    def __len__(self) -> int:
        return len(self._primal)

    def row(self, index: int) -> Array:
        """Row ``index`` of a matrix, recorded as a node."""
        if self.ndim != 2:
            raise TypeError("row() needs a matrix; use item() on a vector")
        return cast(Array, self[index])

    def item(self, index: int) -> Value:
        """Element ``index`` of a vector, recorded as a node."""
        if self.ndim != 1:
            raise TypeError("item() needs a vector; use row() on a matrix")
        return cast(Value, self[index])

    def __getitem__(self, index: int) -> Any:  # Value or Array by ndim; see row() and item()
        """Element ``index``: a Value of a vector, a row Array of a matrix (recorded)."""
        n = len(self._primal)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"Array indices are ints, not {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for an Array of length {n}")
        index %= n
        if self.ndim == 2:
            return _record_array(
                self._tape, ROW, (self._index,), cast(Matrix, self._primal)[index], (index, n)
            )
        return self._tape._record(ITEM, (self._index,), cast(Vector, self._primal)[index], (index, n))

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self._primal)))

    def __repr__(self) -> str:
        return f"Array(shape={self.shape}, op={self._tape.op_name(self._index)!r}, position={self._index})"


def _record_array(
    tape: Tape, op: Any, parents: tuple[int, ...], value: Data, saved: tuple[Any, ...]
) -> Array:
    index = tape._append(op, parents, value, saved)
    array: Array = _new(Array)
    array._primal = value
    array._tape = tape
    array._index = index
    return array


def _is_matrix(data: Data) -> bool:
    return bool(data) and isinstance(data[0], tuple)


class _HoldsValues(Exception):
    """Raised inside this module when an operand holds scalar Values: use the scalar path."""


def vector_data(xs: FloatVector, what: str) -> Vector:
    """``xs`` as a tuple of floats, or a TypeError naming ``what``."""
    out = tuple(xs)
    if only_floats(out):
        return out
    for item in out:
        x: object = item
        if isinstance(x, Value):
            raise _HoldsValues
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise TypeError(f"{what} must hold floats, found {type(x).__name__}")
    return tuple(float(v) for v in out)


def matrix_data(rows: FloatMatrix, what: str) -> Matrix:
    """``rows`` as a rectangular tuple of float tuples, or a TypeError/ValueError naming ``what``."""
    out = tuple(vector_data(row, what) for row in rows)
    if out and any(len(row) != len(out[0]) for row in out):
        raise ValueError(f"{what} is ragged: row lengths {sorted({len(row) for row in out})}")
    return out


# --- accumulating gradients in the sweep's buffer ---------------------------------------


def _add_vector(grads: list[Any], at: int, contribution: list[float]) -> None:
    """Add a fresh list into the buffer slot ``at`` (which holds 0.0 or a list it owns)."""
    held = grads[at]
    grads[at] = contribution if held.__class__ is float else list(map(add, held, contribution))


def _add_matrix(grads: list[Any], at: int, contribution: list[list[float]]) -> None:
    held = grads[at]
    if held.__class__ is float:
        grads[at] = contribution
    else:
        grads[at] = [list(map(add, a, b)) for a, b in zip(held, contribution)]


# --- linear: X W^T + b over a batch -------------------------------------------------------


def _linear_forward(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    if len(W[0]) <= _NARROW and len(X) > 1:
        return _narrow_linear_forward(W, b, X)
    if b is None:
        return tuple(tuple([sum(map(mul, w, x)) for w in W]) for x in X)
    return tuple(tuple([sum(map(mul, w, x)) + bias for w, bias in zip(W, b)]) for x in X)


_NARROW = 4
"""Inputs this narrow (e.g. 2-D points) are multiplied a column at a time: a few long
C-level loops over the batch instead of a short dot product per example and unit."""


def _narrow_linear_forward(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    columns = list(zip(*X))
    outputs = []
    for j, w in enumerate(W):
        total = list(map(mul, columns[0], repeat(w[0])))
        for column, weight in zip(columns[1:], w[1:]):
            total = list(map(add, total, map(mul, column, repeat(weight))))
        if b is not None:
            total = list(map(add, total, repeat(b[j])))
        outputs.append(total)
    return tuple(zip(*outputs))


def _linear_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    W, X, slots, after_relu = saved
    w_at, b_at, x_at = slots
    if x_at is not None:
        if len(W) == 1:  # one output unit: each example's input gradient is a scaled weight row
            (w,) = W
            _add_matrix(grads, x_at, [[gn * wi for wi in w] for (gn,) in g])
        elif after_relu:
            # X is a relu's output: where it is 0 the relu passes no gradient back, so
            # those entries of the input gradient are not worth their dot products.
            columns = list(zip(*W))
            _add_matrix(
                grads,
                x_at,
                [
                    [sum(map(mul, row, col)) if x > 0.0 else 0.0 for col, x in zip(columns, xs)]
                    for row, xs in zip(g, X)
                ],
            )
        else:
            columns = list(zip(*W))
            _add_matrix(grads, x_at, [[sum(map(mul, row, col)) for col in columns] for row in g])
    if w_at is not None or b_at is not None:
        g_columns = list(zip(*g))
        if w_at is not None:
            x_columns = list(zip(*X))
            _add_matrix(grads, w_at, [[sum(map(mul, gj, xi)) for xi in x_columns] for gj in g_columns])
        if b_at is not None:
            _add_vector(grads, b_at, [sum(gj) for gj in g_columns])


def _is_zero(tangent: object) -> bool:
    """A tangent or adjoint that is exactly the float 0.0 (a symbolic zero)."""
    return tangent.__class__ is float and tangent == 0.0


def _linear_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    W, X, slots, _ = saved
    given = iter(tangents)
    dW: Any
    db: Any
    dX: Any
    dW, db, dX = (next(given) if at is not None else 0.0 for at in slots)
    out = []
    for n, x in enumerate(X):
        row = [sum(map(mul, dw, x)) for dw in dW] if not _is_zero(dW) else [0.0] * len(W)
        if not _is_zero(dX):
            row = [r + sum(map(mul, w, dX[n])) for r, w in zip(row, W)]
        if not _is_zero(db):
            row = [r + d for r, d in zip(row, db)]
        out.append(tuple(row))
    return tuple(out)


LINEAR = define("linear", _linear_forward, vjp=_linear_vjp, jvp=_linear_jvp)


def _tape_of(*xs: object) -> Tape | None:
    found: Tape | None = None
    for x in xs:
        if isinstance(x, Array):
            if found is not None and x._tape is not found:
                raise TapeError("these Arrays belong to different tapes; array ops work on one tape")
            found = x._tape
    return found


def linear(W: MatrixLike, b: VectorLike | None, X: MatrixLike) -> Array | Rows:
    """``X @ W.T + b`` for a batch ``X`` (rows are examples), weights one row per output.

    With a tracked Array among the inputs the result is an Array node; with plain
    floats it is a tuple of row tuples.
    """
    tape = _tape_of(W, b, X)
    try:
        w_data = W._primal if isinstance(W, Array) else matrix_data(cast(FloatMatrix, W), "linear's W")
        x_data = X._primal if isinstance(X, Array) else matrix_data(cast(FloatMatrix, X), "linear's X")
        b_data = (
            None
            if b is None
            else (b._primal if isinstance(b, Array) else vector_data(cast(FloatVector, b), "b"))
        )
    except _HoldsValues:
        return _scalar_linear(W, b, X)
    if not (_is_matrix(w_data) and _is_matrix(x_data)) or (b_data is not None and _is_matrix(b_data)):
        raise ValueError("linear takes a matrix W, a vector b (or None) and a matrix X")
    w_m, x_m = cast(Matrix, w_data), cast(Matrix, x_data)
    if len(w_m[0]) != len(x_m[0]):
        raise ValueError(f"linear: W has {len(w_m[0])} columns but X rows have {len(x_m[0])} values")
    if b_data is not None and len(b_data) != len(w_m):
        raise ValueError(f"linear: W has {len(w_m)} rows but b has {len(b_data)} values")
    value = _linear_forward(w_m, cast(Vector | None, b_data), x_m)
    if tape is None:
        return value
    slots = tuple(v._index if isinstance(v, Array) else None for v in (W, b, X))
    after_relu = isinstance(X, Array) and X._tape.op_name(X._index) == "array_relu"
    parents = tuple(at for at in slots if at is not None)
    return _record_array(tape, LINEAR, parents, value, (w_m, x_m, slots, after_relu))


def _scalar_linear(W: Any, b: Any, X: Any) -> tuple[tuple[Any, ...], ...]:
    """``linear`` on operands holding scalar Values: one ``dot`` node per output."""
    if b is None:
        return tuple(tuple(dot(w, x) for w in W) for x in X)
    return tuple(tuple(dot(w, x) + bias for w, bias in zip(W, b)) for x in X)


# --- elementwise activations ------------------------------------------------------------


RowMap = Callable[[Sequence[float]], Vector]
RowScale = Callable[[Sequence[float], Sequence[float], Sequence[float]], Sequence[float]]


def _elementwise(
    name: str, forward_row: RowMap, scale_row: RowScale, scalar: Any
) -> Callable[[MatrixLike], Array | Rows]:
    """An elementwise op on a matrix, written a row at a time.

    ``forward_row(x)`` gives ``f`` of each entry; ``scale_row(g, x, y)`` gives
    ``g * f'(x)`` entry by entry, with ``y = f(x)``: the backward rule, and the forward
    rule with a tangent in place of ``g``. ``scalar`` is ``f`` on scalar Values, used
    for operands holding them.
    """

    def forward(data: Matrix) -> Matrix:
        return tuple(map(forward_row, data))

    def vjp(node: Node, g: Any, grads: list[Any]) -> None:
        saved: Any = node.saved
        (X,) = saved
        Y: Any = node.value
        (at,) = node.parents
        _add_matrix(grads, at, [list(scale_row(gr, xr, yr)) for gr, xr, yr in zip(g, X, Y)])

    def jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
        ((X,), (dX,)) = saved, tangents
        if _is_zero(dX):
            return 0.0
        return tuple(tuple(scale_row(dr, xr, yr)) for dr, xr, yr in zip(dX, X, value))

    op = define(name, forward, vjp=vjp, jvp=jvp)

    def apply(X: MatrixLike) -> Array | Rows:
        if not isinstance(X, Array):
            try:
                return forward(matrix_data(cast(FloatMatrix, X), f"{name}'s input"))
            except _HoldsValues:
                return tuple(tuple(map(scalar, row)) for row in X)
        if X.ndim != 2:
            raise ValueError(f"{name} takes a matrix (a batch of rows)")
        data = cast(Matrix, X._primal)
        return _record_array(X._tape, op, (X._index,), forward(data), (data,))

    apply.__name__ = name
    apply.__doc__ = f"Elementwise ``{name}`` of a matrix (an Array node, or floats in, floats out)."
    return apply


LEAKY_SLOPE = 0.01
"""The negative-side slope of :func:`leaky_relu` (as ``tape.leaky_relu``'s default)."""

relu = _elementwise(
    "array_relu",
    lambda row: tuple([0.0 if x <= 0.0 else x for x in row]),  # nan stays nan
    lambda gs, xs, ys: [g if x > 0.0 else 0.0 for g, x in zip(gs, xs)],
    scalar_relu,
)
tanh = _elementwise(
    "array_tanh",
    lambda row: tuple(map(math.tanh, row)),
    lambda gs, xs, ys: [g * (1.0 - y * y) for g, y in zip(gs, ys)],
    scalar_tanh,
)
sigmoid = _elementwise(
    "array_sigmoid",
    lambda row: tuple(map(floats.sigmoid, row)),
    lambda gs, xs, ys: [g * (y * (1.0 - y)) for g, y in zip(gs, ys)],
    scalar_sigmoid,
)
leaky_relu = _elementwise(
    "array_leaky_relu",
    lambda row: tuple([x if x > 0.0 else LEAKY_SLOPE * x for x in row]),
    lambda gs, xs, ys: [g if x > 0.0 else g * LEAKY_SLOPE for g, x in zip(gs, xs)],
    lambda x: scalar_leaky_relu(x, LEAKY_SLOPE),
)


# --- masks (dropout) ----------------------------------------------------------------------


def _scale_forward(data: Matrix, factors: Matrix) -> Matrix:
    return tuple(tuple(map(mul, row, f)) for row, f in zip(data, factors))


def _scale_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    (factors,) = saved
    (at,) = node.parents
    _add_matrix(grads, at, [list(map(mul, gr, f)) for gr, f in zip(g, factors)])


def _scale_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    ((factors,), (dX,)) = saved, tangents
    return 0.0 if _is_zero(dX) else _scale_forward(dX, factors)


SCALE = define("array_scale", _scale_forward, vjp=_scale_vjp, jvp=_scale_jvp)


def scale(X: MatrixLike, factors: FloatMatrix) -> Array | Rows:
    """``X * factors`` elementwise with constant ``factors`` (e.g. a dropout mask)."""
    f = matrix_data(factors, "scale's factors")
    if not isinstance(X, Array):
        try:
            return _scale_forward(matrix_data(cast(FloatMatrix, X), "scale's input"), f)
        except _HoldsValues:
            return tuple(tuple(x * k for x, k in zip(row, fr)) for row, fr in zip(X, f))
    data = cast(Matrix, X._primal)
    if len(f) != len(data) or (f and len(f[0]) != len(data[0])):
        raise ValueError(f"scale: factors of shape {(len(f), len(f[0]) if f else 0)} vs input {X.shape}")
    return _record_array(X._tape, SCALE, (X._index,), _scale_forward(data, f), (f,))


# --- losses and reductions (scalar results) -----------------------------------------------


def _cross_entropy_rows(Z: Matrix, targets: Sequence[int]) -> tuple[float, list[list[float]]]:
    """Mean cross-entropy of logit rows and each row's softmax."""
    total = []
    probs = []
    for z, t in zip(Z, targets):
        top = max(z)
        shift = top if math.isfinite(top) else 0.0
        exps = [floats.exp(v - shift) for v in z]
        lse = shift + floats.log(sum(exps))
        total.append(lse - z[t])
        probs.append([floats.exp(v - lse) for v in z])
    return sum(total) / len(total), probs


def _cross_entropy_forward(Z: Matrix, targets: Sequence[int]) -> float:
    return _cross_entropy_rows(Z, targets)[0]


def _cross_entropy_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    probs, targets = saved
    (at,) = node.parents
    k = g / len(probs)
    out = []
    for p, t in zip(probs, targets):
        row = [k * v for v in p]
        row[t] -= k
        out.append(row)
    _add_matrix(grads, at, out)


def _cross_entropy_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (probs, targets), (dZ,) = saved, tangents
    if _is_zero(dZ):
        return 0.0
    total = sum(sum(map(mul, p, dz)) - dz[t] for p, dz, t in zip(probs, dZ, targets))
    return total / len(probs)


CROSS_ENTROPY = define(
    "array_cross_entropy", _cross_entropy_forward, vjp=_cross_entropy_vjp, jvp=_cross_entropy_jvp
)


def _check_targets(targets: Sequence[int], rows: int, classes: int) -> tuple[int, ...]:
    if len(targets) != rows:
        raise ValueError(f"cross_entropy_with_logits: {rows} rows of logits but {len(targets)} targets")
    out = []
    for i, t in enumerate(targets):
        if isinstance(t, bool) or not isinstance(t, int):
            raise TypeError(f"cross_entropy_with_logits: row {i}: class targets are ints, not {t!r}")
        if not 0 <= t < classes:
            raise ValueError(f"cross_entropy_with_logits: row {i}: target {t} is not in [0, {classes})")
        out.append(t)
    return tuple(out)


def cross_entropy_with_logits(Z: MatrixLike, targets: Sequence[int]) -> Scalar:
    """Mean over rows of ``logsumexp(z) - z[target]`` (max-shifted): a Value, or a float."""
    try:
        data = (
            cast(Matrix, Z._primal) if isinstance(Z, Array) else matrix_data(cast(FloatMatrix, Z), "logits")
        )
    except _HoldsValues:
        return _scalar_cross_entropy(cast("Sequence[Sequence[Value | float]]", Z), targets)
    if not data:
        raise ValueError("cross_entropy_with_logits: empty batch")
    checked = _check_targets(targets, len(data), len(data[0]))
    value, probs = _cross_entropy_rows(data, checked)
    if not isinstance(Z, Array):
        return value
    return Z._tape._record(CROSS_ENTROPY, (Z._index,), value, (probs, checked))  # type: ignore[arg-type]  # saved holds rows, not partials


def _scalar_cross_entropy(Z: Sequence[Sequence[Value | float]], targets: Sequence[int]) -> Scalar:
    """``cross_entropy_with_logits`` on logits holding scalar Values (max-shifted)."""
    if not Z:
        raise ValueError("cross_entropy_with_logits: empty batch")
    checked = _check_targets(targets, len(Z), len(Z[0]))
    losses = []
    for z, t in zip(Z, checked):
        top = max(float(v) for v in z)
        shift = top if math.isfinite(top) else 0.0
        lse = scalar_log(vsum([scalar_exp(v - shift) for v in z])) + shift
        losses.append(lse - z[t])
    return vsum(losses) / float(len(losses))


def _mse_forward(Y: Matrix, T: Matrix) -> float:
    count = len(Y) * len(Y[0])
    return sum((y - t) * (y - t) for yr, tr in zip(Y, T) for y, t in zip(yr, tr)) / count


def _mse_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    Y, T = saved
    (at,) = node.parents
    k = 2.0 * g / (len(Y) * len(Y[0]))
    _add_matrix(grads, at, [[k * (y - t) for y, t in zip(yr, tr)] for yr, tr in zip(Y, T)])


def _mse_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (Y, T), (dY,) = saved, tangents
    if _is_zero(dY):
        return 0.0
    total = sum((y - t) * d for yr, tr, dr in zip(Y, T, dY) for y, t, d in zip(yr, tr, dr))
    return 2.0 * total / (len(Y) * len(Y[0]))


MSE = define("array_mse", _mse_forward, vjp=_mse_vjp, jvp=_mse_jvp)


def mse(Y: MatrixLike, T: FloatMatrix) -> Scalar:
    """Mean of ``(y - t) ** 2`` over all entries: a Value, or a float."""
    targets = matrix_data(T, "targets")
    try:
        data = (
            cast(Matrix, Y._primal)
            if isinstance(Y, Array)
            else matrix_data(cast(FloatMatrix, Y), "predictions")
        )
    except _HoldsValues:
        rows = cast("Sequence[Sequence[Value | float]]", Y)
        if not rows or len(rows) != len(targets) or len(rows[0]) != len(targets[0]):
            raise ValueError("mse: predictions and targets must be non-empty and of the same shape") from None
        differences = [y - t for yr, tr in zip(rows, targets) for y, t in zip(yr, tr)]
        squares = [d * d for d in differences]
        return vsum(squares) / float(len(squares))
    if not data:
        raise ValueError("mse: empty batch")
    if len(targets) != len(data) or len(targets[0]) != len(data[0]):
        got, want = (len(data), len(data[0])), (len(targets), len(targets[0]))
        raise ValueError(f"mse: predictions of shape {got} vs targets of shape {want}")
    value = _mse_forward(data, targets)
    if not isinstance(Y, Array):
        return value
    return Y._tape._record(MSE, (Y._index,), value, (data, targets))  # type: ignore[arg-type]  # saved holds rows, not partials


def _mean_forward(data: Data) -> float:
    if _is_matrix(data):
        rows = cast(Matrix, data)
        return sum(v for row in rows for v in row) / (len(rows) * len(rows[0]))
    return sum(cast(Vector, data)) / len(data)


def _mean_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    (shape,) = saved
    (at,) = node.parents
    if len(shape) == 1:
        _add_vector(grads, at, [g / shape[0]] * shape[0])
    else:
        k = g / (shape[0] * shape[1])
        _add_matrix(grads, at, [[k] * shape[1] for _ in range(shape[0])])


def _mean_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (dX,) = tangents
    return 0.0 if _is_zero(dX) else _mean_forward(dX)


MEAN = define("array_mean", _mean_forward, vjp=_mean_vjp, jvp=_mean_jvp)


def mean(X: MatrixLike | VectorLike) -> Scalar:
    """The mean of every entry: a Value for an Array, else a float."""
    if not isinstance(X, Array):
        first = next(iter(X), None)
        try:
            if isinstance(first, Sequence):
                return _mean_forward(matrix_data(cast(FloatMatrix, X), "mean's input"))
            return _mean_forward(vector_data(cast(FloatVector, X), "mean's input"))
        except _HoldsValues:
            nested: Any = X
            items: list[Any] = (
                [v for row in nested for v in row] if isinstance(first, Sequence) else list(nested)
            )
            return vsum(items) / float(len(items))
    if not X._primal:
        raise ValueError("mean of an empty Array")
    return X._tape._record(MEAN, (X._index,), _mean_forward(X._primal), (X.shape,))  # type: ignore[arg-type]  # saved holds a shape, not partials


# --- indexing -----------------------------------------------------------------------------


def _row_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    index, rows = saved
    (at,) = node.parents
    held = grads[at]
    if held.__class__ is float:
        held = grads[at] = [[0.0] * len(g) for _ in range(rows)]
    held[index] = list(map(add, held[index], g))


def _item_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    saved: Any = node.saved
    index, n = saved
    (at,) = node.parents
    held = grads[at]
    if held.__class__ is float:
        held = grads[at] = [0.0] * n
    held[index] += g


def _index_jvp(value: Any, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (index, _), (dX,) = saved, tangents
    return 0.0 if _is_zero(dX) else dX[index]


ROW = define("array_row", lambda data, i: data[i], vjp=_row_vjp, jvp=_index_jvp)
ITEM = define("array_item", lambda data, i: data[i], vjp=_item_vjp, jvp=_index_jvp)


def _stack_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    for at, gi in zip(node.parents, g):
        grads[at] += gi


def _stack_jvp(value: Vector, saved: Any, tangents: tuple[Any, ...]) -> Any:
    return tuple(float(t) for t in tangents)


STACK = define("array_stack", lambda values: tuple(values), vjp=_stack_vjp, jvp=_stack_jvp)


def stack(values: Sequence[Scalar]) -> Array | Vector:
    """A vector Array from scalar Values (and floats) of one tape; floats alone give a tuple."""
    tape = None
    for v in values:
        if isinstance(v, Value) and v.tape is not None:
            if tape is not None and v.tape is not tape:
                raise TapeError("stack: Values of different tapes")
            tape = v.tape
    if tape is None:
        return tuple(float(v) for v in values)
    parents = []
    data = []
    for v in values:
        if isinstance(v, Value) and v.tape is tape:
            parents.append(v.position)
            data.append(v.data)
        else:
            raise TapeError("stack: every element must be a Value of the same tape")
    return _record_array(tape, STACK, tuple(parents), tuple(data), ())


__all__ = [
    "Array",
    "cross_entropy_with_logits",
    "leaky_relu",
    "linear",
    "mean",
    "mse",
    "relu",
    "scale",
    "sigmoid",
    "stack",
    "tanh",
]
