"""Activation functions by name, on floats or tape Values.

Each is a function ``Scalar -> Scalar``: floats in, floats out (no tape), Values in,
one recorded node out. ``leaky_relu`` uses PyTorch's default slope, 0.01.

>>> get_activation("relu")(-2.0), get_activation("tanh")(0.0)
(0.0, 0.0)
>>> check_activation("softplus")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: unknown activation 'softplus'; valid activations: 'relu', 'tanh', 'sigmoid', ...
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Literal, TypeAlias, cast

import tape
from tape import Scalar

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "LEAKY_RELU_SLOPE",
    "Activation",
    "ActivationName",
    "check_activation",
    "get_activation",
    "identity",
]

ActivationName: TypeAlias = Literal["relu", "tanh", "sigmoid", "leaky_relu", "identity"]
"""The name of an activation function."""

Activation: TypeAlias = Callable[[Scalar], Scalar]
"""An elementwise activation: a float gives a float, a Value a Value."""

ACTIVATION_NAMES: tuple[ActivationName, ...] = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
"""Every valid activation name."""

LEAKY_RELU_SLOPE = 0.01
"""The slope of ``leaky_relu`` below zero (``torch.nn.LeakyReLU``'s default)."""


def identity(x: Scalar) -> Scalar:
    """``x`` itself: the activation of an output layer (raw logits or regression outputs)."""
    return x


# tape's own functions, not wrappers: one Python call per unit in the forward pass.
_FUNCTIONS: dict[str, Activation] = {
    "relu": tape.relu,
    "tanh": tape.tanh,
    "sigmoid": tape.sigmoid,
    "leaky_relu": tape.leaky_relu,  # slope defaults to 0.01
    "identity": identity,
}
ACTIVATIONS: MappingProxyType[str, Activation] = MappingProxyType(_FUNCTIONS)
"""Each activation function by name (read-only)."""


def _valid_names() -> str:
    return ", ".join(repr(name) for name in ACTIVATION_NAMES)


def check_activation(name: object) -> ActivationName:
    """``name`` if it names an activation; a ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: {_valid_names()}")
    return cast(ActivationName, name)


def get_activation(name: ActivationName) -> Activation:
    """The activation function called ``name`` (see :data:`ACTIVATION_NAMES`)."""
    return ACTIVATIONS[check_activation(name)]
