"""Reverse-mode autodiff on an explicit tape of frozen nodes.

The package is layered bottom to top, imports pointing down only:

1. ``errors``, ``floats``, ``tree``: exceptions, IEEE float kernels, pytrees.
2. ``core``: the op record and registry (``core.op``), frozen nodes and tracked
   handles (``core.node``), the recordings with their one reverse sweep (``core.recording``).
3. ``validate``: one validator per kind of input.
4. ``value``, ``array``: the front-ends, Value and Array.
5. ``ops``: the op families, each owning its ops' kernels and rules.
6. ``gradient_tape``, ``transforms``, ``jit``, ``forward``, ``higher_order``,
   ``gradient_check``, ``arrays``, ``graph``, ``testing``: the public facade.

>>> import tape
>>> tape.grad(lambda x: tape.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.85...
"""

from tape import arrays, tree
from tape.array import Array
from tape.core.node import Node
from tape.core.op import REGISTRY, Op
from tape.errors import GradientCheckError, NonFiniteError, TapeError, TracingError
from tape.forward import ForwardTape, jvp
from tape.gradient_check import GradientReport, check_gradients, numerical_grad
from tape.gradient_tape import Tape
from tape.higher_order import hessian, hvp, jacobian, vjp
from tape.jit import jit
from tape.ops.elementwise import exp, gelu, leaky_relu, log, relu, sigmoid, softplus, sqrt, tanh
from tape.ops.losses import Normaliser, normaliser
from tape.ops.reductions import dot, max_shift, vsum
from tape.primitives import define
from tape.transforms import grad, stop_gradient, value_and_grad
from tape.value import Scalar, Value

__all__ = [
    "REGISTRY",
    "Array",
    "ForwardTape",
    "GradientCheckError",
    "GradientReport",
    "Node",
    "NonFiniteError",
    "Normaliser",
    "Op",
    "Scalar",
    "Tape",
    "TapeError",
    "TracingError",
    "Value",
    "arrays",
    "check_gradients",
    "define",
    "dot",
    "exp",
    "gelu",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jit",
    "jvp",
    "leaky_relu",
    "log",
    "max_shift",
    "normaliser",
    "numerical_grad",
    "relu",
    "sigmoid",
    "softplus",
    "sqrt",
    "stop_gradient",
    "tanh",
    "tree",
    "value_and_grad",
    "vjp",
    "vsum",
]
