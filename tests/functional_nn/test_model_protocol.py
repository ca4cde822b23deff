"""Training a user's own init/apply model: the loop, compile, shards in worker processes,
checkpoints and resuming all take any batched :class:`functional_nn.objective.Model`.

The models here are written as a user would write them: frozen dataclasses whose
``apply`` maps a batch of rows through :mod:`tape.arrays` ops.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyrsistent import PMap, pmap

import optimizers
from functional_nn import MLP, datasets, layer
from functional_nn.dataloader import Batch
from functional_nn.layers import Dropout, Linear, MLPLayer, Tanh, serial
from functional_nn.objective import (
    Model,
    Params,
    SupervisedLoss,
    as_model,
    draws_randomness,
    supervised_loss,
)
from functional_nn.random import Key, bernoulli, key, split
from functional_nn.sharding import sharded_value_and_grad
from functional_nn.train import evaluate, fit, outputs
from tape import arrays
from tape.tree import tree_leaves

BLOBS = datasets.blobs(96, centers=3, std=0.6, key=key(0))


@dataclass(frozen=True)
class TwoLayer:
    """A tanh hidden layer and a linear head, batched: a user's own model."""

    n_in: int
    hidden: int
    n_out: int

    def init(self, key: Key, /) -> PMap[str, Any]:
        k1, k2 = split(key)
        return pmap(
            {
                "hidden": layer.init(k1, self.n_in, self.hidden, initializer="glorot"),
                "head": layer.init(k2, self.hidden, self.n_out, initializer="glorot"),
            }
        )

    def apply(self, params: Any, x: Any, /, *, key: Key | None = None, train: bool = False) -> Any:
        h = arrays.tanh(arrays.linear(params["hidden"]["weight"], params["hidden"]["bias"], x))
        return arrays.linear(params["head"]["weight"], params["head"]["bias"], h)


@dataclass(frozen=True)
class Noisy:
    """A model with dropout on its hidden layer, drawn from the key in training."""

    body: TwoLayer
    rate: float = 0.5
    stochastic = True

    def init(self, key: Key, /) -> PMap[str, Any]:
        return self.body.init(key)

    def apply(self, params: Any, x: Any, /, *, key: Key | None = None, train: bool = False) -> Any:
        h = arrays.tanh(arrays.linear(params["hidden"]["weight"], params["hidden"]["bias"], x))
        if train:
            assert key is not None
            rows = len(x)
            kept = bernoulli(key, rows * self.body.hidden, 1.0 - self.rate)
            scale = 1.0 / (1.0 - self.rate)
            mask = [
                [scale if kept[r * self.body.hidden + j] else 0.0 for j in range(self.body.hidden)]
                for r in range(rows)
            ]
            h = arrays.scale(h, mask)
        return arrays.linear(params["head"]["weight"], params["head"]["bias"], h)


@dataclass(frozen=True)
class Wrapper:
    """A composed model: randomness is found in its parts."""

    inner: Model


MODEL = TwoLayer(2, 8, 3)


def hexes(tree: object) -> list[str]:
    return [leaf.hex() for leaf in tree_leaves(tree)]


def train(
    model: Model, *, compile: bool = True, epochs: int = 4, **options: Any
) -> tuple[Params, list[float]]:
    result = fit(
        model,
        model.init(key(1)),
        optimizers.adam(0.05),
        BLOBS,
        epochs=epochs,
        batch_size=16,
        key=key(2),
        compile=compile,
        **options,
    )
    return result.params, [log.train_loss for log in result.history]


def test_a_user_model_trains_with_the_loop_and_compiled_is_bit_for_bit_interpreted() -> None:
    params, losses = train(MODEL)
    assert losses[-1] < 0.5 * losses[0]
    interpreted, interpreted_losses = train(MODEL, compile=False)
    assert hexes(params) == hexes(interpreted)
    assert [x.hex() for x in losses] == [x.hex() for x in interpreted_losses]
    loss, accuracy = evaluate(MODEL, params, BLOBS)
    assert accuracy > 0.9 and math.isclose(loss, losses[-1], rel_tol=0.5)


def test_evaluate_applies_a_user_model_in_batches_equal_to_row_by_row() -> None:
    params = MODEL.init(key(3))
    rows = list(BLOBS.inputs)
    assert outputs(MODEL, params, rows) == [tuple(MODEL.apply(params, [row])[0]) for row in rows]


def test_a_stochastic_model_draws_from_each_steps_key_and_compile_changes_nothing() -> None:
    noisy = Noisy(MODEL)
    assert draws_randomness(noisy) and draws_randomness(Wrapper(noisy)) and not draws_randomness(MODEL)
    params, _ = train(noisy, epochs=2)
    again, _ = train(noisy, epochs=2, compile=False)
    assert hexes(params) == hexes(again)
    plain, _ = train(MODEL, epochs=2)
    assert hexes(params) != hexes(plain)  # dropout applied
    loss_fn = supervised_loss(noisy, "classification")
    batch = Batch(tuple(BLOBS.inputs[:16]), tuple(BLOBS.targets[:16]))
    first = loss_fn(params, batch, key(5))[0]
    assert loss_fn(params, batch, key(5))[0] == first != loss_fn(params, batch, key(6))[0]
    assert loss_fn(params, batch, None)[0] == supervised_loss(MODEL, "classification")(params, batch, None)[0]


def test_shards_on_worker_processes_equal_shards_here_for_a_user_model() -> None:
    loss = SupervisedLoss(MODEL, "classification")
    params = MODEL.init(key(4))
    batch = Batch(tuple(BLOBS.inputs[:20]), tuple(BLOBS.targets[:20]))
    here = sharded_value_and_grad(loss, shards=2)(params, batch, key(7))
    with ProcessPoolExecutor(2) as pool:
        there = sharded_value_and_grad(loss, shards=2, executor=pool)(params, batch, key(7))
    assert here[0][0].hex() == there[0][0].hex()
    assert hexes(here[1]) == hexes(there[1])


def test_a_user_models_run_checkpoints_and_resumes_as_if_uninterrupted(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    whole, whole_losses = train(MODEL, epochs=4)
    train(MODEL, epochs=2, checkpoint=path)
    resumed, resumed_losses = train(MODEL, epochs=4, checkpoint=path, resume=path)
    assert hexes(resumed) == hexes(whole)
    assert resumed_losses == whole_losses


def test_an_mlp_is_adapted_through_apply_batch() -> None:
    mlp = MLP(2, [4, 3], dropout=0.25)
    adapted = as_model(mlp)
    assert adapted == MLPLayer(mlp) and draws_randomness(adapted) and draws_randomness(mlp)
    params = adapted.init(key(0))
    rows = [[0.5, -1.0], [1.0, 2.0]]
    assert adapted.apply(params, rows) == mlp.apply_batch(params, rows)
    assert as_model(MODEL) is MODEL


def test_layers_with_dropout_draw_randomness_and_train_interpreted_as_compiled() -> None:
    dropping = serial(Linear(2, 8), Tanh(), Dropout(0.5), Linear(8, 3))
    assert draws_randomness(dropping) and not draws_randomness(serial(Linear(2, 3), Dropout(0.0)))
    params, losses = train(dropping, epochs=2)
    again, _ = train(dropping, epochs=2, compile=False)
    assert hexes(params) == hexes(again) and losses[-1] < losses[0]


def test_what_is_not_a_model_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"a model needs init\(key\) and apply.*; str has not both"):
        as_model("mlp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int has not both"):
        SupervisedLoss(3, "classification")  # type: ignore[arg-type]
