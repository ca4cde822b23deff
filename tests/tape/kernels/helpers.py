"""Strategies and checks shared by the kernel tests: small shapes, broadcastable pairs, data, differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from tape.kernels.shapes import Shape, size


def shapes(
    min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 3
) -> st.SearchStrategy[Shape]:
    """Small shapes, size-1 axes included."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def broadcastable_pairs(draw: st.DrawFn, max_dims: int = 4) -> tuple[Shape, Shape]:
    """Two shapes that broadcast: each drops some leading axes of a common shape and sets some axes to 1."""
    common = draw(shapes(0, max_dims))

    def one() -> Shape:
        drop = draw(st.integers(0, len(common)))
        return tuple(1 if draw(st.booleans()) else n for n in common[drop:])

    return one(), one()


def data(seed: int, shape: Shape) -> list[float]:
    """Standard-normal floats for ``shape`` from ``seed`` (repeatable)."""
    return [float(v) for v in np.random.default_rng(seed).standard_normal(size(shape))]


seeds = st.integers(0, 2**32 - 1)


def arr(values: Sequence[float], shape: Shape) -> np.ndarray:
    """A float64 numpy array of the same floats."""
    return np.array(values, dtype=np.float64).reshape(shape)


def close(got: Sequence[float], want: np.ndarray | Sequence[float], tol: float = 1e-12) -> None:
    """Assert entrywise agreement to ``tol`` relative to the largest magnitude (at least 1)."""
    w = np.asarray(want, dtype=np.float64).ravel()
    g = np.asarray(list(got), dtype=np.float64)
    assert g.shape == w.shape, (g.shape, w.shape)
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    assert np.allclose(g, w, rtol=0.0, atol=tol * scale, equal_nan=True), (g, w)


def numeric_vjp(
    f: Callable[[list[float]], Sequence[float]], x: Sequence[float], g: Sequence[float]
) -> list[float]:
    """``g . df/dx`` by central differences (step 1e-6)."""
    h = 1e-6
    out = []
    for i in range(len(x)):
        up = list(x)
        down = list(x)
        up[i] += h
        down[i] -= h
        out.append(sum(gi * (a - b) for gi, a, b in zip(g, f(up), f(down), strict=True)) / (2 * h))
    return out
