"""Weight initialisers: He (Kaiming) normal and Glorot (Xavier) uniform, from explicit keys.

- ``"he"``: normal with mean 0 and standard deviation ``sqrt(2 / fan_in)``, as
  ``torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")``. Keeps the
  variance of activations steady through relu layers (used for leaky_relu too: its
  exact gain, ``sqrt(2 / (1 + 0.01 ** 2))``, differs by 0.005%).
- ``"glorot"``: uniform on ``[-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, as
  ``torch.nn.init.xavier_uniform_(w)``. For tanh, sigmoid and identity layers.

Biases start at zero. A weight matrix is a persistent vector of rows, one row per
output unit (``[out, in]``, like ``torch.nn.Linear.weight``).

>>> from functional_nn.random import key
>>> w = weight_matrix(key(0), n_in=3, n_out=2, initializer="glorot")
>>> len(w), len(w[0])
(2, 3)
>>> default_initializer("tanh"), default_initializer("relu")
('glorot', 'he')
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

from pyrsistent import PVector, pvector

from functional_nn.activations import ActivationName, check_activation
from functional_nn.random import Key, normal, uniform

__all__ = [
    "INITIALIZER_NAMES",
    "InitName",
    "check_initializer",
    "default_initializer",
    "glorot_bound",
    "he_std",
    "sample",
    "weight_matrix",
    "zeros",
]

InitName: TypeAlias = Literal["he", "glorot"]
"""The name of a weight initialiser."""

INITIALIZER_NAMES: tuple[InitName, ...] = ("he", "glorot")
"""Every valid initialiser name."""


def check_initializer(name: object) -> InitName:
    """``name`` if it names an initialiser; a ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in INITIALIZER_NAMES:
        valid = ", ".join(repr(n) for n in INITIALIZER_NAMES)
        raise ValueError(f"unknown initializer {name!r}; valid initializers: {valid}")
    return name


def default_initializer(activation: ActivationName) -> InitName:
    """He for relu and leaky_relu, Glorot for tanh, sigmoid and identity."""
    return "he" if check_activation(activation) in ("relu", "leaky_relu") else "glorot"


def _check_fan(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def he_std(fan_in: int) -> float:
    """The standard deviation of He-normal weights: ``sqrt(2 / fan_in)``."""
    return math.sqrt(2.0 / _check_fan(fan_in, "fan_in"))


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """The bound ``a`` of Glorot-uniform weights on ``[-a, a)``: ``sqrt(6 / (fan_in + fan_out))``."""
    return math.sqrt(6.0 / (_check_fan(fan_in, "fan_in") + _check_fan(fan_out, "fan_out")))


def sample(key: Key, n: int, *, fan_in: int, fan_out: int, initializer: InitName) -> tuple[float, ...]:
    """``n`` initial weights for a layer of the given fans, drawn from ``key``."""
    scheme = check_initializer(initializer)
    _check_fan(fan_in, "fan_in")
    _check_fan(fan_out, "fan_out")
    if scheme == "he":
        return normal(key, n, 0.0, he_std(fan_in))
    bound = glorot_bound(fan_in, fan_out)
    return uniform(key, n, -bound, bound)


def weight_matrix(key: Key, n_in: int, n_out: int, initializer: InitName) -> PVector[PVector[float]]:
    """An ``n_out x n_in`` weight matrix (one row per output unit) drawn from ``key``."""
    flat = sample(key, n_out * n_in, fan_in=n_in, fan_out=n_out, initializer=initializer)
    return pvector([pvector(flat[j * n_in : (j + 1) * n_in]) for j in range(n_out)])


def zeros(n: int) -> PVector[float]:
    """``n`` zero biases."""
    return pvector([0.0] * n)
