"""The four workloads: their data and initial params, and this library's implementation of each.

Every implementation of a workload (this library, the hand-written baseline,
micrograd, PyTorch) starts from the same problem value built here: the same
initial params (drawn once with :meth:`MLP.init`), the same data, the same batch
order and, for W2, the same op sequence. Only this module's ``library_*``
functions use the library's training API; they use its public API only.

- W1: MLP 2-16-16-1 (relu), MSE over a full batch of 100 points, one SGD step (lr 0.01).
- W1 scalar: the same step written as the README's first example: a per-example
  loss on scalar Values (``MLP.apply`` per point), summed with ``tape.vsum``.
- W2: a scalar expression graph of about 40,000 recorded ops (add, mul, relu over
  100 leaves), forward and backward.
- W3: digits (standardised, 80% split), MLP 64-32-10 (relu), cross-entropy with
  logits, batch 32, Adam (lr 1e-3): one epoch over the training split.
- W4: inference of the W3 model on floats over the whole test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import optimizers
import tape
from functional_nn import datasets, random
from functional_nn.dataloader import Batch, DataLoader, Dataset, train_test_split
from functional_nn.loss import cross_entropy_with_logits_batch, mse_loss, mse_loss_batch
from functional_nn.mlp import MLP, Params
from tape import Scalar
from tape.tree import tree_flatten, tree_unflatten

__all__ = [
    "ADD",
    "MUL",
    "RELU",
    "DigitsProblem",
    "GraphProblem",
    "Instruction",
    "RegressionProblem",
    "digits_problem",
    "graph_problem",
    "library_w1_scalar_step",
    "library_w1_step",
    "library_w2",
    "library_w2_jit",
    "library_w3_epoch",
    "library_w4",
    "optimizer_problem",
    "library_adam_step",
    "regression_problem",
    "replay",
]

# --- W1: regression --------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionProblem:
    """W1: a 2-16-16-1 relu MLP, ``n`` two-dimensional inputs and a smooth regression target."""

    model: MLP
    params: Params
    inputs: tuple[tuple[float, ...], ...]
    targets: tuple[float, ...]
    lr: float


def regression_problem(
    points: int = 100, *, sizes: Sequence[int] = (16, 16, 1), seed: int = 0
) -> RegressionProblem:
    """The moons inputs with the target ``sin(2 x0) + cos(x1)``; He-initialised params."""
    data_key, init_key = random.split(random.key(seed))
    data = datasets.moons(points, noise=0.1, key=data_key)
    inputs = tuple(tuple(row) for row in data.inputs)
    targets = tuple(math.sin(2.0 * x0) + math.cos(x1) for x0, x1 in inputs)
    model = MLP(2, tuple(sizes), activation="relu")
    return RegressionProblem(model, model.init(init_key), inputs, targets, lr=0.01)


def library_w1_step(
    problem: RegressionProblem, *, arrays: bool = True, jit: bool = False
) -> Callable[[Params], tuple[float, Params]]:
    """One full-batch SGD step with this library: ``params -> (loss before the step, new params)``.

    With ``arrays=True`` (as :mod:`functional_nn.train` does) the batch goes through
    the layer-level tape nodes; with ``arrays=False`` through scalar Values. With
    ``jit=True`` the loss and its gradient run as code compiled by :func:`tape.jit`.
    """
    model = problem.model
    xs, ys = problem.inputs, problem.targets

    def loss(params: Params, inputs: Sequence[Sequence[float]], targets: Sequence[float]) -> Scalar:
        outputs = model.apply_batch(params, inputs)
        if isinstance(outputs, tape.Array):
            return mse_loss_batch(outputs, targets)
        return mse_loss_batch([out[0] for out in outputs], targets)

    loss_and_grad = tape.value_and_grad(loss, arrays=arrays)
    if jit:
        loss_and_grad = tape.jit(loss_and_grad)
    optimizer = optimizers.sgd(problem.lr)
    state = optimizer.init(problem.params)

    def step(params: Params) -> tuple[float, Params]:
        value, grads = loss_and_grad(params, xs, ys)
        new_params, _ = optimizer.step(params, grads, state)
        return value, new_params

    return step


def library_w1_scalar_step(
    problem: RegressionProblem, *, jit: bool = False
) -> Callable[[Params], tuple[float, Params]]:
    """W1 as the README's first example writes it: one scalar loss per example, then an SGD step.

    ``params -> (loss before the step, new params)``, the same numbers as
    :func:`library_w1_step`, recording one node per neuron and example (``jit=True``:
    compiled by :func:`tape.jit` on the first call).
    """
    model = problem.model
    xs, ys = problem.inputs, problem.targets

    def loss(params: Params, inputs: Sequence[Sequence[float]], targets: Sequence[float]) -> Scalar:
        losses = [mse_loss(model.apply(params, x)[0], y) for x, y in zip(inputs, targets, strict=True)]
        return tape.vsum(losses) / len(losses)

    loss_and_grad = tape.value_and_grad(loss)
    if jit:
        loss_and_grad = tape.jit(loss_and_grad)
    optimizer = optimizers.sgd(problem.lr)
    state = optimizer.init(problem.params)

    def step(params: Params) -> tuple[float, Params]:
        value, grads = loss_and_grad(params, xs, ys)
        new_params, _ = optimizer.step(params, grads, state)
        return value, new_params

    return step


# --- W2: an arbitrary scalar graph ----------------------------------------------------------

ADD, MUL, RELU = 0, 1, 2
Instruction = tuple[int, int, int]
"""``(kind, a, b)``: append ``nodes[a] + nodes[b]``, ``nodes[a] * nodes[b]`` or ``relu(nodes[a])``."""


@dataclass(frozen=True)
class GraphProblem:
    """W2: leaf values and a straight-line program over them; the last node is the output."""

    leaves: tuple[float, ...]
    program: tuple[Instruction, ...]

    @property
    def num_nodes(self) -> int:
        """Leaves plus recorded ops."""
        return len(self.leaves) + len(self.program)


def graph_problem(ops: int = 40_000, *, leaves: int = 100, seed: int = 0) -> GraphProblem:
    """A random expression graph of about ``ops`` add/mul/relu ops over ``leaves`` leaves.

    The graph is a running sum of terms. Each term starts as the product of two
    leaves, then takes 8 steps, each one of: add an earlier node (40%), multiply by
    a leaf (35%), or add the relu of an earlier node (25%, two ops). Earlier nodes
    are drawn from everything but the running sums, so values stay moderate (the
    output is in the thousands) and every node gets a non-zero, finite adjoint.
    Deterministic: the same arguments give the same program.
    """
    if ops < 20 or leaves < 2:
        raise ValueError(f"need ops >= 20 and leaves >= 2, got ops={ops}, leaves={leaves}")
    leaf_key, program_key = random.split(random.key(seed))
    values = tuple(random.uniform(leaf_key, leaves, -1.0, 1.0))
    draws = iter(random.uniform(program_key, 3 * ops + 64))

    def pick(count: int) -> int:
        return int(next(draws) * count)

    program: list[Instruction] = []
    pool = list(range(leaves))  # the nodes a term may add: all but the running sums
    total = -1
    while len(program) + 20 <= ops:
        program.append((MUL, pick(leaves), pick(leaves)))
        term = leaves + len(program) - 1
        pool.append(term)
        for _ in range(8):
            draw = next(draws)
            if draw < 0.40:
                program.append((ADD, term, pool[pick(len(pool))]))
            elif draw < 0.75:
                program.append((MUL, term, pick(leaves)))
            else:
                program.append((RELU, pool[pick(len(pool))], -1))
                pool.append(leaves + len(program) - 1)
                program.append((ADD, term, leaves + len(program) - 1))
            term = leaves + len(program) - 1
            pool.append(term)
        if total >= 0:
            program.append((ADD, total, term))
        total = leaves + len(program) - 1
    return GraphProblem(values, tuple(program))


N = TypeVar("N", bound="Arithmetic")


class Arithmetic(Protocol):
    """What :func:`replay` needs of a node: ``+``, ``*`` and ``.relu()``."""

    def __add__(self: N, other: N, /) -> N: ...
    def __mul__(self: N, other: N, /) -> N: ...
    def relu(self: N) -> N: ...


def replay(program: Sequence[Instruction], leaves: Sequence[N]) -> list[N]:
    """Run ``program`` on ``leaves`` with their own operators; every node, leaves first."""
    nodes = list(leaves)
    append = nodes.append
    for kind, a, b in program:
        if kind == ADD:
            append(nodes[a] + nodes[b])
        elif kind == MUL:
            append(nodes[a] * nodes[b])
        else:
            append(nodes[a].relu())
    return nodes


def library_w2(problem: GraphProblem) -> tuple[float, list[float]]:
    """Record the graph on a tape and take the output's gradient: ``(output, d out / d leaves)``."""
    with tape.Tape() as t:
        leaves = [t.watch(x) for x in problem.leaves]
        out = replay(problem.program, leaves)[-1]
    return out.data, t.gradient(out, leaves)


def library_w2_jit(problem: GraphProblem) -> Callable[[], tuple[float, list[float]]]:
    """W2 through :func:`tape.jit`: the same output and gradient, compiled on the first call."""
    program = problem.program
    leaves = list(problem.leaves)
    compiled = tape.jit(tape.value_and_grad(lambda xs: replay(program, xs)[-1]))

    def run() -> tuple[float, list[float]]:
        return compiled(leaves)

    return run


# --- W3 and W4: digits -------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsProblem:
    """W3/W4: standardised digits split 80/20, a 64-32-10 relu MLP, batch 32, Adam."""

    model: MLP
    params: Params
    train: Dataset
    test: Dataset
    batch_size: int
    lr: float
    shuffle_key: random.Key

    def loader(self) -> DataLoader:
        """The training loader (shuffled by :attr:`shuffle_key`)."""
        return DataLoader(self.train, self.batch_size, shuffle=True)

    def batches(self) -> list[Batch]:
        """The epoch's batches, in the order every implementation uses."""
        return list(self.loader().epoch(self.shuffle_key))


def digits_problem(
    *, train_size: int | None = None, test_size: int | None = None, batch_size: int = 32, seed: int = 0
) -> DigitsProblem:
    """Digits standardised with statistics of the 80% training split; He-initialised params.

    ``train_size`` and ``test_size`` keep only the first examples of each split
    (for quick tests); by default all are used.
    """
    split_key, init_key, shuffle_key = random.split(random.key(seed), 3)
    train, test = train_test_split(datasets.digits(), 0.2, key=split_key)
    if train_size is not None:
        train = train[:train_size]
    if test_size is not None:
        test = test[:test_size]
    train, test, _ = datasets.standardize(train, test)
    model = MLP(64, (32, 10), activation="relu")
    return DigitsProblem(model, model.init(init_key), train, test, batch_size, 1e-3, shuffle_key)


def library_w3_epoch(
    problem: DigitsProblem, *, arrays: bool = True
) -> Callable[[Params], tuple[list[float], Params]]:
    """One epoch of Adam with this library: ``params -> (loss of each batch, new params)``.

    ``arrays`` as for :func:`library_w1_step`.
    """
    model = problem.model

    def loss(params: Params, inputs: Sequence[Sequence[float]], labels: Sequence[int]) -> Scalar:
        return cross_entropy_with_logits_batch(model.apply_batch(params, inputs), labels)

    loss_and_grad = tape.value_and_grad(loss, arrays=arrays)
    optimizer = optimizers.adam(problem.lr)
    loader = problem.loader()
    shuffle_key = problem.shuffle_key
    initial_state = optimizer.init(problem.params)

    def epoch(params: Params) -> tuple[list[float], Params]:
        state = initial_state
        losses: list[float] = []
        for batch in loader.epoch(shuffle_key):
            value, grads = loss_and_grad(params, batch.inputs, batch.labels())
            params, state = optimizer.step(params, grads, state)
            losses.append(value)
        return losses, params

    return epoch


def library_w4(problem: DigitsProblem, params: Params) -> list[tuple[float, ...]]:
    """The model's logits for every test row, on floats (no tape)."""
    model = problem.model
    return [model.apply(params, x) for x in problem.test.inputs]  # floats in, floats out


# --- the optimizer step alone ------------------------------------------------------------------


def optimizer_problem(problem: DigitsProblem) -> tuple[Params, Params]:
    """The digits MLP's params and a fixed gradient of their structure (``0.1 sin(k)``, leaf ``k``)."""
    leaves, treedef = tree_flatten(problem.params)
    return problem.params, tree_unflatten(treedef, [0.1 * math.sin(k) for k in range(len(leaves))])


def library_adam_step(problem: DigitsProblem) -> Callable[[], Params]:
    """One ``optimizers.adam`` step (its second, so the moments are not zero); the new params."""
    params, grads = optimizer_problem(problem)
    optimizer = optimizers.adam(problem.lr)
    params, state = optimizer.step(params, grads, optimizer.init(params))

    def step() -> Params:
        return optimizer.step(params, grads, state)[0]

    return step
