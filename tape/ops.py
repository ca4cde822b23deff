"""The registry of primitive operations: each op's forward rule beside its derivative rule.

An :class:`Op` has a ``forward`` rule computing its value from its arguments'
primal values, and one ``partial`` rule per argument giving the local derivative
``d value / d argument`` from ``(value, *arguments)``. Recording an op stores the
partials of the arguments that are being tracked; the reverse sweep multiplies
them by the incoming gradient. Forward mode uses the same partials.

Primal values are floats, or, while an enclosing tape records (higher-order
derivatives), the :class:`tape.Value` of that tape; so every rule here is written
with operators and the helpers below, which work for both. Adding an op is one
:func:`define` call in this file.

The n-ary ops ``dot`` and ``vsum`` take sequences: their partial rules return one
partial per element of the corresponding sequence argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Union

from tape import floats

if TYPE_CHECKING:
    from tape.value import Value

Primal = Union[float, "Value"]
"""A value as one tape sees it: a float, or a Value of an enclosing tape."""


@dataclass(frozen=True, eq=False)
class Op:
    """A primitive operation: its name, forward rule and derivative rules.

    Scalar ops have one partial rule per argument (``nary`` ops take sequences and
    their partial rules return one partial per element); the partials serve both
    modes: reverse mode multiplies them by the output's gradient, forward mode sums
    them times the inputs' tangents. Array ops (see :mod:`tape.arrays`) instead have
    a ``vjp`` rule (given the node and its output's gradient, add its inputs'
    gradients into the sweep's buffer) beside a ``jvp`` rule (given what the op
    saved and its inputs' tangents, the output's tangent).
    """

    name: str
    forward: Callable[..., object]
    partials: tuple[Callable[..., object], ...]
    nary: bool = False
    vjp: Callable[..., None] | None = None
    jvp: Callable[..., object] | None = None

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


_REGISTRY: dict[str, Op] = {}


def define(
    name: str,
    forward: Callable[..., object],
    *partials: Callable[..., object],
    nary: bool = False,
    vjp: Callable[..., None] | None = None,
    jvp: Callable[..., object] | None = None,
) -> Op:
    """Register a primitive op under ``name`` (names are unique) and return it."""
    if name in _REGISTRY:
        raise ValueError(f"op {name!r} is already defined")
    if (vjp is None) == (not partials) or (vjp is None) != (jvp is None):
        raise ValueError(f"op {name!r} needs partial rules, or a vjp and a jvp rule")
    op = Op(name, forward, tuple(partials), nary, vjp, jvp)
    _REGISTRY[name] = op
    return op


# Primal helpers: floats go to the IEEE float functions, Values to their own methods.


def p_exp(x: Primal) -> Primal:
    return floats.exp(x) if isinstance(x, float) else x.exp()


def p_log(x: Primal) -> Primal:
    return floats.log(x) if isinstance(x, float) else x.log()


def p_sqrt(x: Primal) -> Primal:
    return floats.sqrt(x) if isinstance(x, float) else x.sqrt()


def p_tanh(x: Primal) -> Primal:
    return floats.tanh(x) if isinstance(x, float) else x.tanh()


def p_sigmoid(x: Primal) -> Primal:
    return floats.sigmoid(x) if isinstance(x, float) else x.sigmoid()


def p_div(x: Primal, y: Primal) -> Primal:
    if isinstance(x, float) and isinstance(y, float):
        return floats.div(x, y)
    return x / y


def p_pow(x: Primal, y: Primal) -> Primal:
    if isinstance(x, float) and isinstance(y, float):
        return floats.pow(x, y)
    return x**y


def p_relu(x: Primal) -> Primal:
    if isinstance(x, float):
        return 0.0 if x <= 0.0 else x  # nan stays nan, as in PyTorch
    return x.relu()


def p_leaky_relu(x: Primal, slope: Primal) -> Primal:
    if isinstance(x, float):
        return x if x > 0.0 else slope * x
    return x.leaky_relu(slope)


def p_abs(x: Primal) -> Primal:
    return abs(x) if isinstance(x, float) else x.__abs__()


def _sign(x: Primal) -> float:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


def _dot_forward(xs: Sequence[Primal], ys: Sequence[Primal]) -> Primal:
    from tape.value import dot  # the enclosing level records one fused node too

    return dot(xs, ys)


def _vsum_forward(xs: Sequence[Primal]) -> Primal:
    from tape.value import vsum

    return vsum(xs)


def _ones(value: Primal, xs: Sequence[Primal]) -> Sequence[Primal]:
    return (1.0,) * len(xs)


# --- the registry: forward rule, then d/d(argument) for each argument -------------

ADD = define("add", lambda x, y: x + y, lambda v, x, y: 1.0, lambda v, x, y: 1.0)
SUB = define("sub", lambda x, y: x - y, lambda v, x, y: 1.0, lambda v, x, y: -1.0)
MUL = define("mul", lambda x, y: x * y, lambda v, x, y: y, lambda v, x, y: x)
DIV = define(
    "div",
    p_div,
    lambda v, x, y: p_div(1.0, y),
    lambda v, x, y: -p_div(v, y),
)
POW = define(
    "pow",
    p_pow,
    lambda v, x, y: y * p_pow(x, y - 1.0),
    lambda v, x, y: 0.0 if v.__class__ is float and v == 0.0 else p_log(x) * v,  # 0 ** y: 0, as PyTorch
)
NEG = define("neg", lambda x: -x, lambda v, x: -1.0)
EXP = define("exp", p_exp, lambda v, x: v)
LOG = define("log", p_log, lambda v, x: p_div(1.0, x))
SQRT = define("sqrt", p_sqrt, lambda v, x: p_div(0.5, v))
TANH = define("tanh", p_tanh, lambda v, x: 1.0 - v * v)
SIGMOID = define("sigmoid", p_sigmoid, lambda v, x: v * (1.0 - v))
RELU = define("relu", p_relu, lambda v, x: 1.0 if x > 0.0 else 0.0)
LEAKY_RELU = define(
    "leaky_relu",
    p_leaky_relu,
    lambda v, x, slope: 1.0 if x > 0.0 else slope,
    lambda v, x, slope: 0.0 if x > 0.0 else x,
)
ABS = define("abs", p_abs, lambda v, x: _sign(x))
DOT = define(
    "dot",
    _dot_forward,
    lambda v, xs, ys: ys,
    lambda v, xs, ys: xs,
    nary=True,
)
VSUM = define("vsum", _vsum_forward, _ones, nary=True)
LEAF = define("leaf", lambda x: x, lambda v, x: 1.0)  # watch(): identity on the watched value

REGISTRY: Mapping[str, Op] = MappingProxyType(_REGISTRY)
"""Every primitive op by name (read-only)."""
