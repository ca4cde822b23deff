"""Attention on Arrays: ``scaled_dot_product_attention``, one node with its vjp and jvp rules.

``softmax(q @ k^T * scale) @ v`` written with ``@``, ``softmax`` and a mask is five or
six nodes, and a causal mask still computes every score it then throws away. This op
is the fused form PyTorch (``torch.nn.functional.scaled_dot_product_attention``) and
JAX (``jax.nn.dot_product_attention``) provide: one node, whose kernel
(:mod:`tape.kernels.attention`) computes only the scores a query may see.

Its node keeps the probabilities its forward computed, for its vjp and jvp rules. The
vjp rule runs on floats, so reverse mode over it is first order; forward mode works
through its jvp rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast, overload

from tape.array import Array, Data, Shape, apply_array_op, array_op, flatten, nest, shape_of
from tape.kernels import attention as kernels
from tape.ops.shape import check_operands, operand_shape, plain_result

__all__ = ["scaled_dot_product_attention"]


def _flat(q: Data, k: Data, v: Data) -> tuple[list[float], Shape, list[float], Shape, list[float], Shape]:
    """The kernels' operands: each array's flat data and its shape."""
    return flatten(q), shape_of(q), flatten(k), shape_of(k), flatten(v), shape_of(v)


def _forward(q: Data, k: Data, v: Data, *, scale: float, causal: bool) -> tuple[Data, kernels.Probabilities]:
    out, shape, probabilities = kernels.attention(*_flat(q, k, v), scale, causal)
    return cast(Data, nest(out, shape)), probabilities


def _vjp(
    g: Any,
    value: object,
    q: Data,
    k: Data,
    v: Data,
    *,
    scale: float,
    causal: bool,
    residual: kernels.Probabilities,
) -> tuple[object, ...]:
    return kernels.attention_vjp(
        flatten(g),
        *_flat(q, k, v),
        scale,
        causal,
        residual,
    )


def _jvp(
    value: Data,
    args: tuple[Data, Data, Data],
    tangents: tuple[Any, Any, Any],
    *,
    scale: float,
    causal: bool,
    residual: kernels.Probabilities,
) -> Data:
    (q, k, v), (dq, dk, dv) = args, tangents
    out = kernels.attention_jvp(
        *_flat(q, k, v),
        scale,
        causal,
        None if dq is None else flatten(dq),
        None if dk is None else flatten(dk),
        None if dv is None else flatten(dv),
        residual,
    )
    return cast(Data, nest(out, shape_of(value)))


ATTENTION = array_op("scaled_dot_product_attention", _forward, _vjp, _jvp, residual=True)
"""Its node keeps the probabilities its forward computed: the vjp and jvp rules reuse them."""


@overload
def scaled_dot_product_attention(
    query: Array,
    key: Array | Sequence[Any],
    value: Array | Sequence[Any],
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> Array: ...
@overload
def scaled_dot_product_attention(
    query: Sequence[Any],
    key: Array,
    value: Array | Sequence[Any],
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> Array: ...
@overload
def scaled_dot_product_attention(
    query: Sequence[Any],
    key: Sequence[Any],
    value: Array,
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> Array: ...
@overload
def scaled_dot_product_attention(
    query: Sequence[Any],
    key: Sequence[Any],
    value: Sequence[Any],
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> Data: ...
def scaled_dot_product_attention(
    query: Array | Sequence[Any],
    key: Array | Sequence[Any],
    value: Array | Sequence[Any],
    *,
    is_causal: bool = False,
    scale: float | None = None,
) -> Any:  # an Array, or data when no operand is an Array
    """``softmax(query @ key^T * scale) @ value`` over the last two axes, as PyTorch's.

    ``query`` is ``(..., L, E)``, ``key`` ``(..., S, E)`` and ``value`` ``(..., S, Ev)``
    with the same leading axes; the result is ``(..., L, Ev)``. ``scale`` defaults to
    ``1 / sqrt(E)``; with ``is_causal`` query ``t`` attends to keys ``0..t`` only.
    Shapes that do not fit are a ValueError naming all three.

    >>> scaled_dot_product_attention([[1.0], [0.0]], [[1.0], [0.0]], [[1.0], [3.0]], is_causal=True)
    ((1.0,), (2.0,))
    """
    if not isinstance(is_causal, bool):
        raise TypeError(f"scaled_dot_product_attention: is_causal must be a bool, got {is_causal!r}")
    (q, k, v), plain = check_operands("scaled_dot_product_attention", query, key, value)
    lay = kernels.layout(
        operand_shape(q), operand_shape(k), operand_shape(v), op="scaled_dot_product_attention"
    )
    if scale is None:
        factor = 1.0 / math.sqrt(lay.width) if lay.width else 1.0
    elif isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale):
        factor = float(scale)
    else:
        raise TypeError(f"scaled_dot_product_attention: scale must be a finite number, got {scale!r}")
    return plain_result(apply_array_op(ATTENTION, q, k, v, scale=factor, causal=is_causal), plain)
