"""Named models built from the layers: the small convolutional net ``fnn train --model cnn`` trains.

:class:`ConvNet` classifies flat rows of image pixels (as the digits loader gives them,
row-major): it unflattens each row to ``(channels, height, width)``, runs conv blocks
(``Conv2d`` 3x3 with padding 1, ``MaxPool2d(2)``, the activation: pooling first is the same
function for a monotone activation, on a quarter of the entries), flattens, and ends in
dense layers, all one :func:`~functional_nn.layers.serial`. Its params are the serial's,
named as the equal ``torch.nn.Sequential``'s ``state_dict`` (:meth:`ConvNet.torch_modules`),
so a safetensors file of them loads into PyTorch unchanged.

>>> from functional_nn.random import key
>>> from tape.tree import named_parameters
>>> net = ConvNet((1, 8, 8), channels=(4,), hidden=(), n_out=10)
>>> params = net.init(key(0))
>>> [name for name, _ in named_parameters(params)]
['1.bias', '1.weight', '5.bias', '5.weight']
>>> len(net.apply(params, [[0.0] * 64])[0])
10
>>> net.torch_modules()[:2]
['torch.nn.Unflatten(1, (1, 8, 8))', 'torch.nn.Conv2d(1, 4, 3, padding=1)']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyrsistent import pmap

from functional_nn.layers import (
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    LayerParams,
    Linear,
    MaxPool2d,
    ReLU,
    Serial,
    Sigmoid,
    Tanh,
    serial,
)
from functional_nn.random import Key, key
from functional_nn.serialization import CheckpointError, load_state_dict, state_dict
from tape import arrays

__all__ = ["CONV_ACTIVATIONS", "ConvNet", "Unflatten"]

CONV_ACTIVATIONS: dict[str, tuple[type[Layer], str]] = {
    "relu": (ReLU, "torch.nn.ReLU()"),
    "tanh": (Tanh, "torch.nn.Tanh()"),
    "sigmoid": (Sigmoid, "torch.nn.Sigmoid()"),
}
"""The activations a :class:`ConvNet` takes: its layer, and the PyTorch module's code."""


@dataclass(frozen=True)
class Unflatten:
    """Each flat row of a batch as an array of ``shape``, as ``torch.nn.Unflatten(1, shape)``."""

    shape: tuple[int, ...]

    def init(self, key: Key) -> LayerParams:
        """No parameters."""
        return pmap()

    def apply(self, params: LayerParams, x: Any, *, key: Key | None = None, train: bool = False) -> Any:
        """``x`` of shape ``(batch, prod(shape))`` reshaped to ``(batch, *shape)``."""
        return arrays.reshape(x, (-1, *self.shape))


def _positive(values: tuple[int, ...], what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(f"ConvNet: {what} must be a tuple of positive ints, got {values!r}")
    return values


@dataclass(frozen=True)
class ConvNet:
    """A convolutional classifier of flat image rows; see the module's docstring.

    - ``image``: ``(channels, height, width)`` of one input row (``prod(image)`` features).
    - ``channels``: the output channels of each conv block; each block halves the
      height and width (rounding down), which must stay at least 1.
    - ``hidden``: the widths of the dense layers between the flattened blocks and the
      ``n_out`` outputs (raw logits).
    - ``activation``: after every conv and hidden dense layer, one of :data:`CONV_ACTIVATIONS`.
    - ``dropout``: before each dense layer, in training (0: none).

    Raises ValueError for an invalid spec.
    """

    image: tuple[int, int, int]
    channels: tuple[int, ...]
    hidden: tuple[int, ...]
    n_out: int
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.image, "image")
        if len(self.image) != 3:
            raise ValueError(f"ConvNet: image must be (channels, height, width), got {self.image!r}")
        _positive(self.channels, "channels")
        if not self.channels:
            raise ValueError("ConvNet: channels must name at least one conv block")
        _positive(self.hidden, "hidden")
        _positive((self.n_out,), "n_out")
        if self.activation not in CONV_ACTIVATIONS:
            raise ValueError(
                f"ConvNet: activation must be one of {', '.join(CONV_ACTIVATIONS)}, not {self.activation!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ConvNet: dropout must be in [0, 1), got {self.dropout!r}")
        _, height, width = self.image
        if min(height, width) >> len(self.channels) < 1:
            raise ValueError(
                f"ConvNet: {len(self.channels)} conv blocks halve a {height}x{width} image below 1x1"
            )

    @property
    def n_in(self) -> int:
        """The input width: the pixels of one image."""
        return math.prod(self.image)

    @property
    def stochastic(self) -> bool:
        """Whether training draws dropout masks from the key."""
        return self.dropout > 0.0

    def _layout(self) -> list[tuple[Layer, str]]:
        """Each layer of the serial, with the code of the equal PyTorch module."""
        act, act_code = CONV_ACTIVATIONS[self.activation]
        channels, height, width = self.image
        layout: list[tuple[Layer, str]] = [(Unflatten(self.image), f"torch.nn.Unflatten(1, {self.image!r})")]
        for out in self.channels:
            layout += [
                (Conv2d(channels, out, 3, padding=1), f"torch.nn.Conv2d({channels}, {out}, 3, padding=1)"),
                (MaxPool2d(2), "torch.nn.MaxPool2d(2)"),
                (act(), act_code),
            ]
            channels, height, width = out, height // 2, width // 2
        layout.append((Flatten(), "torch.nn.Flatten()"))
        fan_in = channels * height * width
        widths = (*self.hidden, self.n_out)
        for i, size in enumerate(widths):
            if self.dropout > 0.0:
                layout.append((Dropout(self.dropout), f"torch.nn.Dropout({self.dropout!r})"))
            layout.append((Linear(fan_in, size), f"torch.nn.Linear({fan_in}, {size})"))
            if i < len(widths) - 1:
                layout.append((act(), act_code))
            fan_in = size
        return layout

    def network(self) -> Serial:
        """The model as one :func:`~functional_nn.layers.serial` of layers."""
        return serial(*(layer for layer, _ in self._layout()))

    def torch_modules(self) -> list[str]:
        """The code of each module of the equal ``torch.nn.Sequential``, in order."""
        return [code for _, code in self._layout()]

    def describe(self) -> str:
        """A one-line summary, e.g. ``CNN 1x8x8 conv 8 pool, 32, 10 (relu)``."""
        blocks = " ".join(f"conv {c} pool" for c in self.channels)
        dense = ", ".join(str(s) for s in (*self.hidden, self.n_out))
        return f"CNN {'x'.join(map(str, self.image))} {blocks}, {dense} ({self.activation})"

    def init(self, key: Key) -> LayerParams:
        """Fresh params drawn from ``key``."""
        return self.network().init(key)

    def apply(self, params: LayerParams, x: Any, *, key: Key | None = None, train: bool = False) -> Any:
        """The logits of a batch ``x`` of flat image rows (``n_in`` features each)."""
        return self.network().apply(params, x, key=key, train=train)

    def check_params(self, params: object) -> LayerParams:
        """``params`` in this net's own structure if their names and shapes are its; else a
        ValueError naming the misfit (a checkpoint's params come back as read, so use this)."""
        try:
            return load_state_dict(state_dict(params), like=self.init(key(0)))
        except CheckpointError as error:
            raise ValueError(f"params do not fit {self!r}: {error}") from error
