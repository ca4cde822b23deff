"""Misuse gives ValueErrors that name the offending argument, leaf or state."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import pytest
from pyrsistent import PMap, pmap, pvector

import optimizers
from optimizers import Optimizer, OptState
from optimizers.base import from_flat
from tape.tree import TreeError

PARAMS = pmap({"layers": pvector([pmap({"weight": pvector([pvector([1.0, 2.0])]), "bias": pvector([0.5])})])})
GRADS = pmap({"layers": pvector([pmap({"weight": pvector([pvector([0.1, 0.2])]), "bias": pvector([0.3])})])})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optimizers.sgd(-0.1), r"lr must be >= 0, got -0\.1"),
        (lambda: optimizers.adam(math.nan), "lr must be a finite number"),
        (lambda: optimizers.adam(lambda step: -1e-3), "schedule gives -0.001 at step 0"),
        (lambda: optimizers.adam(eps=0.0), "eps must be > 0"),
        (lambda: optimizers.adamw(eps=-1e-8), "eps must be > 0"),
        (lambda: optimizers.adam(b1=1.0), r"b1 must be in \[0, 1\)"),
        (lambda: optimizers.adam(b2=-0.1), r"b2 must be in \[0, 1\)"),
        (lambda: optimizers.adamw(b1=1.5), r"b1 must be in \[0, 1\)"),
        (lambda: optimizers.momentum(0.1, beta=1.0), r"beta must be in \[0, 1\)"),
        (lambda: optimizers.sgd(0.1, momentum=-0.5), "momentum must be >= 0"),
        (lambda: optimizers.sgd(0.1, weight_decay=-1e-4), "weight_decay must be >= 0"),
        (lambda: optimizers.adam(weight_decay=-1.0), "weight_decay must be >= 0"),
        (lambda: optimizers.adamw(weight_decay=-1.0), "weight_decay must be >= 0"),
        (lambda: optimizers.sgd(0.1, nesterov=True), "sgd: nesterov=True needs a momentum > 0"),
        (lambda: optimizers.momentum(0.1, beta=0.0, nesterov=True), "nesterov=True needs"),
        (lambda: optimizers.clip_by_global_norm(0.0), "max_norm must be > 0"),
        (lambda: optimizers.clip_by_global_norm(-1.0), "max_norm must be > 0"),
        (lambda: optimizers.trace(-0.9), "momentum must be >= 0"),
    ],
)
def test_bad_hyperparameters_are_named(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_schedule_going_negative_later_fails_at_that_step() -> None:
    opt = optimizers.sgd(lambda step: 0.1 - 0.1 * step)
    params, state = PARAMS, opt.init(PARAMS)
    params, state = opt.step(params, GRADS, state)
    params, state = opt.step(params, GRADS, state)
    with pytest.raises(ValueError, match=r"lr schedule gives -0\.1 at step 2"):
        opt.step(params, GRADS, state)


def test_grads_with_another_structure_name_the_first_differing_path() -> None:
    opt = optimizers.adam()
    state = opt.init(PARAMS)
    renamed = pmap(
        {"layers": pvector([pmap({"weight": pvector([pvector([0.1, 0.2])]), "b": pvector([0.3])})])}
    )
    with pytest.raises(ValueError, match=r"grads differ in structure at layers\.0: keys"):
        opt.step(PARAMS, renamed, state)
    shorter = pmap({"layers": pvector([pmap({"weight": pvector([pvector([0.1])]), "bias": pvector([0.3])})])})
    with pytest.raises(TreeError, match=r"at layers\.0\.weight\.0: length 2 vs 1"):
        opt.step(PARAMS, shorter, state)
    as_dict = {"layers": [{"weight": [[0.1, 0.2]], "bias": [0.3]}]}
    with pytest.raises(ValueError, match="at the root: pmap of 1 vs dict of 1"):
        opt.step(PARAMS, as_dict, state)


def test_non_float_leaves_are_named() -> None:
    opt = optimizers.sgd(0.1)
    bad = pmap(
        {"layers": pvector([pmap({"weight": pvector([pvector([0.1, "x"])]), "bias": pvector([0.3])})])}
    )
    with pytest.raises(ValueError, match=r"grads leaf 'layers\.0\.weight\.0\.1' is a str"):
        opt.step(PARAMS, bad, opt.init(PARAMS))
    with pytest.raises(ValueError, match=r"params leaf 'layers\.0\.weight\.0\.1' is a str"):
        opt.init(bad)


def test_a_state_from_another_optimizer_is_refused() -> None:
    with pytest.raises(ValueError, match="adam: the state was made by 'sgd', not by 'adam'"):
        optimizers.adam().step(PARAMS, GRADS, optimizers.sgd(0.1).init(PARAMS))
    with pytest.raises(ValueError, match="made by 'adam', not by 'adamw'"):
        optimizers.adamw().step(PARAMS, GRADS, optimizers.adam().init(PARAMS))
    clipped = optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adam())
    with pytest.raises(ValueError, match=r"made by 'adam', not by 'chain\(clip_by_global_norm"):
        clipped.step(PARAMS, GRADS, optimizers.adam().init(PARAMS))


def test_a_transform_state_given_to_the_optimizer_is_refused() -> None:
    opt = optimizers.adam()
    with pytest.raises(ValueError, match=r"not an optimizer state; make it with adam\.init"):
        opt.step(PARAMS, GRADS, opt.transform.init(PARAMS))


@pytest.mark.parametrize("opt", [optimizers.sgd(0.1), optimizers.sgd(0.1, momentum=0.9), optimizers.adam()])
def test_a_state_from_another_parameter_tree_is_refused(opt: Optimizer) -> None:
    other = pmap(
        {"layers": pvector([pmap({"weight": pvector([pvector([1.0, 2.0, 3.0])]), "bias": pvector([0.5])})])}
    )
    with pytest.raises(
        ValueError,
        match=r"another parameter tree: parameter 'layers\.0\.weight' has 3 leaves but 2 in the state",
    ):
        opt.step(other, other, opt.init(PARAMS))
    renamed = pmap({"head": PARAMS["layers"]})
    with pytest.raises(ValueError, match=r"parameter 'head\.0\.bias' is not in the state"):
        opt.step(renamed, renamed, opt.init(PARAMS))
    transposed = pmap(
        {
            "layers": pvector(
                [pmap({"weight": pvector([pvector([1.0]), pvector([2.0])]), "bias": pvector([0.5])})]
            )
        }
    )
    with pytest.raises(ValueError, match="same names and sizes but their leaves are laid out"):
        opt.step(transposed, transposed, opt.init(PARAMS))


def test_a_transform_refuses_moments_of_another_size() -> None:
    adam = optimizers.scale_by_adam()
    state = adam.init(pvector([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"scale_by_adam: state\['mu'\] has 2 leaves but the updates have 3"):
        adam.update(pvector([1.0, 2.0, 3.0]), state, pvector([1.0, 2.0, 3.0]))


def test_a_tampered_state_is_refused() -> None:
    opt = optimizers.adam()
    state = opt.init(PARAMS)
    inner = state["transform"]
    assert isinstance(inner, PMap)
    broken: OptState = state.set("transform", inner.set("parts", pvector([])))
    with pytest.raises(ValueError, match="adam: the state should hold 2 parts"):
        opt.step(PARAMS, GRADS, broken)
    with pytest.raises(ValueError, match=r"state\['step'\] should be a count"):
        opt.step(PARAMS, GRADS, state.set("step", -1))


def test_a_structure_mismatch_is_reported_before_a_bad_leaf() -> None:
    """Params and grads of different structures: the mismatch is the error, whatever their leaves."""
    opt = optimizers.adam(0.1)
    state = opt.init(pmap({"w": 1.0}))
    with pytest.raises(TreeError, match="params and grads differ in structure"):
        opt.step(pmap({"w": True}), pmap({"v": 1.0}), state)
    with pytest.raises(TreeError, match="params and grads differ in structure"):
        opt.step(pmap({"w": 1.0}), pmap({"v": "x"}), state)


def test_swapped_parts_of_a_fused_chain_name_the_first_part() -> None:
    """Adam's direction and the learning rate run fused; a state with the two parts swapped is
    refused by the first part's name, as the parts would check it one after the other."""
    opt = optimizers.adam(0.1)
    state = opt.init(PARAMS)
    inner = cast(PMap[str, Any], state["transform"])
    swapped = state.set("transform", inner.set("parts", pvector(reversed(inner["parts"]))))
    with pytest.raises(ValueError, match=r"^scale_by_adam: the state was made by 'scale_by_learning_rate'"):
        opt.step(PARAMS, GRADS, swapped)


def _keep(leaves: list[float], state: OptState, params: object) -> tuple[list[float], OptState]:
    return list(leaves), state


@pytest.mark.parametrize("field", ["update_flat", "update", "apply_scaled_flat", "scale_flat", "apply_flat"])
def test_a_rule_replaced_on_its_own_is_refused(field: str) -> None:
    """``_replace`` of one rule would leave the others computing the old one (the fused step
    runs ``apply_scaled_flat``, a tree step ``update``): refused where the optimizer is made."""
    adam, rate = optimizers.scale_by_adam(), optimizers.scale_by_learning_rate(0.1)
    target = rate if field in ("scale_flat", "apply_flat") else adam
    new = {"update": lambda u, s, p: (u, s), "update_flat": _keep}.get(field, lambda *args: args)
    changed = target._replace(**cast(dict[str, Any], {field: new}))
    parts = (changed, rate) if target is adam else (adam, changed)
    with pytest.raises(
        ValueError, match=rf"^{target.name}: its update and its fast paths .* compute different"
    ):
        optimizers.chain(*parts)
    with pytest.raises(ValueError, match=rf"^{target.name}: its update and its fast paths"):
        Optimizer(changed)


def test_fewer_fast_paths_and_new_rules_are_accepted() -> None:
    adam, rate = optimizers.scale_by_adam(), optimizers.scale_by_learning_rate(0.1)
    want = optimizers.chain(adam, rate).step(PARAMS, GRADS, optimizers.chain(adam, rate).init(PARAMS))[0]
    for parts in ((adam._replace(apply_scaled_flat=None), rate), (adam, rate._replace(scale_flat=None))):
        opt = optimizers.chain(*parts)  # unfused: the same operations in two passes
        assert opt.step(PARAMS, GRADS, opt.init(PARAMS))[0] == want
    kept = from_flat(lambda params: pmap({"transform": "keep"}), _keep, "keep")
    opt = optimizers.chain(kept, rate)
    assert (
        opt.step(PARAMS, GRADS, opt.init(PARAMS))[0]
        == optimizers.sgd(0.1).step(PARAMS, GRADS, optimizers.sgd(0.1).init(PARAMS))[0]
    )
