"""Hypothesis strategies and helpers to property-test your own differentiable functions.

Needs the ``test`` extra (hypothesis). Typical use::

    from hypothesis import given
    from tape.testing import assert_gradients_match, parameter_trees, scalars

    @given(parameter_trees({"w": (3,), "b": ()}), scalars())
    def test_my_model(params, x):
        assert_gradients_match(my_loss, params, x)

For array code, :func:`array_shapes`, :func:`float_arrays`, :func:`broadcastable_shapes`
and :func:`mutually_broadcastable_shapes` draw shapes and nested float data (without
NumPy)::

    @given(float_arrays(array_shapes(1, 3)))
    def test_my_layer(x):
        assert_gradients_match(my_layer_loss, x, arrays=True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

from tape.forward import jvp
from tape.gradient_check import GradientReport, check_gradients
from tape.higher_order import tree_dot, vjp

Shape = tuple[int, ...]


def _away_from(points: Sequence[float], margin: float) -> Callable[[float], bool]:
    return lambda x: all(abs(x - p) > margin for p in points)


def scalars(
    min_value: float = -3.0,
    max_value: float = 3.0,
    *,
    kinks: Sequence[float] = (0.0,),
    margin: float = 1e-3,
) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` at least ``margin`` away from ``kinks``.

    Central differences are wrong across a kink (relu, abs at 0) or a domain edge,
    so keep drawn points clear of them.
    """
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False).filter(
        _away_from(kinks, margin)
    )


def positive_scalars(min_value: float = 0.1, max_value: float = 5.0) -> st.SearchStrategy[float]:
    """Floats in ``[min_value, max_value]``: inside the domain of ``log`` and ``sqrt``."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)


def vectors(n: int, elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[PVector[float]]:
    """Persistent vectors of ``n`` floats (default: :func:`scalars`)."""
    return st.lists(elements if elements is not None else scalars(), min_size=n, max_size=n).map(pvector)


def _nested(
    shape: Shape, elements: st.SearchStrategy[float], make: Callable[[list[Any]], Any]
) -> st.SearchStrategy[Any]:
    """Floats drawn from ``elements``, nested to ``shape`` in containers made by ``make``."""
    if not shape:
        return elements
    inner = _nested(shape[1:], elements, make)
    return st.lists(inner, min_size=shape[0], max_size=shape[0]).map(make)


def arrays(shape: Shape, elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[object]:
    """A float (shape ``()``) or nested persistent vectors of the given shape."""
    return _nested(shape, elements if elements is not None else scalars(), pvector)


def _check_dims(where: str, min_dims: int, max_dims: int, min_side: int, max_side: int) -> None:
    if not 0 <= min_dims <= max_dims:
        raise ValueError(
            f"{where}: need 0 <= min_dims <= max_dims, not min_dims={min_dims}, max_dims={max_dims}"
        )
    if not 1 <= min_side <= max_side:
        raise ValueError(
            f"{where}: need 1 <= min_side <= max_side, not min_side={min_side}, max_side={max_side}"
        )


def array_shapes(
    min_dims: int = 0, max_dims: int = 4, *, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Shapes of ``min_dims`` to ``max_dims`` axes, each of ``min_side`` to ``max_side`` entries.

    ``()`` (a 0-d array, a float) is drawn when ``min_dims`` is 0. Keep the sides
    small: the pure-Python ops are quadratic or worse in them.
    """
    _check_dims("array_shapes", min_dims, max_dims, min_side, max_side)
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def float_arrays(
    shape: Shape | st.SearchStrategy[Shape],
    elements: st.SearchStrategy[float] | None = None,
    *,
    lists: bool = False,
) -> st.SearchStrategy[Any]:
    """Nested tuples of floats of ``shape`` (a float for ``()``), as :class:`tape.Array` data.

    ``shape`` may be a strategy (:func:`array_shapes`) to draw the shape too; ``elements``
    defaults to :func:`scalars`; ``lists=True`` gives nested lists, as a user's data would be.
    """
    floats = elements if elements is not None else scalars()
    make: Callable[[list[Any]], Any] = list if lists else tuple
    if isinstance(shape, st.SearchStrategy):
        return shape.flatmap(lambda drawn: _nested(drawn, floats, make))
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(f"float_arrays: shape must be a tuple of positive ints, not {shape!r}")
    return _nested(shape, floats, make)


@st.composite
def _broadcastable(draw: st.DrawFn, shape: Shape, min_dims: int, max_dims: int, max_side: int) -> Shape:
    ndim = draw(st.integers(min_dims, max_dims))
    sides: list[int] = []
    for k in range(1, ndim + 1):  # from the last axis
        if k <= len(shape) and shape[-k] != 1:
            sides.append(draw(st.sampled_from((shape[-k], 1))))
        else:
            sides.append(draw(st.integers(1, max_side)))
    return tuple(reversed(sides))


def broadcastable_shapes(
    shape: Shape, *, min_dims: int = 0, max_dims: int | None = None, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Shapes that broadcast with ``shape`` under NumPy's rules (of ``min_dims`` to ``max_dims`` axes).

    Each axis aligned from the right is ``shape``'s own side or 1 (any side where
    ``shape`` has 1); axes beyond ``shape``'s are of 1 to ``max_side``. ``max_dims``
    defaults to one more axis than ``shape`` has.
    """
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(f"broadcastable_shapes: shape must be a tuple of positive ints, not {shape!r}")
    top = len(shape) + 1 if max_dims is None else max_dims
    _check_dims("broadcastable_shapes", min_dims, top, 1, max_side)
    return _broadcastable(shape, min_dims, top, max_side)


@st.composite
def _mutual(draw: st.DrawFn, n: int, min_dims: int, max_dims: int, max_side: int) -> tuple[Shape, ...]:
    result = draw(array_shapes(min_dims, max_dims, max_side=max_side))
    shapes: list[Shape] = []
    for _ in range(n):
        ndim = draw(st.integers(0, len(result)))
        tail = result[len(result) - ndim :]
        shapes.append(tuple(draw(st.sampled_from((side, 1))) if side != 1 else 1 for side in tail))
    return tuple(shapes)


def mutually_broadcastable_shapes(
    n: int, *, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """Tuples of ``n`` shapes that broadcast together under NumPy's rules.

    A result shape of ``min_dims`` to ``max_dims`` axes is drawn; each shape takes
    some of its trailing axes, any of them replaced by 1. Their broadcast is that
    result shape or a smaller one (where every shape took 1 or left the axis out).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"mutually_broadcastable_shapes: n must be a positive int, not {n!r}")
    _check_dims("mutually_broadcastable_shapes", min_dims, max_dims, 1, max_side)
    return _mutual(n, min_dims, max_dims, max_side)


def parameter_trees(
    shapes: Mapping[str, Shape], elements: st.SearchStrategy[float] | None = None
) -> st.SearchStrategy[PMap[str, object]]:
    """Maps of named parameters: ``{"w": (2, 3), "b": (2,)}`` draws a 2x3 matrix and a vector."""
    names = sorted(shapes)
    return st.tuples(*(arrays(shapes[name], elements) for name in names)).map(
        lambda drawn: pmap(dict(zip(names, drawn, strict=True)))
    )


def assert_gradients_match(
    fun: Callable[..., object],
    *args: object,
    argnums: int | tuple[int, ...] = 0,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    arrays: bool = False,
) -> GradientReport:
    """Assert the tape's gradients of ``fun`` at ``args`` match central differences.

    Raises :class:`tape.GradientCheckError` (an ``AssertionError``) naming the worst leaf.
    """
    return check_gradients(fun, *args, argnums=argnums, eps=eps, atol=atol, rtol=rtol, arrays=arrays)


def assert_second_derivatives_match(
    fun: Callable[..., object],
    *args: object,
    argnums: int | tuple[int, ...] = 0,
    eps: float = 1e-5,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> GradientReport:
    """Assert every Hessian entry of ``fun`` matches central differences of its gradient.

    Raises :class:`tape.GradientCheckError` naming the worst entry (``"path_i, path_j"``).
    """
    return check_gradients(fun, *args, argnums=argnums, eps=eps, atol=atol, rtol=rtol, order=2)


def assert_jvp_matches_vjp(
    fun: Callable[..., object],
    primals: tuple[object, ...],
    tangents: tuple[object, ...],
    cotangent: object,
    *,
    rel_tol: float = 1e-9,
    abs_tol: float = 1e-12,
    arrays: bool = False,
) -> None:
    """Assert forward and reverse mode agree: ``<u, J v> == <J^T u, v>``.

    ``v`` is ``tangents`` (one tree per primal), ``u`` the ``cotangent`` (shaped like
    ``fun``'s output). Both sides are computed by the library: ``jvp`` and ``vjp``.
    """

    _, forward = jvp(fun, primals, tangents, arrays=arrays)
    _, pullback = vjp(fun, *primals)
    backward = pullback(cotangent)
    left = float(tree_dot(cotangent, forward))
    right = math.fsum(float(tree_dot(g, t)) for g, t in zip(backward, tangents, strict=True))
    if not math.isclose(left, right, rel_tol=rel_tol, abs_tol=abs_tol):
        raise AssertionError(f"<u, J v> = {left!r} but <J^T u, v> = {right!r}")


def directions(n: int) -> st.SearchStrategy[tuple[float, ...]]:
    """Tangent or cotangent vectors of ``n`` floats in [-1, 1], not all zero."""
    return st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=n, max_size=n).filter(any).map(tuple)
