"""Normalisers of N-d Arrays: ``softmax``, ``log_softmax`` and ``logsumexp`` over one axis,
and ``layer_norm`` over the last axis.

They run on the kernels of :mod:`tape.kernels.softmax`, which shift each group by its
maximum, so logits of ``+-1000`` give exact results. Forward mode goes through their jvp
rules; their vjp rules run on floats, so reverse mode over them is first order: inside
a nested tape (``grad`` of ``grad``, ``hvp``), an op given the enclosing tape's Values
raises a TypeError.
"""

from __future__ import annotations

import math
from itertools import chain
from operator import add, mul, sub
from typing import Any

from tape.array import Data, apply_array_op, array_op, flatten, nest, shape_of
from tape.kernels.broadcast import broadcast_to
from tape.kernels.reduce import reduced_shape, sum_axes
from tape.kernels.softmax import layer_norm as layer_norm_kernel
from tape.kernels.softmax import layer_norm_vjp, log_softmax_vjp, logsumexp_vjp, softmax_vjp
from tape.kernels.softmax import log_softmax as log_softmax_kernel
from tape.kernels.softmax import logsumexp as logsumexp_kernel
from tape.kernels.softmax import softmax as softmax_kernel
from tape.validate import number

__all__ = ["layer_norm", "log_softmax", "logsumexp", "softmax"]


def _check_axis(axis: object, op: str) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return axis


# --- softmax -------------------------------------------------------------------------------------


def _softmax_forward(x: Data, *, axis: int) -> Any:
    shape = shape_of(x)
    return nest(softmax_kernel(flatten(x), shape, axis), shape)


def _softmax_vjp(g: Any, value: Data, x: Data, *, axis: int) -> tuple[list[float]]:
    return (softmax_vjp(flatten(g), flatten(value), shape_of(x), axis),)


def _softmax_jvp(value: Data, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: int) -> Any:
    # d softmax = y * (t - sum(y * t)) along the axis: the Jacobian diag(y) - y y^T is
    # symmetric, so the tangent is the vjp formula applied to t.
    shape = shape_of(value)
    return nest(softmax_vjp(flatten(tangents[0]), flatten(value), shape, axis), shape)


SOFTMAX = array_op("array_softmax", _softmax_forward, _softmax_vjp, _softmax_jvp)


def softmax(x: object, axis: int = -1) -> Any:  # an Array, or nested tuples for nested floats
    """``exp(x) / sum(exp(x))`` along ``axis`` (as ``torch.softmax``), max-shifted.

    An axis out of range is a ValueError naming the axis and the shape.
    """
    return apply_array_op(SOFTMAX, x, axis=_check_axis(axis, "softmax"))


# --- log_softmax ---------------------------------------------------------------------------------


def _log_softmax_forward(x: Data, *, axis: int) -> Any:
    shape = shape_of(x)
    return nest(log_softmax_kernel(flatten(x), shape, axis), shape)


def _log_softmax_vjp(g: Any, value: Data, x: Data, *, axis: int) -> tuple[list[float]]:
    return (log_softmax_vjp(flatten(g), flatten(value), shape_of(x), axis),)


def _log_softmax_jvp(value: Data, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: int) -> Any:
    # d log_softmax = t - sum(softmax * t) along the axis, softmax = exp(value).
    shape = shape_of(value)
    t = flatten(tangents[0])
    weighted = list(map(mul, map(math.exp, flatten(value)), t))
    _, kept = reduced_shape(shape, axis, keepdims=True, op="log_softmax")
    totals, _ = sum_axes(weighted, shape, axis, keepdims=True)
    return nest(list(map(sub, t, broadcast_to(totals, kept, shape, op="log_softmax"))), shape)


LOG_SOFTMAX = array_op("array_log_softmax", _log_softmax_forward, _log_softmax_vjp, _log_softmax_jvp)


def log_softmax(x: object, axis: int = -1) -> Any:  # an Array, or nested tuples for nested floats
    """``x - logsumexp(x)`` along ``axis`` (as ``torch.log_softmax``), exact for ``+-1000`` logits."""
    return apply_array_op(LOG_SOFTMAX, x, axis=_check_axis(axis, "log_softmax"))


# --- logsumexp -----------------------------------------------------------------------------------


def _logsumexp_forward(x: Data, *, axis: int, keepdims: bool) -> Any:
    out, out_shape = logsumexp_kernel(flatten(x), shape_of(x), axis, keepdims=keepdims)
    return nest(out, out_shape)


def _logsumexp_vjp(g: Any, value: object, x: Data, *, axis: int, keepdims: bool) -> tuple[list[float]]:
    return (logsumexp_vjp(flatten(g), flatten(x), shape_of(x), axis, keepdims=keepdims),)


def _logsumexp_jvp(
    value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: int, keepdims: bool
) -> Any:
    # d logsumexp = sum(softmax(x) * t) along the axis.
    (x,), (t,) = args, tangents
    shape = shape_of(x)
    weighted = list(map(mul, softmax_kernel(flatten(x), shape, axis), flatten(t)))
    out, out_shape = sum_axes(weighted, shape, axis, keepdims=keepdims)
    return nest(out, out_shape)


LOGSUMEXP = array_op("array_logsumexp", _logsumexp_forward, _logsumexp_vjp, _logsumexp_jvp)


def logsumexp(x: object, axis: int = -1, keepdims: bool = False) -> Any:  # an Array, Value or data
    """``log(sum(exp(x)))`` along ``axis``, max-shifted (exact for ``+-1000``).

    Reducing a vector gives a scalar (a Value when tracked).
    """
    if not isinstance(keepdims, bool):
        raise TypeError(f"logsumexp: keepdims must be a bool, got {keepdims!r}")
    return apply_array_op(LOGSUMEXP, x, axis=_check_axis(axis, "logsumexp"), keepdims=keepdims)


# --- layer_norm ----------------------------------------------------------------------------------


def _check_affine(x: Data, weight: Data | None, bias: Data | None) -> None:
    shape = shape_of(x)
    if not shape:
        raise ValueError("layer_norm: x is 0-d (shape ()); it normalises over the last axis")
    if not shape[-1]:
        raise ValueError(f"layer_norm: the last axis of x's shape {shape} is empty")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and shape_of(p) != shape[-1:]:
            raise ValueError(
                f"layer_norm: {name} has shape {shape_of(p)} but x of shape {shape} needs {shape[-1:]}"
            )


def _layer_norm_forward(x: Data, weight: Data | None, bias: Data | None, *, eps: float) -> Any:
    _check_affine(x, weight, bias)
    shape = shape_of(x)
    return nest(layer_norm_kernel(flatten(x), shape, weight, bias, eps), shape)


def _layer_norm_vjp(
    g: Any, value: Data, x: Data, weight: Data | None, bias: Data | None, *, eps: float
) -> tuple[list[float], list[float] | None, list[float] | None]:
    return layer_norm_vjp(flatten(g), flatten(x), shape_of(x), weight, bias, eps)


def _layer_norm_jvp(value: Data, args: tuple[Any, ...], tangents: tuple[Any, ...], *, eps: float) -> Any:
    # With xhat = (x - mean) * r, r = 1 / sqrt(var + eps), over each row of the last axis:
    # d xhat = r * (t - mean(t) - xhat * mean(xhat * t)), a symmetric map of t (so the vjp
    # formula without weight gives it), and d out = d xhat * weight + xhat * d weight + d bias.
    (x, weight, _), (dx, dweight, dbias) = args, tangents
    shape = shape_of(x)
    rows = len(flatten(x)) // shape[-1]
    out = [0.0] * (rows * shape[-1])
    if dx is not None:
        dxhat, _, _ = layer_norm_vjp(flatten(dx), flatten(x), shape, None, None, eps)
        out = dxhat if weight is None else list(map(mul, dxhat, list(weight) * rows))
    if dweight is not None:
        xhat = layer_norm_kernel(flatten(x), shape, None, None, eps)
        out = list(map(add, out, map(mul, xhat, flatten(dweight) * rows)))
    if dbias is not None:
        out = list(map(add, out, chain.from_iterable([flatten(dbias)] * rows)))
    return nest(out, shape)


LAYER_NORM = array_op("array_layer_norm", _layer_norm_forward, _layer_norm_vjp, _layer_norm_jvp)


def layer_norm(x: object, weight: object = None, bias: object = None, eps: float = 1e-5) -> Any:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis, with the biased
    variance (as ``torch.nn.functional.layer_norm`` over ``x.shape[-1:]``).

    ``weight`` and ``bias`` are vectors as long as the last axis, or ``None``; ``eps``
    is a positive float. Another shape is a ValueError naming both shapes.
    """
    eps = number(eps, "layer_norm's eps", expected="a positive float")
    if not eps > 0.0 or not math.isfinite(eps):
        raise ValueError(f"layer_norm: eps must be a positive finite float, got {eps!r}")
    return apply_array_op(LAYER_NORM, x, weight, bias, eps=eps)
