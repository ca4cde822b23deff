"""Hypothesis strategies and helpers to property-test your own differentiable functions.

Needs the ``test`` extra (hypothesis). Typical use::

    from hypothesis import given
    from tape.testing import assert_gradients_match, parameter_trees, scalars

    @given(parameter_trees({"w": (3,), "b": ()}), scalars())
    def test_my_model(params, x):
        assert_gradients_match(my_loss, params, x)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

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


def arrays(shape: Shape, elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[object]:
    """A float (shape ``()``) or nested persistent vectors of the given shape."""
    if not shape:
        return elements if elements is not None else scalars()
    inner = arrays(shape[1:], elements)
    return st.lists(inner, min_size=shape[0], max_size=shape[0]).map(pvector)


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
