"""Which parameters weight decay applies to: predicates on parameter names (and shapes).

A parameter's name is its path cut after the last map key (see
:func:`tape.tree.leaf_parameter_names`), e.g. ``layers.0.weight``: every float of
that matrix shares the name. A :data:`Mask` says, for a name, whether to decay it.

The default, :data:`default_decay_mask`, follows common AdamW practice: a parameter
with two or more axes decays (the weight matrices of linear, convolutional, recurrent
and attention layers, embeddings), one with fewer does not (biases, norm scales), so
``weight_ih_l0`` and ``in_proj_weight`` decay and a layer norm's ``weight`` does not.
For an MLP that is the same set as "weights, not biases". A parameter with fewer axes
decays only by name: when its last part is ``w``, or ``weight`` in a tree without any
parameter of two or more axes (a model of scalars and vectors, where no ``weight`` is
a norm's scale).

>>> from pyrsistent import pmap, pvector
>>> layer = pmap({"weight": pvector([pvector([1.0, 2.0])]), "bias": pvector([0.5])})
>>> mask_leaves(default_decay_mask, pmap({"layers": pvector([layer])}))
[False, True, True]
>>> norm = pmap({"weight": pvector([1.0, 1.0]), "bias": pvector([0.0, 0.0])})
>>> mask_leaves(default_decay_mask, pmap({"linear": layer, "norm": norm}))
[False, True, True, False, False, False, False]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias, cast

from pyrsistent import PVector

from tape.tree import leaf_parameter_names, named_parameters

Mask: TypeAlias = Callable[[str], bool]
"""A predicate on a parameter's name: ``True`` where weight decay applies."""

DEFAULT_DECAYED_NAMES = frozenset({"weight", "w"})
"""The names (last parts) :data:`default_decay_mask` decays when it is told no shape."""


def last_part(name: str) -> str:
    """The part of a dotted parameter name after its last dot.

    >>> last_part("layers.0.weight")
    'weight'
    """
    return name.rpartition(".")[2]


@dataclass(frozen=True)
class NdimMask:
    """A mask deciding by a parameter's number of axes; :func:`mask_leaves` tells it the shapes.

    ``mask(name, ndim, tree_ndim)`` (``tree_ndim``: the most axes of any parameter in the
    tree) is ``True`` when ``ndim >= min_ndim``, when the name's last part is one of
    ``any_ndim_names``, or when it is one of ``names`` and ``tree_ndim < min_ndim``.
    Called with a name alone (no shape known) it decides by name: ``True`` when the last
    part is one of ``names``.
    """

    min_ndim: int = 2
    names: frozenset[str] = DEFAULT_DECAYED_NAMES
    any_ndim_names: frozenset[str] = frozenset({"w"})

    def __call__(self, name: str, ndim: int | None = None, tree_ndim: int | None = None) -> bool:
        """Whether the parameter ``name`` (with ``ndim`` axes, when known) decays."""
        part = last_part(name)
        if ndim is None:
            return part in self.names
        if ndim >= self.min_ndim or part in self.any_ndim_names:
            return True
        return tree_ndim is not None and tree_ndim < self.min_ndim and part in self.names


default_decay_mask = NdimMask()
"""Decay parameters with two or more axes, not biases or norm scales (see the module docs).

>>> default_decay_mask("layers.0.weight"), default_decay_mask("layers.0.bias")
(True, False)
>>> default_decay_mask("norm.weight", 1, tree_ndim=2), default_decay_mask("gru.weight_ih_l0", 2)
(False, True)
"""


def ndim_of(parameter: object) -> int:
    """The number of axes of a parameter: how deeply sequences of floats nest (0 for a float)."""
    ndim = 0
    while isinstance(parameter, (tuple, list, PVector)) and len(parameter) > 0:
        ndim += 1
        items: Sequence[object] = parameter
        parameter = items[0]
    return ndim


def all_parameters(name: str) -> bool:
    """Decay every parameter (``True`` for any name)."""
    return True


def names_ending_in(*parts: str) -> Mask:
    """A mask that is ``True`` for names whose last dotted part is one of ``parts``.

    >>> mask = names_ending_in("kernel", "embedding")
    >>> mask("encoder.kernel"), mask("encoder.bias")
    (True, False)
    """
    if not parts:
        raise ValueError("names_ending_in needs at least one name part")
    wanted = frozenset(parts)

    def mask(name: str) -> bool:
        return last_part(name) in wanted

    return mask


def checked_mask(mask: Mask | None, where: str) -> Mask:
    """``mask``, or :data:`default_decay_mask` for ``None``; a TypeError from ``where`` unless callable."""
    given: object = mask
    if given is None:
        return default_decay_mask
    if not callable(given):
        hint = (
            f" (for names ending in {given!r}: optimizers.names_ending_in({given!r}))"
            if isinstance(given, str)
            else ""
        )
        raise TypeError(
            f"{where}: decay_mask must be a predicate on parameter names (name -> bool), "
            f"not {type(given).__name__} ({given!r}){hint}"
        )
    return cast(Mask, given)


def mask_leaves(mask: Mask, tree: object) -> list[bool]:
    """For each leaf of ``tree`` in flattening order, whether ``mask`` picks its parameter.

    The mask is called once per parameter name; an :class:`NdimMask` is also told the
    parameter's number of axes.
    """
    shaped = isinstance(mask, NdimMask)
    ndims = {name: ndim_of(sub) for name, sub in named_parameters(tree)} if shaped else {}
    tree_ndim = max(ndims.values(), default=0)
    verdicts: dict[str, bool] = {}
    flags: list[bool] = []
    for name in leaf_parameter_names(tree):
        if name not in verdicts:
            verdicts[name] = bool(
                cast(NdimMask, mask)(name, ndims.get(name), tree_ndim) if shaped else mask(name)
            )
        flags.append(verdicts[name])
    return flags


def decayed_leaves(mask: Mask, tree: object, where: str) -> list[bool]:
    """:func:`mask_leaves`, raising a ValueError from ``where`` if the mask picks no leaf."""
    flags = mask_leaves(mask, tree)
    if not any(flags):
        names = sorted(set(leaf_parameter_names(tree)))
        shown = ", ".join(repr(name) for name in names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValueError(
            f"{where}: decay_mask matches no parameter (names: {shown}); weight decay would do "
            "nothing. Pass a decay_mask that picks some parameter, e.g. "
            "optimizers.masks.all_parameters, or set weight_decay=0."
        )
    return flags
