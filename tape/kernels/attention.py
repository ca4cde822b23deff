"""Scaled dot-product attention on flat data, forward, vjp and jvp, as one fused kernel.

``attention(q, k, v) = softmax(q @ k^T * scale) @ v`` for each matrix of a batch: ``q``
is ``(..., L, E)``, ``k`` ``(..., S, E)``, ``v`` ``(..., S, Ev)`` with the same leading
axes, and the output is ``(..., L, Ev)`` (``torch.nn.functional.scaled_dot_product_attention``).
With ``causal`` query ``t`` sees keys ``s <= t`` only (PyTorch's ``is_causal``: the
lower triangle, aligned top left), and the scores it may not see are never computed,
so a causal block costs about half of a masked one. Each query's scores are shifted by
their maximum before ``exp``, as :mod:`tape.kernels.softmax` does.
"""

from __future__ import annotations

from operator import add, mul
from typing import NamedTuple

from tape.kernels.shapes import Data, Shape, check_data, size
from tape.kernels.softmax import softmax_row

Rows = list[list[float]]


class Layout(NamedTuple):
    """The sizes of an attention call: ``batch`` matrices of ``L`` queries over ``S`` keys."""

    batch: int
    queries: int
    keys: int
    width: int
    """``E``, the length of a query and of a key."""
    value_width: int
    """``Ev``, the length of a value and of an output row."""


def layout(q_shape: Shape, k_shape: Shape, v_shape: Shape, *, op: str) -> Layout:
    """Check the shapes of ``q``, ``k`` and ``v`` and give their :class:`Layout`.

    >>> layout((2, 3, 4), (2, 5, 4), (2, 5, 6), op="attention")
    Layout(batch=2, queries=3, keys=5, width=4, value_width=6)
    """
    if min(len(q_shape), len(k_shape), len(v_shape)) < 2:
        raise ValueError(
            f"{op}: query, key and value need at least 2 axes (..., L, E), (..., S, E), (..., S, Ev); "
            f"got shapes {q_shape}, {k_shape} and {v_shape}"
        )
    lead = q_shape[:-2]
    if k_shape[:-2] != lead or v_shape[:-2] != lead:
        raise ValueError(
            f"{op}: query, key and value must share their leading axes; "
            f"got shapes {q_shape}, {k_shape} and {v_shape}"
        )
    if k_shape[-1] != q_shape[-1]:
        raise ValueError(
            f"{op}: query and key rows must have the same length; got shapes {q_shape} and {k_shape}"
        )
    if v_shape[-2] != k_shape[-2]:
        raise ValueError(f"{op}: key and value must have as many rows; got shapes {k_shape} and {v_shape}")
    if k_shape[-2] == 0 and q_shape[-2] > 0:
        raise ValueError(f"{op}: there are queries but no keys (key shape {k_shape})")
    return Layout(size(lead), q_shape[-2], k_shape[-2], q_shape[-1], v_shape[-1])


def _rows(data: Data, start: int, count: int, width: int) -> Rows:
    return [list(data[start + i * width : start + (i + 1) * width]) for i in range(count)]


def _seen(t: int, keys: int, causal: bool) -> int:
    """How many keys query ``t`` sees."""
    return min(t + 1, keys) if causal else keys


def _probabilities(q: Rows, k: Rows, scale: float, causal: bool) -> Rows:
    return [
        softmax_row([sum(map(mul, qt, ks)) * scale for ks in k[: _seen(t, len(k), causal)]])
        for t, qt in enumerate(q)
    ]


def _matrices(lay: Layout, q: Data, k: Data, v: Data) -> list[tuple[Rows, Rows, Rows]]:
    (batch, n_q, n_k, e, ev) = lay
    return [
        (_rows(q, b * n_q * e, n_q, e), _rows(k, b * n_k * e, n_k, e), _rows(v, b * n_k * ev, n_k, ev))
        for b in range(batch)
    ]


Probabilities = list[Rows]
"""Each matrix's attention probabilities: per query, the weights of the keys it sees."""


def attention(
    q: Data, q_shape: Shape, k: Data, k_shape: Shape, v: Data, v_shape: Shape, scale: float, causal: bool
) -> tuple[list[float], Shape, Probabilities]:
    """The attention output (row-major), its shape ``(..., L, Ev)``, and the probabilities.

    The probabilities are what the vjp and jvp need again (pass them back to skip
    recomputing them).

    >>> attention([1.0, 0.0], (2, 1), [1.0, 0.0], (2, 1), [1.0, 3.0], (2, 1), 1.0, True)[:2]
    ([1.0, 2.0], (2, 1))
    """
    lay = layout(q_shape, k_shape, v_shape, op="attention")
    for data, shape, name in ((q, q_shape, "query"), (k, k_shape, "key"), (v, v_shape, "value")):
        check_data(data, shape, op="attention", name=name)
    out: list[float] = []
    kept: Probabilities = []
    for qm, km, vm in _matrices(lay, q, k, v):
        v_columns = list(zip(*vm, strict=True))
        probabilities = _probabilities(qm, km, scale, causal)
        for p in probabilities:
            out.extend([sum(map(mul, p, column)) for column in v_columns])  # map stops at len(p)
        kept.append(probabilities)
    return out, (*q_shape[:-1], v_shape[-1]), kept


def _pad(rows: Rows, width: int) -> Rows:
    return [r + [0.0] * (width - len(r)) for r in rows]


def attention_vjp(
    grad: Data,
    q: Data,
    q_shape: Shape,
    k: Data,
    k_shape: Shape,
    v: Data,
    v_shape: Shape,
    scale: float,
    causal: bool,
    probabilities: Probabilities | None = None,
) -> tuple[list[float], list[float], list[float]]:
    """The gradients of :func:`attention` for ``q``, ``k`` and ``v`` (row-major each).

    ``probabilities`` are the forward's (recomputed from ``q`` and ``k`` when ``None``);
    per query ``t``, with ``p`` its probabilities and ``dp_s = grad_t . v_s``, the
    scores' gradient is ``p_s (dp_s - p . dp) * scale``.
    """
    lay = layout(q_shape, k_shape, v_shape, op="attention")
    check_data(grad, (*q_shape[:-1], v_shape[-1]), op="attention", name="grad")
    n_q, n_k, ev = lay.queries, lay.keys, lay.value_width
    if n_q == 0:  # no query reads the keys
        return [], [0.0] * len(k), [0.0] * len(v)
    dq: list[float] = []
    dk: list[float] = []
    dv: list[float] = []
    for b, (qm, km, vm) in enumerate(_matrices(lay, q, k, v)):
        p_rows = _probabilities(qm, km, scale, causal) if probabilities is None else probabilities[b]
        g_rows = _rows(grad, b * n_q * ev, n_q, ev)
        k_columns = list(zip(*km, strict=True))
        d_scores: Rows = []
        for p, g in zip(p_rows, g_rows, strict=True):
            dp = [sum(map(mul, g, vs)) for vs in vm[: len(p)]]
            inner = sum(map(mul, p, dp))
            ds = [pi * (di - inner) * scale for pi, di in zip(p, dp, strict=True)]
            dq.extend([sum(map(mul, ds, column)) for column in k_columns])  # map stops at len(ds)
            d_scores.append(ds)
        q_columns = list(zip(*qm, strict=True))
        g_columns = list(zip(*g_rows, strict=True))
        for ds_s, p_s in zip(
            zip(*_pad(d_scores, n_k), strict=True), zip(*_pad(p_rows, n_k), strict=True), strict=True
        ):
            dk.extend([sum(map(mul, ds_s, column)) for column in q_columns])
            dv.extend([sum(map(mul, p_s, column)) for column in g_columns])
    return dq, dk, dv


def attention_jvp(
    q: Data,
    q_shape: Shape,
    k: Data,
    k_shape: Shape,
    v: Data,
    v_shape: Shape,
    scale: float,
    causal: bool,
    dq: Data | None,
    dk: Data | None,
    dv: Data | None,
    probabilities: Probabilities | None = None,
) -> list[float]:
    """The tangent of :func:`attention` along ``(dq, dk, dv)`` (``None`` for a zero tangent).

    With ``ds_s = (dq_t . k_s + q_t . dk_s) * scale`` and ``dp = p (ds - p . ds)``,
    output row ``t`` moves by ``sum_s dp_s v_s + sum_s p_s dv_s``.
    """
    lay = layout(q_shape, k_shape, v_shape, op="attention")
    n_q, n_k, e, ev = lay.queries, lay.keys, lay.width, lay.value_width
    out: list[float] = []
    for b, (qm, km, vm) in enumerate(_matrices(lay, q, k, v)):
        p_rows = _probabilities(qm, km, scale, causal) if probabilities is None else probabilities[b]
        dqm = _rows(dq, b * n_q * e, n_q, e) if dq is not None else None
        dkm = _rows(dk, b * n_k * e, n_k, e) if dk is not None else None
        v_columns = list(zip(*vm, strict=True))
        dv_columns = list(zip(*_rows(dv, b * n_k * ev, n_k, ev), strict=True)) if dv is not None else None
        for t, p in enumerate(p_rows):
            row = [0.0] * ev
            if dqm is not None or dkm is not None:
                ds = [0.0] * len(p)
                if dqm is not None:
                    ds = [sum(map(mul, dqm[t], ks)) for ks in km[: len(p)]]
                if dkm is not None:
                    ds = list(map(add, ds, [sum(map(mul, qm[t], dks)) for dks in dkm[: len(p)]]))
                inner = sum(map(mul, p, ds))
                dp = [pi * (di - inner) * scale for pi, di in zip(p, ds, strict=True)]
                row = [sum(map(mul, dp, column)) for column in v_columns]
            if dv_columns is not None:
                row = list(map(add, row, [sum(map(mul, p, column)) for column in dv_columns]))
            out.extend(row)
    return out
