"""Elementwise functions: ``exp log sqrt tanh sigmoid relu leaky_relu gelu softplus``, and ``abs``.

Each function is written once as a float kernel and one partial rule
``d f(x) / dx`` from ``(value, x)`` (the :data:`_RULES` table; ``abs`` and negation
take theirs from :mod:`tape.ops.arithmetic`). From those two come its scalar op
(recorded on Values, the partial serving both modes, and its ``emit`` rule for
:mod:`tape.jit`), its array op over an N-d Array (the backward and forward rules map
the same partial over the data: row by row for a matrix, the training hot path), its
``Value`` method, and the public functions: ``tape.relu(x)`` for floats and Values
(floats in, floats out; an Array gives the array op) and ``tape.arrays.relu(X)`` for
Arrays of any number of axes and nested sequences of floats (plain tuples out,
nothing recorded).

``gelu`` is PyTorch's default (exact) form ``x * Phi(x)`` with the normal CDF written
with ``erf``; ``softplus`` is ``torch.nn.functional.softplus`` with ``beta=1`` and
``threshold=20`` (``x`` itself above the threshold).

The array ops are first-order in reverse mode (their vjp rules run on floats); forward
mode works through their jvp rules. Inside a nested tape an enclosing tape's Array is
seen as nested Values, and the array functions then map the scalar ops over them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import mul
from typing import Any, Protocol, cast, overload

from tape import floats
from tape.array import (
    Array,
    Data,
    add_flat,
    add_matrix,
    add_vector,
    constant_array,
    flatten,
    nest,
    record_array,
    shape_of,
)
from tape.core.node import Node
from tape.core.op import Branch, Op, define, times
from tape.core.recording import is_zero
from tape.ops.arithmetic import ABS, NEG
from tape.validate import HoldsTracked, float_array, number
from tape.value import Primal, Scalar, Value, apply, install

LEAKY_SLOPE = 0.01
"""The default negative-side slope of ``leaky_relu`` (``torch.nn.LeakyReLU``'s)."""

SOFTPLUS_THRESHOLD = 20.0
"""Above this, ``softplus(x)`` is ``x`` (``torch.nn.functional.softplus``'s default)."""

_SQRT1_2 = math.sqrt(0.5)
_PDF_SCALE = 1.0 / math.sqrt(2.0 * math.pi)


def relu_kernel(x: float) -> float:
    """``max(x, 0)`` on a float; ``nan`` stays ``nan``, as in PyTorch."""
    return 0.0 if x <= 0.0 else x


def leaky_relu_kernel(x: float, slope: float = LEAKY_SLOPE) -> float:
    """``x`` if positive, else ``slope * x``."""
    return x if x > 0.0 else slope * x


def gelu_kernel(x: float) -> float:
    """``x * Phi(x)`` with the standard normal CDF ``Phi`` (PyTorch's exact ``gelu``)."""
    return x * 0.5 * (1.0 + math.erf(x * _SQRT1_2))


def softplus_kernel(x: float) -> float:
    """``log(1 + e ** x)``, and ``x`` itself above :data:`SOFTPLUS_THRESHOLD` (as PyTorch)."""
    return x if x > SOFTPLUS_THRESHOLD else math.log1p(floats.exp(x))


def _p_exp(x: Primal) -> Primal:
    return floats.exp(x) if x.__class__ is float else cast(Value, x).exp()


def _normal_cdf_kernel(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x * _SQRT1_2))


def _normal_pdf(x: Primal) -> Primal:
    return _p_exp(-0.5 * x * x) * _PDF_SCALE


def _normal_cdf_forward(x: Primal) -> Primal:
    return _normal_cdf_kernel(x) if x.__class__ is float else apply(NORMAL_CDF, x)


NORMAL_CDF: Op = define(
    "normal_cdf",
    _normal_cdf_forward,
    lambda v, x: _normal_pdf(x),
    float_kernel=_normal_cdf_kernel,
    emit=lambda c, v, x: (f"{c.ref(_normal_cdf_kernel)}({x})", (f"{c.ref(_normal_pdf)}({x})",)),
    builtin=True,
)
"""The standard normal CDF as a scalar op: gelu's partial on Values (higher derivatives)."""


def _relu_partial(v: Primal, x: Primal) -> float:
    return 1.0 if x > 0.0 else 0.0  # 0 at the kink, as PyTorch


def _gelu_partial(v: Primal, x: Primal) -> Primal:
    if x.__class__ is float:
        return _normal_cdf_kernel(x) + x * _PDF_SCALE * floats.exp(-0.5 * x * x)
    return apply(NORMAL_CDF, x) + x * _normal_pdf(x)


def _softplus_partial(v: Primal, x: Primal) -> Primal:
    if x > SOFTPLUS_THRESHOLD:
        return 1.0
    return floats.sigmoid(x) if x.__class__ is float else cast(Value, x).sigmoid()


_RULES: dict[str, tuple[Callable[[float], float], Callable[..., Primal]]] = {
    "exp": (floats.exp, lambda v, x: v),
    "log": (floats.log, lambda v, x: 1.0 / x if x.__class__ is not float else floats.div(1.0, x)),
    "sqrt": (floats.sqrt, lambda v, x: 0.5 / v if v.__class__ is not float else floats.div(0.5, v)),
    "tanh": (floats.tanh, lambda v, x: 1.0 - v * v),
    "sigmoid": (floats.sigmoid, lambda v, x: v * (1.0 - v)),
    "relu": (relu_kernel, _relu_partial),
    "gelu": (gelu_kernel, _gelu_partial),
    "softplus": (softplus_kernel, _softplus_partial),
}
"""Each unary function's float kernel and partial rule: its only definition."""


def _called(kernel: Callable[..., object], partial: Callable[..., object]) -> Callable[..., object]:
    """An ``emit`` rule that calls the kernel and the partial rule themselves."""
    return lambda c, v, x: (f"{c.ref(kernel)}({x})", (f"{c.ref(partial)}({v}, {x})",))


_EMIT: dict[str, Callable[..., object]] = {
    "exp": lambda c, v, x: (f"{c.ref(floats.exp)}({x})", (v,)),
    "log": lambda c, v, x: (f"{c.ref(floats.log)}({x})", (f"{c.ref(floats.div)}(1.0, {x})",)),
    "sqrt": lambda c, v, x: (f"{c.ref(floats.sqrt)}({x})", (f"{c.ref(floats.div)}(0.5, {v})",)),
    "tanh": lambda c, v, x: (f"{c.ref(floats.tanh)}({x})", (f"1.0 - {v} * {v}",)),
    "sigmoid": lambda c, v, x: (f"{c.ref(floats.sigmoid)}({x})", (f"{v} * (1.0 - {v})",)),
    "relu": lambda c, v, x: (f"0.0 if {x} <= 0.0 else {x}", (Branch(f"{x} > 0.0", "1.0", "0.0"),)),
    "gelu": _called(gelu_kernel, _gelu_partial),
    "softplus": _called(softplus_kernel, _softplus_partial),
}
"""Each unary function's ``emit`` rule for :mod:`tape.jit`: the kernel and the partial above, as Python."""


def _primal_forward(name: str, kernel: Callable[[float], float]) -> Callable[[Primal], Primal]:
    """The forward rule on primals: the kernel on a float, the op recorded on an enclosing Value."""

    def forward(x: Primal) -> Primal:
        return kernel(x) if x.__class__ is float else apply(SCALAR_OPS[name], x)

    return forward


# --- array ops over N-d data -------------------------------------------------------------


def _is_matrix(data: Any) -> bool:
    """Whether ``data`` is a non-empty matrix of floats (rows of floats), the hot path's shape."""
    return bool(
        data.__class__ is tuple
        and data
        and (row := data[0]).__class__ is tuple
        and row
        and row[0].__class__ is not tuple
    )


def _depth(data: object) -> int:
    """0 for a float, 1 for a vector, 2 for a matrix, 3 for anything deeper (nested tuples or lists)."""
    if data.__class__ is not tuple and data.__class__ is not list:
        return 0
    items = cast("Sequence[Any]", data)
    if not items or (items[0].__class__ is not tuple and items[0].__class__ is not list):
        return 1
    row = items[0]
    if not row or (row[0].__class__ is not tuple and row[0].__class__ is not list):
        return 2
    return 3


class _Kernels:
    """What an ``emit`` rule asks of a compiler (``ref``: a name for a kernel it calls), for row kernels."""

    def __init__(self) -> None:
        self.namespace: dict[str, object] = {}

    def ref(self, obj: object, hint: str | None = None) -> str:
        name = f"kernel_{len(self.namespace)}"
        self.namespace[name] = obj
        return name


RowForward = Callable[[Sequence[float]], list[float]]
RowBackward = Callable[[Sequence[float], Sequence[float], Sequence[float]], list[float]]


def _row_kernels(name: str) -> tuple[RowForward, RowBackward]:
    """A unary function's kernel and partial over a row, as one comprehension each, made from its
    ``emit`` rule (no Python call per element for relu or tanh's partial). The same float
    operations as the scalar kernel and ``g * partial`` (:func:`~tape.core.op.times`), so results are
    the same bits."""
    names = _Kernels()
    forward, (partial,) = cast("tuple[str, tuple[str | Branch]]", _EMIT[name](names, "v", "x"))
    row_forward = eval(f"lambda xs: [{forward} for x in xs]", names.namespace)  # our own templates
    row_backward = eval(  # our own templates
        f"lambda gs, xs, vs: [{times('g', partial)} for g, x, v in zip(gs, xs, vs)]", names.namespace
    )
    return cast(RowForward, row_forward), cast(RowBackward, row_backward)


def _array_op(name: str, kernel: Callable[..., float], partial: Callable[..., Any]) -> Op:
    """The array op over N-d data made from a scalar kernel and partial.

    Its forward rule is ``forward(data, *extra)``: ``extra`` are fixed float arguments
    of the kernel (leaky_relu's slope), saved on the node with the data. A function with
    an ``emit`` rule runs rows through the comprehensions made from it (:func:`_row_kernels`).
    """
    rows = _row_kernels(name) if name in _EMIT else None

    def forward(data: Any, *extra: float) -> Any:  # nested tuples (a float for 0-d)
        if (  # the hot path: a batch of rows (as _is_matrix, inlined)
            data.__class__ is tuple
            and data
            and (first := data[0]).__class__ is tuple
            and first
            and first[0].__class__ is not tuple
        ):
            if extra:
                return tuple(tuple([kernel(x, *extra) for x in row]) for row in data)
            if rows is not None:
                row_forward = rows[0]
                return tuple(tuple(row_forward(row)) for row in data)
            return tuple(tuple(map(kernel, row)) for row in data)
        depth = _depth(data)
        if depth == 2:  # an empty row, or lists
            return tuple(tuple(kernel(x, *extra) for x in row) for row in data)
        if depth == 0:
            return kernel(data, *extra)
        flat = flatten(data) if depth == 3 else data
        if extra:
            out = [kernel(x, *extra) for x in flat]
        else:
            out = rows[0](flat) if rows is not None else list(map(kernel, flat))
        return tuple(out) if depth == 1 else nest(out, shape_of(data))

    def slopes(xs: Sequence[float], ys: Sequence[float], extra: Sequence[float]) -> Any:
        if extra:
            return map(partial, ys, xs, *(repeat(e) for e in extra))
        return map(partial, ys, xs)

    def vjp(node: Node, g: Any, grads: list[Any]) -> None:
        saved = cast("tuple[Any, ...]", node.saved)
        X, extra = saved[0], saved[1:]
        Y: Any = node.value
        (at,) = node.parents
        if (
            X.__class__ is tuple
            and X
            and (first := X[0]).__class__ is tuple
            and first
            and first[0].__class__ is not tuple
        ):
            if rows is not None and not extra:
                row_backward = rows[1]
                add_matrix(grads, at, [row_backward(gr, xr, yr) for gr, xr, yr in zip(g, X, Y, strict=True)])
                return
            add_matrix(
                grads,
                at,
                [list(map(mul, gr, slopes(xr, yr, extra))) for gr, xr, yr in zip(g, X, Y, strict=True)],
            )
            return
        depth = _depth(X)
        if depth == 1:
            add_vector(grads, at, list(map(mul, g, slopes(X, Y, extra))))
        elif depth == 0:
            grads[at] += g * partial(Y, X, *extra)
        elif rows is not None and not extra:
            add_flat(grads, at, rows[1](flatten(g), flatten(X), flatten(Y)), shape_of(X))
        else:
            contribution = list(map(mul, flatten(g), slopes(flatten(X), flatten(Y), extra)))
            add_flat(grads, at, contribution, shape_of(X))

    def jvp(value: Any, saved: Any, tangents: tuple[Any, ...]) -> Any:
        (dX,) = tangents
        if is_zero(dX):
            return 0.0
        X, extra = saved[0], saved[1:]
        if _is_matrix(X):
            return tuple(
                tuple(map(mul, dr, slopes(xr, yr, extra))) for dr, xr, yr in zip(dX, X, value, strict=True)
            )
        depth = _depth(X)
        if depth == 0:
            return dX * partial(value, X, *extra)
        if depth == 1:
            return tuple(map(mul, dX, slopes(X, value, extra)))
        return nest(list(map(mul, flatten(dX), slopes(flatten(X), flatten(value), extra))), shape_of(X))

    def emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
        x = c.var(node.parents[0])
        extra = "".join(f", {c.constant(e)}" for e in cast("tuple[Any, ...]", node.saved)[1:])
        return [f"{v} = {c.ref(forward, f'array_{name}')}({x}{extra})", f"{s} = ({x}{extra},)"]

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
    ARRAY_OPS[_name] = _array_op(_name, _kernel, _partial)

EXP, LOG, SQRT, TANH, SIGMOID, RELU, GELU, SOFTPLUS = (
    SCALAR_OPS[n] for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "gelu", "softplus")
)


def _leaky_forward(x: Primal, slope: Primal) -> Primal:
    if x.__class__ is float and slope.__class__ is float:
        return leaky_relu_kernel(x, slope)
    return x.leaky_relu(slope) if isinstance(x, Value) else apply(LEAKY_RELU, x, slope)


def _leaky_partial(v: Primal, x: Primal, slope: Primal) -> Primal:
    return 1.0 if x > 0.0 else slope


LEAKY_RELU = define(
    "leaky_relu",
    _leaky_forward,
    _leaky_partial,
    lambda v, x, slope: 0.0 if x > 0.0 else x,
    float_kernel=leaky_relu_kernel,
    emit=lambda c, v, x, slope: (
        f"{x} if {x} > 0.0 else {slope} * {x}",
        (Branch(f"{x} > 0.0", "1.0", slope), Branch(f"{x} > 0.0", "0.0", x)),
    ),
    builtin=True,
)
ARRAY_OPS["leaky_relu"] = ARRAY_LEAKY_RELU = _array_op("leaky_relu", leaky_relu_kernel, _leaky_partial)
ARRAY_OPS["abs"] = ARRAY_ABS = _array_op(
    "abs", cast("Callable[..., float]", ABS.float_kernel), ABS.partials[0]
)
ARRAY_OPS["neg"] = ARRAY_NEG = _array_op(
    "neg", cast("Callable[..., float]", NEG.float_kernel), NEG.partials[0]
)


# --- Value methods ----------------------------------------------------------------------


def _method(op: Op) -> Callable[[Value], Value]:
    def method(self: Value) -> Value:
        return apply(op, self)

    method.__name__ = op.name
    return method


for _name in ("exp", "log", "sqrt", "tanh", "sigmoid", "gelu", "softplus"):
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


# --- array functions over N-d data ----------------------------------------------------------


class Elementwise(Protocol):
    """An elementwise array function: an Array gives an Array; floats, Values and nested sequences alike."""

    @overload
    def __call__(self, x: Array) -> Array: ...
    @overload
    def __call__(self, x: float) -> float: ...
    @overload
    def __call__(self, x: Value) -> Value: ...
    @overload
    def __call__(self, x: Sequence[Any]) -> Data: ...
    def __call__(self, x: Array | Scalar | Sequence[Any]) -> Array | Scalar | Data: ...


def _mapped(f: Callable[[Any], Any], x: object, where: str) -> Any:
    """``f`` over the leaves of nested sequences holding Values (inside a nested tape)."""
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return tuple(_mapped(f, item, where) for item in x)
    if isinstance(x, Value):
        return f(x)
    return f(number(x, where))


def _apply_unary(op: Op, scalar: Callable[..., Scalar], name: str, x: object, *extra: float) -> Any:
    """Apply the N-d array ``op``: a tracked Array records one node; other input records nothing."""
    if isinstance(x, Array):
        data = x.primal
        value = cast(Data, op.forward(data, *extra))
        if x.tape is None:
            return constant_array(value)
        return record_array(x.tape, op, (x.position,), value, (data, *extra))
    if isinstance(x, Value):
        return scalar(x, *extra)
    try:
        return op.forward(float_array(x, f"{name}: x"), *extra)
    except HoldsTracked:
        return _mapped(lambda v: scalar(v, *extra), x, f"{name}: x")


def _array_function(name: str, scalar: Callable[[Any], Scalar]) -> Elementwise:
    op = ARRAY_OPS[name]

    def function(x: Array | Scalar | Sequence[Any]) -> Any:
        return _apply_unary(op, scalar, name, x)

    function.__name__ = name
    function.__qualname__ = name
    function.__doc__ = (
        f"Elementwise ``{name}`` of an Array of any shape (one node), or of floats and nested "
        "sequences of floats (plain tuples out, nothing recorded)."
    )
    return cast(Elementwise, function)


# --- functions of floats or Values (an Array gives the array function) --------------------------


def _unary_function(name: str) -> Callable[[Any], Any]:
    kernel = _RULES[name][0]
    op = SCALAR_OPS[name]
    array_op = ARRAY_OPS[name]

    def function(x: Any) -> Any:
        if isinstance(x, Value):
            return apply(op, x) if name in ("gelu", "softplus") else getattr(x, name)()
        if isinstance(x, Array):
            return _apply_unary(array_op, function, name, x)
        return kernel(number(x, f"{name}(x)"))

    function.__name__ = name
    return function


_exp, _log, _sqrt, _tanh, _sigmoid, _relu, _gelu, _softplus = (
    _unary_function(n) for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "gelu", "softplus")
)


@overload
def exp(x: float) -> float: ...
@overload
def exp(x: Value) -> Value: ...
@overload
def exp(x: Array) -> Array: ...
@overload
def exp(x: Scalar) -> Scalar: ...
def exp(x: Scalar | Array) -> Scalar | Array:
    """``e ** x``; ``inf`` on overflow."""
    return cast("Scalar | Array", _exp(x))


@overload
def log(x: float) -> float: ...
@overload
def log(x: Value) -> Value: ...
@overload
def log(x: Array) -> Array: ...
@overload
def log(x: Scalar) -> Scalar: ...
def log(x: Scalar | Array) -> Scalar | Array:
    """Natural log; ``-inf`` at 0 and ``nan`` below."""
    return cast("Scalar | Array", _log(x))


@overload
def sqrt(x: float) -> float: ...
@overload
def sqrt(x: Value) -> Value: ...
@overload
def sqrt(x: Array) -> Array: ...
@overload
def sqrt(x: Scalar) -> Scalar: ...
def sqrt(x: Scalar | Array) -> Scalar | Array:
    """Square root; ``nan`` below 0."""
    return cast("Scalar | Array", _sqrt(x))


@overload
def tanh(x: float) -> float: ...
@overload
def tanh(x: Value) -> Value: ...
@overload
def tanh(x: Array) -> Array: ...
@overload
def tanh(x: Scalar) -> Scalar: ...
def tanh(x: Scalar | Array) -> Scalar | Array:
    """Hyperbolic tangent."""
    return cast("Scalar | Array", _tanh(x))


@overload
def sigmoid(x: float) -> float: ...
@overload
def sigmoid(x: Value) -> Value: ...
@overload
def sigmoid(x: Array) -> Array: ...
@overload
def sigmoid(x: Scalar) -> Scalar: ...
def sigmoid(x: Scalar | Array) -> Scalar | Array:
    """Logistic function ``1 / (1 + e ** -x)``, stable for large ``|x|``."""
    return cast("Scalar | Array", _sigmoid(x))


@overload
def relu(x: float) -> float: ...
@overload
def relu(x: Value) -> Value: ...
@overload
def relu(x: Array) -> Array: ...
@overload
def relu(x: Scalar) -> Scalar: ...
def relu(x: Scalar | Array) -> Scalar | Array:
    """``max(x, 0)``."""
    return cast("Scalar | Array", _relu(x))


@overload
def gelu(x: float) -> float: ...
@overload
def gelu(x: Value) -> Value: ...
@overload
def gelu(x: Array) -> Array: ...
@overload
def gelu(x: Scalar) -> Scalar: ...
def gelu(x: Scalar | Array) -> Scalar | Array:
    """``x * Phi(x)``, ``Phi`` the standard normal CDF (PyTorch's default, exact ``gelu``)."""
    return cast("Scalar | Array", _gelu(x))


@overload
def softplus(x: float) -> float: ...
@overload
def softplus(x: Value) -> Value: ...
@overload
def softplus(x: Array) -> Array: ...
@overload
def softplus(x: Scalar) -> Scalar: ...
def softplus(x: Scalar | Array) -> Scalar | Array:
    """``log(1 + e ** x)``, and ``x`` above 20 (``torch.nn.functional.softplus``'s defaults)."""
    return cast("Scalar | Array", _softplus(x))


@overload
def leaky_relu(x: float, slope: float = LEAKY_SLOPE) -> float: ...
@overload
def leaky_relu(x: Value, slope: Scalar = LEAKY_SLOPE) -> Value: ...
@overload
def leaky_relu(x: Array, slope: float = LEAKY_SLOPE) -> Array: ...
@overload
def leaky_relu(x: Scalar, slope: Scalar = LEAKY_SLOPE) -> Scalar: ...
def leaky_relu(x: Scalar | Array, slope: Scalar = LEAKY_SLOPE) -> Scalar | Array:
    """``x`` if positive, else ``slope * x``."""
    if isinstance(x, Array):
        return array_leaky_relu(x, cast(float, slope))
    if isinstance(x, Value) or isinstance(slope, Value):
        return apply(LEAKY_RELU, x, slope)
    return leaky_relu_kernel(number(x, "leaky_relu(x)"), slope)


def _scalar_abs(x: Scalar) -> Scalar:
    return apply(ABS, x) if isinstance(x, Value) else abs(x)


array_exp = _array_function("exp", exp)
array_log = _array_function("log", log)
array_sqrt = _array_function("sqrt", sqrt)
array_tanh = _array_function("tanh", tanh)
array_sigmoid = _array_function("sigmoid", sigmoid)
array_relu = _array_function("relu", relu)
array_gelu = _array_function("gelu", gelu)
array_softplus = _array_function("softplus", softplus)
array_abs = _array_function("abs", _scalar_abs)
array_neg = _array_function("neg", lambda x: -x)


class LeakyElementwise(Protocol):
    """``leaky_relu`` over arrays: an Array gives an Array; floats, Values and nested sequences alike."""

    @overload
    def __call__(self, x: Array, slope: float = LEAKY_SLOPE) -> Array: ...
    @overload
    def __call__(self, x: float, slope: float = LEAKY_SLOPE) -> float: ...
    @overload
    def __call__(self, x: Value, slope: float = LEAKY_SLOPE) -> Value: ...
    @overload
    def __call__(self, x: Sequence[Any], slope: float = LEAKY_SLOPE) -> Data: ...
    def __call__(
        self, x: Array | Scalar | Sequence[Any], slope: float = LEAKY_SLOPE
    ) -> Array | Scalar | Data: ...


def _array_leaky_relu(x: Array | Scalar | Sequence[Any], slope: float = LEAKY_SLOPE) -> Any:
    """``x`` if positive, else ``slope * x``, elementwise over an Array of any shape (one node), or of
    floats and nested sequences of floats (plain tuples out, nothing recorded). ``slope`` is a float."""
    rate = number(slope, "leaky_relu: slope", expected="a float (an array's slope is a constant)")
    return _apply_unary(ARRAY_LEAKY_RELU, leaky_relu, "leaky_relu", x, rate)


_array_leaky_relu.__name__ = _array_leaky_relu.__qualname__ = "leaky_relu"
array_leaky_relu = cast(LeakyElementwise, _array_leaky_relu)
