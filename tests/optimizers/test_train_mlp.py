"""Every ready-made optimizer trains a small MLP on a generated dataset to a clearly lower loss.

The loss is the layer-level one training uses: ``cross_entropy_with_logits_batch`` of
``MLP.apply_batch`` under ``tape.value_and_grad(..., arrays=True)``. The thresholds were
measured and leave margin: with the seeds used here, full-batch on moons(200), the final
loss is 0.41x the initial one for plain SGD and 0.13x for the Adam family (over data
seeds 0-4 the worst cases were 0.53x and 0.22x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

import optimizers
import tape
from functional_nn import MLP, DataLoader, Dataset, datasets, random
from functional_nn.functional import argmax
from functional_nn.loss import cross_entropy_with_logits_batch
from functional_nn.mlp import Params
from optimizers import Optimizer
from tape import Scalar
from tape.tree import tree_leaves, tree_structure

STEPS = 120
MODEL = MLP(2, [16, 2], activation="tanh")
DATA = datasets.moons(200, noise=0.1, key=random.key(1))
INPUTS = tuple(DATA.inputs)
LABELS = DATA.labels()
INIT = MODEL.init(random.key(11))

LossAndGrad = Callable[[Params, Sequence[Sequence[float]], Sequence[int]], "tuple[float, Params]"]


def batch_loss(params: Params, inputs: Sequence[Sequence[float]], labels: Sequence[int]) -> Scalar:
    """Mean cross-entropy of the MLP's logits over a batch."""
    return cross_entropy_with_logits_batch(MODEL.apply_batch(params, inputs), labels)


def loss_and_grad(arrays: bool) -> LossAndGrad:
    return tape.value_and_grad(batch_loss, arrays=arrays)


def float_loss(params: Params) -> float:
    """The full-dataset loss on floats, no tape."""
    outputs = MODEL.apply_batch(params, INPUTS)
    assert isinstance(outputs, tuple)
    return float(cross_entropy_with_logits_batch(outputs, LABELS))


def accuracy(params: Params) -> float:
    return sum(argmax(MODEL.apply(params, x)) == y for x, y in zip(INPUTS, LABELS, strict=True)) / len(LABELS)


def train_full_batch(opt: Optimizer, steps: int) -> tuple[Params, optimizers.OptState, list[float]]:
    """``steps`` full-batch steps from ``INIT``; the params, state and loss before each step."""
    step_fn = loss_and_grad(arrays=True)
    params, state = INIT, opt.init(INIT)
    losses = []
    for _ in range(steps):
        loss, grads = step_fn(params, INPUTS, LABELS)
        params, state = opt.step(params, grads, state)
        losses.append(loss)
    return params, state, losses


OPTIMIZERS: dict[str, tuple[Callable[[], Optimizer], float]] = {
    # name: (optimizer factory, largest allowed final / initial loss)
    "sgd": (lambda: optimizers.sgd(0.1), 0.6),
    "sgd-nesterov-wd": (lambda: optimizers.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), 0.6),
    "momentum": (lambda: optimizers.momentum(0.05), 0.6),
    "adam": (lambda: optimizers.adam(0.02), 0.35),
    "adamw": (lambda: optimizers.adamw(0.02, weight_decay=1e-2), 0.35),
    "clip-adam": (lambda: optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adam(0.02)), 0.35),
    "adam-cosine": (lambda: optimizers.adam(optimizers.cosine_decay(0.05, STEPS)), 0.35),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trains_an_mlp_on_moons(name: str) -> None:
    make, ratio = OPTIMIZERS[name]
    opt = make()
    initial = float_loss(INIT)
    params, state, losses = train_full_batch(opt, STEPS)
    final = float_loss(params)
    assert losses[0] == pytest.approx(initial, rel=1e-12)  # the tape's loss is the float one
    assert final < ratio * initial, f"{name}: loss {initial:.4f} -> {final:.4f}"
    assert accuracy(params) > accuracy(INIT)
    assert state["step"] == STEPS
    assert tree_structure(params) == tree_structure(INIT)
    assert all(isinstance(leaf, float) for leaf in tree_leaves(params))


def test_the_schedule_is_followed_to_its_end() -> None:
    """A cosine schedule reaches 0 at its last step: the step before moves the params, that one not."""
    opt = optimizers.adam(optimizers.cosine_decay(0.05, STEPS))
    step_fn = loss_and_grad(arrays=True)
    params, state = INIT, opt.init(INIT)
    snapshots = [tree_leaves(params)]
    for _ in range(STEPS + 1):
        _, grads = step_fn(params, INPUTS, LABELS)
        params, state = opt.step(params, grads, state)
        snapshots.append(tree_leaves(params))
    assert state["step"] == STEPS + 1
    assert snapshots[STEPS] != snapshots[STEPS - 1]  # update STEPS - 1: lr = 0.025 * (1 + cos(pi * 119/120))
    assert snapshots[STEPS + 1] == snapshots[STEPS]  # update STEPS: lr = 0
    assert float_loss(params) < 0.35 * float_loss(INIT)


def test_mini_batches_train_too() -> None:
    """Adam over shuffled mini-batches of 50: 10 epochs of 4 steps lower the full-data loss."""
    opt = optimizers.adam(0.02)
    loader = DataLoader(DATA, 50)
    step_fn = loss_and_grad(arrays=True)
    params, state = INIT, opt.init(INIT)
    epochs = 10
    for epoch in range(epochs):
        for batch in loader.epoch(random.fold_in(random.key(5), epoch)):
            _, grads = step_fn(params, batch.inputs, batch.labels())
            params, state = opt.step(params, grads, state)
    assert state["step"] == epochs * len(loader) == 40
    assert float_loss(params) < 0.5 * float_loss(INIT)


def _tiny() -> Dataset:
    return datasets.moons(6, noise=0.1, key=random.key(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: optimizers.sgd(0.3, momentum=0.9),
        lambda: optimizers.adamw(0.05),
        lambda: optimizers.chain(optimizers.clip_by_global_norm(0.5), optimizers.adam(0.05)),
    ],
    ids=["sgd-momentum", "adamw", "clip-adam"],
)
def test_scalar_path_gives_the_array_paths_params(make: Callable[[], Optimizer]) -> None:
    """``arrays=False`` (a node per scalar) and ``arrays=True`` (a node per layer) agree to 1e-12."""
    tiny = _tiny()
    inputs, labels = tuple(tiny.inputs), tiny.labels()
    opt = make()
    results = []
    for arrays in (False, True):
        step_fn = loss_and_grad(arrays)
        params, state = INIT, opt.init(INIT)
        losses = []
        for _ in range(4):
            loss, grads = step_fn(params, inputs, labels)
            params, state = opt.step(params, grads, state)
            losses.append(loss)
        results.append((tree_leaves(params), losses, state["step"]))
    (scalar_leaves, scalar_losses, scalar_steps), (array_leaves, array_losses, array_steps) = results
    assert scalar_steps == array_steps == 4
    assert scalar_losses == pytest.approx(array_losses, abs=1e-12, rel=0)
    assert scalar_leaves != tree_leaves(INIT)  # the params moved
    assert max(abs(a - b) for a, b in zip(scalar_leaves, array_leaves, strict=True)) <= 1e-12
