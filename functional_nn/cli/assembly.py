"""Building a run from a config: its keys, data splits, model and optimizer."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias, cast

import optimizers
from functional_nn import datasets, random
from functional_nn.activations import ActivationName
from functional_nn.cli.config import TEST_FRACTION, VALIDATION_FRACTION, Config, UsageError, validate
from functional_nn.csv_data import CsvData, CsvError, CsvSchema, Task, read_csv
from functional_nn.dataloader import Dataset, train_test_split
from functional_nn.datasets import Standardizer
from functional_nn.mlp import MLP
from functional_nn.models import CONV_ACTIVATIONS, ConvNet

RunModel: TypeAlias = "MLP | ConvNet"
"""A model ``fnn`` trains: ``--model mlp`` or ``--model cnn``."""


class RunKeys(NamedTuple):
    """The keys of one run; see :func:`run_keys`."""

    data: random.Key
    split: random.Key
    validation: random.Key
    init: random.Key
    train: random.Key


def run_keys(seed: int) -> RunKeys:
    """Every key a run uses, all derived from ``key(seed)``; the one place this is decided.

    ``data, split, validation = split(key(seed), 3)`` generate the dataset (and load the
    one ``evaluate --dataset`` names), draw the test split and then the validation
    split; ``init = fold_in(key(seed), 1)`` initialises the model and
    ``train = fold_in(key(seed), 2)`` is the key given to :func:`functional_nn.train.fit`
    (which folds in the epoch number for shuffling and dropout). Checkpoints store only
    ``train``, and ``fit`` refuses to resume a checkpoint whose key is not the run's;
    the others are derived again from the config's seed.
    """
    root = random.key(seed)
    data, split, validation = random.split(root, 3)
    return RunKeys(data, split, validation, random.fold_in(root, 1), random.fold_in(root, 2))


@dataclass(frozen=True)
class Setup:
    """The data, model and optimizer a config describes."""

    train: Dataset
    validation: Dataset
    test: Dataset
    standardizer: Standardizer
    model: RunModel
    optimizer: optimizers.Optimizer
    steps_per_epoch: int
    schema: CsvSchema | None = None
    """What the data file's columns mean (``None`` for an embedded dataset)."""


def outputs(data: Dataset) -> int:
    """How many outputs a model of ``data`` has: one per class, or one for regression."""
    return data.num_classes if data.num_classes is not None else 1


def read_data_file(path: str, *, target: str | None = None, task: str | None = None) -> CsvData:
    """The CSV file a run trains on, its problems as a :class:`UsageError` (one line)."""
    try:
        return read_csv(path, target=target, task=cast("Task | None", task))
    except CsvError as error:
        raise UsageError(str(error)) from error


def load_data(config: Config) -> tuple[Dataset, CsvSchema | None]:
    """The whole dataset a config names, and its columns' meaning if it is a data file.

    A data file must still have the SHA-256 its run recorded.
    """
    if config.data is None:
        return datasets.load(config.dataset, key=run_keys(config.seed).data), None
    data = read_data_file(config.data, target=config.target, task=config.task)
    if data.sha256 != config.data_sha256:
        raise UsageError(
            f"{config.data} has changed since the run trained on it (its SHA-256 is now "
            f"{data.sha256[:16]}..., the run's {str(config.data_sha256)[:16]}...); restore it or train anew"
        )
    return data.dataset, data.schema


def build_model(config: Config, n_in: int, n_out: int) -> RunModel:
    """The model a config describes, for ``n_in`` features and ``n_out`` outputs.

    ``--model cnn`` reads the features as a square one-channel image (digits' 64
    pixels as 8x8); a UsageError says why other data or an activation does not fit it.
    """
    if config.model == "mlp":
        return MLP(
            n_in,
            [*config.hidden, n_out],
            activation=cast(ActivationName, config.activation),
            dropout=config.dropout,
        )
    side = math.isqrt(n_in)
    if side * side != n_in:
        raise UsageError(
            "--model cnn reads each row as a square image (64 features as 8x8); "
            f"this data has {n_in} features"
        )
    if config.activation not in CONV_ACTIVATIONS:
        raise UsageError(
            f"--model cnn takes --activation {', '.join(CONV_ACTIVATIONS)}, not {config.activation}"
        )
    try:
        image = (1, side, side)
        return ConvNet(image, config.channels, config.hidden, n_out, config.activation, config.dropout)
    except ValueError as error:
        raise UsageError(f"--model cnn: {str(error).removeprefix('ConvNet: ')} (--channels)") from error


def describe_model(model: RunModel) -> str:
    """The model in a few words, e.g. ``MLP 64-32-10 (relu)``."""
    if isinstance(model, MLP):
        return f"MLP {'-'.join(str(s) for s in (model.n_in, *model.sizes))} ({model.activation})"
    return model.describe()


def build(config: Config) -> Setup:
    """Load and split the data, standardise it on the training part, build model and optimizer."""
    validate(config)
    keys = run_keys(config.seed)
    data, schema = load_data(config)
    where = os.path.basename(config.data or config.dataset)
    try:
        rest, test = train_test_split(data, TEST_FRACTION, key=keys.split)
        train, validation = train_test_split(rest, VALIDATION_FRACTION, key=keys.validation)
    except ValueError as error:
        raise UsageError(
            f"{where} has {len(data)} rows, too few to split off test and validation rows ({error})"
        ) from error
    try:
        train, validation, test, standardizer = datasets.standardize(train, validation, test)
    except ValueError as error:
        raise UsageError(f"{where}: cannot standardize the features: {error}") from error
    model = build_model(config, data.num_features, outputs(data))
    steps = math.ceil(len(train) / config.batch_size)
    return Setup(train, validation, test, standardizer, model, make_optimizer(config, steps), steps, schema)


def _schedule(config: Config, steps_per_epoch: int) -> optimizers.LearningRate:
    lr = config.learning_rate()
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return lr
    if config.schedule == "cosine":
        return optimizers.cosine_decay(lr, total)
    if config.schedule == "step":
        return optimizers.step_decay(lr, max(1, total // 3), 0.1)
    if config.schedule == "exponential":
        return optimizers.exponential_decay(lr, total, 0.01)  # down to 1% of lr over the run
    warmup = max(1, total // 10)
    return optimizers.join_schedules(
        [optimizers.linear_warmup(0.0, lr, warmup), optimizers.cosine_decay(lr, max(1, total - warmup))],
        [warmup],
    )


def make_optimizer(config: Config, steps_per_epoch: int) -> optimizers.Optimizer:
    """The optimizer the config names, optionally behind gradient clipping."""
    lr = _schedule(config, steps_per_epoch)
    wd = config.weight_decay
    if config.optimizer == "sgd":
        opt = optimizers.sgd(lr, momentum=config.momentum or 0.0, weight_decay=wd)
    elif config.optimizer == "momentum":
        beta = 0.9 if config.momentum is None else config.momentum
        opt = optimizers.momentum(lr, beta=beta, weight_decay=wd)
    elif config.optimizer == "adam":
        opt = optimizers.adam(lr, weight_decay=wd)
    else:
        opt = optimizers.adamw(lr, weight_decay=wd)
    if config.clip is not None:
        return optimizers.chain(optimizers.clip_by_global_norm(config.clip), opt)
    return opt
