"""Trajectories match torch.optim step for step (float64, 50 steps, tolerance 1e-12).

torch is not a dependency: this module is skipped where it is not installed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from pyrsistent import PVector, pmap, pvector

import optimizers
from optimizers import Optimizer
from optimizers.masks import default_decay_mask
from tape.tree import named_parameters, tree_leaves, tree_structure, tree_unflatten

torch: Any = pytest.importorskip("torch")

STEPS = 50


def _params(rng: random.Random) -> object:
    def matrix(rows: int, cols: int) -> object:
        return pvector([pvector([rng.uniform(-1, 1) for _ in range(cols)]) for _ in range(rows)])

    def layer(rows: int, cols: int) -> object:
        return pmap(
            {"weight": matrix(rows, cols), "bias": pvector([rng.uniform(-1, 1) for _ in range(rows)])}
        )

    return pmap({"layers": pvector([layer(3, 2), layer(1, 3)])})


def _as_nested_lists(tree: object) -> object:
    if isinstance(tree, (list, tuple, PVector)):
        return [_as_nested_lists(item) for item in tree]
    return tree


def _torch_trajectory(
    params: object,
    grads: list[object],
    make: Callable[[list[dict[str, Any]]], Any],
    weight_decay: float,
    lr_factor: Callable[[int], float] | None = None,
) -> list[list[float]]:
    tensors = [
        (name, torch.tensor(_as_nested_lists(sub), dtype=torch.float64, requires_grad=True))
        for name, sub in named_parameters(params)
    ]
    decayed = [t for name, t in tensors if default_decay_mask(name)]
    plain = [t for name, t in tensors if not default_decay_mask(name)]
    opt = make([{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}])
    scheduler = None if lr_factor is None else torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    out = []
    for grad_tree in grads:
        for (_, tensor), (_, grad) in zip(tensors, named_parameters(grad_tree), strict=True):
            tensor.grad = torch.tensor(_as_nested_lists(grad), dtype=torch.float64)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        out.append([x for _, tensor in tensors for x in tensor.detach().flatten().tolist()])
    return out


def _our_trajectory(opt: Optimizer, params: object, grads: list[object]) -> list[list[float]]:
    state = opt.init(params)
    out = []
    for grad in grads:
        params, state = opt.step(params, grad, state)
        out.append(tree_leaves(params))
    return out


CASES: list[tuple[str, Callable[[], Optimizer], Callable[[list[dict[str, Any]]], Any], float]] = [
    ("sgd", lambda: optimizers.sgd(0.05), lambda g: torch.optim.SGD(g, lr=0.05), 0.0),
    (
        "sgd momentum + decay",
        lambda: optimizers.sgd(0.05, momentum=0.9, weight_decay=0.01),
        lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9),
        0.01,
    ),
    (
        "sgd nesterov + decay",
        lambda: optimizers.sgd(0.05, momentum=0.8, nesterov=True, weight_decay=0.05),
        lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.8, nesterov=True),
        0.05,
    ),
    (
        "momentum",
        lambda: optimizers.momentum(0.02, beta=0.95),
        lambda g: torch.optim.SGD(g, lr=0.02, momentum=0.95),
        0.0,
    ),
    ("adam", lambda: optimizers.adam(1e-2), lambda g: torch.optim.Adam(g, lr=1e-2), 0.0),
    (
        "adam + L2 decay",
        lambda: optimizers.adam(3e-2, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1),
        lambda g: torch.optim.Adam(g, lr=3e-2, betas=(0.8, 0.99), eps=1e-6),
        0.1,
    ),
    (
        "adamw",
        lambda: optimizers.adamw(1e-2, weight_decay=0.1),
        lambda g: torch.optim.AdamW(g, lr=1e-2),
        0.1,
    ),
]


def _close(ours: list[list[float]], theirs: list[list[float]]) -> None:
    assert len(ours) == len(theirs) == STEPS
    for step, (a_step, b_step) in enumerate(zip(ours, theirs, strict=True)):
        for index, (a, b) in enumerate(zip(a_step, b_step, strict=True)):
            assert abs(a - b) <= 1e-12 * max(1.0, abs(b)), (step, index, a, b)


def _problem(seed: int) -> tuple[object, list[object]]:
    rng = random.Random(seed)
    params = _params(rng)
    treedef = tree_structure(params)
    size = len(tree_leaves(params))
    grads = [tree_unflatten(treedef, [rng.gauss(0.0, 1.0) for _ in range(size)]) for _ in range(STEPS)]
    return params, grads


@pytest.mark.parametrize(("label", "ours", "theirs", "weight_decay"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torch(
    label: str,
    ours: Callable[[], Optimizer],
    theirs: Callable[[list[dict[str, Any]]], Any],
    weight_decay: float,
    seed: int,
) -> None:
    params, grads = _problem(seed)
    _close(_our_trajectory(ours(), params, grads), _torch_trajectory(params, grads, theirs, weight_decay))


def test_adamw_with_a_schedule_matches_torch_lambda_lr() -> None:
    params, grads = _problem(2)

    def factor(step: int) -> float:
        return 0.5 ** (step // 10) if step >= 5 else (step + 1) / 5

    base = 2e-2
    ours = optimizers.adamw(lambda step: base * factor(step), weight_decay=0.2)
    theirs = _torch_trajectory(
        params, grads, lambda g: torch.optim.AdamW(g, lr=base), weight_decay=0.2, lr_factor=factor
    )
    _close(_our_trajectory(ours, params, grads), theirs)
