"""Hypothesis strategies for the optimizer tests: parameter trees, gradients, hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from optimizers import Schedule, schedules
from optimizers.masks import Mask, all_parameters, default_decay_mask, mask_leaves
from tape.tree import tree_leaves, tree_structure, tree_unflatten

PARAMETER_NAMES = ("weight", "bias", "w", "b", "gain")

values = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False, allow_infinity=False)


def fill(skeleton: object, leaves: list[float]) -> object:
    """A tree of ``skeleton``'s structure (container types included) holding ``leaves``."""
    return tree_unflatten(tree_structure(skeleton), leaves)


@st.composite
def layer_skeletons(draw: st.DrawFn) -> object:
    """A layer as a model would hold it: a PMap of named scalars, vectors and matrices."""
    keys = draw(st.sets(st.sampled_from(PARAMETER_NAMES), min_size=1, max_size=3))
    layer: dict[str, object] = {}
    for key in sorted(keys):
        rank = draw(st.integers(min_value=0, max_value=2))
        if rank == 0:
            layer[key] = 0.0
        elif rank == 1:
            layer[key] = pvector([0.0] * draw(st.integers(min_value=1, max_value=4)))
        else:
            rows = draw(st.integers(min_value=1, max_value=3))
            cols = draw(st.integers(min_value=1, max_value=3))
            layer[key] = pvector([pvector([0.0] * cols) for _ in range(rows)])
    return pmap(layer)


model_skeletons = st.lists(layer_skeletons(), min_size=1, max_size=3).map(
    lambda layers: pmap({"layers": pvector(layers)})
)
"""Parameter trees shaped like an MLP's: ``{"layers": [{"weight": [[...]], "bias": [...]}]}``."""


class Pair(NamedTuple):
    first: object
    second: object


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    names = st.sampled_from(PARAMETER_NAMES)
    return st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.lists(children, min_size=1, max_size=3).map(pvector),
        st.dictionaries(names, children, min_size=1, max_size=3),
        st.dictionaries(names, children, min_size=1, max_size=3).map(pmap),
        st.tuples(children, children).map(lambda pair: Pair(*pair)),
    )


any_skeletons = st.recursive(st.just(0.0), _containers, max_leaves=10)
"""Any tree tape.tree accepts, mutable containers included (a bare float too)."""

skeletons = st.one_of(model_skeletons, any_skeletons)


@dataclass(frozen=True)
class Problem:
    """Params and a sequence of gradients of one structure."""

    params: object
    grads: list[object]


@st.composite
def problems(
    draw: st.DrawFn,
    trees: st.SearchStrategy[object] = skeletons,
    min_steps: int = 1,
    max_steps: int = 25,
) -> Problem:
    skeleton = draw(trees)
    size = len(tree_leaves(skeleton))
    leaves = st.lists(values, min_size=size, max_size=size)
    steps = draw(st.integers(min_value=min_steps, max_value=max_steps))
    params = fill(skeleton, draw(leaves))
    return Problem(params, [fill(skeleton, draw(leaves)) for _ in range(steps)])


learning_rates = st.floats(min_value=0.0, max_value=1.0)

_schedules: st.SearchStrategy[Schedule] = st.one_of(
    learning_rates.map(schedules.constant),
    st.builds(schedules.step_decay, learning_rates, st.integers(1, 5), st.floats(0.1, 1.0)),
    st.builds(schedules.exponential_decay, learning_rates, st.integers(1, 5), st.floats(0.5, 1.0)),
    st.builds(schedules.cosine_decay, learning_rates, st.integers(1, 20)),
    st.builds(
        lambda peak, warmup, decay: schedules.join_schedules(
            [schedules.linear_warmup(0.0, peak, warmup), schedules.cosine_decay(peak, decay)],
            [warmup],
        ),
        learning_rates,
        st.integers(1, 5),
        st.integers(1, 20),
    ),
)

lr_or_schedules: st.SearchStrategy[float | Schedule] = st.one_of(learning_rates, _schedules)
weight_decays = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=0.5))
betas = st.floats(min_value=0.0, max_value=0.999)
epsilons = st.floats(min_value=1e-10, max_value=1e-2)


def as_schedule(lr: float | Schedule) -> Schedule:
    """``lr`` as a schedule, for the references."""
    if callable(lr):
        return lr
    return schedules.constant(lr)


def a_mask_for(params: object) -> Mask:
    """The default decay mask if it picks some leaf of ``params``, else a mask picking all."""
    return default_decay_mask if any(mask_leaves(default_decay_mask, params)) else all_parameters
