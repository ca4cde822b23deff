"""Which parameters weight decay applies to: predicates on parameter names.

A parameter's name is its path cut after the last map key (see
:func:`tape.tree.leaf_parameter_names`), e.g. ``layers.0.weight``: every float of
that matrix shares the name. A :data:`Mask` says, for a name, whether to decay it.

>>> from pyrsistent import pmap, pvector
>>> params = pmap({"layers": pvector([pmap({"weight": pvector([1.0, 2.0]), "bias": 0.5})])})
>>> mask_leaves(default_decay_mask, params)
[False, True, True]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from tape.tree import leaf_parameter_names

Mask: TypeAlias = Callable[[str], bool]
"""A predicate on a parameter's name: ``True`` where weight decay applies."""

DEFAULT_DECAYED_NAMES = frozenset({"weight", "w"})


def last_part(name: str) -> str:
    """The part of a dotted parameter name after its last dot.

    >>> last_part("layers.0.weight")
    'weight'
    """
    return name.rpartition(".")[2]


def default_decay_mask(name: str) -> bool:
    """Decay weights and not biases: ``True`` for names whose last part is ``weight`` or ``w``.

    >>> default_decay_mask("layers.0.weight"), default_decay_mask("layers.0.bias")
    (True, False)
    """
    return last_part(name) in DEFAULT_DECAYED_NAMES


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


def mask_leaves(mask: Mask, tree: object) -> list[bool]:
    """For each leaf of ``tree`` in flattening order, whether ``mask`` picks its parameter.

    The mask is called once per parameter name.
    """
    verdicts: dict[str, bool] = {}
    flags: list[bool] = []
    for name in leaf_parameter_names(tree):
        if name not in verdicts:
            verdicts[name] = bool(mask(name))
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
