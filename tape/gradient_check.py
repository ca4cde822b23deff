"""Numerical gradients by central differences, and a checker comparing them with the tape's.

>>> def f(w, x):
...     return (w[0] * x + w[1]) ** 2
>>> report = check_gradients(f, (1.5, -0.5), 2.0)
>>> report.max_abs_error < 1e-6
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, Literal, TypeVar, cast, overload

from tape.array import asarray
from tape.errors import GradientCheckError
from tape.gradient_tape import is_float_array
from tape.higher_order import hessian
from tape.transforms import grad, normalize_argnums
from tape.tree import named_leaves, tree_flatten, tree_unflatten
from tape.value import Scalar, Value

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


def _as_float(out: object) -> float:
    if isinstance(out, Value):
        return out.data
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return float(out)
    raise TypeError(f"the function must return a scalar, not {type(out).__name__}")


def _call_with(fun: Callable[..., object], args: tuple[object, ...], n: int, arg: object) -> float:
    new_args = list(args)
    new_args[n] = arg
    return _as_float(fun(*new_args))


@overload
def numerical_grad(
    fun: Callable[[A], Scalar], x: A, /, *, argnums: Literal[0] = 0, eps: float = 1e-6
) -> A: ...
@overload
def numerical_grad(
    fun: Callable[[A, B], Scalar], x: A, y: B, /, *, argnums: Literal[0] = 0, eps: float = 1e-6
) -> A: ...
@overload
def numerical_grad(
    fun: Callable[[A, B], Scalar], x: A, y: B, /, *, argnums: Literal[1], eps: float = 1e-6
) -> B: ...
@overload
def numerical_grad(
    fun: Callable[[A, B], Scalar], x: A, y: B, /, *, argnums: tuple[Literal[0], Literal[1]], eps: float = 1e-6
) -> tuple[A, B]: ...
@overload
def numerical_grad(
    fun: Callable[[A, B, C], Scalar], x: A, y: B, z: C, /, *, argnums: Literal[0] = 0, eps: float = 1e-6
) -> A: ...
@overload
def numerical_grad(
    fun: Callable[[A, B, C], Scalar], x: A, y: B, z: C, /, *, argnums: Literal[1], eps: float = 1e-6
) -> B: ...
@overload
def numerical_grad(
    fun: Callable[[A, B, C], Scalar],
    x: A,
    y: B,
    z: C,
    /,
    *,
    argnums: tuple[Literal[0], Literal[1]],
    eps: float = 1e-6,
) -> tuple[A, B]: ...
@overload
def numerical_grad(
    fun: Callable[[A, B, C], Scalar],
    x: A,
    y: B,
    z: C,
    /,
    *,
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    eps: float = 1e-6,
) -> tuple[A, B, C]: ...
@overload
def numerical_grad(
    fun: Callable[Concatenate[A, B, C, ...], Scalar],
    x: A,
    y: B,
    z: C,
    w: object,
    /,
    *args: object,
    argnums: Literal[0] = 0,
    eps: float = 1e-6,
) -> A: ...
@overload
def numerical_grad(
    fun: Callable[Concatenate[A, B, C, ...], Scalar],
    x: A,
    y: B,
    z: C,
    w: object,
    /,
    *args: object,
    argnums: Literal[1],
    eps: float = 1e-6,
) -> B: ...
@overload
def numerical_grad(
    fun: Callable[Concatenate[A, B, C, ...], Scalar],
    x: A,
    y: B,
    z: C,
    w: object,
    /,
    *args: object,
    argnums: tuple[Literal[0], Literal[1]],
    eps: float = 1e-6,
) -> tuple[A, B]: ...
@overload
def numerical_grad(
    fun: Callable[Concatenate[A, B, C, ...], Scalar],
    x: A,
    y: B,
    z: C,
    w: object,
    /,
    *args: object,
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    eps: float = 1e-6,
) -> tuple[A, B, C]: ...
@overload
def numerical_grad(
    fun: Callable[..., object], *args: object, argnums: int | tuple[int, ...], eps: float = 1e-6
) -> object: ...
def numerical_grad(
    fun: Callable[..., object], *args: object, argnums: int | tuple[int, ...] = 0, eps: float = 1e-6
) -> object:
    """Central-difference gradient ``(f(x + eps) - f(x - eps)) / (2 eps)`` leaf by leaf.

    Same structure as :func:`tape.grad` gives: the tree of the selected argument,
    or a tuple of trees for a tuple ``argnums``. Typed the same way: the gradient has
    the selected argument's type (``argnums`` 0 or 1, or ``(0, 1)``, ``(0, 1, 2)`` giving
    a tuple of those types). With up to three arguments every argument is checked
    against ``fun``'s parameters; with more, only the first three are. Other
    ``argnums`` give ``object``.

    >>> dx, dy = numerical_grad(lambda x, y: x * y, 2.0, 3.0, argnums=(0, 1))
    >>> round(dx, 6), round(dy, 6)
    (3.0, 2.0)
    """
    if not eps > 0.0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    nums = normalize_argnums(argnums, len(args))
    results: list[object] = []
    for n in nums:
        leaves, treedef = tree_flatten(args[n])
        slopes: list[float] = []
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, float):
                raise TypeError(f"numerical_grad needs float leaves, found {type(leaf).__name__} at leaf {i}")
            moved = list(leaves)
            moved[i] = leaf + eps
            above = _call_with(fun, args, n, tree_unflatten(treedef, moved))
            moved[i] = leaf - eps
            below = _call_with(fun, args, n, tree_unflatten(treedef, moved))
            slopes.append((above - below) / (2.0 * eps))
        results.append(tree_unflatten(treedef, slopes))
    return results[0] if isinstance(argnums, int) else tuple(results)


@dataclass(frozen=True)
class GradientReport:
    """How far analytic gradients are from numerical ones.

    ``worst_path`` names the leaf with the largest violation of the tolerance
    (prefixed by ``argN.`` when several arguments are checked).
    """

    max_abs_error: float
    max_rel_error: float
    worst_path: str
    analytic: tuple[tuple[str, float], ...]
    numerical: tuple[tuple[str, float], ...]


def _named(tree: object, nums: tuple[int, ...], single: bool) -> list[tuple[str, float]]:
    if single:
        return [(path, float(v)) for path, v in named_leaves(tree)]
    out: list[tuple[str, float]] = []
    for n, sub in zip(nums, tree, strict=True):  # type: ignore[call-overload]  # a tuple per argnum
        out += [(f"arg{n}.{path}" if path else f"arg{n}", float(v)) for path, v in named_leaves(sub)]
    return out


def check_gradients(
    fun: Callable[..., object],
    *args: object,
    argnums: int | tuple[int, ...] = 0,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    arrays: bool = False,
    order: int = 1,
) -> GradientReport:
    """Compare :func:`tape.grad` with :func:`numerical_grad`; raise if any leaf is off.

    ``arrays=True`` differentiates with nested float sequences watched as Array nodes
    (see :func:`tape.grad`), checking the array ops' rules; the central differences then
    give ``fun`` those sequences as untracked Arrays, so its operators and indexing work. ``order=2`` checks
    second derivatives instead: every Hessian entry (:func:`tape.hessian`, reverse
    over reverse) against central differences of the gradient; entries are named
    ``"path_i, path_j"``.

    A leaf passes when ``|analytic - numerical| <= atol + rtol * |numerical|``.
    Raises :class:`GradientCheckError` naming the worst leaf otherwise.
    """
    nums = normalize_argnums(argnums, len(args))
    single = isinstance(argnums, int)
    if order == 2:
        analytic, numerical = _second_derivatives(fun, args, nums, single, eps)
    elif order == 1:
        analytic = _named(grad(fun, argnums, arrays=arrays)(*args), nums, single)  # type: ignore[arg-type]  # fun is any callable of the arguments
        differenced = _with_arrays(fun, nums) if arrays else fun
        numerical = _named(numerical_grad(differenced, *args, argnums=argnums, eps=eps), nums, single)
    else:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    return _compare(analytic, numerical, atol, rtol, "gradient" if order == 1 else "second derivative")


def _with_arrays(fun: Callable[..., object], nums: tuple[int, ...]) -> Callable[..., object]:
    """``fun`` given, in the arguments ``nums``, each float array as an untracked Array, as
    ``grad(..., arrays=True)`` gives it each one as an Array."""

    def as_arrays(tree: object) -> object:
        leaves, treedef = tree_flatten(tree, is_float_array)
        arrays = [asarray(x) if is_float_array(x) else x for x in leaves]
        return tree_unflatten(treedef, cast("list[float]", arrays))  # float and Array leaves

    def called(*args: object) -> object:
        return fun(*(as_arrays(x) if n in nums else x for n, x in enumerate(args)))

    return called


def _second_derivatives(
    fun: Callable[..., object], args: tuple[object, ...], nums: tuple[int, ...], single: bool, eps: float
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Hessian entries of ``fun`` over the selected arguments' leaves, analytic and numerical."""

    if not eps > 0.0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    flats = [tree_flatten(args[n]) for n in nums]
    sizes = [len(leaves) for leaves, _ in flats]
    start = tuple(leaf for leaves, _ in flats for leaf in leaves)
    named = _named(tuple(args[n] for n in nums) if not single else args[nums[0]], nums, single)
    names = [path or f"arg{nums[0]}" for path, _ in named]

    def flat_fun(z: tuple[float, ...]) -> object:
        new_args = list(args)
        offset = 0
        for n, (_, treedef), size in zip(nums, flats, sizes, strict=True):
            new_args[n] = tree_unflatten(treedef, z[offset : offset + size])
            offset += size
        return fun(*new_args)

    scalar_fun = cast("Callable[[tuple[float, ...]], Scalar]", flat_fun)  # fun returns a scalar
    rows = hessian(scalar_fun)(start)
    gradient = grad(scalar_fun)
    columns = []
    for j in range(len(start)):
        above = list(start)
        above[j] += eps
        below = list(start)
        below[j] -= eps
        up = gradient(tuple(above))
        down = gradient(tuple(below))
        columns.append([(u - d) / (2.0 * eps) for u, d in zip(up, down, strict=True)])
    analytic = [
        (f"{names[i]}, {names[j]}", float(rows[i][j])) for i in range(len(start)) for j in range(len(start))
    ]
    numerical = [
        (f"{names[i]}, {names[j]}", columns[j][i]) for i in range(len(start)) for j in range(len(start))
    ]
    return analytic, numerical


def _compare(
    analytic: list[tuple[str, float]], numerical: list[tuple[str, float]], atol: float, rtol: float, what: str
) -> GradientReport:
    max_abs = max_rel = 0.0
    worst_path, worst_excess = "", -float("inf")
    for (path, a), (_, n) in zip(analytic, numerical, strict=True):
        error = abs(a - n)
        if error != error:  # nan: the worst possible, and the first one found is named
            if worst_excess != math.inf:
                worst_path, worst_excess = path, math.inf
            max_abs = max_rel = math.nan
            continue
        if max_abs == max_abs:
            max_abs = max(max_abs, error)
            max_rel = max(max_rel, error / abs(n) if n != 0.0 else (0.0 if error == 0.0 else math.inf))
        excess = error - (atol + rtol * abs(n))
        if excess > worst_excess:
            worst_path, worst_excess = path, excess
    report = GradientReport(max_abs, max_rel, worst_path, tuple(analytic), tuple(numerical))
    if worst_excess > 0.0:
        a = dict(analytic)[worst_path]
        n = dict(numerical)[worst_path]
        raise GradientCheckError(
            f"{what} mismatch at {worst_path or 'the argument'}: analytic {a!r} vs numerical {n!r} "
            f"(|diff| {abs(a - n):.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|); "
            f"max abs error {max_abs:.3g}, max rel error {max_rel:.3g}"
        )
    return report
