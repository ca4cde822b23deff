"""The ready-made optimizers follow torch.optim's formulas step for step."""

from __future__ import annotations

import math

from hypothesis import assume, given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import optimizers
from optimizers import Optimizer
from optimizers.masks import mask_leaves
from tape.tree import tree_leaves, tree_map, tree_structure
from tests.optimizers.reference import adam_trajectory, sgd_trajectory
from tests.optimizers.strategies import (
    Problem,
    a_mask_for,
    as_schedule,
    betas,
    epsilons,
    lr_or_schedules,
    problems,
    weight_decays,
)


def trajectory(opt: Optimizer, problem: Problem) -> list[list[float]]:
    """The params' leaves after each step of ``opt``, checking structures are kept."""
    params = problem.params
    state = opt.init(params)
    out = []
    for grads in problem.grads:
        params, state = opt.step(params, grads, state)
        assert tree_structure(params) == tree_structure(problem.params)
        out.append(tree_leaves(params))
    assert state["step"] == len(problem.grads)
    return out


@given(
    problems(),
    lr_or_schedules,
    st.one_of(st.just(0.0), betas, st.floats(min_value=1.0, max_value=2.0)),
    st.booleans(),
    weight_decays,
)
def test_sgd_matches_the_formulas_exactly(
    problem: Problem, lr: float | optimizers.Schedule, mu: float, nesterov: bool, wd: float
) -> None:
    nesterov = nesterov and mu > 0
    mask = a_mask_for(problem.params)
    opt = optimizers.sgd(lr, momentum=mu, nesterov=nesterov, weight_decay=wd, decay_mask=mask)
    expected = sgd_trajectory(
        tree_leaves(problem.params),
        [tree_leaves(g) for g in problem.grads],
        as_schedule(lr),
        mu,
        nesterov,
        wd,
        mask_leaves(mask, problem.params),
    )
    assert trajectory(opt, problem) == expected


@given(problems(), lr_or_schedules, betas, st.booleans(), weight_decays)
def test_momentum_is_sgd_with_momentum_beta(
    problem: Problem, lr: float | optimizers.Schedule, beta: float, nesterov: bool, wd: float
) -> None:
    nesterov = nesterov and beta > 0
    mask = a_mask_for(problem.params)
    opt = optimizers.momentum(lr, beta=beta, nesterov=nesterov, weight_decay=wd, decay_mask=mask)
    expected = sgd_trajectory(
        tree_leaves(problem.params),
        [tree_leaves(g) for g in problem.grads],
        as_schedule(lr),
        beta,
        nesterov,
        wd,
        mask_leaves(mask, problem.params),
    )
    assert trajectory(opt, problem) == expected


@given(problems(), lr_or_schedules, betas, betas, epsilons, weight_decays)
def test_adam_matches_the_formulas_exactly(
    problem: Problem,
    lr: float | optimizers.Schedule,
    b1: float,
    b2: float,
    eps: float,
    wd: float,
) -> None:
    mask = a_mask_for(problem.params)
    opt = optimizers.adam(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, decay_mask=mask)
    expected = adam_trajectory(
        tree_leaves(problem.params),
        [tree_leaves(g) for g in problem.grads],
        as_schedule(lr),
        b1,
        b2,
        eps,
        wd,
        mask_leaves(mask, problem.params),
        decoupled=False,
    )
    assert trajectory(opt, problem) == expected


@given(problems(), lr_or_schedules, betas, betas, epsilons, weight_decays)
def test_adamw_matches_the_formulas(
    problem: Problem,
    lr: float | optimizers.Schedule,
    b1: float,
    b2: float,
    eps: float,
    wd: float,
) -> None:
    mask = a_mask_for(problem.params)
    opt = optimizers.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, decay_mask=mask)
    expected = adam_trajectory(
        tree_leaves(problem.params),
        [tree_leaves(g) for g in problem.grads],
        as_schedule(lr),
        b1,
        b2,
        eps,
        wd,
        mask_leaves(mask, problem.params),
        decoupled=True,
    )
    got = trajectory(opt, problem)
    # p*(1 - lr*wd) - lr*s is computed as p + (-lr*s - lr*wd*p): equal up to rounding,
    # and the rounding does not feed back (the Adam moments never see p).
    scale = max([1.0] + [abs(x) for step in expected for x in step])
    for got_step, expected_step in zip(got, expected, strict=True):
        for a, b in zip(got_step, expected_step, strict=True):
            assert abs(a - b) <= 1e-12 * scale
    if wd == 0:
        assert got == expected


@given(problems(max_steps=3), st.floats(min_value=0.01, max_value=1.0), st.floats(0.01, 0.5))
def test_decay_shrinks_masked_params_only(problem: Problem, lr: float, wd: float) -> None:
    """With zero gradients, only the decayed parameters move, each towards zero."""
    zero = tree_map(lambda g: 0.0, problem.params)
    assume(any(p != 0 for p in tree_leaves(problem.params)))
    mask = a_mask_for(problem.params)
    flags = mask_leaves(mask, problem.params)
    for opt in (
        optimizers.sgd(lr, weight_decay=wd, decay_mask=mask),
        optimizers.adamw(lr, weight_decay=wd, decay_mask=mask),
    ):
        new, _ = opt.step(problem.params, zero, opt.init(problem.params))
        for before, after, decayed in zip(tree_leaves(problem.params), tree_leaves(new), flags, strict=True):
            if decayed:
                assert math.isclose(after, before * (1 - lr * wd), rel_tol=1e-14, abs_tol=1e-300)
                assert abs(after) <= abs(before)
            else:
                assert after == before


def _quadratic(params: PMap[str, object], target: PMap[str, object]) -> float:
    return sum((p - t) ** 2 for p, t in zip(tree_leaves(params), tree_leaves(target), strict=True))


def test_every_optimizer_minimises_a_least_squares_loss() -> None:
    """Each optimizer drives ``sum (p - target)**2`` (gradient ``2 (p - target)``) far down."""
    params: PMap[str, object] = pmap(
        {
            "layers": pvector(
                [
                    pmap(
                        {
                            "weight": pvector([pvector([1.0, -2.0]), pvector([0.5, 3.0])]),
                            "bias": pvector([0.0, 1.0]),
                        }
                    ),
                    pmap({"weight": pvector([pvector([-1.5, 2.5])]), "bias": pvector([-2.0])}),
                ]
            )
        }
    )
    target = tree_map(lambda p: 0.3 - 0.1 * p, params)
    start = _quadratic(params, target)
    candidates = {
        "sgd": optimizers.sgd(0.1),
        "sgd+nesterov+decay": optimizers.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "momentum": optimizers.momentum(0.05),
        "adam": optimizers.adam(0.05),
        "adamw": optimizers.adamw(0.05),
        "clipped adam": optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adam(0.05)),
        "adam+cosine": optimizers.adam(optimizers.cosine_decay(0.1, decay_steps=300)),
    }
    for label, opt in candidates.items():
        current: PMap[str, object] = params
        state = opt.init(current)
        for _ in range(300):
            grads = tree_map(lambda p, t: 2 * (p - t), current, target)
            current, state = opt.step(current, grads, state)
        assert isinstance(current, PMap) and isinstance(current["layers"], PVector)
        assert _quadratic(current, target) < 1e-3 * start, label


def test_step_gives_back_the_params_type() -> None:
    """Typed user code needs no casts: ``step`` returns the type of the params it was given."""
    params: PMap[str, PVector[float]] = pmap({"w": pvector([3.0, -4.0]), "b": pvector([1.0])})
    opt = optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.momentum(0.1))
    state = opt.init(params)
    for _ in range(50):
        grads: PMap[str, PVector[float]] = pmap(
            {name: pvector([2 * x for x in values]) for name, values in params.items()}
        )
        params, state = opt.step(params, grads, state)
    assert all(abs(x) < 0.5 for values in params.values() for x in values)
    assert isinstance(params["w"], PVector) and len(params["w"]) == 2
