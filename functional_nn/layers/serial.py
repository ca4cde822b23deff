"""Composition: ``serial(*layers)``, layers applied in order, as ``torch.nn.Sequential``.

The composed params are keyed ``"0"``, ``"1"``, ... by position, each the layer's own
params; a parameterless layer (an activation, ``Flatten``, ``Dropout``) has no entry,
so the dotted names are those of ``nn.Sequential``'s ``state_dict`` (``0.weight``,
``2.bias``, ...). An :class:`~functional_nn.mlp.MLP` may be one of the layers: it is
applied to the batch through :meth:`~functional_nn.mlp.MLP.apply_batch` (see
:class:`MLPLayer`).

>>> from functional_nn.layers import Linear, ReLU
>>> from functional_nn.random import key
>>> model = serial(Linear(2, 4), ReLU(), Linear(4, 1))
>>> params = model.init(key(0))
>>> sorted(params), sorted(params["2"])
(['0', '2'], ['bias', 'weight'])
>>> len(model.apply(params, [[0.5, -1.0], [1.0, 0.0]]))
2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pyrsistent import PMap, pmap

from functional_nn.layers.base import ArrayLike, Layer, LayerParams, like_input
from functional_nn.mlp import MLP
from functional_nn.random import Key, split
from tape.array import constant_array

__all__ = ["MLPLayer", "Serial", "as_layer", "serial"]

_NO_PARAMS: LayerParams = pmap()


@dataclass(frozen=True)
class MLPLayer:
    """An :class:`~functional_nn.mlp.MLP` as a batched layer: ``apply`` is its ``apply_batch``."""

    model: MLP

    @property
    def stochastic(self) -> bool:
        """Whether training draws dropout masks from the key."""
        return self.model.dropout > 0.0

    def init(self, key: Key) -> LayerParams:
        """The MLP's params (``{"layers": [...]}``)."""
        return self.model.init(key)

    def apply(self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False) -> Any:
        """The MLP's outputs for the batch ``x`` (one row per example)."""
        return self.model.apply_batch(params, x, key=key, train=train)


def as_layer(layer: Layer | MLP) -> Layer:
    """``layer`` itself, or an MLP adapted to the batched protocol (:class:`MLPLayer`).

    Anything else is a TypeError naming what is missing.
    """
    if isinstance(layer, MLP):
        return MLPLayer(layer)
    if not (callable(getattr(layer, "init", None)) and callable(getattr(layer, "apply", None))):
        raise TypeError(
            f"serial: {type(layer).__name__} {layer!r} is not a layer (it needs init(key) and "
            "apply(params, x, *, key, train) methods)"
        )
    return layer


def _holds_floats(data: object) -> bool:
    """Whether ``data`` is nested tuples of floats (not of Values, as on the scalar path)."""
    while data.__class__ is tuple:
        items = cast("tuple[object, ...]", data)
        if not items:
            return False
        data = items[0]
    return data.__class__ is float


@dataclass(frozen=True)
class Serial:
    """Layers applied in order; build one with :func:`serial`."""

    layers: tuple[Layer, ...]

    def init(self, key: Key) -> LayerParams:
        """Each layer's params from its own key, keyed by position; parameterless layers are left out."""
        keys = split(key, len(self.layers))
        made = {str(i): layer.init(k) for i, (layer, k) in enumerate(zip(self.layers, keys, strict=True))}
        return pmap({name: p for name, p in made.items() if len(p)})

    def apply(self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False) -> Any:
        """``x`` through every layer; in training each layer gets its own key split from ``key``."""
        if not isinstance(params, PMap):
            raise TypeError(f"serial: params must be a pyrsistent map, not {type(params).__name__}")
        unknown = sorted(set(params) - {str(i) for i in range(len(self.layers))})
        if unknown:
            raise ValueError(
                f"serial: params hold {unknown!r}, which name none of its {len(self.layers)} layers"
            )
        keys = split(key, len(self.layers)) if key is not None else (None,) * len(self.layers)
        h: Any = x
        for i, (layer, k) in enumerate(zip(self.layers, keys, strict=True)):
            h = layer.apply(params.get(str(i), _NO_PARAMS), h, key=k, train=train)
            if _holds_floats(h):  # plain floats from our own ops: checked once, not by every layer
                h = constant_array(h)
        return like_input(h, x)


def serial(*layers: Layer | MLP) -> Serial:
    """The layers composed in order (an MLP among them is adapted with :class:`MLPLayer`)."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    return Serial(tuple(as_layer(layer) for layer in layers))
