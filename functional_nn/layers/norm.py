"""Normalisation: ``LayerNorm`` over the last axis.

>>> from functional_nn.random import key
>>> norm = LayerNorm(3)
>>> [round(v, 6) for v in norm.apply(norm.init(key(0)), [[1.0, 2.0, 3.0]])[0]]
[-1.224736, 0.0, 1.224736]
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrsistent import pmap

from functional_nn.layers.base import (
    ArrayLike,
    LayerParams,
    Output,
    check_positive_int,
    check_real,
    constant_param,
    get_param,
    like_input,
)
from functional_nn.random import Key
from tape import arrays

__all__ = ["LayerNorm"]


@dataclass(frozen=True)
class LayerNorm:
    """Normalisation over the last axis, as ``torch.nn.LayerNorm(normalized_shape, eps)``.

    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance; the
    parameters ``weight`` (ones) and ``bias`` (zeros) have shape ``(normalized_shape,)``.
    """

    normalized_shape: int
    eps: float = 1e-5

    def __post_init__(self) -> None:
        check_positive_int(self.normalized_shape, "LayerNorm: normalized_shape")
        object.__setattr__(self, "eps", check_real(self.eps, "LayerNorm: eps", positive=True))

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape."""
        return {"weight": (self.normalized_shape,), "bias": (self.normalized_shape,)}

    def init(self, key: Key) -> LayerParams:
        """``weight`` ones and ``bias`` zeros (the key is not used)."""
        shapes = self.shapes
        return pmap(
            {"weight": constant_param(1.0, shapes["weight"]), "bias": constant_param(0.0, shapes["bias"])}
        )

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """``x`` ``(..., normalized_shape)`` normalised over its last axis."""
        shapes = self.shapes
        weight = get_param(params, "weight", "LayerNorm", shapes["weight"])
        bias = get_param(params, "bias", "LayerNorm", shapes["bias"])
        return like_input(arrays.layer_norm(x, weight, bias, eps=self.eps), x)
