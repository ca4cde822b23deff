"""A lookup table of vectors: ``Embedding``, token ids in, their vectors out.

>>> from functional_nn.random import key
>>> table = Embedding(10, 4)
>>> params = table.init(key(0))
>>> y = table.apply(params, [[1, 2, 3]])
>>> len(y), len(y[0]), len(y[0][0])
(1, 3, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyrsistent import pmap

from functional_nn.layers.base import (
    LayerParams,
    Output,
    check_positive_int,
    get_param,
    like_input,
    param,
)
from functional_nn.random import Key, normal
from tape import arrays

__all__ = ["Embedding"]


def _token_ids(ids: object, size: int, shape: list[int], out: list[int], depth: int = 0) -> None:
    """Flatten nested sequences of int ids into ``out``, recording the shape; errors name the fault."""
    if isinstance(ids, bool) or not isinstance(ids, (int, Sequence)) or isinstance(ids, (str, bytes)):
        raise TypeError(f"Embedding: token ids must be ints, got {type(ids).__name__} {ids!r}")
    if isinstance(ids, int):
        if len(shape) != depth:
            raise ValueError("Embedding: the token ids are ragged (nested to different depths)")
        if not 0 <= ids < size:
            raise ValueError(f"Embedding: token id {ids} is out of range for {size} embeddings")
        out.append(ids)
        return
    if len(shape) == depth:
        if out:
            raise ValueError("Embedding: the token ids are ragged (nested to different depths)")
        shape.append(len(ids))
    elif depth >= len(shape) or shape[depth] != len(ids):
        raise ValueError("Embedding: the token ids are ragged (rows of different lengths)")
    for item in ids:
        _token_ids(item, size, shape, out, depth + 1)


@dataclass(frozen=True)
class Embedding:
    """A table of ``num_embeddings`` vectors of ``embedding_dim``, as ``torch.nn.Embedding``.

    The parameter ``weight`` ``(num_embeddings, embedding_dim)`` starts standard normal,
    as in PyTorch. ``apply`` takes int token ids of any shape, e.g. ``(batch, time)``,
    and gives their vectors, ``(batch, time, embedding_dim)``: one
    :func:`tape.arrays.take` (repeated ids accumulate their gradients).
    """

    num_embeddings: int
    embedding_dim: int

    def __post_init__(self) -> None:
        check_positive_int(self.num_embeddings, "Embedding: num_embeddings")
        check_positive_int(self.embedding_dim, "Embedding: embedding_dim")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape."""
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def init(self, key: Key) -> LayerParams:
        """``weight`` drawn from ``key``."""
        shape = self.shapes["weight"]
        return pmap({"weight": param(normal(key, math.prod(shape)), shape)})

    def apply(self, params: LayerParams, x: object, *, key: Key | None = None, train: bool = False) -> Output:
        """The rows of ``weight`` for the int ids ``x``: shape ``x``'s shape plus ``(embedding_dim,)``."""
        shape: list[int] = []
        flat: list[int] = []
        _token_ids(x, self.num_embeddings, shape, flat)
        if not flat:
            raise ValueError("Embedding: no token ids (the input is empty)")
        weight = get_param(params, "weight", "Embedding", self.shapes["weight"])
        rows = arrays.take(weight, tuple(flat), axis=0)
        return like_input(arrays.reshape(rows, (*shape, self.embedding_dim)), x)
