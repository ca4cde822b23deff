"""A neuron: ``f(sum_i w_i x_i + b)``, as a pair of pure functions.

Params are ``pmap({"weight": pvector([w_1, ..., w_n]), "bias": b})``. The weighted
sum is one fused :func:`tape.dot` node (never a chain of scalar adds), then a bias
add and the activation: three nodes per neuron on a tape, and plain float
arithmetic without one.

>>> from functional_nn.random import key
>>> params = init(key(0), 3)
>>> len(params["weight"]), params["bias"]
(3, 0.0)
>>> from pyrsistent import pmap, pvector
>>> apply(pmap({"weight": pvector([1.0, -2.0]), "bias": 0.5}), [3.0, 1.0])
1.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, cast

from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn.activations import ActivationName, get_activation, identity
from functional_nn.init import InitName, sample
from functional_nn.random import Key
from tape import Scalar, dot

__all__ = ["NeuronParams", "apply", "init"]

NeuronParams: TypeAlias = PMap[str, PVector[float] | float]
"""``{"weight": PVector[float], "bias": float}``: one weight per input, one bias."""


def init(key: Key, n_in: int, *, initializer: InitName = "he", fan_out: int = 1) -> NeuronParams:
    """A neuron with ``n_in`` weights drawn from ``key`` and a zero bias.

    ``fan_out`` only matters to Glorot (a neuron alone has one output).
    """
    weight = pvector(sample(key, n_in, fan_in=n_in, fan_out=fan_out, initializer=initializer))
    return pmap({"weight": weight, "bias": 0.0})


def apply(params: NeuronParams, x: Sequence[Scalar], *, activation: ActivationName = "relu") -> Scalar:
    """``activation(dot(weight, x) + bias)``: a float for float inputs, a Value while a tape records.

    Raises ValueError when ``len(x)`` differs from the number of weights.
    """
    f = get_activation(activation)
    weight = cast("PVector[float]", params["weight"])
    bias = cast(float, params["bias"])
    if len(x) != len(weight):
        raise ValueError(f"neuron: expected an input of width {len(weight)} (its weights), got {len(x)}")
    z = dot(weight, x) + bias
    return z if f is identity else f(z)
