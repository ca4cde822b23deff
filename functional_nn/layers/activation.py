"""Activations as parameterless layers, named as PyTorch's modules: ``ReLU``, ``Tanh``, ``Sigmoid``, ``GELU``.

Each applies the elementwise function of :mod:`tape.arrays` to an input of any shape.

>>> from functional_nn.random import key
>>> ReLU().init(key(0))
pmap({})
>>> ReLU().apply(ReLU().init(key(0)), [[-1.0, 2.0]])
((0.0, 2.0),)
"""

from __future__ import annotations

from dataclasses import dataclass

from functional_nn.layers.base import ArrayLike, LayerParams, Output, Parameterless, like_input
from functional_nn.random import Key
from tape import arrays

__all__ = ["GELU", "ReLU", "Sigmoid", "Tanh"]


class _Elementwise(Parameterless):
    """A parameterless layer applying one elementwise function of :mod:`tape.arrays`."""

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """The function applied to every entry of ``x``."""
        return like_input(self.function(x), x)

    def function(self, x: ArrayLike) -> Output:
        """The elementwise function (each activation defines it)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ReLU(_Elementwise):
    """``max(x, 0)`` elementwise, as ``torch.nn.ReLU()``."""

    def function(self, x: ArrayLike) -> Output:
        """``relu(x)``."""
        result: Output = arrays.relu(x)
        return result


@dataclass(frozen=True)
class Tanh(_Elementwise):
    """``tanh(x)`` elementwise, as ``torch.nn.Tanh()``."""

    def function(self, x: ArrayLike) -> Output:
        """``tanh(x)``."""
        result: Output = arrays.tanh(x)
        return result


@dataclass(frozen=True)
class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` elementwise, as ``torch.nn.Sigmoid()``."""

    def function(self, x: ArrayLike) -> Output:
        """``sigmoid(x)``."""
        result: Output = arrays.sigmoid(x)
        return result


@dataclass(frozen=True)
class GELU(_Elementwise):
    """``x * Phi(x)`` elementwise (``Phi`` the standard normal CDF), as ``torch.nn.GELU()``."""

    def function(self, x: ArrayLike) -> Output:
        """``gelu(x)``."""
        result: Output = arrays.gelu(x)
        return result
