"""The op families: each module owns, for its ops, the float kernel, the recording on
Values and Arrays, the partial or vjp rule and the jvp rule, side by side.

- :mod:`tape.ops.arithmetic`: ``+ - * / **``, negation and ``abs`` on Values.
- :mod:`tape.ops.elementwise`: ``exp log sqrt tanh sigmoid relu leaky_relu gelu softplus
  abs``, on Values and as array ops over N-d Arrays.
- :mod:`tape.ops.broadcasting`: ``+ - * / **`` between Arrays with NumPy broadcasting,
  comparisons (masks) and ``where``.
- :mod:`tape.ops.reductions`: the fused n-ary ``dot`` and ``vsum``, and ``sum mean max
  min`` of an Array over axes.
- :mod:`tape.ops.normalization`: ``softmax log_softmax logsumexp`` and ``layer_norm``.
- :mod:`tape.ops.shape`: ``reshape`` and ``transpose``.
- :mod:`tape.ops.indexing`: indexing and slicing, ``concatenate stack take pad``, and
  ``scale`` (masks).
- :mod:`tape.ops.linear`: ``linear`` (a layer over a batch) and ``matmul``.
- :mod:`tape.ops.convolution`: ``conv1d conv2d max_pool2d avg_pool2d`` (NCHW/OIHW).
- :mod:`tape.ops.attention`: ``scaled_dot_product_attention`` (causal or not), one fused node.
- :mod:`tape.ops.losses`: cross-entropy of logits and mean squared error.
"""

from tape.ops import (
    arithmetic,
    attention,
    broadcasting,
    convolution,
    elementwise,
    indexing,
    linear,
    losses,
    normalization,
    reductions,
    shape,
)

__all__ = [
    "arithmetic",
    "attention",
    "broadcasting",
    "convolution",
    "elementwise",
    "indexing",
    "linear",
    "losses",
    "normalization",
    "reductions",
    "shape",
]
