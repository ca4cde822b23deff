"""The op families: each module owns, for its ops, the float kernel, the recording on
Values and Arrays, the partial or vjp rule and the jvp rule, side by side.

- :mod:`tape.ops.arithmetic`: ``+ - * / **``, negation and ``abs`` on Values.
- :mod:`tape.ops.elementwise`: ``exp log sqrt tanh sigmoid relu leaky_relu``, on
  Values and as array ops over a matrix.
- :mod:`tape.ops.reductions`: the fused n-ary ``dot`` and ``vsum``, and an array's ``mean``.
- :mod:`tape.ops.linear`: ``linear``, a layer over a batch.
- :mod:`tape.ops.losses`: cross-entropy of logits and mean squared error over a batch.
- :mod:`tape.ops.indexing`: an Array's rows and items, ``stack``, and ``scale`` (masks).
"""

from tape.ops import arithmetic, elementwise, indexing, linear, losses, reductions

__all__ = ["arithmetic", "elementwise", "indexing", "linear", "losses", "reductions"]
