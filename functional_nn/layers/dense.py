"""Layers over the last axis: ``Linear``, and ``Dropout`` (which works on any shape).

>>> from functional_nn.random import key
>>> layer = Linear(3, 2)
>>> params = layer.init(key(0))
>>> sorted(params), len(params["weight"]), len(params["weight"][0])
(['bias', 'weight'], 2, 3)
>>> len(layer.apply(params, [[1.0, 2.0, 3.0]])[0])
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
    uniform_param,
)
from functional_nn.random import Key, split
from functional_nn.regularization import check_dropout_rate, dropout_mask
from tape import arrays
from tape.array import nest

__all__ = ["Dropout", "Linear"]


@dataclass(frozen=True)
class Linear:
    """``x @ weight.T + bias`` over the last axis, as ``torch.nn.Linear(in_features, out_features, bias)``.

    Parameters ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)``
    (absent with ``bias=False``), both uniform on ``[-1/sqrt(in_features), 1/sqrt(in_features))``
    as PyTorch initialises them.
    """

    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self) -> None:
        check_positive_int(self.in_features, "Linear: in_features")
        check_positive_int(self.out_features, "Linear: out_features")
        if not isinstance(self.bias, bool):
            raise TypeError(f"Linear: bias must be a bool, not {type(self.bias).__name__}")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape."""
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def init(self, key: Key) -> LayerParams:
        """``weight`` and ``bias`` drawn from ``key``."""
        bound = 1.0 / math.sqrt(self.in_features)
        k_weight, k_bias = split(key)
        shapes = self.shapes
        weight = uniform_param(k_weight, shapes["weight"], bound)
        if not self.bias:
            return pmap({"weight": weight})
        return pmap({"weight": weight, "bias": uniform_param(k_bias, shapes["bias"], bound)})

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """``x @ weight.T + bias`` for ``x`` of shape ``(batch, ..., in_features)``."""
        shapes = self.shapes
        weight = get_param(params, "weight", "Linear", shapes["weight"])
        bias = get_param(params, "bias", "Linear", shapes["bias"]) if self.bias else None
        return like_input(arrays.linear(weight, bias, x), x)


@dataclass(frozen=True)
class Dropout(Parameterless):
    """Zero each entry with probability ``p`` in training and scale the rest by ``1/(1-p)``.

    As ``torch.nn.Dropout(p)``: the identity when not training (or ``p == 0``). The mask
    is drawn from ``key`` (see :func:`functional_nn.regularization.dropout_mask`) and
    applied with :func:`tape.arrays.scale`, so no gradient flows through dropped entries.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", check_dropout_rate(self.p))

    @property
    def stochastic(self) -> bool:
        """Whether training draws from the key: ``p > 0``."""
        return self.p > 0.0

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """``x`` with dropout applied when ``train`` (then ``key`` is required)."""
        xs = as_operand(x)
        if not train or self.p == 0.0:
            return like_input(xs, x)
        if key is None:
            raise ValueError(
                "Dropout: training needs a key (pass key=functional_nn.random.key(seed), "
                "a fresh one per step), or train=False"
            )
        shape = xs.shape
        survivors = dropout_mask(key, self.p, math.prod(shape))
        keep = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        factors: Any = nest([keep if alive else 0.0 for alive in survivors], shape)
        return like_input(arrays.scale(xs, factors), x)
