"""A multi-layer perceptron: a frozen spec with pure ``init`` and ``apply``.

``MLP(n_in, sizes)`` describes the network; its params are a pyrsistent map with
torch-style names, ``pmap({"layers": pvector([layer_0, layer_1, ...])})`` where each
layer is ``pmap({"weight": rows, "bias": biases})`` (see :mod:`functional_nn.layer`),
so the parameters are called ``layers.0.weight``, ``layers.0.bias``, ... Hidden
layers use the spec's activation (and dropout, in training); the last layer is the
identity, giving raw logits or regression outputs.

>>> from functional_nn.random import key
>>> model = MLP(2, (8, 1), activation="tanh")
>>> params = model.init(key(0))
>>> [name for name, _ in named_parameters(params)]
['layers.0.bias', 'layers.0.weight', 'layers.1.bias', 'layers.1.weight']
>>> num_params(params)
33
>>> (y,) = model.apply(params, [0.5, -1.0])
>>> type(y)
<class 'float'>

Training differentiates a loss of ``apply`` with :func:`tape.value_and_grad`::

    def loss(params: Params, x: Sequence[float], target: float) -> Scalar:
        (y,) = model.apply(params, x)
        return (y - target) ** 2

    value, grads = tape.value_and_grad(loss)(params, [0.5, -1.0], 1.0)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, cast, overload

from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn import layer, regularization
from functional_nn.activations import ActivationName, check_activation
from functional_nn.init import InitName, check_initializer, default_initializer
from functional_nn.layer import LayerParams, Matrix, Vector
from functional_nn.random import Key, split
from tape import Array, Scalar, Value, arrays
from tape import tree as _tree
from tape.tree import only_floats
from tape.validate import float_vector, sequence

__all__ = ["MLP", "BatchOutput", "Params", "named_parameters", "num_params"]

Params: TypeAlias = PMap[str, PVector[LayerParams]]
"""An MLP's params: ``{"layers": PVector[LayerParams]}``."""

_SHAPE_ERRORS = (ValueError, KeyError, TypeError, IndexError)


@functools.cache
def _layer_name(index: int) -> str:
    return f"layers.{index}"


BatchOutput: TypeAlias = "Array | tuple[tuple[Scalar, ...], ...]"
"""What :meth:`MLP.apply_batch` gives: an Array while arrays are watched, else rows."""

_ARRAY_ACTIVATIONS: dict[str, arrays.Elementwise | None] = {
    "relu": arrays.relu,
    "tanh": arrays.tanh,
    "sigmoid": arrays.sigmoid,
    "leaky_relu": arrays.leaky_relu,
    "identity": None,
}


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")
    return value


@dataclass(frozen=True, init=False, repr=False)
class MLP:
    """The spec of a multi-layer perceptron; params live outside it, in a pyrsistent map.

    - ``n_in``: the input width (``>= 1``).
    - ``sizes``: the width of each layer, the last being the output width, e.g. ``(16, 16, 3)``.
    - ``activation``: of the hidden layers, one of ``"relu"``, ``"tanh"``, ``"sigmoid"``,
      ``"leaky_relu"``, ``"identity"``. The output layer is always the identity.
    - ``dropout``: the probability, in ``[0, 1)``, of zeroing each hidden activation in
      training (after each hidden layer's activation; never after the output layer).
    - ``init``: ``"he"`` (normal, std ``sqrt(2 / fan_in)``) or ``"glorot"`` (uniform on
      ``[-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``); by default He for relu and
      leaky_relu, Glorot otherwise. Stored, resolved, as :attr:`initializer`. Biases
      start at zero.

    Raises TypeError or ValueError for an invalid spec.
    """

    n_in: int
    sizes: tuple[int, ...]
    activation: ActivationName
    dropout: float
    initializer: InitName

    def __init__(
        self,
        n_in: int,
        sizes: Sequence[int],
        activation: ActivationName = "relu",
        dropout: float = 0.0,
        init: InitName | None = None,
    ) -> None:
        _check_int(n_in, "n_in")
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(
                f"sizes must be a sequence of layer widths such as (16, 1), not {type(sizes).__name__}"
            )
        if not sizes:
            raise ValueError("sizes must name at least one layer, e.g. (16, 1); the last is the output width")
        widths = tuple(_check_int(size, f"sizes[{i}]") for i, size in enumerate(sizes))
        hidden = check_activation(activation)
        rate = regularization.check_dropout_rate(dropout, allow_one=False)
        scheme = default_initializer(hidden) if init is None else check_initializer(init)
        object.__setattr__(self, "n_in", n_in)
        object.__setattr__(self, "sizes", widths)
        object.__setattr__(self, "activation", hidden)
        object.__setattr__(self, "dropout", rate)
        object.__setattr__(self, "initializer", scheme)

    def __repr__(self) -> str:
        return (
            f"MLP({self.n_in}, {self.sizes}, activation={self.activation!r}, "
            f"dropout={self.dropout!r}, init={self.initializer!r})"
        )

    @property
    def n_out(self) -> int:
        """The output width: the last layer's size."""
        return self.sizes[-1]

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(n_out, n_in)`` of each layer's weight matrix."""
        fans_in = (self.n_in, *self.sizes[:-1])
        return tuple(zip(self.sizes, fans_in, strict=True))

    @property
    def num_params(self) -> int:
        """How many floats the params hold: the sum of ``(n_in + 1) * n_out`` over layers."""
        return sum((fan_in + 1) * fan_out for fan_out, fan_in in self.layer_shapes)

    # --- params -----------------------------------------------------------------------

    def init(self, key: Key) -> Params:
        """Fresh params drawn from ``key``: the same key gives the same params."""
        keys = split(key, len(self.sizes))
        layers = [
            layer.init(k, fan_in, fan_out, initializer=self.initializer)
            for k, (fan_out, fan_in) in zip(keys, self.layer_shapes, strict=True)
        ]
        return pmap({"layers": pvector(layers)})

    def check_params(self, params: object) -> Params:
        """``params`` if its structure and shapes fit this spec; a ValueError naming the misfit.

        Use it on params from elsewhere (a checkpoint, another model) before ``apply``.
        """
        problem = self._params_problem(params)
        if problem is not None:
            raise ValueError(problem)
        return cast(Params, params)

    def _params_problem(self, params: object) -> str | None:
        prefix = f"params do not fit {self!r}: "
        if not isinstance(params, PMap) or set(params) != {"layers"}:
            found = sorted(params) if isinstance(params, PMap) else type(params).__name__
            return prefix + f"expected a pyrsistent map with the one key 'layers', got {found!r}"
        layers: object = params["layers"]
        if not isinstance(layers, PVector):
            return prefix + f"'layers' must be a pyrsistent vector, not {type(layers).__name__}"
        if len(layers) != len(self.sizes):
            return prefix + f"'layers' holds {len(layers)} layers but the spec has {len(self.sizes)}"
        for i, (one, (fan_out, fan_in)) in enumerate(zip(layers, self.layer_shapes, strict=True)):
            try:
                layer.check(one, fan_in, fan_out, name=f"layers.{i}")
            except ValueError as error:
                return prefix + str(error)
        return None

    # --- forward pass -----------------------------------------------------------------

    @overload
    def apply(
        self, params: Params, x: Sequence[float], *, key: Key | None = None, train: bool = False
    ) -> tuple[float, ...]: ...
    @overload
    def apply(
        self, params: Params, x: Sequence[Scalar], *, key: Key | None = None, train: bool = False
    ) -> tuple[Scalar, ...]: ...
    def apply(
        self, params: Params, x: Sequence[Scalar], *, key: Key | None = None, train: bool = False
    ) -> tuple[Scalar, ...]:
        """The network's outputs for one input ``x`` (raw: no activation on the last layer).

        Floats in (params and ``x``), floats out, with no tape; under :func:`tape.grad`
        (Value params or inputs) the outputs are Values. With ``train=True`` and
        ``dropout > 0``, dropout masks come from keys split from ``key``, which is then
        required; otherwise ``key`` is ignored.

        Raises ValueError when ``len(x) != n_in`` (naming the layer and both widths) or
        when the params do not fit the spec (see :meth:`check_params`).
        """
        sequence(x, "MLP.apply: the input x")
        if not only_floats(x) and not any(isinstance(v, Value) for v in x):
            x = float_vector(
                cast("Sequence[float]", x), "MLP.apply: the input x"
            )  # ints become floats; others are named
        if len(x) != self.n_in:
            raise ValueError(
                f"layers.0: expected an input of width {self.n_in} (n_in of {self!r}), got {len(x)}"
            )
        sizes = self.sizes
        last = len(sizes) - 1
        dropout_key = self._dropout_key(key, train) if train else None
        keys = split(dropout_key, last) if dropout_key is not None and last else None
        hidden = self.activation
        try:
            layers = params["layers"]
            if len(layers) != len(sizes):
                raise ValueError(f"expected {len(sizes)} layers, got {len(layers)}")
            h: Sequence[Scalar] = x
            for i, layer_params in enumerate(layers):
                name = _layer_name(i)
                if i < last:
                    h = layer.apply(layer_params, h, activation=hidden, name=name)
                    if keys is not None:
                        h = regularization.dropout(keys[i], h, self.dropout, True)
                else:
                    h = layer.apply(layer_params, h, activation="identity", name=name)
                if len(h) != sizes[i]:
                    raise ValueError(f"{name} gave {len(h)} outputs, expected {sizes[i]}")
        except _SHAPE_ERRORS as error:
            problem = self._params_problem(params)
            if problem is not None:
                raise ValueError(problem) from error
            raise
        return cast("tuple[Scalar, ...]", h)

    def apply_batch(
        self,
        params: Params,
        xs: Sequence[Sequence[float]] | Array,
        *,
        key: Key | None = None,
        train: bool = False,
        masks: Sequence[Sequence[Sequence[float]]] | None = None,
    ) -> BatchOutput:
        """The outputs for a batch ``xs`` (one row per example) through layer-level ops.

        ``masks`` (from :meth:`dropout_masks`) gives the dropout factors directly instead
        of drawing them from ``key``: a compiled step (:func:`tape.jit`) takes them as data.

        Each layer is one :func:`tape.arrays.linear` and one activation over the whole
        batch: with params watched as arrays (``tape.grad(..., arrays=True)``) that is
        two tape nodes per layer and the result is an :class:`tape.Array`; with float
        params it is a tuple of float rows; with Value params, rows of Values. Row ``n``
        equals ``apply(params, xs[n], key=split(key, len(xs))[n], train=train)``.
        """
        rows = xs.shape[0] if isinstance(xs, Array) else len(sequence(xs, "MLP.apply_batch: the batch xs"))
        if rows == 0:
            raise ValueError("apply_batch: the batch is empty")
        width = xs.shape[-1] if isinstance(xs, Array) else None
        if width is None:
            for n, x in enumerate(cast("Sequence[Sequence[float]]", xs)):
                if len(x) != self.n_in:
                    raise ValueError(
                        f"layers.0: row {n} of the batch has width {len(x)}, expected {self.n_in} "
                        f"(n_in of {self!r})"
                    )
        elif width != self.n_in:
            raise ValueError(f"layers.0: the batch has width {width}, expected {self.n_in}")
        last = len(self.sizes) - 1
        factors = self._dropout_factors(key, train, rows) if masks is None else [list(m) for m in masks]
        activation = _ARRAY_ACTIVATIONS[self.activation]
        try:
            layers = params["layers"]
            if len(layers) != len(self.sizes):
                raise ValueError(f"expected {len(self.sizes)} layers, got {len(layers)}")
            h: Array | arrays.Rows | Sequence[Sequence[float]] = xs
            fuse = self.activation == "relu" and factors is None  # relu then linear: one fused op
            for i, layer_params in enumerate(layers):
                weight, bias = layer_params["weight"], layer_params["bias"]
                layer = arrays.relu_linear if fuse and i > 0 else arrays.linear
                h = layer(weight, bias, h)  # type: ignore[arg-type]  # weight: matrix, bias: vector
                width = h.shape[-1] if isinstance(h, Array) else len(h[0])
                if width != self.sizes[i]:  # params of a wider layer are consistent among themselves
                    raise ValueError(
                        f"params do not fit {self!r}: {_layer_name(i)} gives {width} outputs, "
                        f"but the spec has {self.sizes[i]}"
                    )
                if i < last and not fuse:
                    if activation is not None:
                        h = activation(h)
                    if factors is not None:
                        h = arrays.scale(h, factors[i])
        except _SHAPE_ERRORS as error:
            watched = any(
                isinstance(leaf, Array) for leaf in _tree.tree_leaves(params)
            )  # no pvectors to check
            problem = None if watched else self._params_problem(params)
            if problem is not None:
                raise ValueError(problem) from error
            raise
        return cast(BatchOutput, h)

    def dropout_masks(
        self, key: Key | None, rows: int, *, train: bool = True
    ) -> list[list[list[float]]] | None:
        """Per hidden layer, a batch of ``rows``' dropout factors (0 or ``1/(1-p)``) drawn from
        ``key`` as :meth:`apply_batch` draws them; ``None`` when no dropout applies."""
        return self._dropout_factors(key, train, rows)

    def _dropout_factors(self, key: Key | None, train: bool, rows: int) -> list[list[list[float]]] | None:
        """Per hidden layer, the batch's dropout factors (0 or ``1/(1-p)``), as :meth:`apply` draws them."""
        batch_key = self._dropout_key(key, train)
        last = len(self.sizes) - 1
        if batch_key is None or last == 0:
            return None
        keep = 1.0 / (1.0 - self.dropout)
        per_layer: list[list[list[float]]] = [[] for _ in range(last)]
        for example_key in split(batch_key, rows):
            for i, layer_key in enumerate(split(example_key, last)):
                mask = regularization.dropout_mask(layer_key, self.dropout, self.sizes[i])
                per_layer[i].append([keep if kept else 0.0 for kept in mask])
        return per_layer

    def _dropout_key(self, key: Key | None, train: bool) -> Key | None:
        """``key`` when dropout applies (raising if it is missing), else ``None``."""
        if not train or self.dropout == 0.0:
            return None
        if key is None:
            raise ValueError(
                f"{self!r} applies dropout in training: pass key=... (a fresh "
                "functional_nn.random key per step), or train=False for evaluation"
            )
        return key


def named_parameters(params: Params) -> list[tuple[str, Matrix | Vector]]:
    """Each parameter's torch-style name and value, in the tree's flattening order.

    ``[("layers.0.bias", biases), ("layers.0.weight", rows), ...]``: keys sorted, as
    :func:`tape.tree.named_parameters` and gradients' leaves are ordered.
    """
    return cast("list[tuple[str, Matrix | Vector]]", _tree.named_parameters(params))


def num_params(params: object) -> int:
    """How many floats the parameter tree ``params`` holds (any tree: MLP, layer or neuron)."""
    return len(_tree.tree_leaves(params))
