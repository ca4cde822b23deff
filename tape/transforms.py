"""Function transformations: ``grad``, ``value_and_grad`` and ``stop_gradient``.

The selected arguments may be any tree of floats (tuples, lists, dicts, pyrsistent
maps and vectors, nested); gradients come back in the same structure and
container types. Each call records on a fresh tape that is dropped afterwards.

>>> from pyrsistent import pmap
>>> def loss(params, x):
...     return (params["w"] * x + params["b"] - 1.0) ** 2
>>> grad(loss)(pmap({"w": 2.0, "b": 0.0}), 3.0) == pmap({"w": 30.0, "b": 10.0})
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from tape.gradient_tape import Tape, is_float_array
from tape.tree import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten
from tape.value import Scalar, Value

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")
Aux = TypeVar("Aux")
P = ParamSpec("P")


def _unwrap(x: object, tape: Tape) -> object:
    """One level down: a Value of ``tape`` becomes its primal (float or enclosing Value),
    a constant Value its float."""
    if isinstance(x, Value):
        if x.tape is tape:
            return x._primal
        if x.tape is None:
            return x.data
    return x


def _argnums(argnums: int | tuple[int, ...], count: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one argument")
    for n in nums:
        if not isinstance(n, int) or not -count <= n < count:
            raise ValueError(f"argnums {argnums!r} is out of range for {count} positional arguments")
    normal = tuple(n % count for n in nums)
    if len(set(normal)) != len(normal):
        raise ValueError(f"argnums {argnums!r} names an argument twice")
    return normal


def _restore_arrays(grads: object, like: object) -> object:
    """Array-leaf gradients (tuples) rebuilt in the containers of the original argument."""
    originals, treedef = tree_flatten(like, is_float_array)
    slopes = tree_leaves(grads, is_float_array)
    rebuilt = [
        tree_unflatten(tree_structure(original), tree_leaves(slope)) if is_float_array(original) else slope
        for original, slope in zip(originals, slopes)
    ]
    return tree_unflatten(treedef, rebuilt)


def _evaluate(
    fun: Callable[..., object],
    argnums: int | tuple[int, ...],
    has_aux: bool,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    arrays: bool = False,
) -> tuple[object, object, object]:
    """Run ``fun`` on a fresh tape; return (value, aux, gradients)."""
    nums = _argnums(argnums, len(args))
    with Tape() as tape:
        watched = list(args)
        for n in nums:
            watched[n] = tape.watch_tree(args[n], arrays=arrays)
        out = fun(*watched, **kwargs)
    aux: object = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"with has_aux=True the function must return a pair (value, aux), not {type(out).__name__}"
            )
        out, aux = out
        aux = tree_map(lambda leaf: _unwrap(leaf, tape), aux)  # type: ignore[arg-type, return-value]
    if not isinstance(out, (float, int, Value)) or isinstance(out, bool):
        raise TypeError(
            f"the differentiated function must return a scalar (float or Value), not {type(out).__name__}"
        )
    sources = tuple(watched[n] for n in nums)
    grads = tape.gradient(out, sources)
    if arrays:
        grads = tuple(_restore_arrays(g, args[n]) for g, n in zip(grads, nums))
    value = _unwrap(out, tape)
    if isinstance(value, int):
        value = float(value)
    return value, aux, (grads[0] if isinstance(argnums, int) else grads)


@overload
def value_and_grad(  # type: ignore[overload-overlap]  # Literal[0] is narrower than int
    fun: Callable[Concatenate[A, P], Scalar],
    argnums: Literal[0] = 0,
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, P], tuple[float, A]]: ...
@overload
def value_and_grad(
    fun: Callable[Concatenate[A, P], tuple[Scalar, Aux]],
    argnums: Literal[0] = 0,
    *,
    has_aux: Literal[True],
    arrays: bool = False,
) -> Callable[Concatenate[A, P], tuple[tuple[float, Aux], A]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # Literal[1] is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: Literal[1],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[float, B]]: ...
@overload
def value_and_grad(
    fun: Callable[P, Scalar],
    argnums: int | tuple[int, ...],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[P, tuple[float, object]]: ...
@overload
def value_and_grad(
    fun: Callable[P, tuple[Scalar, Aux]],
    argnums: int | tuple[int, ...],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[P, tuple[tuple[float, Aux], object]]: ...
def value_and_grad(
    fun: Callable[..., object],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    arrays: bool = False,
) -> Callable[..., object]:
    """Return a function giving ``fun``'s value and its gradient with respect to ``argnums``.

    ``fun`` must return a scalar (or ``(scalar, aux)`` with ``has_aux=True``, giving
    ``((value, aux), grads)``). With an int ``argnums`` the gradient has the
    structure of that argument; with a tuple, a tuple of those. Nested inside
    another ``grad``, the results are Values of the enclosing computation.

    With ``arrays=True`` every vector or matrix of floats in the differentiated
    arguments reaches ``fun`` as one :class:`tape.Array` node rather than a
    sequence of Values: layer-level code (:mod:`tape.arrays`) then records a few
    nodes per batch. Gradients come back in the same containers either way.
    """

    def value_and_grad_fun(*args: object, **kwargs: object) -> object:
        value, aux, grads = _evaluate(fun, argnums, has_aux, args, kwargs, arrays)
        return ((value, aux), grads) if has_aux else (value, grads)

    value_and_grad_fun.__name__ = f"value_and_grad({getattr(fun, '__name__', 'fun')})"
    value_and_grad_fun.__doc__ = fun.__doc__
    return value_and_grad_fun


@overload
def grad(  # type: ignore[overload-overlap]  # Literal[0] is narrower than int
    fun: Callable[Concatenate[A, P], Scalar],
    argnums: Literal[0] = 0,
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, P], A]: ...
@overload
def grad(
    fun: Callable[Concatenate[A, P], tuple[Scalar, Aux]],
    argnums: Literal[0] = 0,
    *,
    has_aux: Literal[True],
    arrays: bool = False,
) -> Callable[Concatenate[A, P], tuple[A, Aux]]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # Literal[1] is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: Literal[1],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], B]: ...
@overload
def grad(
    fun: Callable[P, Scalar],
    argnums: int | tuple[int, ...],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[P, object]: ...
def grad(
    fun: Callable[..., object],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    arrays: bool = False,
) -> Callable[..., object]:
    """Return a function giving the gradient of scalar-valued ``fun`` with respect to ``argnums``.

    With ``has_aux=True`` it gives ``(grads, aux)``. See :func:`value_and_grad`.

    >>> grad(lambda x: x * x * x)(2.0)
    12.0
    >>> grad(grad(lambda x: x * x * x))(2.0)
    12.0
    """

    def grad_fun(*args: object, **kwargs: object) -> object:
        _, aux, grads = _evaluate(fun, argnums, has_aux, args, kwargs, arrays)
        return (grads, aux) if has_aux else grads

    grad_fun.__name__ = f"grad({getattr(fun, '__name__', 'fun')})"
    grad_fun.__doc__ = fun.__doc__
    return grad_fun


def stop_gradient(x: T) -> T:
    """``x`` with every Value leaf replaced by a constant: no derivative flows through it."""

    def stop(leaf: object) -> float:
        if isinstance(leaf, Value):
            return cast(float, Value(leaf.data))  # a Value leaf stays a Value
        return cast(float, leaf)

    return tree_map(stop, x)
