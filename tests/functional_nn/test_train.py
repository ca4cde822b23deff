"""Tests for functional_nn.train: a pure step, epochs over a loader, and the ``fit`` loop.

Bit-identity is checked on ``float.hex`` of every leaf and on the JSON text of optimizer
states (floats written with their shortest round-tripping repr), never with tolerances.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import pytest
from pyrsistent import pvector

import optimizers
import tape
from functional_nn import MLP, DataLoader, Dataset, datasets
from functional_nn.dataloader import Batch
from functional_nn.functional import argmax
from functional_nn.loss import (
    cross_entropy_with_logits,
    cross_entropy_with_logits_batch,
    mse_loss,
    mse_loss_batch,
)
from functional_nn.mlp import Params
from functional_nn.random import Key, key
from functional_nn.train import (
    BatchEnd,
    EarlyStopping,
    EpochEnd,
    Event,
    FitResult,
    LossFn,
    Metrics,
    NonFiniteTrainingError,
    StepFn,
    epoch_key,
    evaluate,
    fit,
    run_epoch,
    supervised_loss,
    train_step,
)
from optimizers import Optimizer, OptState, state_from_json, state_to_json
from tape import Scalar
from tape.tree import tree_leaves

# -- helpers -------------------------------------------------------------------------------


def hexes(tree: object) -> list[str]:
    """Every leaf's exact bits."""
    return [leaf.hex() for leaf in tree_leaves(tree)]


def state_text(state: OptState) -> str:
    """The state as JSON text: equal texts mean bit-identical states."""
    return json.dumps(state_to_json(state), sort_keys=True)


def whole(dataset: Dataset) -> Batch:
    """The whole dataset as one batch, in its order."""
    return Batch(tuple(dataset.inputs), tuple(dataset.targets))


def ticking_clock() -> Callable[[], float]:
    """A clock that advances by exactly 1.0 per call: each epoch then takes 1.0 s."""
    ticks: Iterator[int] = iter(range(10**9))
    return lambda: float(next(ticks))


def recorder() -> tuple[list[Event], Callable[[Event], None]]:
    events: list[Event] = []
    return events, events.append


def epoch_ends(events: Sequence[Event]) -> list[EpochEnd]:
    return [event for event in events if isinstance(event, EpochEnd)]


def batch_ends(events: Sequence[Event]) -> list[BatchEnd]:
    return [event for event in events if isinstance(event, BatchEnd)]


BLOBS = datasets.blobs(60, centers=3, std=1.0, key=key(0))
CLASSIFIER = MLP(2, [8, 3], activation="tanh")
SINE = datasets.sine(60, key=key(3))
REGRESSOR = MLP(1, [16, 1], activation="tanh")


def float_ce(model: MLP, params: Params, dataset: Dataset) -> float:
    """Mean cross-entropy over ``dataset`` on the float path."""
    losses = [cross_entropy_with_logits(model.apply(params, x), int(y)) for x, y in dataset]
    return math.fsum(losses) / len(dataset)


def float_accuracy(model: MLP, params: Params, dataset: Dataset) -> float:
    return sum(argmax(model.apply(params, x)) == y for x, y in dataset) / len(dataset)


# -- supervised_loss and train_step ---------------------------------------------------------


def test_train_step_is_pure_and_repeatable() -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.adam(0.05)
    state = opt.init(params)
    batch = whole(BLOBS[:40])
    batch_copy = Batch(tuple(pvector(row) for row in batch.inputs), tuple(batch.targets))
    params_before, state_before = hexes(params), state_text(state)
    step = train_step(supervised_loss(CLASSIFIER, "classification"), opt)

    first = step(params, state, batch, None)
    second = step(params, state, batch, None)

    assert hexes(params) == params_before  # nothing was mutated
    assert state_text(state) == state_before
    assert batch == batch_copy
    assert hexes(first[0]) == hexes(second[0])  # same inputs, same outputs
    assert state_text(first[1]) == state_text(second[1])
    assert first[2] == second[2]
    assert hexes(first[0]) != params_before  # and it did train
    assert first[1]["step"] == 1


def test_train_step_is_value_and_grad_then_the_optimizer() -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.sgd(0.1, momentum=0.9)
    state = opt.init(params)
    batch = whole(BLOBS[:40])
    loss_fn = supervised_loss(CLASSIFIER, "classification")

    new_params, new_state, metrics = train_step(loss_fn, opt)(params, state, batch, None)

    (loss, aux), grads = tape.value_and_grad(loss_fn, has_aux=True, arrays=True)(params, batch, None)
    expected_params, expected_state = opt.step(params, grads, state)
    assert hexes(new_params) == hexes(expected_params)
    assert state_text(new_state) == state_text(expected_state)
    assert metrics == {"loss": loss, **aux}


def test_classification_metrics_are_loss_and_accuracy_before_the_step() -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.sgd(0.1)
    data = BLOBS[:40]
    _, _, metrics = train_step(supervised_loss(CLASSIFIER, "classification"), opt)(
        params, opt.init(params), whole(data), None
    )
    assert set(metrics) == {"loss", "accuracy"}
    assert metrics["loss"] == pytest.approx(float_ce(CLASSIFIER, params, data), rel=1e-12)
    assert metrics["accuracy"] == float_accuracy(CLASSIFIER, params, data)


def test_regression_metrics_are_the_mse_alone() -> None:
    params = REGRESSOR.init(key(1))
    opt = optimizers.sgd(0.1)
    _, _, metrics = train_step(supervised_loss(REGRESSOR, "regression"), opt)(
        params, opt.init(params), whole(SINE), None
    )
    assert set(metrics) == {"loss"}
    expected = math.fsum(mse_loss(REGRESSOR.apply(params, x)[0], float(y)) for x, y in SINE) / len(SINE)
    assert metrics["loss"] == pytest.approx(expected, rel=1e-12)


def test_supervised_loss_rejects_an_unknown_task() -> None:
    with pytest.raises(ValueError, match=r"classification.*regression.*'ranking'"):
        supervised_loss(CLASSIFIER, "ranking")


# -- non-finite losses and gradients ---------------------------------------------------------


def _scaled_ce(scale: float) -> LossFn:
    def loss_fn(params: Params, batch: Batch, key: Key | None) -> tuple[Scalar, Metrics]:
        logits = CLASSIFIER.apply_batch(params, batch.inputs)
        return cross_entropy_with_logits_batch(logits, batch.labels()) * scale, {}

    return loss_fn


def _ce_with_an_infinite_gradient(params: Params, batch: Batch, key: Key | None) -> tuple[Scalar, Metrics]:
    """The plain cross-entropy in value (``+ sqrt(0)``), but ``d sqrt(u)/du`` at 0 is inf."""
    ce = cross_entropy_with_logits_batch(CLASSIFIER.apply_batch(params, batch.inputs), batch.labels())
    return ce + tape.sqrt(ce - ce), {}


@pytest.mark.parametrize(
    ("loss_fn", "message"),
    [(_scaled_ce(math.inf), "the loss is inf"), (_ce_with_an_infinite_gradient, "a gradient is not finite")],
    ids=["inf-loss", "inf-gradient"],
)
def test_train_step_raises_on_non_finite_values(loss_fn: LossFn, message: str) -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.sgd(0.1)
    state = opt.init(params)
    before = hexes(params), state_text(state)
    step = train_step(loss_fn, opt)
    outcome: list[tuple[Params, OptState, Metrics]] = []
    with pytest.raises(NonFiniteTrainingError, match=message):
        outcome.append(step(params, state, whole(BLOBS), None))
    assert outcome == []  # raised, returned nothing
    assert (hexes(params), state_text(state)) == before


def test_a_huge_learning_rate_overflows_into_a_non_finite_training_error() -> None:
    """One step at lr 1e300 makes relu logits overflow: the next step raises, it does not return inf."""
    model = MLP(2, [8, 3], activation="relu")
    opt = optimizers.sgd(1e300)
    step = train_step(supervised_loss(model, "classification"), opt)
    params, state, metrics = step(model.init(key(1)), opt.init(model.init(key(1))), whole(BLOBS), None)
    assert math.isfinite(metrics["loss"])
    assert all(math.isfinite(leaf) for leaf in tree_leaves(params))
    with pytest.raises(NonFiniteTrainingError, match=r"not finite|is nan|is inf"):
        step(params, state, whole(BLOBS), None)


def test_an_overflowing_regression_loss_is_a_non_finite_training_error() -> None:
    """Not an OverflowError: squaring an overflowing float error gives inf (``d * d``), never raises."""
    model = MLP(1, [8, 1], activation="relu")
    opt = optimizers.sgd(1e100)
    step = train_step(supervised_loss(model, "regression"), opt)
    params = model.init(key(1))
    state = opt.init(params)
    with pytest.raises(NonFiniteTrainingError):  # by the second step, (output - target) ** 2 overflows
        for _ in range(5):
            params, state, _ = step(params, state, whole(SINE), None)


def test_fit_raises_when_the_validation_loss_is_not_finite() -> None:
    """Training on zeros stays finite; a validation input of 1e300 makes the validation loss inf."""
    model = MLP(1, [4, 1], activation="relu")
    train = Dataset.from_rows([[0.0]] * 20, [0.0] * 20)
    validation = Dataset.from_rows([[1e300]] * 5, [0.0] * 5)
    with pytest.raises(NonFiniteTrainingError, match=r"^epoch 1: the validation loss is inf$"):
        fit(
            model,
            model.init(key(1)),
            optimizers.sgd(0.01),
            train,
            epochs=2,
            batch_size=10,
            key=key(2),
            validation=validation,
        )


def test_run_epoch_names_the_epoch_and_step_that_went_non_finite() -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.sgd(0.1)
    loader = DataLoader(BLOBS, 16)
    step = train_step(_scaled_ce(math.inf), opt)
    with pytest.raises(NonFiniteTrainingError, match=r"^epoch 3, step 1: the loss is inf$"):
        run_epoch(step, params, opt.init(params), loader, key(2), epoch=2)


# -- dropout and keys ----------------------------------------------------------------------


def test_dropout_draws_from_the_key_and_key_none_trains_without_it() -> None:
    dropping = MLP(2, [16, 3], activation="tanh", dropout=0.5)
    plain = MLP(2, [16, 3], activation="tanh")
    params = plain.init(key(1))
    assert hexes(dropping.init(key(1))) == hexes(params)
    opt = optimizers.sgd(0.1)
    state = opt.init(params)
    batch = whole(BLOBS[:30])
    with_dropout = train_step(supervised_loss(dropping, "classification"), opt)
    without = train_step(supervised_loss(plain, "classification"), opt)

    def run(step: StepFn, k: Key | None) -> tuple[list[str], float]:
        new_params, _, metrics = step(params, state, batch, k)
        return hexes(new_params), metrics["loss"]

    k1, k2 = key(10), key(11)
    assert run(with_dropout, k1) == run(with_dropout, k1)  # same key, same masks
    assert run(with_dropout, k1)[0] != run(with_dropout, k2)[0]  # another key, other masks
    assert run(with_dropout, k1)[1] != run(with_dropout, k2)[1]
    assert run(with_dropout, k1)[0] != run(with_dropout, None)[0]
    # key=None is evaluation mode (no dropout); without dropout the key changes nothing
    assert run(with_dropout, None) == run(without, None) == run(without, k1) == run(without, k2)


def test_applying_dropout_in_training_requires_a_key() -> None:
    model = MLP(2, [16, 3], dropout=0.2)
    with pytest.raises(ValueError, match="key"):
        model.apply_batch(model.init(key(1)), whole(BLOBS).inputs, train=True)


# -- run_epoch: mini-batches ----------------------------------------------------------------


def test_run_epoch_covers_every_example_once_and_weights_metrics_by_batch_size() -> None:
    data = BLOBS[:50]
    loader = DataLoader(data, 16)
    opt = optimizers.adam(0.05)
    params = CLASSIFIER.init(key(1))
    inner = train_step(supervised_loss(CLASSIFIER, "classification"), opt)
    seen: list[Batch] = []
    keys: list[Key | None] = []

    def recording(p: Params, s: OptState, batch: Batch, k: Key | None) -> tuple[Params, OptState, Metrics]:
        seen.append(batch)
        keys.append(k)
        return inner(p, s, batch, k)

    events, callback = recorder()
    orders = []
    state = opt.init(params)
    for epoch in range(2):
        seen.clear()
        keys.clear()
        events.clear()
        params, state, metrics = run_epoch(
            recording, params, state, loader, epoch_key(key(2), epoch), epoch=epoch, callbacks=[callback]
        )
        assert [batch.size for batch in seen] == [16, 16, 16, 2]  # ceil(50 / 16) steps
        rows = [
            (tuple(row), target)
            for batch in seen
            for row, target in zip(batch.inputs, batch.targets, strict=True)
        ]
        assert sorted(rows) == sorted((tuple(row), target) for row, target in data)
        orders.append(rows)
        assert len(set(keys)) == 4 and None not in keys  # a fresh key per step
        ends = batch_ends(events)
        assert [(e.epoch, e.step, e.steps) for e in ends] == [(epoch, i, 4) for i in range(4)]
        expected = {
            name: math.fsum(e.metrics[name] * b.size for e, b in zip(ends, seen, strict=True)) / 50
            for name in ("loss", "accuracy")
        }
        assert metrics == pytest.approx(expected, rel=1e-12)
    assert orders[0] != orders[1]  # each epoch shuffles anew
    assert state["step"] == 8


def test_run_epoch_without_keys_passes_none() -> None:
    opt = optimizers.sgd(0.1)
    params = CLASSIFIER.init(key(1))
    keys: list[Key | None] = []
    inner = train_step(supervised_loss(CLASSIFIER, "classification"), opt)

    def recording(p: Params, s: OptState, batch: Batch, k: Key | None) -> tuple[Params, OptState, Metrics]:
        keys.append(k)
        return inner(p, s, batch, k)

    run_epoch(recording, params, opt.init(params), DataLoader(BLOBS, 25), key(2), use_key=False)
    assert keys == [None, None, None]


# -- fit ------------------------------------------------------------------------------------


def test_fit_regression_on_sine_lowers_the_loss_and_reports_nan_accuracy() -> None:
    params = REGRESSOR.init(key(1))
    result = fit(REGRESSOR, params, optimizers.adam(0.02), SINE, epochs=12, batch_size=20, key=key(2))
    history = result.history
    assert [log.epoch for log in history] == list(range(12))
    assert history[-1].train_loss < 0.4 * history[0].train_loss
    assert all(math.isnan(log.train_accuracy) for log in history)
    assert all(math.isnan(log.val_loss) and math.isnan(log.val_accuracy) for log in history)
    final_loss, final_accuracy = evaluate(REGRESSOR, result.params, SINE)
    assert final_loss < 0.3 * evaluate(REGRESSOR, params, SINE)[0]
    assert math.isnan(final_accuracy)
    assert not result.stopped_early
    assert result.opt_state["step"] == 12 * 3


def test_fit_classifies_spirals_far_better_than_chance() -> None:
    data = datasets.spirals(300, noise=0.1, key=key(0))
    model = MLP(2, [16, 16, 3], activation="tanh")
    result = fit(model, model.init(key(1)), optimizers.adam(0.03), data, epochs=30, batch_size=32, key=key(2))
    _, accuracy = evaluate(model, result.params, data)
    assert accuracy > 0.8  # chance is 1/3
    assert result.history[-1].train_accuracy > 0.8
    assert result.history[-1].train_loss < 0.5 * result.history[0].train_loss


def test_fit_sends_batch_ends_for_every_step_and_epoch_ends_in_order() -> None:
    data, validation = BLOBS[:50], BLOBS[50:]
    events, callback = recorder()
    result = fit(
        CLASSIFIER,
        CLASSIFIER.init(key(1)),
        optimizers.adam(0.05),
        data,
        epochs=3,
        batch_size=16,
        key=key(2),
        validation=validation,
        callbacks=[callback],
        clock=ticking_clock(),
    )
    kinds = [
        (type(e).__name__, e.epoch, e.step) if isinstance(e, BatchEnd) else ("EpochEnd", e.log.epoch, -1)
        for e in events
    ]
    expected = [
        item
        for epoch in range(3)
        for item in [*(("BatchEnd", epoch, i) for i in range(4)), ("EpochEnd", epoch, -1)]
    ]
    assert kinds == expected
    assert all(
        e.steps == math.ceil(50 / 16) and set(e.metrics) == {"loss", "accuracy"} for e in batch_ends(events)
    )
    ends = epoch_ends(events)
    assert tuple(e.log for e in ends) == result.history
    assert [e.opt_state["step"] for e in ends] == [4, 8, 12]
    assert all(log.seconds == 1.0 for log in result.history)
    assert hexes(ends[-1].params) == hexes(result.params)
    assert state_text(ends[-1].opt_state) == state_text(result.opt_state)
    for e in ends:
        assert (e.log.val_loss, e.log.val_accuracy) == evaluate(CLASSIFIER, e.params, validation)


@pytest.mark.parametrize("dropout", [0.0, 0.2], ids=["shuffling-only", "shuffling-and-dropout"])
def test_fit_is_bit_identical_for_the_same_key(dropout: float) -> None:
    model = MLP(2, [8, 3], activation="tanh", dropout=dropout)

    def run(seed: int) -> FitResult:
        return fit(
            model,
            model.init(key(1)),
            optimizers.adamw(0.05),
            BLOBS,
            epochs=3,
            batch_size=16,
            key=key(seed),
            clock=ticking_clock(),
        )

    first, again, other = run(2), run(2), run(3)
    assert hexes(first.params) == hexes(again.params)
    assert state_text(first.opt_state) == state_text(again.opt_state)
    assert first.history == again.history
    # the key matters: it shuffles the batches (and draws the dropout masks)
    assert hexes(first.params) != hexes(other.params)


def test_fit_resumed_at_start_epoch_equals_the_uninterrupted_run() -> None:
    model = MLP(2, [8, 3], activation="tanh", dropout=0.2)
    opt = optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adamw(0.05))
    data, validation = BLOBS[:45], BLOBS[45:]
    params = model.init(key(1))

    def run(
        start: Params,
        epochs: int,
        opt_state: OptState | None = None,
        start_epoch: int = 0,
        early_stopping: EarlyStopping | None = None,
    ) -> FitResult:
        return fit(
            model,
            start,
            opt,
            data,
            epochs=epochs,
            batch_size=16,
            key=key(2),
            validation=validation,
            opt_state=opt_state,
            start_epoch=start_epoch,
            patience=100,
            early_stopping=early_stopping,
            clock=ticking_clock(),
        )

    full = run(params, 6)
    first = run(params, 3)
    # through JSON, as a checkpoint stores the state
    restored_state = state_from_json(json.loads(json.dumps(state_to_json(first.opt_state))))
    rest = run(first.params, 6, opt_state=restored_state, start_epoch=3, early_stopping=first.early_stopping)

    assert hexes(rest.params) == hexes(full.params)
    assert state_text(rest.opt_state) == state_text(full.opt_state)
    assert first.history + rest.history == full.history
    assert [log.epoch for log in rest.history] == [3, 4, 5]
    assert rest.early_stopping.best_epoch == full.early_stopping.best_epoch
    assert hexes(rest.early_stopping.best_params) == hexes(full.early_stopping.best_params)


def _sine_with_a_half_amplitude_validation() -> tuple[Dataset, Dataset]:
    """Train on sin(x), validate on 0.5 sin(x): the validation loss falls, then rises.

    From small initial outputs the fit's amplitude grows past 0.5, so the best
    validation epoch lies in the middle of the run (epoch 6 of 10 here).
    """
    validation = Dataset.from_rows(
        [list(x) for x in SINE.inputs], [0.5 * math.sin(x[0]) for x in SINE.inputs]
    )
    return SINE, validation


def test_early_stopping_returns_the_params_of_the_best_epoch() -> None:
    data, validation = _sine_with_a_half_amplitude_validation()
    events, callback = recorder()
    patience = 3
    result = fit(
        REGRESSOR,
        REGRESSOR.init(key(1)),
        optimizers.adam(0.002),
        data,
        epochs=60,
        batch_size=20,
        key=key(2),
        validation=validation,
        patience=patience,
        callbacks=[callback],
    )
    val_losses = [log.val_loss for log in result.history]
    best = result.early_stopping.best_epoch
    assert result.stopped_early
    assert 0 < best < len(val_losses) - 1  # a real minimum, not the first or last epoch
    assert val_losses[best] == min(val_losses) == result.early_stopping.best_loss
    assert all(later > val_losses[best] for later in val_losses[best + 1 :])
    assert len(result.history) == best + patience + 1  # stopped after `patience` worse epochs
    assert result.early_stopping.waited == patience
    ends = epoch_ends(events)
    assert hexes(result.params) == hexes(ends[best].params)
    assert hexes(result.params) != hexes(ends[-1].params)
    assert evaluate(REGRESSOR, result.params, validation)[0] == val_losses[best]
    assert [e.best.best_epoch for e in ends] == [min(e.log.epoch, best) for e in ends]


def test_early_stopping_on_a_plateau_stops_after_patience_epochs() -> None:
    """At lr 0 the validation loss never improves on the first epoch's: patience 2 stops at epoch 2."""
    data, validation = _sine_with_a_half_amplitude_validation()
    params = REGRESSOR.init(key(1))
    result = fit(
        REGRESSOR,
        params,
        optimizers.sgd(0.0),
        data,
        epochs=50,
        batch_size=20,
        key=key(2),
        validation=validation,
        patience=2,
    )
    assert result.stopped_early
    assert [log.epoch for log in result.history] == [0, 1, 2]
    assert len({log.val_loss for log in result.history}) == 1
    assert result.early_stopping.best_epoch == 0
    assert hexes(result.params) == hexes(params)


def test_without_patience_validation_is_tracked_but_training_runs_to_the_end() -> None:
    data, validation = _sine_with_a_half_amplitude_validation()
    result = fit(
        REGRESSOR,
        REGRESSOR.init(key(1)),
        optimizers.adam(0.002),
        data,
        epochs=12,
        batch_size=20,
        key=key(2),
        validation=validation,
    )
    assert not result.stopped_early
    assert len(result.history) == 12
    best = result.early_stopping.best_epoch
    assert best < 11  # the validation loss rose at the end, yet the last params are returned
    assert hexes(result.params) != hexes(result.early_stopping.best_params)


@pytest.mark.parametrize("split_at", [5, 8], ids=["before-the-best-epoch", "while-waiting"])
def test_fit_resumed_around_an_early_stop_stops_at_the_same_epoch(split_at: int) -> None:
    """The best epoch is 6 and training stops after epoch 9: resuming at 5 or 8 changes nothing.

    Resuming at 8 needs the carried :class:`EarlyStopping` (it has waited one epoch already).
    """
    data, validation = _sine_with_a_half_amplitude_validation()
    opt = optimizers.adam(0.002)
    params = REGRESSOR.init(key(1))

    def run(
        start: Params,
        epochs: int,
        opt_state: OptState | None = None,
        start_epoch: int = 0,
        early_stopping: EarlyStopping | None = None,
    ) -> FitResult:
        return fit(
            REGRESSOR,
            start,
            opt,
            data,
            epochs=epochs,
            batch_size=20,
            key=key(2),
            validation=validation,
            opt_state=opt_state,
            start_epoch=start_epoch,
            patience=3,
            early_stopping=early_stopping,
            clock=ticking_clock(),
        )

    full = run(params, 60)
    assert full.stopped_early
    assert (full.early_stopping.best_epoch, full.history[-1].epoch) == (6, 9)
    first = run(params, split_at)
    assert not first.stopped_early
    rest = run(first.params, 60, first.opt_state, split_at, first.early_stopping)
    assert rest.stopped_early
    assert first.history + rest.history == full.history
    assert rest.early_stopping.best_epoch == 6
    assert hexes(rest.params) == hexes(full.params) == hexes(full.early_stopping.best_params)
    assert state_text(rest.opt_state) == state_text(full.opt_state)


def test_regularised_training_trains_and_differs_from_the_plain_run() -> None:
    data = datasets.spirals(150, noise=0.1, key=key(0))
    plain = MLP(2, [16, 16, 3], activation="tanh")
    dropping = MLP(2, [16, 16, 3], activation="tanh", dropout=0.2)
    params = plain.init(key(1))
    assert hexes(dropping.init(key(1))) == hexes(params)

    def run(model: MLP, opt: Optimizer) -> FitResult:
        return fit(model, params, opt, data, epochs=25, batch_size=25, key=key(2))

    regularised = run(dropping, optimizers.adamw(0.05, weight_decay=1e-2))
    unregularised = run(plain, optimizers.adam(0.05))
    dropout_only = run(dropping, optimizers.adam(0.05))
    decay_only = run(plain, optimizers.adamw(0.05, weight_decay=1e-2))

    assert regularised.history[-1].train_loss < 0.6 * regularised.history[0].train_loss
    assert evaluate(dropping, regularised.params, data)[1] > 0.8  # chance is 1/3 (measured: 0.96)
    runs = [hexes(r.params) for r in (regularised, unregularised, dropout_only, decay_only)]
    assert len({tuple(r) for r in runs}) == 4  # dropout and weight decay each change the result


# -- evaluate ----------------------------------------------------------------------------


def test_evaluate_is_the_mean_cross_entropy_and_accuracy_on_floats() -> None:
    params = fit(
        CLASSIFIER, CLASSIFIER.init(key(1)), optimizers.adam(0.05), BLOBS, epochs=1, batch_size=30, key=key(2)
    ).params
    loss, accuracy = evaluate(CLASSIFIER, params, BLOBS)
    assert loss == pytest.approx(float_ce(CLASSIFIER, params, BLOBS), rel=1e-12)
    assert accuracy == float_accuracy(CLASSIFIER, params, BLOBS)
    outputs = CLASSIFIER.apply_batch(params, BLOBS.inputs)
    assert isinstance(outputs, tuple)
    assert loss == pytest.approx(cross_entropy_with_logits_batch(outputs, BLOBS.labels()), rel=1e-12)
    opt = optimizers.sgd(0.1)
    _, _, metrics = train_step(supervised_loss(CLASSIFIER, "classification"), opt)(
        params, opt.init(params), whole(BLOBS), None
    )
    assert (loss, accuracy) == pytest.approx((metrics["loss"], metrics["accuracy"]), rel=1e-12)


def test_evaluate_regression_is_the_mse_with_nan_accuracy() -> None:
    params = REGRESSOR.init(key(1))
    loss, accuracy = evaluate(REGRESSOR, params, SINE)
    outputs = REGRESSOR.apply_batch(params, SINE.inputs)
    assert isinstance(outputs, tuple)
    assert loss == pytest.approx(mse_loss_batch(outputs, [(float(t),) for t in SINE.targets]), rel=1e-12)
    assert math.isnan(accuracy)


# -- arguments ------------------------------------------------------------------------------


def test_fit_with_no_epochs_to_run_returns_its_inputs() -> None:
    params = CLASSIFIER.init(key(1))
    opt = optimizers.adam(0.05)
    for epochs, start in ((0, 0), (3, 3), (2, 5)):
        result = fit(
            CLASSIFIER, params, opt, BLOBS, epochs=epochs, start_epoch=start, batch_size=16, key=key(2)
        )
        assert result.history == ()
        assert hexes(result.params) == hexes(params)
        assert result.opt_state["step"] == 0
        assert not result.stopped_early


@pytest.mark.parametrize(
    ("epochs", "start_epoch", "patience", "validation", "message"),
    [
        (-1, 0, None, None, r"epochs \(-1\)"),
        (2, -1, None, None, r"start_epoch \(-1\)"),
        (2, 0, 2, None, "needs validation data"),
        (2, 0, 0, BLOBS, "patience >= 1"),
    ],
    ids=["negative-epochs", "negative-start-epoch", "patience-without-validation", "zero-patience"],
)
def test_fit_rejects_bad_arguments(
    epochs: int, start_epoch: int, patience: int | None, validation: Dataset | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit(
            CLASSIFIER,
            CLASSIFIER.init(key(1)),
            optimizers.sgd(0.1),
            BLOBS,
            epochs=epochs,
            start_epoch=start_epoch,
            batch_size=16,
            key=key(2),
            validation=validation,
            patience=patience,
        )


def test_early_stopping_counts_epochs_without_a_strictly_better_loss() -> None:
    params = CLASSIFIER.init(key(1))
    state = EarlyStopping().update(0, 1.0, params)
    assert (state.best_epoch, state.best_loss, state.waited) == (0, 1.0, 0)
    state = state.update(1, 1.0, params)  # equal is not better
    assert (state.best_epoch, state.waited) == (0, 1)
    state = state.update(2, math.nan, params)
    assert (state.best_epoch, state.waited) == (0, 2)
    state = state.update(3, 0.5, params)
    assert (state.best_epoch, state.best_loss, state.waited) == (3, 0.5, 0)


def test_fit_takes_a_custom_loss_and_a_loader() -> None:
    data = datasets.blobs(60, centers=2, std=0.5, key=key(4))
    model = MLP(2, [8, 2], activation="tanh")
    params = model.init(key(5))
    base = supervised_loss(model, "classification")
    calls: list[int] = []

    def penalised(p: Params, batch: Batch, k: Key | None) -> tuple[Scalar, dict[str, float]]:
        calls.append(batch.size)
        loss, metrics = base(p, batch, k)
        weight = cast("Sequence[Sequence[Scalar]]", p["layers"][0]["weight"])  # an Array under train_step
        return loss + 0.5 * tape.vsum([w * w for row in weight for w in row]), metrics

    loader = DataLoader(data, 20, shuffle=True)
    plain = fit(model, params, optimizers.adam(0.05), loader, epochs=3, key=key(6))
    custom = fit(model, params, optimizers.adam(0.05), loader, epochs=3, key=key(6), loss_fn=penalised)
    assert sum(calls) == 3 * len(data)  # the loader's batches, every epoch
    assert calls.count(20) == 9

    def norm(p: Params) -> float:
        return sum(w * w for w in tree_leaves(p["layers"][0]["weight"]))

    assert norm(custom.params) < norm(plain.params)  # the penalty was trained on
