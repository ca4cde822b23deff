"""Convolution and pooling in PyTorch's NCHW layout: ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``.

Inputs are ``(batch, channels, height, width)``; a convolution's weight is
``(out_channels, in_channels, kernel_height, kernel_width)`` (OIHW), as in
``torch.nn.Conv2d``. ``Flatten`` turns a batch of feature maps into rows for a
``Linear`` head.

>>> from functional_nn.random import key
>>> conv = Conv2d(1, 2, kernel_size=3, padding=1)
>>> params = conv.init(key(0))
>>> [len(params["weight"]), len(params["weight"][0]), len(params["weight"][0][0])]
[2, 1, 3]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyrsistent import pmap

from functional_nn.layers.base import (
    ArrayLike,
    LayerParams,
    Output,
    Parameterless,
    as_operand,
    check_positive_int,
    get_param,
    like_input,
    pair,
    uniform_param,
)
from functional_nn.random import Key, split
from tape import Array, arrays

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "MaxPool2d"]


def _check_images(x: Array, layer: str, channels: int | None = None) -> Array:
    shape = x.shape
    if len(shape) != 4:
        raise ValueError(f"{layer}: expected input of shape (batch, channels, height, width), got {shape}")
    if channels is not None and shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got input of shape {shape}")
    return x


@dataclass(frozen=True)
class Conv2d:
    """A 2-d convolution (cross-correlation), as ``torch.nn.Conv2d(in, out, kernel_size, stride, padding)``.

    Parameters ``weight`` ``(out_channels, in_channels, kh, kw)`` and ``bias``
    ``(out_channels,)``, uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = in_channels * kh * kw``, as PyTorch initialises them. ``kernel_size``,
    ``stride`` and ``padding`` are ints or ``(height, width)`` pairs (zero padding).
    """

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    bias: bool = True

    def __post_init__(self) -> None:
        check_positive_int(self.in_channels, "Conv2d: in_channels")
        check_positive_int(self.out_channels, "Conv2d: out_channels")
        pair(self.kernel_size, "Conv2d: kernel_size", least=1)
        pair(self.stride, "Conv2d: stride", least=1)
        pair(self.padding, "Conv2d: padding", least=0)
        if not isinstance(self.bias, bool):
            raise TypeError(f"Conv2d: bias must be a bool, not {type(self.bias).__name__}")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape."""
        kh, kw = pair(self.kernel_size, "kernel_size", least=1)
        return {"weight": (self.out_channels, self.in_channels, kh, kw), "bias": (self.out_channels,)}

    def init(self, key: Key) -> LayerParams:
        """``weight`` and ``bias`` drawn from ``key``."""
        shapes = self.shapes
        _, in_channels, kh, kw = shapes["weight"]
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        k_weight, k_bias = split(key)
        weight = uniform_param(k_weight, shapes["weight"], bound)
        if not self.bias:
            return pmap({"weight": weight})
        return pmap({"weight": weight, "bias": uniform_param(k_bias, shapes["bias"], bound)})

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """The convolution of ``x`` ``(batch, in_channels, h, w)``: ``(batch, out_channels, h', w')``."""
        xs = _check_images(as_operand(x), "Conv2d", self.in_channels)
        shapes = self.shapes
        weight = get_param(params, "weight", "Conv2d", shapes["weight"])
        bias = get_param(params, "bias", "Conv2d", shapes["bias"]) if self.bias else None
        return like_input(arrays.conv2d(xs, weight, bias, stride=self.stride, padding=self.padding), x)


@dataclass(frozen=True)
class MaxPool2d(Parameterless):
    """The maximum over each ``kernel_size`` window, as ``torch.nn.MaxPool2d(kernel_size, stride)``.

    ``stride`` defaults to ``kernel_size``; the gradient goes to the first maximal entry.
    """

    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        pair(self.kernel_size, "MaxPool2d: kernel_size", least=1)
        if self.stride is not None:
            pair(self.stride, "MaxPool2d: stride", least=1)

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """The pooled ``x`` ``(batch, channels, h, w)``."""
        xs = _check_images(as_operand(x), "MaxPool2d")
        return like_input(arrays.max_pool2d(xs, self.kernel_size, self.stride), x)


@dataclass(frozen=True)
class AvgPool2d(Parameterless):
    """The mean over each ``kernel_size`` window, as ``torch.nn.AvgPool2d(kernel_size, stride)``."""

    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        pair(self.kernel_size, "AvgPool2d: kernel_size", least=1)
        if self.stride is not None:
            pair(self.stride, "AvgPool2d: stride", least=1)

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """The pooled ``x`` ``(batch, channels, h, w)``."""
        xs = _check_images(as_operand(x), "AvgPool2d")
        return like_input(arrays.avg_pool2d(xs, self.kernel_size, self.stride), x)


@dataclass(frozen=True)
class Flatten(Parameterless):
    """Every axis after the batch's flattened into one, as ``torch.nn.Flatten()``: ``(batch, features)``."""

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """``x`` reshaped to ``(batch, product of the other axes)`` (row-major, as PyTorch)."""
        xs = as_operand(x)
        shape = xs.shape
        if not shape:
            raise ValueError("Flatten: expected a batch (at least one axis), got a 0-d input")
        return like_input(arrays.reshape(xs, (shape[0], math.prod(shape[1:]))), x)
