"""Losses over a batch as single nodes: cross-entropy of logit rows, and mean squared error (N-d).

Both are scalar-valued array ops: the forward pass computes the loss and what the
backward rule needs (cross-entropy: each row's softmax), saved on the node. Targets
are checked by :mod:`tape.validate`, the same checks the scalar path makes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any, NamedTuple, cast

from tape import floats
from tape.array import (
    Array,
    Data,
    Matrix,
    add_flat,
    add_matrix,
    constant_data,
    flatten,
    shape_of,
    traced_floats,
)
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import is_zero
from tape.ops.elementwise import exp, log
from tape.ops.reductions import max_shift, vsum
from tape.validate import HoldsTracked, class_targets, float_array, float_matrix
from tape.value import Scalar, Value


def _cross_entropy_rows(Z: Matrix, targets: Sequence[int]) -> tuple[float, list[list[float]]]:
    """Mean cross-entropy of logit rows (max-shifted) and each row's softmax."""
    total = []
    probs = []
    for z, t in zip(Z, targets, strict=True):
        top = max(z)
        finite = math.isfinite(top)
        shift = top if finite else 0.0
        # with a finite max every exponent below is at most 0 (lse >= top): math.exp cannot overflow
        exponential = math.exp if finite else floats.exp
        exps = [exponential(v - shift) for v in z]
        lse = shift + floats.log(sum(exps))
        total.append(lse - z[t])
        probs.append([exponential(v - lse) for v in z])
    return sum(total) / len(total), probs


def _cross_entropy_forward(Z: Matrix, targets: Sequence[int]) -> float:
    return _cross_entropy_rows(Z, targets)[0]


def _cross_entropy_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    probs, targets = cast("tuple[list[list[float]], tuple[int, ...]]", node.saved)
    (at,) = node.parents
    k = g / len(probs)
    out = []
    for p, t in zip(probs, targets, strict=True):
        row = [k * v for v in p]
        row[t] -= k
        out.append(row)
    add_matrix(grads, at, out)


def _cross_entropy_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (probs, targets), (dZ,) = saved, tangents
    if is_zero(dZ):
        return 0.0
    total = sum(sum(map(mul, p, dz)) - dz[t] for p, dz, t in zip(probs, dZ, targets, strict=True))
    return total / len(probs)


def cross_entropy_node(Z: Matrix, targets: tuple[int, ...]) -> tuple[float, tuple[object, ...]]:
    """A cross-entropy node's value and what it saves (each row's softmax, the targets)."""
    value, probs = _cross_entropy_rows(Z, targets)
    return value, (probs, targets)


def _cross_entropy_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    probs, targets = cast("tuple[list[list[float]], tuple[int, ...]]", node.saved)
    checked = f"{c.ref(class_targets)}({c.ints(targets)}, {len(targets)}, {len(probs[0])}, 'jit: targets')"
    return [f"{v}, {s} = {c.ref(cross_entropy_node)}({c.var(node.parents[0])}, {checked})"]


CROSS_ENTROPY = define(
    "array_cross_entropy",
    _cross_entropy_forward,
    vjp=_cross_entropy_vjp,
    jvp=_cross_entropy_jvp,
    emit=_cross_entropy_emit,
    builtin=True,
)


def cross_entropy_with_logits(
    Z: Array | Sequence[Sequence[Scalar]], targets: Sequence[int], *, where: str = "cross_entropy_with_logits"
) -> Scalar:
    """Mean over rows of ``logsumexp(z) - z[target]`` (max-shifted): a Value, or a float.

    ``where`` names the caller in error messages.
    """
    if isinstance(Z, Array) and Z.ndim != 2:
        raise ValueError(f"{where}: logits must be rows (2 axes), got an Array of shape {Z.shape}")
    try:
        data = (
            cast(Matrix, Z.primal)
            if isinstance(Z, Array)
            else float_matrix(cast("Sequence[Sequence[float]]", Z), f"{where}: logits")
        )
    except HoldsTracked:
        held = traced_floats(cast("Sequence[object]", Z), f"{where}: logits")
        if held is not None:  # plain floats where no tracing is (tape.jit's stand-ins): one Array
            return cross_entropy_with_logits(held, targets, where=where)
        return _scalar_cross_entropy(cast("Sequence[Sequence[Scalar]]", Z), targets, where)
    checked = class_targets(targets, len(data), len(data[0]) if data else 0, where)
    value, probs = _cross_entropy_rows(data, checked)
    if not isinstance(Z, Array) or Z.tape is None:
        return value
    return Z.tape.record(CROSS_ENTROPY, (Z.position,), value, (probs, checked), Value)


class Normaliser(NamedTuple):
    """The max-shifted pieces every normaliser of scalars shares (see :func:`normaliser`)."""

    shift: Scalar
    shifted: list[Scalar]
    exps: list[Scalar]
    total: Scalar


def normaliser(xs: Sequence[Scalar]) -> Normaliser:
    """``xs`` shifted by their largest, the exps of the shifted values, and their sum.

    The shift is :func:`~tape.max_shift` (0 when the largest is infinite, so ``inf - inf``
    never appears; an op with zero partials, so gradients are those of the unshifted
    formula and compiled code recomputes it). Then ``log_softmax(xs)[i]`` is
    ``shifted[i] - log(total)``, the cross-entropy at class ``t`` is
    ``log(total) - shifted[t]`` and ``logsumexp(xs)`` is ``shift + log(total)``: every
    normaliser of scalars (cross-entropy here, those of :mod:`functional_nn.functional`)
    is computed from these pieces, so they agree bit for bit. ``xs`` is non-empty.

    >>> normaliser([0.0, 0.0]).total
    2.0
    """
    shift = max_shift(xs)
    shifted = [x - shift for x in xs]
    exps = [exp(d) for d in shifted]
    return Normaliser(shift, shifted, exps, vsum(exps))


def _scalar_cross_entropy(Z: Sequence[Sequence[Scalar]], targets: Sequence[int], where: str) -> Scalar:
    """Cross-entropy of logits holding scalar Values (max-shifted), recorded op by op."""
    checked = class_targets(targets, len(Z), len(Z[0]) if Z else 0, where)
    losses = []
    for z, t in zip(Z, checked, strict=True):
        _, shifted, _, total = normaliser(z)
        losses.append(log(total) - shifted[t])
    return vsum(losses) / float(len(losses))


# --- mean squared error -----------------------------------------------------------------


def _mse_forward(Y: Data, T: Data) -> float:
    ys, ts = flatten(Y), flatten(T)
    total: float = sum([(y - t) * (y - t) for y, t in zip(ys, ts, strict=True)])
    return total / len(ys)


def _mse_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    Y, T = cast("tuple[Data, Data]", node.saved)
    (at,) = node.parents
    ys, ts = flatten(Y), flatten(T)
    k = 2.0 * g / len(ys)
    add_flat(grads, at, [k * (y - t) for y, t in zip(ys, ts, strict=True)], shape_of(Y))


def _mse_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (Y, T), (dY,) = saved, tangents
    if is_zero(dY):
        return 0.0
    ys = flatten(Y)
    total = sum([(y - t) * d for y, t, d in zip(ys, flatten(T), flatten(dY), strict=True)])
    return 2.0 * total / len(ys)


def _mse_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    y, t = c.var(node.parents[0]), c.constant(cast("tuple[Data, Data]", node.saved)[1])
    return [f"{v} = {c.ref(_mse_forward)}({y}, {t})", f"{s} = ({y}, {t})"]


MSE = define("array_mse", _mse_forward, vjp=_mse_vjp, jvp=_mse_jvp, emit=_mse_emit, builtin=True)


def _same_shape(got: tuple[int, ...], want: tuple[int, ...], where: str) -> None:
    if not got or 0 in got:
        raise ValueError(f"{where}: empty batch (no examples): predictions of shape {got}")
    if got != want:
        raise ValueError(f"{where}: predictions of shape {got} vs targets of shape {want}")


def _values_shape(x: object) -> tuple[int, ...]:
    shape: list[int] = []
    while isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        shape.append(len(x))
        if not x:
            break
        x = x[0]
    return tuple(shape)


def _flat_values(x: object) -> list[Scalar]:
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return [v for item in x for v in _flat_values(item)]
    return [cast(Scalar, x)]


def mse(Y: Array | Sequence[Any], T: Array | Sequence[Any], *, where: str = "mse") -> Scalar:
    """Mean of ``(y - t) ** 2`` over all entries of equal-shaped arrays: a Value, or a float.

    ``where`` names the caller in error messages.
    """
    targets = constant_data(T, where, "targets")
    if not isinstance(targets, tuple):
        raise ValueError(f"{where}: targets must be an array of floats, not a number")
    try:
        data = Y.primal if isinstance(Y, Array) else float_array(Y, f"{where}: predictions")
    except HoldsTracked:
        _same_shape(_values_shape(Y), shape_of(targets), where)
        differences = [y - t for y, t in zip(_flat_values(Y), flatten(targets), strict=True)]
        squares = [d * d for d in differences]
        return vsum(squares) / float(len(squares))
    _same_shape(shape_of(data), shape_of(targets), where)
    value = _mse_forward(cast(Data, data), targets)
    if not isinstance(Y, Array) or Y.tape is None:
        return value
    return Y.tape.record(MSE, (Y.position,), value, (data, targets), Value)
