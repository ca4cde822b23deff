"""Recurrent layers: ``GRU``, batch first, with PyTorch's parameters and gate order.

>>> from functional_nn.random import key
>>> gru = GRU(3, 5)
>>> sorted(gru.init(key(0)))
['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from pyrsistent import pmap

from functional_nn.layers.base import (
    ArrayLike,
    LayerParams,
    Output,
    as_operand,
    check_positive_int,
    get_param,
    like_input,
    uniform_param,
)
from functional_nn.random import Key, split
from tape import Array, arrays
from tape.array import asarray

__all__ = ["GRU"]


@dataclass(frozen=True)
class GRU:
    """A one-layer gated recurrent unit, as ``torch.nn.GRU(input_size, hidden_size, batch_first=True)``.

    For each step ``t`` of an input ``(batch, time, input_size)``, from ``h = 0``::

        r = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz)
        n = tanh(W_in x_t + b_in + r * (W_hn h + b_hn))
        h = (1 - z) * n + z * h

    Parameters, as PyTorch names and stacks them (gates in the order ``r, z, n``):
    ``weight_ih_l0`` ``(3 * hidden_size, input_size)``, ``weight_hh_l0``
    ``(3 * hidden_size, hidden_size)``, ``bias_ih_l0`` and ``bias_hh_l0``
    ``(3 * hidden_size,)``, all uniform on ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.

    ``apply`` returns the outputs ``(batch, time, hidden_size)``, the hidden state after
    every step: PyTorch's ``output``. PyTorch also returns ``h_n``, which is the last
    step of it: ``outputs[:, -1]`` (with a leading layer axis in PyTorch).
    """

    input_size: int
    hidden_size: int

    def __post_init__(self) -> None:
        check_positive_int(self.input_size, "GRU: input_size")
        check_positive_int(self.hidden_size, "GRU: hidden_size")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape (the three gates' rows stacked, as PyTorch's)."""
        h = self.hidden_size
        return {
            "weight_ih_l0": (3 * h, self.input_size),
            "weight_hh_l0": (3 * h, h),
            "bias_ih_l0": (3 * h,),
            "bias_hh_l0": (3 * h,),
        }

    def init(self, key: Key) -> LayerParams:
        """The four parameters drawn from ``key``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        return pmap(
            {
                name: uniform_param(k, shape, bound)
                for k, (name, shape) in zip(split(key, 4), self.shapes.items(), strict=True)
            }
        )

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """The hidden state after each step of ``x`` ``(batch, time, input_size)``.

        Shape ``(batch, time, hidden_size)``: an Array for an Array input, nested tuples for nested floats.
        """
        xs = as_operand(x)
        shape = xs.shape
        if len(shape) != 3 or shape[2] != self.input_size or shape[1] == 0:
            raise ValueError(
                f"GRU: expected input of shape (batch, time, {self.input_size}) with time >= 1, got {shape}"
            )
        batch, steps, _ = shape
        hidden = self.hidden_size
        w_ih, w_hh, b_ih, b_hh = (
            get_param(params, name, "GRU", shape) for name, shape in self.shapes.items()
        )
        gates_x = cast(Array, arrays.linear(w_ih, b_ih, xs))  # every step's input projections at once
        h: Any = asarray(((0.0,) * hidden,) * batch)
        outputs = []
        gh: Any
        rz: Any
        n: Any
        for t in range(steps):
            gx = gates_x[:, t]
            gh = arrays.linear(w_hh, b_hh, h)
            rz = arrays.sigmoid(gx[:, : 2 * hidden] + gh[:, : 2 * hidden])
            r, z = rz[:, :hidden], rz[:, hidden:]
            n = arrays.tanh(gx[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
            h = n + z * (h - n)
            outputs.append(h)
        return like_input(arrays.stack(outputs, axis=1), x)
