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

from collections.abc import Callable, Iterable, Sequence
from functools import update_wrapper
from typing import Any, Concatenate, Literal, NamedTuple, ParamSpec, Protocol, TypeVar, cast, overload

from pyrsistent import PVector, pvector

from tape.array import Array, constant_array, flatten, nest, shape_of, zeros_like_data
from tape.core.recording import Recording
from tape.gradient_tape import Tape
from tape.kernels.shapes import size
from tape.tree import TreeError, tree_flatten_floats, tree_map, tree_unflatten
from tape.value import Scalar, Value

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
T = TypeVar("T")
Aux = TypeVar("Aux")
R_co = TypeVar("R_co", covariant=True)
P = ParamSpec("P")


class Transformed(Protocol[P, R_co]):
    """A function made from ``fun`` by a transformation (``grad``, ``jacobian``, ...):
    it takes ``fun``'s parameters and keeps ``fun`` as ``__wrapped__``.

    The catch-all overloads, whose results Python's types cannot describe, return
    this rather than a plain ``Callable``: when ``fun`` is an unannotated lambda or a
    ``Callable[..., X]``, mypy cannot choose between overloads and falls back to
    ``Any`` for this type, where for plain Callables it would make the call
    an untyped one (an error under ``--strict``).
    """

    __wrapped__: Callable[..., object]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


def wrapping(transformed: Callable[..., object], transformation: str, fun: Callable[..., object]) -> None:
    """Name ``transformed`` after ``transformation(fun)``; give it ``fun``'s docstring and ``__wrapped__``."""
    update_wrapper(transformed, fun, assigned=("__doc__",), updated=())
    transformed.__name__ = f"{transformation}({getattr(fun, '__name__', 'fun')})"


def unwrap(x: object, tape: Recording) -> object:
    """One level down: a Value of ``tape`` becomes its primal (float or enclosing Value),
    a constant Value its float, an Array of ``tape`` its data."""
    if isinstance(x, Value):
        if x.tape is tape:
            return x.primal
        if x.tape is None:
            return x.data
    if isinstance(x, Array) and x.tape is tape:
        return x.data
    return x


def normalize_argnums(argnums: int | tuple[int, ...], count: int) -> tuple[int, ...]:
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


def _container(like: object, items: Iterable[object]) -> object:
    """``items`` in the sequence type of ``like`` (PVector, list or tuple)."""
    if isinstance(like, PVector):
        return pvector(items)
    if isinstance(like, list):
        return list(items)
    return tuple(items)


def array_gradient(like: Sequence[object], g: object) -> object:
    """An array leaf's gradient (0.0 or nested lists from the sweep) in ``like``'s containers."""
    if isinstance(like, Array):
        return constant_array(
            nest(flatten(g), like.shape) if g.__class__ is not float else zeros_like_data(like.primal)
        )
    if isinstance(like[0], (list, tuple, PVector)):
        rows = cast("Sequence[Sequence[object]]", like)
        if g.__class__ is float:
            return _container(like, (array_gradient(row, 0.0) for row in rows))
        data = cast("list[list[object]]", g)
        return _container(
            like, (array_gradient(row, grad_row) for row, grad_row in zip(rows, data, strict=True))
        )
    if g.__class__ is float:
        return _container(like, (0.0,) * len(like))
    return _container(like, cast("list[float]", g))


def gradient_floats(like: object, g: object) -> list[Any]:
    """An array leaf's gradient (0.0 or nested lists from the sweep) as its floats in
    row-major order: what :func:`array_gradient` holds, for a rebuild from floats."""
    return flatten(g) if g.__class__ is not float else [0.0] * size(shape_of(like))


def _float_gradient(
    arg: object, leaves: list[Value | Array], originals: list[object], sweep: list[Any]
) -> object | None:
    """The gradient of an argument whose every leaf is a float, built from its leaves'
    structure (so that flattening it, as an optimizer does, is a lookup), or ``None``
    for another argument. Its containers are :func:`array_gradient`'s: the argument's."""
    found = tree_flatten_floats(arg)
    if found is None:
        return None
    flat: list[object] = []
    for leaf, like in zip(leaves, originals, strict=True):
        at = leaf.position
        g = sweep[at] if at < len(sweep) else 0.0
        if isinstance(leaf, Value):
            flat.append(g)
        else:
            flat += gradient_floats(like, g)
    return tree_unflatten(found[1], cast("list[float]", flat))


class Differentiated(NamedTuple):
    """What a function made by :func:`grad` or :func:`value_and_grad` computes (read by :mod:`tape.jit`)."""

    fun: Callable[..., object]
    argnums: int | tuple[int, ...]
    has_aux: bool
    arrays: bool
    with_value: bool


def differentiated(fun: Callable[..., object]) -> Differentiated | None:
    """The :class:`Differentiated` record of a function made by :func:`grad` or :func:`value_and_grad`."""
    spec = getattr(fun, "differentiated", None)
    return spec if isinstance(spec, Differentiated) else None


def _evaluate(
    fun: Callable[..., object],
    argnums: int | tuple[int, ...],
    has_aux: bool,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    arrays: bool = False,
) -> tuple[object, object, object]:
    """Run ``fun`` on a fresh tape; return (value, aux, gradients)."""
    nums = normalize_argnums(argnums, len(args))
    with Tape() as tape:
        watched = list(args)
        per_arg = []
        for n in nums:
            try:
                leaves, originals, treedef = tape.watch_flat(args[n], arrays=arrays)
            except TreeError as error:
                raise TreeError(f"argument {n}: {error}") from None
            watched[n] = tree_unflatten(treedef, cast("list[float]", leaves))  # Value/Array leaves
            per_arg.append((leaves, originals, treedef))
        out = fun(*watched, **kwargs)
    aux: object = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"with has_aux=True the function must return a pair (value, aux), not {type(out).__name__}"
            )
        out, aux = out
        aux = tree_map(lambda leaf: cast(float, unwrap(leaf, tape)), cast(Any, aux))
    if not isinstance(out, (float, int, Value)) or isinstance(out, bool):
        raise TypeError(
            f"the differentiated function must return a scalar (float or Value), not {type(out).__name__}"
        )
    positions = [leaf.position for leaves, _, _ in per_arg for leaf in leaves]
    sweep = tape.adjoints(cast(Scalar, out), min(positions)) if positions else []
    results = []
    for n, (leaves, originals, treedef) in zip(nums, per_arg, strict=True):
        if arrays:
            found = _float_gradient(args[n], leaves, originals, sweep)
            if found is not None:
                results.append(found)
                continue
        grads: list[object] = []
        for k, leaf in enumerate(leaves):
            at = leaf.position
            g = sweep[at] if at < len(sweep) else 0.0
            if not isinstance(leaf, Value):
                g = array_gradient(cast("Sequence[object]", originals[k]), g)
            grads.append(g)
        results.append(tree_unflatten(treedef, grads))  # type: ignore[arg-type]  # Value/Array leaves in a float tree
    value = unwrap(out, tape)
    if isinstance(value, int):
        value = float(value)
    return value, aux, (results[0] if isinstance(argnums, int) else tuple(results))


@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
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
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: Literal[1],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[float, B]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], tuple[Scalar, Aux]],
    argnums: Literal[1],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[tuple[float, Aux], B]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: tuple[Literal[0], Literal[1]],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[float, tuple[A, B]]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], tuple[Scalar, Aux]],
    argnums: tuple[Literal[0], Literal[1]],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[tuple[float, Aux], tuple[A, B]]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, C, P], Scalar],
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, C, P], tuple[float, tuple[A, B, C]]]: ...
@overload
def value_and_grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, C, P], tuple[Scalar, Aux]],
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, C, P], tuple[tuple[float, Aux], tuple[A, B, C]]]: ...
@overload
def value_and_grad(
    fun: Callable[P, Scalar],
    argnums: int | tuple[int, ...],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Transformed[P, tuple[float, object]]: ...
@overload
def value_and_grad(
    fun: Callable[P, tuple[Scalar, Aux]],
    argnums: int | tuple[int, ...],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Transformed[P, tuple[tuple[float, Aux], object]]: ...
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

    With ``arrays=True`` every rectangular nested sequence of floats in the differentiated
    arguments reaches ``fun`` as one :class:`tape.Array` node rather than a
    sequence of Values: layer-level code (:mod:`tape.arrays`) then records a few
    nodes per batch. Gradients come back in the same containers either way.

    Typed for ``argnums`` 0, 1, ``(0, 1)`` and ``(0, 1, 2)``: the gradient has the
    selected argument's type, or a tuple of those types. Other ``argnums`` give
    ``object``. Under mypy an unannotated lambda with more than one overload to
    choose from (any ``argnums`` but the default) gives ``Any``.
    """

    def value_and_grad_fun(*args: object, **kwargs: object) -> object:
        value, aux, grads = _evaluate(fun, argnums, has_aux, args, kwargs, arrays)
        return ((value, aux), grads) if has_aux else (value, grads)

    wrapping(value_and_grad_fun, "value_and_grad", fun)
    value_and_grad_fun.__dict__["differentiated"] = Differentiated(fun, argnums, has_aux, arrays, True)
    return value_and_grad_fun


@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
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
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: Literal[1],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], B]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], tuple[Scalar, Aux]],
    argnums: Literal[1],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[B, Aux]]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], Scalar],
    argnums: tuple[Literal[0], Literal[1]],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[A, B]]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, P], tuple[Scalar, Aux]],
    argnums: tuple[Literal[0], Literal[1]],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, P], tuple[tuple[A, B], Aux]]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, C, P], Scalar],
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, C, P], tuple[A, B, C]]: ...
@overload
def grad(  # type: ignore[overload-overlap]  # a Literal argnums is narrower than int
    fun: Callable[Concatenate[A, B, C, P], tuple[Scalar, Aux]],
    argnums: tuple[Literal[0], Literal[1], Literal[2]],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Callable[Concatenate[A, B, C, P], tuple[tuple[A, B, C], Aux]]: ...
@overload
def grad(
    fun: Callable[P, Scalar],
    argnums: int | tuple[int, ...],
    has_aux: Literal[False] = False,
    *,
    arrays: bool = False,
) -> Transformed[P, object]: ...
@overload
def grad(
    fun: Callable[P, tuple[Scalar, Aux]],
    argnums: int | tuple[int, ...],
    has_aux: Literal[True],
    *,
    arrays: bool = False,
) -> Transformed[P, tuple[object, Aux]]: ...
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

    wrapping(grad_fun, "grad", fun)
    grad_fun.__dict__["differentiated"] = Differentiated(fun, argnums, has_aux, arrays, False)
    return grad_fun


def stop_gradient(x: T) -> T:
    """``x`` with every tracked leaf made constant: no derivative flows through it.

    A Value leaf becomes a constant Value; an :class:`tape.Array` becomes its data
    (nested tuples of floats), which array ops take as a constant operand.
    """

    def stop(leaf: object) -> float:
        if isinstance(leaf, Value):
            return cast(float, Value(leaf.data))  # a Value leaf stays a Value
        if isinstance(leaf, Array):
            return cast(float, leaf.data)
        return cast(float, leaf)

    return tree_map(stop, x)
