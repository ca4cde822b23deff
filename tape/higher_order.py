"""Vector-Jacobian products, Jacobians, Hessians and Hessian-vector products.

All are compositions of the reverse tape (:func:`vjp`) and the forward tape
(:func:`tape.jvp`); nesting does the rest, since a gradient computed inside an
enclosing tape is itself recorded there.

>>> from tape import hessian, hvp
>>> f = lambda x: x[0] * x[0] * x[1] + x[1] ** 3.0
>>> hessian(f)((1.0, 2.0))
((4.0, 2.0), (2.0, 12.0))
>>> hvp(f, (1.0, 2.0), (1.0, 0.0))
(4.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from pyrsistent import PMap

from tape.forward import jvp
from tape.gradient_tape import Tape
from tape.ops.reductions import vsum
from tape.transforms import Transformed, grad, normalize_argnums, unwrap, wrapping
from tape.tree import tree_flatten, tree_map, tree_unflatten
from tape.validate import number
from tape.value import Scalar, Value

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
K = TypeVar("K")
P = ParamSpec("P")
Floats = TypeVar("Floats", bound="tuple[float, ...]")


@overload
def vjp(  # type: ignore[overload-overlap]  # a Scalar output is narrower than T
    fun: Callable[[A], Scalar], x: A, /
) -> tuple[float, Callable[[Scalar], tuple[A]]]: ...
@overload
def vjp(fun: Callable[[A], T], x: A, /) -> tuple[T, Callable[[T], tuple[A]]]: ...
@overload
def vjp(  # type: ignore[overload-overlap]  # a Scalar output is narrower than T
    fun: Callable[[A, B], Scalar], x: A, y: B, /
) -> tuple[float, Callable[[Scalar], tuple[A, B]]]: ...
@overload
def vjp(fun: Callable[[A, B], T], x: A, y: B, /) -> tuple[T, Callable[[T], tuple[A, B]]]: ...
@overload
def vjp(  # type: ignore[overload-overlap]  # a Scalar output is narrower than T
    fun: Callable[[A, B, C], Scalar], x: A, y: B, z: C, /
) -> tuple[float, Callable[[Scalar], tuple[A, B, C]]]: ...
@overload
def vjp(fun: Callable[[A, B, C], T], x: A, y: B, z: C, /) -> tuple[T, Callable[[T], tuple[A, B, C]]]: ...
@overload
def vjp(
    fun: Callable[..., T], x: object, y: object, z: object, w: object, /, *primals: object
) -> tuple[T, Callable[[T], tuple[object, ...]]]: ...
def vjp(fun: Callable[..., T], *primals: object) -> tuple[object, Callable[[T], tuple[object, ...]]]:
    """``fun(*primals)`` and a pullback mapping an output cotangent to ``cotangent @ J``.

    The pullback takes a tree shaped like the output and returns one gradient tree
    per primal. It can be called many times: the recording is kept.

    Typed for one to three primals: the pullback gives ``tuple[A]``,
    ``tuple[A, B]`` or ``tuple[A, B, C]`` of the primals' types (with more,
    ``tuple[object, ...]``). A scalar output gives a float value and a pullback of
    a scalar; any other output keeps ``fun``'s output type ``T``, whose Value
    leaves (as ``tuple[Scalar, Scalar]`` says) are floats at run time: Python's
    types cannot map ``T``'s Values to floats.

    >>> value, pullback = vjp(lambda x, y: (x * y, x + y), 2.0, 3.0)
    >>> value, pullback((1.0, 0.0)), pullback((0.0, 1.0))
    ((6.0, 5.0), (3.0, 2.0), (1.0, 1.0))
    """
    with Tape() as tape:
        watched = [tape.watch_tree(p) for p in primals]
        out = fun(*watched)
    out_leaves, out_def = tree_flatten(out)
    value = tree_unflatten(out_def, [cast(float, unwrap(leaf, tape)) for leaf in out_leaves])
    sources = [tree_flatten(w) for w in watched]
    bottom = min((cast(Value, leaf).position for leaves, _ in sources for leaf in leaves), default=0)

    def pullback(cotangent: T) -> tuple[object, ...]:
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(f"the cotangent's structure {ct_def} differs from the output's {out_def}")
        seeds: dict[int, Any] = {}
        for out_leaf, ct_leaf in zip(out_leaves, ct_leaves, strict=True):
            leaf: object = out_leaf
            ct: object = ct_leaf
            seed = ct if isinstance(ct, Value) else number(ct, "a cotangent")
            if isinstance(leaf, Value) and leaf.tape is tape:
                seeds[leaf.position] = seeds.get(leaf.position, 0.0) + seed
        grads = tape.sweep(seeds, bottom) if seeds else []
        results = []
        for leaves, treedef in sources:
            results.append(
                tree_unflatten(
                    treedef,
                    [
                        grads[cast(Value, leaf).position] if cast(Value, leaf).position < len(grads) else 0.0
                        for leaf in leaves
                    ],
                )
            )
        return tuple(results)

    return value, pullback


@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, P], Scalar], argnums: Literal[0] = 0
) -> Callable[Concatenate[A, P], A]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, P], tuple[Scalar, ...]], argnums: Literal[0] = 0
) -> Callable[Concatenate[A, P], tuple[A, ...]]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, P], Sequence[Scalar]], argnums: Literal[0] = 0
) -> Callable[Concatenate[A, P], Sequence[A]]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, P], Mapping[K, Scalar]], argnums: Literal[0] = 0
) -> Callable[Concatenate[A, P], Mapping[K, A]]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar], argnums: Literal[1]
) -> Callable[Concatenate[A, B, P], B]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], tuple[Scalar, ...]], argnums: Literal[1]
) -> Callable[Concatenate[A, B, P], tuple[B, ...]]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Sequence[Scalar]], argnums: Literal[1]
) -> Callable[Concatenate[A, B, P], Sequence[B]]: ...
@overload
def jacobian(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Mapping[K, Scalar]], argnums: Literal[1]
) -> Callable[Concatenate[A, B, P], Mapping[K, B]]: ...
@overload
def jacobian(fun: Callable[P, object], argnums: int = 0) -> Transformed[P, object]: ...
def jacobian(fun: Callable[..., object], argnums: int = 0) -> Callable[..., object]:
    """The Jacobian of ``fun`` with respect to argument ``argnums``, by one reverse sweep per output.

    The result has the output's structure with, at each output leaf, a tree shaped
    like the argument (as ``jax.jacrev``); a scalar output gives the gradient.
    Meant for small inputs and outputs.

    Typed for ``argnums`` 0 and 1 and an output that is a scalar (the argument's
    type), a tuple, sequence or mapping of scalars (that container of the argument's
    type); other outputs, nested ones included, give ``object``.

    >>> jacobian(lambda x: (x[0] * x[1], x[0] + x[1]))((2.0, 3.0))
    ((3.0, 2.0), (1.0, 1.0))
    """

    def jacobian_fun(*args: object, **kwargs: object) -> object:
        (n,) = normalize_argnums(argnums, len(args))

        def of_one(x: object) -> object:
            return fun(*args[:n], x, *args[n + 1 :], **kwargs)

        value, pullback = vjp(of_one, args[n])
        out_leaves, out_def = tree_flatten(value)
        rows = []
        for k in range(len(out_leaves)):
            basis = [1.0 if j == k else 0.0 for j in range(len(out_leaves))]
            rows.append(pullback(tree_unflatten(out_def, basis))[0])
        return tree_unflatten(out_def, cast("list[float]", rows))  # a tree per output leaf

    wrapping(jacobian_fun, "jacobian", fun)
    return jacobian_fun


@overload
def hessian(
    fun: Callable[Concatenate[float, P], Scalar], argnums: Literal[0] = 0
) -> Callable[Concatenate[float, P], float]: ...
@overload
def hessian(
    fun: Callable[Concatenate[Floats, P], Scalar], argnums: Literal[0] = 0
) -> Callable[Concatenate[Floats, P], tuple[Floats, ...]]: ...
@overload
def hessian(
    fun: Callable[Concatenate[PMap[K, float], P], Scalar], argnums: Literal[0] = 0
) -> Callable[Concatenate[PMap[K, float], P], PMap[K, PMap[K, float]]]: ...
@overload
def hessian(fun: Callable[P, Scalar], argnums: int = 0) -> Transformed[P, object]: ...
def hessian(fun: Callable[..., Scalar], argnums: int = 0) -> Callable[..., object]:
    """The Hessian of scalar ``fun``: the Jacobian of its gradient (reverse over reverse).

    For an argument that is a tuple of n floats the result is an n-by-n tuple of
    tuples; for a tree, the tree of trees.

    Typed by ``fun``'s first parameter: a float gives a float, a tuple of floats
    (any length, or a fixed one) a tuple of such tuples, a ``PMap`` of floats a
    ``PMap`` of such maps. Other arguments, and ``argnums`` other than 0, give
    ``object``: Python's types cannot say "a tree of trees shaped like the argument".
    """
    hessian_fun = jacobian(grad(fun, argnums), argnums)
    wrapping(hessian_fun, "hessian", fun)
    return hessian_fun


def hvp(fun: Callable[[A], Scalar], x: A, v: A) -> A:
    """The Hessian-vector product ``H(x) @ v`` without forming ``H``: forward over reverse.

    One forward-mode pass (with tangent ``v``) through the reverse-mode gradient.
    """
    _, tangent = jvp(grad(fun), (x,), (v,))
    return cast(A, tangent)


def tree_dot(a: object, b: object) -> Scalar:
    """``sum(x * y)`` over the leaves of two trees of the same structure."""
    products = tree_flatten(tree_map(lambda x, y: x * y, a, b))[0]
    return vsum(products) if products else 0.0
