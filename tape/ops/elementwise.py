"""Elementwise functions: ``exp log sqrt tanh sigmoid relu leaky_relu``.

Each function is written once as a float kernel and one partial rule
``d f(x) / dx`` from ``(value, x)``. From those two come its scalar op (recorded on
Values, the partial serving both modes), its array op over a matrix (the backward
and forward rules map the same partial over rows), its ``Value`` method, and the
public functions: ``tape.relu(x)`` for floats and Values (floats in, floats out) and
``tape.arrays.relu(X)`` for matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import mul
from typing import Any, cast, overload

from tape import floats
from tape.array import Array, Matrix, Rows, add_matrix, constant_array, record_array
from tape.core.node import Node
from tape.core.op import Op, define
from tape.core.recording import is_zero
from tape.validate import HoldsTracked, float_matrix, number
from tape.value import Primal, Scalar, Value, apply, install

LEAKY_SLOPE = 0.01
"""The default negative-side slope of ``leaky_relu`` (``torch.nn.LeakyReLU``'s)."""


def relu_kernel(x: float) -> float:
    """``max(x, 0)`` on a float; ``nan`` stays ``nan``, as in PyTorch."""
    return 0.0 if x <= 0.0 else x


def leaky_relu_kernel(x: float, slope: float = LEAKY_SLOPE) -> float:
    """``x`` if positive, else ``slope * x``."""
    return x if x > 0.0 else slope * x


def _relu_partial(v: Primal, x: Primal) -> float:
    return 1.0 if x > 0.0 else 0.0  # 0 at the kink, as PyTorch


_RULES: dict[str, tuple[Callable[[float], float], Callable[..., Primal]]] = {
    "exp": (floats.exp, lambda v, x: v),
    "log": (floats.log, lambda v, x: 1.0 / x if x.__class__ is not float else floats.div(1.0, x)),
    "sqrt": (floats.sqrt, lambda v, x: 0.5 / v if v.__class__ is not float else floats.div(0.5, v)),
    "tanh": (floats.tanh, lambda v, x: 1.0 - v * v),
    "sigmoid": (floats.sigmoid, lambda v, x: v * (1.0 - v)),
    "relu": (relu_kernel, _relu_partial),
}
"""Each unary function's float kernel and partial rule: its only definition."""

_EMIT: dict[str, Callable[..., tuple[str, tuple[str, ...]]]] = {
    "exp": lambda c, v, x: (f"{c.ref(floats.exp)}({x})", (v,)),
    "log": lambda c, v, x: (f"{c.ref(floats.log)}({x})", (f"{c.ref(floats.div)}(1.0, {x})",)),
    "sqrt": lambda c, v, x: (f"{c.ref(floats.sqrt)}({x})", (f"{c.ref(floats.div)}(0.5, {v})",)),
    "tanh": lambda c, v, x: (f"{c.ref(floats.tanh)}({x})", (f"1.0 - {v} * {v}",)),
    "sigmoid": lambda c, v, x: (f"{c.ref(floats.sigmoid)}({x})", (f"{v} * (1.0 - {v})",)),
    "relu": lambda c, v, x: (f"0.0 if {x} <= 0.0 else {x}", (f"1.0 if {x} > 0.0 else 0.0",)),
}
"""Each unary function's ``emit`` rule for :mod:`tape.jit`: the kernel and the partial above, as Python."""


def _primal_forward(name: str, kernel: Callable[[float], float]) -> Callable[[Primal], Primal]:
    """The forward rule on primals: the kernel on a float, the method on an enclosing Value."""

    def forward(x: Primal) -> Primal:
        return kernel(x) if x.__class__ is float else getattr(x, name)()

    return forward


def _array_op(name: str, kernel: Callable[..., float], partial: Callable[..., Primal], *extra: float) -> Op:
    """The array op over a matrix made from a scalar kernel and partial (``extra``: fixed arguments)."""

    def forward(data: Matrix) -> Matrix:
        if extra:
            return tuple(tuple([kernel(x, *extra) for x in row]) for row in data)
        return tuple(tuple(map(kernel, row)) for row in data)

    def slopes(xs: Sequence[float], ys: Sequence[float]) -> Any:
        if extra:
            return map(partial, ys, xs, *(repeat(e) for e in extra))
        return map(partial, ys, xs)

    def vjp(node: Node, g: Any, grads: list[Any]) -> None:
        (X,) = cast("tuple[Matrix]", node.saved)
        Y = cast(Matrix, node.value)
        (at,) = node.parents
        add_matrix(
            grads, at, [list(map(mul, gr, slopes(xr, yr))) for gr, xr, yr in zip(g, X, Y, strict=True)]
        )

    def jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
        ((X,), (dX,)) = saved, tangents
        if is_zero(dX):
            return 0.0
        return tuple(tuple(map(mul, dr, slopes(xr, yr))) for dr, xr, yr in zip(dX, X, value, strict=True))

    def emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
        x = c.var(node.parents[0])
        return [f"{v} = {c.ref(forward, f'array_{name}')}({x})", f"{s} = ({x},)"]

    return define(f"array_{name}", forward, vjp=vjp, jvp=jvp, emit=emit, builtin=True)


SCALAR_OPS: dict[str, Op] = {}
ARRAY_OPS: dict[str, Op] = {}
for _name, (_kernel, _partial) in _RULES.items():
    SCALAR_OPS[_name] = define(
        _name,
        _primal_forward(_name, _kernel),
        _partial,
        float_kernel=_kernel,
        emit=_EMIT[_name],
        builtin=True,
    )
    if _name in ("relu", "tanh", "sigmoid"):
        ARRAY_OPS[_name] = _array_op(_name, _kernel, _partial)

EXP, LOG, SQRT, TANH, SIGMOID, RELU = (
    SCALAR_OPS[n] for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu")
)


def _leaky_forward(x: Primal, slope: Primal) -> Primal:
    if x.__class__ is float and slope.__class__ is float:
        return leaky_relu_kernel(x, slope)
    return x.leaky_relu(slope) if isinstance(x, Value) else apply(LEAKY_RELU, x, slope)


LEAKY_RELU = define(
    "leaky_relu",
    _leaky_forward,
    lambda v, x, slope: 1.0 if x > 0.0 else slope,
    lambda v, x, slope: 0.0 if x > 0.0 else x,
    float_kernel=leaky_relu_kernel,
    emit=lambda c, v, x, slope: (
        f"{x} if {x} > 0.0 else {slope} * {x}",
        (f"1.0 if {x} > 0.0 else {slope}", f"0.0 if {x} > 0.0 else {x}"),
    ),
    builtin=True,
)
ARRAY_LEAKY_RELU = _array_op(
    "leaky_relu", leaky_relu_kernel, lambda v, x, slope: 1.0 if x > 0.0 else slope, LEAKY_SLOPE
)


# --- Value methods ----------------------------------------------------------------------


def _method(op: Op) -> Callable[[Value], Value]:
    def method(self: Value) -> Value:
        return apply(op, self)

    method.__name__ = op.name
    return method


for _name in ("exp", "log", "sqrt", "tanh", "sigmoid"):
    install(_name, _method(SCALAR_OPS[_name]))


_RELU_ON = (_relu_partial(1.0, 1.0),)
_RELU_OFF = (_relu_partial(0.0, 0.0),)
"""relu's partial where it is on and off, from its one rule: shared by every node the fast path records."""


def _relu_method(self: Value) -> Value:
    tape = self.tape
    primal = self.primal
    if tape is not None and primal.__class__ is float and RELU.builtin:  # the common case, inlined
        return tape.record(
            RELU, (self.position,), relu_kernel(primal), _RELU_ON if primal > 0.0 else _RELU_OFF, Value
        )
    return apply(RELU, self)


install("relu", _relu_method)
install("leaky_relu", lambda self, slope=LEAKY_SLOPE: apply(LEAKY_RELU, self, slope))


# --- functions of floats or Values --------------------------------------------------------


def _unary_function(name: str) -> Callable[[Scalar], Scalar]:
    kernel = _RULES[name][0]

    def function(x: Scalar) -> Scalar:
        if isinstance(x, Value):
            return cast(Value, getattr(x, name)())
        return kernel(number(x, f"{name}(x)"))

    function.__name__ = name
    return function


_exp, _log, _sqrt, _tanh, _sigmoid, _relu = (
    _unary_function(n) for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu")
)


@overload
def exp(x: float) -> float: ...
@overload
def exp(x: Value) -> Value: ...
def exp(x: Scalar) -> Scalar:
    """``e ** x``; ``inf`` on overflow."""
    return _exp(x)


@overload
def log(x: float) -> float: ...
@overload
def log(x: Value) -> Value: ...
def log(x: Scalar) -> Scalar:
    """Natural log; ``-inf`` at 0 and ``nan`` below."""
    return _log(x)


@overload
def sqrt(x: float) -> float: ...
@overload
def sqrt(x: Value) -> Value: ...
def sqrt(x: Scalar) -> Scalar:
    """Square root; ``nan`` below 0."""
    return _sqrt(x)


@overload
def tanh(x: float) -> float: ...
@overload
def tanh(x: Value) -> Value: ...
def tanh(x: Scalar) -> Scalar:
    """Hyperbolic tangent."""
    return _tanh(x)


@overload
def sigmoid(x: float) -> float: ...
@overload
def sigmoid(x: Value) -> Value: ...
def sigmoid(x: Scalar) -> Scalar:
    """Logistic function ``1 / (1 + e ** -x)``, stable for large ``|x|``."""
    return _sigmoid(x)


@overload
def relu(x: float) -> float: ...
@overload
def relu(x: Value) -> Value: ...
def relu(x: Scalar) -> Scalar:
    """``max(x, 0)``."""
    return _relu(x)


@overload
def leaky_relu(x: float, slope: float = LEAKY_SLOPE) -> float: ...
@overload
def leaky_relu(x: Value, slope: Scalar = LEAKY_SLOPE) -> Value: ...
def leaky_relu(x: Scalar, slope: Scalar = LEAKY_SLOPE) -> Scalar:
    """``x`` if positive, else ``slope * x``."""
    if isinstance(x, Value) or isinstance(slope, Value):
        return apply(LEAKY_RELU, x, slope)
    return leaky_relu_kernel(number(x, "leaky_relu(x)"), slope)


# --- array functions over a matrix ----------------------------------------------------------


def _array_function(
    op: Op, scalar: Callable[[Any], Scalar], name: str
) -> Callable[[Array | Sequence[Sequence[Scalar]]], Array | Rows]:
    def function(X: Array | Sequence[Sequence[Scalar]]) -> Array | Rows:
        if not isinstance(X, Array):
            try:
                return cast(
                    Matrix, op.forward(float_matrix(cast("Sequence[Sequence[float]]", X), f"{name}'s input"))
                )
            except HoldsTracked:
                return tuple(tuple(map(scalar, row)) for row in X)
        if X.ndim != 2:
            raise ValueError(f"{name} takes a matrix (a batch of rows)")
        data = cast(Matrix, X.primal)
        if X.tape is None:
            return constant_array(cast(Matrix, op.forward(data)))
        return record_array(X.tape, op, (X.position,), cast(Matrix, op.forward(data)), (data,))

    function.__name__ = name
    function.__doc__ = f"Elementwise ``{name}`` of a matrix (an Array node, or floats in, floats out)."
    return function


array_relu = _array_function(ARRAY_OPS["relu"], relu, "relu")
array_tanh = _array_function(ARRAY_OPS["tanh"], tanh, "tanh")
array_sigmoid = _array_function(ARRAY_OPS["sigmoid"], sigmoid, "sigmoid")
array_leaky_relu = _array_function(ARRAY_LEAKY_RELU, lambda x: leaky_relu(x, LEAKY_SLOPE), "leaky_relu")
