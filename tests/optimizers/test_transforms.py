"""The building blocks: clipping, momentum trace, chain ordering and composition."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import optimizers
import optimizers.base
import optimizers.transforms
import tape
import tape.tree
from optimizers import GradientTransformation, OptState
from tape.tree import tree_flatten_floats, tree_leaves, tree_structure
from tests.optimizers.strategies import (
    Problem,
    a_mask_for,
    betas,
    epsilons,
    fill,
    lr_or_schedules,
    problems,
    skeletons,
    values,
    weight_decays,
)

big_values = st.floats(min_value=-1e150, max_value=1e150, allow_nan=False, allow_infinity=False)


def run(transform: GradientTransformation, updates: object, params: object) -> object:
    out, _ = transform.update(updates, transform.init(params), params)
    return out


@st.composite
def update_trees(draw: st.DrawFn) -> object:
    skeleton = draw(skeletons)
    size = len(tree_leaves(skeleton))
    return fill(skeleton, draw(st.lists(st.one_of(values, big_values), min_size=size, max_size=size)))


@given(update_trees(), st.floats(min_value=1e-6, max_value=1e6))
def test_clip_by_global_norm_bounds_the_norm_and_keeps_the_direction(
    updates: object, max_norm: float
) -> None:
    clip = optimizers.clip_by_global_norm(max_norm)
    clipped = run(clip, updates, updates)
    assert tree_structure(clipped) == tree_structure(updates)
    before, after = tree_leaves(updates), tree_leaves(clipped)
    norm_before, norm_after = math.hypot(*before), math.hypot(*after)
    assert norm_after <= max_norm
    if norm_before <= max_norm:
        assert after == before
    else:
        assert math.isclose(norm_after, max_norm, rel_tol=1e-12)
        factor = max_norm / norm_before
        for a, b in zip(after, before, strict=True):
            assert math.isclose(a, b * factor, rel_tol=1e-12, abs_tol=1e-300)
            assert a * b >= 0


def test_clip_by_global_norm_leaves_small_updates_and_scales_large_ones() -> None:
    clip = optimizers.clip_by_global_norm(5.0)
    assert run(clip, pmap({"w": 3.0, "b": 4.0}), None) == pmap({"w": 3.0, "b": 4.0})
    assert run(clip, pmap({"w": 6.0, "b": pvector([8.0])}), None) == pmap({"w": 3.0, "b": pvector([4.0])})


def test_chain_order_matters() -> None:
    grads = pmap({"w": pvector([3.0, 4.0])})
    params = pmap({"w": pvector([0.0, 0.0])})
    clip_then_scale = optimizers.chain(
        optimizers.clip_by_global_norm(1.0), optimizers.scale_by_learning_rate(10.0)
    )
    scale_then_clip = optimizers.chain(
        optimizers.scale_by_learning_rate(10.0), optimizers.clip_by_global_norm(1.0)
    )
    first, _ = clip_then_scale.step(params, grads, clip_then_scale.init(params))
    second, _ = scale_then_clip.step(params, grads, scale_then_clip.init(params))
    # clip to norm 1 then scale by 10: norm 10; scale then clip: norm 1
    assert [round(x, 12) for x in first["w"]] == [-6.0, -8.0]
    assert [round(x, 12) for x in second["w"]] == [-0.6, -0.8]
    assert math.hypot(*second["w"]) <= 1.0
    assert clip_then_scale.name == "chain(clip_by_global_norm, scale_by_learning_rate)"


def test_l2_decay_before_or_after_momentum_differs() -> None:
    params = pmap({"weight": 1.0})
    grads = pmap({"weight": 0.0})
    before = optimizers.chain(
        optimizers.add_l2_decay(0.5), optimizers.trace(0.5), optimizers.scale_by_learning_rate(1.0)
    )
    after = optimizers.chain(
        optimizers.trace(0.5), optimizers.add_l2_decay(0.5), optimizers.scale_by_learning_rate(1.0)
    )
    x, x_state = params, before.init(params)
    y, y_state = params, after.init(params)
    for _ in range(2):
        x, x_state = before.step(x, grads, x_state)
        y, y_state = after.step(y, grads, y_state)
    # decay fed through the velocity: 1 -> 0.5 -> 0.5 - (0.5*0.5 + 0.25) = 0.0
    assert x == pmap({"weight": 0.0})
    # decay added after the (zero) velocity: 1 -> 0.5 -> 0.25
    assert y == pmap({"weight": 0.25})


@given(problems(max_steps=8), st.floats(0.1, 10.0), st.floats(1e-3, 0.5))
def test_chaining_clip_ahead_of_adam_is_adam_on_clipped_gradients(
    problem: Problem, max_norm: float, lr: float
) -> None:
    clip = optimizers.clip_by_global_norm(max_norm)
    chained = optimizers.chain(clip, optimizers.adam(lr))
    adam = optimizers.adam(lr)
    x = y = problem.params
    chained_state, adam_state = chained.init(x), adam.init(y)
    for grads in problem.grads:
        x, chained_state = chained.step(x, grads, chained_state)
        y, adam_state = adam.step(y, run(clip, grads, y), adam_state)
    assert x == y
    inner = chained_state["transform"]
    assert isinstance(inner, PMap)
    assert inner["transform"] == "chain(clip_by_global_norm, adam)"


@given(problems(max_steps=6), st.floats(0.0, 0.99), st.booleans())
def test_trace_is_torch_momentum_buffer(problem: Problem, decay: float, nesterov: bool) -> None:
    nesterov = nesterov and decay > 0
    transform = optimizers.trace(decay, nesterov=nesterov)
    state: OptState = transform.init(problem.params)
    velocity: list[float] | None = None
    for grads in problem.grads:
        out, state = transform.update(grads, state, problem.params)
        g = tree_leaves(grads)
        velocity = list(g) if velocity is None else [decay * v + u for v, u in zip(velocity, g, strict=True)]
        expected = [u + decay * v for u, v in zip(g, velocity, strict=True)] if nesterov else velocity
        assert tree_leaves(out) == expected
        assert tree_structure(out) == tree_structure(grads)
        assert tree_leaves(state["velocity"]) == velocity


def test_scale_by_learning_rate_follows_a_schedule_from_step_zero() -> None:
    transform = optimizers.scale_by_learning_rate(optimizers.step_decay(1.0, 1, gamma=0.5))
    state = transform.init(1.0)
    seen = []
    for _ in range(4):
        out, state = transform.update(1.0, state, 1.0)
        seen.append(out)
    assert seen == [-1.0, -0.5, -0.25, -0.125]
    assert state["count"] == 4


def test_apply_updates_adds_leaf_by_leaf_keeping_container_types() -> None:
    params = {"a": [1.0, 2.0], "b": (3.0,)}
    new = optimizers.apply_updates(params, {"a": [0.5, 0.5], "b": (-1.0,)})
    assert new == {"a": [1.5, 2.5], "b": (2.0,)}
    assert type(new["b"]) is tuple
    assert params == {"a": [1.0, 2.0], "b": (3.0,)}


def test_the_flat_path_equals_the_tree_path_bit_for_bit() -> None:
    """Each built-in transformation's ``update_flat`` is its ``update`` on the leaves."""
    params = pmap({"w": pvector([pvector([1.0, -2.0]), pvector([0.5, 3.0])]), "b": pvector([0.1, -0.2])})
    grads = pmap({"w": pvector([pvector([0.3, 0.1]), pvector([-0.4, 2.0])]), "b": pvector([1.5, -0.5])})
    for opt in (
        optimizers.adam(0.1),
        optimizers.adamw(0.1),
        optimizers.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        optimizers.chain(optimizers.clip_by_global_norm(0.5), optimizers.adam(0.1)),
    ):
        assert opt.transform.update_flat is not None
        state = opt.transform.init(params)
        tree_updates, tree_state = opt.transform.update(grads, state, params)
        flat_updates, flat_state = opt.transform.update_flat(tree_leaves(grads), state, params)
        assert tree_leaves(tree_updates) == flat_updates and tree_state == flat_state


def _bits(tree: object) -> list[bytes]:
    return [struct.pack("<d", leaf) for leaf in tree_leaves(tree)]


@given(
    problems(max_steps=6),
    lr_or_schedules,
    st.one_of(st.just(0), betas),
    betas,
    epsilons,
    weight_decays,
)
def test_adam_fused_with_its_learning_rate_equals_its_passes_apart_bit_for_bit(
    problem: Problem, lr: float | optimizers.Schedule, b1: float, b2: float, eps: float, decay: float
) -> None:
    """Adam's direction and the learning rate in one pass (``apply_scaled_flat``) give the
    bits of the two passes (``apply_flat``) and of updates then ``p + u``, state included."""
    fused = optimizers.adam(lr, b1, b2, eps, weight_decay=decay, decay_mask=a_mask_for(problem.params))
    parts = [
        optimizers.scale_by_adam(b1, b2, eps)._replace(apply_scaled_flat=None),
        optimizers.scale_by_learning_rate(lr),
    ]
    if decay > 0:
        parts.insert(0, optimizers.add_l2_decay(decay, a_mask_for(problem.params)))
    two_passes = optimizers.chain(*parts, name="adam")
    apart = optimizers.Optimizer(two_passes.transform._replace(apply_flat=None))
    assert fused.transform.apply_flat is not None and two_passes.transform.apply_flat is not None
    runs = [(opt, problem.params, opt.init(problem.params)) for opt in (fused, two_passes, apart)]
    for grads in problem.grads:
        runs = [(opt, *opt.step(params, grads, state)) for opt, params, state in runs]
        (_, want, want_state), *others = runs
        for _, got, got_state in others:
            assert _bits(got) == _bits(want) and tree_structure(got) == tree_structure(want)
            assert got_state == want_state


def test_a_step_that_adds_in_its_last_pass_equals_updates_then_adding_bit_for_bit() -> None:
    """``apply_flat`` (the learning rate's scaling fused with ``p + u``) changes no bit of a step."""
    params = pmap({"w": pvector([pvector([1.0, -2.0]), pvector([0.5, 3.0])]), "b": pvector([0.1, -0.2])})
    grads = pmap({"w": pvector([pvector([0.3, 0.1]), pvector([-0.4, 2.0])]), "b": pvector([1.5, -0.5])})
    schedule = optimizers.cosine_decay(0.1, decay_steps=5)
    assert optimizers.adamw(0.1).transform.apply_flat is None  # its last part is the decoupled decay
    for opt in (
        optimizers.adam(0.1),
        optimizers.adamw(schedule, weight_decay=0.0),
        optimizers.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        optimizers.chain(optimizers.clip_by_global_norm(0.5), optimizers.adam(0.1)),
    ):
        assert opt.transform.apply_flat is not None
        apart = optimizers.Optimizer(opt.transform._replace(apply_flat=None))  # updates, then p + u
        fused_params, fused_state = params, opt.init(params)
        params_apart, state_apart = params, apart.init(params)
        for _ in range(4):
            fused_params, fused_state = opt.step(fused_params, grads, fused_state)
            params_apart, state_apart = apart.step(params_apart, grads, state_apart)
            assert fused_params == params_apart and fused_state == state_apart
        assert fused_params != params


def test_adam_moments_of_updates_that_are_not_floats_are_not_taken_for_floats() -> None:
    """Differentiating through ``update`` (its updates Values of a tape): the moments hold
    Values, and are never remembered as a tree of floats (which would let a later step or
    an ``arrays=True`` watch skip their check)."""
    adam = optimizers.scale_by_adam()
    params = pmap({"w": pvector([1.0, 2.0])})
    seen: list[object] = []

    def through_update(g: float, /) -> tape.Value:
        _, state = adam.update(pmap({"w": pvector([g, 2.0])}), adam.init(params), params)
        seen.append(tree_flatten_floats(state["mu"]))
        return cast("PMap[str, list[tape.Value]]", state["mu"])["w"][0]

    assert tape.grad(through_update)(1.0) == 1 - 0.9  # mu = b1 * 0 + (1 - b1) * g
    assert seen == [None]
    _, floats_state = adam.update(pmap({"w": pvector([1.0, 2.0])}), adam.init(params), params)
    assert tree_flatten_floats(floats_state["mu"]) is not None  # float updates: remembered


def test_a_learning_rate_of_int_zero_keeps_the_signs_of_zero_params() -> None:
    """``-0 * u`` is an int 0: a zero param keeps its sign, as ``p - 0 * u`` does."""
    opt = optimizers.sgd(0)
    params = pmap({"w": -0.0})
    stepped, _ = opt.step(params, pmap({"w": -1.0}), opt.init(params))
    assert struct.pack("<d", stepped["w"]) == struct.pack("<d", -0.0)


_Map = PMap[str, Any]


class _Sticky(float):
    """A float subclass whose arithmetic keeps its type (as some array libraries' scalars do)."""

    def __neg__(self) -> _Sticky:
        return type(self)(-float(self))

    def __mul__(self, other: object) -> _Sticky:
        return type(self)(float(self) * float(cast(float, other)))

    __rmul__ = __mul__

    def __add__(self, other: object) -> _Sticky:
        return type(self)(float(self) + float(cast(float, other)))

    __radd__ = __add__


def _counting_float_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every check of leaves for being floats (``only_floats``), wherever it is called from."""
    calls: list[int] = []
    check = tape.tree.only_floats

    def counted(items: Iterable[object]) -> bool:
        calls.append(1)
        return check(items)

    for module in (tape.tree, optimizers.base, optimizers.transforms):
        monkeypatch.setattr(module, "only_floats", counted)
    return calls


def test_a_fused_adam_step_on_known_floats_checks_no_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Params and gradients a step or ``grad`` built are known floats: the step checks none of
    its 2 x 3 leaves again, and the trees it builds are known floats too (for the next step)."""
    params = pmap({"w": pvector([pvector([1.0, -2.0]), pvector([0.5, 3.0])]), "b": pvector([0.1, -0.2])})
    grads = tape.grad(lambda p: tape.vsum([x * x for x in tree_leaves(p)]))(params)
    opt = optimizers.adam(0.1)
    params, state = opt.step(params, grads, opt.init(params))
    calls = _counting_float_checks(monkeypatch)
    new_params, new_state = opt.step(params, grads, state)
    assert calls == []
    moments = cast(_Map, cast(_Map, new_state["transform"])["parts"][0])
    for tree in (new_params, moments["mu"], moments["nu"]):
        assert tree_flatten_floats(tree, walk=False) is not None
    fresh = pmap({"w": pvector([pvector([0.1, 0.2]), pvector([0.3, 0.4])]), "b": pvector([0.5, 0.6])})
    opt.step(params, fresh, state)
    assert calls != []  # gradients no step or grad built are not known: they are checked


def test_moments_holding_a_float_subclass_are_not_taken_for_floats() -> None:
    """A state whose moments hold a float subclass gives moments of that subclass: they are
    checked, not assumed to be floats, and the params are those of a float state."""
    params = pmap({"w": pvector([1.0, -2.0]), "b": pvector([0.5])})
    grads = pmap({"w": pvector([0.3, -0.1]), "b": pvector([2.0])})
    opt = optimizers.adam(0.1)
    state = opt.init(params)
    _, float_state = opt.step(params, grads, state)
    parts = cast(_Map, float_state["transform"])["parts"]
    adam_state = cast(_Map, parts[0])
    sticky = {key: tape.tree.tree_map(_Sticky, adam_state[key]) for key in ("mu", "nu")}
    sticky_state = float_state.set(
        "transform",
        cast(_Map, float_state["transform"]).set("parts", parts.set(0, adam_state.update(sticky))),
    )
    want, _ = opt.step(params, grads, float_state)
    got, got_state = opt.step(params, grads, sticky_state)
    assert _bits(got) == _bits(want)
    new_moments = cast(_Map, cast(_Map, got_state["transform"])["parts"][0])
    assert type(tree_leaves(new_moments["mu"])[0]) is _Sticky
    assert tree_flatten_floats(new_moments["mu"], walk=False) is None
    assert tree_flatten_floats(new_moments["nu"]) is None


class _Disguised(_Sticky):
    """A float subclass keeping its type through arithmetic that says it is a float
    (``__class__``), as proxies do: only ``type`` tells it apart."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return float


@pytest.mark.parametrize("make", [optimizers.adam, optimizers.sgd])
def test_params_a_disguised_learning_rate_gives_are_not_taken_for_floats(
    make: Callable[[optimizers.LearningRate], optimizers.Optimizer],
) -> None:
    """A schedule's rate whose ``__class__`` says float makes params of its own type: the
    fused pass does not register them as floats (``tree_flatten_floats`` answers by type)."""
    params = pmap({"w": pvector([1.0, -2.0]), "b": pvector([0.5])})
    grads = tape.grad(lambda p: tape.vsum([x * x for x in tree_leaves(p)]))(params)
    opt = make(lambda step: _Disguised(0.1))
    new_params, _ = opt.step(params, grads, opt.init(params))
    assert {type(leaf) for leaf in tree_leaves(new_params)} == {_Disguised}
    assert tree_flatten_floats(new_params, walk=False) is None
