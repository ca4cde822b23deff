"""Resumable training in the library: ``fit(checkpoint=..., resume=...)`` and the checked state on disk.

Bit-identity is checked on ``float.hex`` of every leaf and on the JSON text of optimizer
states; a clock that always reads 0 makes the recorded epoch times equal too, so whole
:class:`FitResult` values can be compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import optimizers
from functional_nn import MLP, datasets
from functional_nn import train as train_module
from functional_nn.random import key
from functional_nn.serialization import CheckpointError, load_checkpoint, save_checkpoint
from functional_nn.train import (
    Checkpointing,
    EpochEnd,
    Event,
    FitResult,
    TrainingState,
    fit,
)
from functional_nn.training_state import (
    RESERVED_KEYS,
    TRAINING_VERSION,
    read_training_state,
    save_training_state,
)
from optimizers import state_to_json
from tape.tree import tree_leaves
from tests.functional_nn.cli_helpers import rewrite_checkpoint

MODEL = MLP(2, [8, 3], activation="tanh", dropout=0.2)
OPTIMIZER = optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adamw(0.05))
BLOBS = datasets.blobs(60, centers=3, std=1.0, key=key(0))
TRAIN, VALIDATION = BLOBS[:45], BLOBS[45:]
PARAMS = MODEL.init(key(1))
EPOCHS = 5


def still_clock() -> float:
    return 0.0


def train(epochs: int = EPOCHS, **options: Any) -> FitResult:
    return fit(
        MODEL,
        PARAMS,
        OPTIMIZER,
        TRAIN,
        epochs=epochs,
        batch_size=16,
        key=key(2),
        validation=VALIDATION,
        clock=still_clock,
        **options,
    )


def same(a: FitResult, b: FitResult) -> bool:
    """Bit-identical params, optimizer state, early-stopping state and equal histories."""
    return (
        [x.hex() for x in tree_leaves(a.params)] == [x.hex() for x in tree_leaves(b.params)]
        and json.dumps(state_to_json(a.opt_state)) == json.dumps(state_to_json(b.opt_state))
        and a.history == b.history
        and a.stopped_early == b.stopped_early
        and a.early_stopping.best_epoch == b.early_stopping.best_epoch
        and a.early_stopping.waited == b.early_stopping.waited
        and tree_leaves(a.early_stopping.best_params) == tree_leaves(b.early_stopping.best_params)
    )


class StopAfter:
    """A callback that raises KeyboardInterrupt (as Ctrl-C would) at the end of epoch ``epochs``."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, event: Event) -> None:
        if isinstance(event, EpochEnd) and event.log.epoch + 1 == self.epochs:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def straight() -> FitResult:
    return train()


@pytest.mark.parametrize("done", [1, 2, 4])
def test_resuming_a_checkpoint_of_any_epoch_gives_the_uninterrupted_result(
    tmp_path: Path, straight: FitResult, done: int
) -> None:
    path = tmp_path / "run.json"
    first = train(done, checkpoint=path)
    assert load_checkpoint(path).metadata["epochs_done"] == done
    resumed = train(resume=path, checkpoint=tmp_path / "resumed.json")
    assert same(resumed, straight)
    assert [log.epoch for log in resumed.history] == list(range(EPOCHS))
    assert first.history == straight.history[:done]
    # the resumed run kept checkpointing: its last checkpoint resumes to the same end
    assert same(train(resume=tmp_path / "resumed.json"), straight)


def test_a_ctrl_c_in_a_callback_leaves_the_last_finished_epoch_and_resuming_is_exact(
    tmp_path: Path, straight: FitResult
) -> None:
    path = tmp_path / "run.json"
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=path, callbacks=(StopAfter(3),))
    state = read_training_state(path, PARAMS)
    assert state.epochs_done == 3 and len(state.history) == 3
    assert same(train(resume=path), straight)


def test_a_ctrl_c_during_a_save_still_leaves_that_epoch(
    tmp_path: Path, straight: FitResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.json"
    real = save_training_state
    calls: list[int] = []

    def interrupted_once(*args: Any) -> None:
        calls.append(len(calls))
        if len(calls) == 2:  # epoch 2's save, cut short as a Ctrl-C would
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(train_module, "save_training_state", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=path)
    monkeypatch.undo()
    assert len(calls) == 3  # the interrupted save was made again before the interrupt went on
    assert read_training_state(path, PARAMS).epochs_done == 2
    assert same(train(resume=path), straight)


def test_the_state_in_each_epoch_end_event_resumes_exactly(straight: FitResult) -> None:
    states: list[TrainingState] = []
    train(2, callbacks=(lambda e: states.append(e.state) if isinstance(e, EpochEnd) else None,))
    assert [s.epochs_done for s in states] == [1, 2]
    assert same(train(resume=states[-1]), straight)


def test_an_early_stopped_run_saves_its_best_params_and_resuming_it_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    long = 200
    stopped = train(long, patience=1, checkpoint=path)
    assert stopped.stopped_early and len(stopped.history) < long
    state = read_training_state(path, PARAMS)
    assert state.stopped_early and state.epochs_done == len(stopped.history)
    assert tree_leaves(state.params) == tree_leaves(stopped.early_stopping.best_params)
    assert same(train(long, patience=1, resume=path), stopped)


def test_application_metadata_is_stored_beside_the_state(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    train(1, checkpoint=Checkpointing(path, {"config": {"hidden": [8]}}))
    meta = load_checkpoint(path).metadata
    assert meta["config"] == {"hidden": [8]} and meta["training_version"] == TRAINING_VERSION
    for reserved in sorted(RESERVED_KEYS):
        with pytest.raises(ValueError, match=reserved):
            Checkpointing(path, {reserved: 1})


def test_resume_refuses_another_run_or_contradicting_arguments(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    train(3, checkpoint=path)
    with pytest.raises(CheckpointError, match="another key"):
        fit(MODEL, PARAMS, OPTIMIZER, TRAIN, epochs=5, key=key(3), validation=VALIDATION, resume=path)
    other = MLP(2, [4, 3])
    with pytest.raises(CheckpointError, match="params"):
        fit(other, other.init(key(1)), OPTIMIZER, TRAIN, epochs=5, key=key(2), resume=path)
    with pytest.raises(CheckpointError, match="optimizer state"):
        fit(MODEL, PARAMS, optimizers.sgd(0.1), TRAIN, epochs=5, key=key(2), resume=path)
    with pytest.raises(CheckpointError, match="3 epochs done, more than epochs=2"):
        train(2, resume=path)
    with pytest.raises(ValueError, match="resume continues"):
        train(resume=path, start_epoch=3)
    save_checkpoint(tmp_path / "plain.json", PARAMS)
    with pytest.raises(CheckpointError, match="training state version None"):
        train(resume=tmp_path / "plain.json")


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        node: Any = payload
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        node: Any = payload
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return edit


def _negative_second_moment(payload: dict[str, Any]) -> None:
    """Make the first leaf of Adam's second moment negative (its square root then fails)."""

    def first_leaf(node: Any) -> Any:
        while isinstance(node, (dict, list)):
            parent, node = node, (node[sorted(node)[0]] if isinstance(node, dict) else node[0])
            if not isinstance(node, (dict, list)):
                key = sorted(parent)[0] if isinstance(parent, dict) else 0
                parent[key] = -1.0
        return node

    def find(node: Any) -> bool:
        if isinstance(node, dict):
            if "nu" in node:
                first_leaf(node["nu"])
                return True
            return any(find(value) for value in node.values())
        return isinstance(node, list) and any(find(item) for item in node)

    assert find(payload["opt_state"])


M = "metadata"
DAMAGE: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": _set((M, "training_version"), 2),
    "version-bool": _set((M, "training_version"), True),
    "epochs-negative": _set((M, "epochs_done"), -1),
    "epochs-float": _set((M, "epochs_done"), 3.0),
    "epochs-huge": _set((M, "epochs_done"), 10**400),
    "epochs-fewer-than-history": _set((M, "epochs_done"), 2),
    "key-string": _set((M, "key"), "0"),
    "key-too-big": _set((M, "key"), 1 << 128),
    "stopped-string": _set((M, "stopped_early"), "no"),
    "stopped-but-params-not-best": _set((M, "stopped_early"), True),
    "history-not-list": _set((M, "history"), {}),
    "history-entry-not-object": _set((M, "history", 0), [1, 2]),
    "history-missing-field": _drop((M, "history", 1, "val_loss")),
    "history-extra-field": _set((M, "history", 1, "lr"), 0.1),
    "history-epoch-out-of-order": _set((M, "history", 1, "epoch"), 0),
    "history-epoch-bool": _set((M, "history", 0, "epoch"), False),
    "history-loss-string": _set((M, "history", 0, "train_loss"), "0.5"),
    "history-loss-huge-int": _set((M, "history", 0, "train_loss"), 10**400),
    "history-accuracy-above-one": _set((M, "history", 0, "val_accuracy"), 1.5),
    "history-negative-seconds": _set((M, "history", 0, "seconds"), -1.0),
    "history-null-seconds": _set((M, "history", 0, "seconds"), None),
    "stop-not-object": _set((M, "early_stopping"), [1]),
    "stop-missing-key": _drop((M, "early_stopping", "waited")),
    "stop-best-epoch-too-late": _set((M, "early_stopping", "best_epoch"), 3),
    "stop-best-epoch-below": _set((M, "early_stopping", "best_epoch"), -2),
    "stop-waited-negative": _set((M, "early_stopping", "waited"), -1),
    "stop-loss-missing": _set((M, "early_stopping", "best_loss"), None),
    "stop-loss-string": _set((M, "early_stopping", "best_loss"), "x"),
    "stop-best-params-list": _set((M, "early_stopping", "best_params"), [1.0]),
    "stop-best-params-shape": _set((M, "early_stopping", "best_params", "layers.0.bias"), [1.0]),
    "opt-count-huge": _set(("opt_state", "step"), 10**30),
    "opt-count-negative": _set(("opt_state", "step"), -1),
    "opt-count-float": _set(("opt_state", "step"), 1.5),
    "opt-moment-string": _set(("opt_state", "transform"), "sgd"),
    "opt-missing": _set(("opt_state",), None),
    "opt-second-moment-negative": _negative_second_moment,
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state") / "run.json"
    train(3, checkpoint=path)
    return path


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_every_damaged_part_of_the_state_is_a_checkpoint_error(
    tmp_path: Path, written: Path, case: str
) -> None:
    damaged = tmp_path / "damaged.json"
    rewrite_checkpoint(written, damaged, DAMAGE[case])  # its checksum recomputed
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(damaged)  # the loader may already refuse it ...
        train(resume=damaged)  # ... else resuming does
    assert str(caught.value), case


def test_the_undamaged_state_reads_back_as_it_was_written(written: Path) -> None:
    state = read_training_state(written, PARAMS, OPTIMIZER.init(PARAMS))
    assert state.epochs_done == 3 and state.key == key(2) and not state.stopped_early
    assert [log.epoch for log in state.history] == [0, 1, 2]
    assert state.early_stopping.best_epoch in (0, 1, 2)
    assert not any(math.isnan(log.val_loss) for log in state.history)
