"""Reverse-mode autodiff on an explicit tape of frozen nodes.

>>> import tape
>>> tape.grad(lambda x: tape.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.85...
"""

from tape import arrays, tree
from tape.arrays import Array
from tape.errors import GradientCheckError, NonFiniteError, TapeError
from tape.forward import ForwardTape, jvp
from tape.gradient_check import GradientReport, check_gradients, numerical_grad
from tape.gradient_tape import Node, Tape
from tape.higher_order import hessian, hvp, jacobian, vjp
from tape.ops import REGISTRY, Op
from tape.transforms import grad, stop_gradient, value_and_grad
from tape.value import Scalar, Value, dot, exp, leaky_relu, log, relu, sigmoid, sqrt, tanh, vsum

__all__ = [
    "ForwardTape",
    "REGISTRY",
    "Array",
    "GradientCheckError",
    "GradientReport",
    "Node",
    "NonFiniteError",
    "Op",
    "Scalar",
    "Tape",
    "TapeError",
    "Value",
    "arrays",
    "check_gradients",
    "dot",
    "exp",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "leaky_relu",
    "log",
    "numerical_grad",
    "relu",
    "sigmoid",
    "sqrt",
    "stop_gradient",
    "tanh",
    "tree",
    "value_and_grad",
    "vjp",
    "vsum",
]
