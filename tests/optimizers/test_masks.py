"""Weight-decay masks: predicates on parameter names."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from pyrsistent import PMap, pmap, pvector

import optimizers
from optimizers.masks import (
    all_parameters,
    default_decay_mask,
    mask_leaves,
    names_ending_in,
)
from tape.tree import named_leaves

MODEL: PMap[str, object] = pmap(
    {
        "layers": pvector(
            [
                pmap({"weight": pvector([pvector([1.0, 2.0])]), "bias": pvector([3.0])}),
                pmap({"w": pvector([4.0]), "b": 5.0, "scale": 6.0}),
            ]
        )
    }
)
ZERO_GRADS = pmap(
    {
        "layers": pvector(
            [
                pmap({"weight": pvector([pvector([0.0, 0.0])]), "bias": pvector([0.0])}),
                pmap({"w": pvector([0.0]), "b": 0.0, "scale": 0.0}),
            ]
        )
    }
)


def test_default_mask_picks_weights_and_not_biases() -> None:
    assert default_decay_mask("layers.0.weight")
    assert default_decay_mask("w")
    assert default_decay_mask("encoder.layers.3.w")
    assert not default_decay_mask("layers.0.bias")
    assert not default_decay_mask("b")
    assert not default_decay_mask("weights")
    assert not default_decay_mask("weight.scale")
    assert not default_decay_mask("")


def test_mask_leaves_follows_flattening_order() -> None:
    # leaves: layers.0.bias, layers.0.weight (x2), layers.1.b, layers.1.scale, layers.1.w
    assert mask_leaves(default_decay_mask, MODEL) == [False, True, True, False, False, True]
    assert mask_leaves(all_parameters, MODEL) == [True] * 6
    assert mask_leaves(names_ending_in("scale"), MODEL) == [False, False, False, False, True, False]


def test_mask_is_called_once_per_parameter_name() -> None:
    calls: list[str] = []

    def spy(name: str) -> bool:
        calls.append(name)
        return name.endswith("weight")

    mask_leaves(spy, MODEL)
    assert calls == ["layers.0.bias", "layers.0.weight", "layers.1.b", "layers.1.scale", "layers.1.w"]


def _leaves_after_one_step(opt: optimizers.Optimizer) -> dict[str, float]:
    new, _ = opt.step(MODEL, ZERO_GRADS, opt.init(MODEL))
    return dict(named_leaves(new))


def test_sgd_decays_only_what_the_default_mask_picks() -> None:
    leaves = _leaves_after_one_step(optimizers.sgd(0.1, weight_decay=0.5))
    assert leaves == {
        "layers.0.bias.0": 3.0,
        "layers.0.weight.0.0": 1.0 - 0.1 * (0.5 * 1.0),
        "layers.0.weight.0.1": 2.0 - 0.1 * (0.5 * 2.0),
        "layers.1.b": 5.0,
        "layers.1.scale": 6.0,
        "layers.1.w.0": 4.0 - 0.1 * (0.5 * 4.0),
    }


def test_custom_masks_choose_other_parameters() -> None:
    second_layer = _leaves_after_one_step(
        optimizers.adamw(0.1, weight_decay=0.5, decay_mask=lambda name: name.startswith("layers.1"))
    )
    before = dict(named_leaves(MODEL))
    for path, value in second_layer.items():
        if path.startswith("layers.1"):
            assert math.isclose(value, before[path] * (1 - 0.1 * 0.5))
        else:
            assert value == before[path]
    only_scale = _leaves_after_one_step(
        optimizers.adam(0.1, weight_decay=0.5, decay_mask=names_ending_in("scale"))
    )
    assert only_scale["layers.1.scale"] < 6.0
    assert {k: v for k, v in only_scale.items() if k != "layers.1.scale"} == {
        k: v for k, v in before.items() if k != "layers.1.scale"
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.sgd(0.1, weight_decay=0.1, decay_mask=names_ending_in("kernel")),
        lambda: optimizers.momentum(0.1, weight_decay=0.1, decay_mask=lambda name: False),
        lambda: optimizers.adam(weight_decay=0.1, decay_mask=lambda name: False),
        lambda: optimizers.adamw(decay_mask=lambda name: False),
    ],
)
def test_a_mask_matching_nothing_is_an_error(make: Callable[[], optimizers.Optimizer]) -> None:
    opt = make()
    with pytest.raises(ValueError, match="decay_mask matches no parameter") as raised:
        opt.init(MODEL)
    assert "'layers.0.weight'" in str(raised.value)


def test_the_default_mask_matching_nothing_is_an_error_too() -> None:
    params = pmap({"gain": 1.0, "bias": 2.0})
    with pytest.raises(ValueError, match="decay_mask matches no parameter"):
        optimizers.sgd(0.1, weight_decay=0.1).init(params)
    # but without weight decay the mask does not matter
    optimizers.sgd(0.1, decay_mask=lambda name: False).init(params)


def test_names_ending_in_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one"):
        names_ending_in()


@pytest.mark.parametrize(
    "make",
    [
        lambda mask: optimizers.sgd(0.1, weight_decay=0.1, decay_mask=mask),
        lambda mask: optimizers.adam(weight_decay=0.1, decay_mask=mask),
        lambda mask: optimizers.adamw(decay_mask=mask),
    ],
)
def test_a_mask_that_is_not_a_predicate_is_refused_where_the_optimizer_is_made(
    make: Callable[[object], optimizers.Optimizer],
) -> None:
    """A name where a predicate belongs (``decay_mask="weight"``) is named, not called at init."""
    with pytest.raises(
        TypeError, match=r"decay_mask must be a predicate on parameter names .* not str \('weight'\)"
    ):
        make("weight")
    with pytest.raises(TypeError, match=r"names_ending_in\('weight'\)"):
        make("weight")
    make(names_ending_in("weight")).init(MODEL)
