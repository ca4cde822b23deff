"""Layers as pure init/apply pairs with PyTorch's names, shapes and numbers, and ``serial``.

Each layer is a frozen, picklable spec: ``init(key)`` gives a pyrsistent map of
parameters named and shaped as the PyTorch module's ``state_dict``; ``apply(params, x,
*, key=None, train=False)`` runs a batch (first axis: the batch) through the array ops
of :mod:`tape.arrays`, recording a handful of tape nodes per layer under
``tape.grad(..., arrays=True)`` and running at float speed on plain floats.

- dense: :class:`Linear`, :class:`Dropout`
- activations: :class:`ReLU`, :class:`Tanh`, :class:`Sigmoid`, :class:`GELU`
- images (NCHW): :class:`Conv2d`, :class:`MaxPool2d`, :class:`AvgPool2d`, :class:`Flatten`
- tokens and normalisation: :class:`Embedding`, :class:`LayerNorm`
- sequences (batch first): :class:`GRU`, :class:`MultiHeadAttention`
- composition: :func:`serial`; an :class:`~functional_nn.mlp.MLP` joins through :class:`MLPLayer`

>>> from functional_nn.random import key
>>> model = serial(Linear(2, 8), Tanh(), Linear(8, 3))
>>> params = model.init(key(0))
>>> [name for name, _ in named_parameters(params)]
['0.bias', '0.weight', '2.bias', '2.weight']
>>> [len(row) for row in model.apply(params, [[0.5, -1.0]])]
[3]
"""

from functional_nn.layers.activation import GELU, ReLU, Sigmoid, Tanh
from functional_nn.layers.attention import MultiHeadAttention, causal_mask
from functional_nn.layers.base import ArrayLike, Layer, LayerParams, Output
from functional_nn.layers.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from functional_nn.layers.dense import Dropout, Linear
from functional_nn.layers.embedding import Embedding
from functional_nn.layers.norm import LayerNorm
from functional_nn.layers.recurrent import GRU
from functional_nn.layers.serial import MLPLayer, Serial, as_layer, serial
from tape.tree import named_parameters

__all__ = [
    "GELU",
    "GRU",
    "ArrayLike",
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Layer",
    "LayerNorm",
    "LayerParams",
    "Linear",
    "MLPLayer",
    "MaxPool2d",
    "MultiHeadAttention",
    "Output",
    "ReLU",
    "Serial",
    "Sigmoid",
    "Tanh",
    "as_layer",
    "causal_mask",
    "named_parameters",
    "serial",
]
