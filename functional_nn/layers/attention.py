"""Self-attention: ``MultiHeadAttention`` over ``(batch, time, embed_dim)``, optionally causal.

>>> from functional_nn.random import key
>>> from tape.tree import named_parameters
>>> attention = MultiHeadAttention(8, 2, causal=True)
>>> [name for name, _ in named_parameters(attention.init(key(0)))]
['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']
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
    as_operand,
    check_positive_int,
    constant_param,
    get_param,
    like_input,
    uniform_param,
)
from functional_nn.random import Key, split
from tape import arrays

__all__ = ["MultiHeadAttention", "causal_mask"]


def causal_mask(steps: int) -> tuple[tuple[float, ...], ...]:
    """``(steps, steps)`` additive mask: ``0`` on and below the diagonal, ``-inf`` above it.

    Added to attention scores, it stops step ``i`` attending to any later step ``j > i``
    (PyTorch's ``is_causal`` / an upper-triangular ``-inf`` ``attn_mask``).
    """
    return tuple(tuple(0.0 if j <= i else -math.inf for j in range(steps)) for i in range(steps))


@dataclass(frozen=True)
class MultiHeadAttention:
    """Multi-head self-attention, as ``torch.nn.MultiHeadAttention(embed_dim, num_heads, batch_first=True)``.

    ``apply(params, x)`` is PyTorch's ``module(x, x, x, need_weights=False)[0]``: queries,
    keys and values are ``x @ in_proj_weight.T + in_proj_bias`` split in three, each head
    attends with ``softmax(q k^T / sqrt(head_dim))`` and the heads' outputs, concatenated,
    go through ``out_proj``. With ``causal=True`` step ``i`` attends only to steps
    ``<= i`` (PyTorch's ``is_causal=True`` with the upper-triangular ``attn_mask``).

    Parameters, named as PyTorch's ``state_dict``: ``in_proj_weight`` ``(3 * embed_dim,
    embed_dim)`` (Xavier uniform), ``in_proj_bias`` ``(3 * embed_dim,)`` (zeros), and
    ``out_proj`` a nested map holding ``weight`` ``(embed_dim, embed_dim)`` (uniform on
    ``[-1/sqrt(embed_dim), 1/sqrt(embed_dim))``) and ``bias`` (zeros), so that they are
    named ``out_proj.weight`` and ``out_proj.bias``. No dropout inside the attention.
    """

    embed_dim: int
    num_heads: int
    causal: bool = False

    def __post_init__(self) -> None:
        check_positive_int(self.embed_dim, "MultiHeadAttention: embed_dim")
        check_positive_int(self.num_heads, "MultiHeadAttention: num_heads")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"MultiHeadAttention: embed_dim {self.embed_dim} is not divisible by "
                f"num_heads {self.num_heads}"
            )
        if not isinstance(self.causal, bool):
            raise TypeError(f"MultiHeadAttention: causal must be a bool, not {type(self.causal).__name__}")

    @property
    def head_dim(self) -> int:
        """``embed_dim // num_heads``: each head's width."""
        return self.embed_dim // self.num_heads

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's shape (``out_proj.weight`` is ``out_proj``'s ``weight``)."""
        d = self.embed_dim
        return {
            "in_proj_weight": (3 * d, d),
            "in_proj_bias": (3 * d,),
            "out_proj.weight": (d, d),
            "out_proj.bias": (d,),
        }

    def init(self, key: Key) -> LayerParams:
        """The parameters drawn from ``key`` (the biases start at zero, as in PyTorch)."""
        d = self.embed_dim
        shapes = self.shapes
        k_in, k_out = split(key)
        return pmap(
            {
                "in_proj_weight": uniform_param(k_in, shapes["in_proj_weight"], math.sqrt(6.0 / (d + 3 * d))),
                "in_proj_bias": constant_param(0.0, shapes["in_proj_bias"]),
                "out_proj": pmap(
                    {
                        "weight": uniform_param(k_out, shapes["out_proj.weight"], 1.0 / math.sqrt(d)),
                        "bias": constant_param(0.0, shapes["out_proj.bias"]),
                    }
                ),
            }
        )

    def apply(
        self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False
    ) -> Output:
        """Self-attention over ``x`` ``(batch, time, embed_dim)``; the output has the same shape."""
        xs = as_operand(x)
        shape = xs.shape
        d = self.embed_dim
        if len(shape) != 3 or shape[2] != d or shape[1] == 0:
            raise ValueError(
                f"MultiHeadAttention: expected input of shape (batch, time, {d}) with time >= 1, got {shape}"
            )
        heads, width = self.num_heads, self.head_dim
        shapes = self.shapes
        out_proj = get_param(params, "out_proj", "MultiHeadAttention")
        weight_in = get_param(params, "in_proj_weight", "MultiHeadAttention", shapes["in_proj_weight"])
        bias_in = get_param(params, "in_proj_bias", "MultiHeadAttention", shapes["in_proj_bias"])

        def project(part: int, head: int) -> Any:
            """Head ``head``'s query (0), key (1) or value (2): its rows of in_proj, laid out as PyTorch's."""
            start = part * d + head * width
            return arrays.linear(weight_in[start : start + width], bias_in[start : start + width], xs)

        # per head, softmax(q k^T / sqrt(width)) v as one fused node over (batch, time, width): slicing
        # the weights rather than the projections keeps every sliced array small, and a causal block
        # computes only the scores a step may see
        mixed = [
            arrays.scaled_dot_product_attention(
                project(0, h), project(1, h), project(2, h), is_causal=self.causal
            )
            for h in range(heads)
        ]
        joined = mixed[0] if heads == 1 else arrays.concatenate(mixed, axis=-1)  # (batch, time, d)
        weight = get_param(out_proj, "weight", "MultiHeadAttention.out_proj", shapes["out_proj.weight"])
        bias = get_param(out_proj, "bias", "MultiHeadAttention.out_proj", shapes["out_proj.bias"])
        return like_input(arrays.linear(weight, bias, joined), x)
