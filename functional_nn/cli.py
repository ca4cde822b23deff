"""The command line: ``python -m functional_nn train | evaluate | predict`` (also ``fnn``).

Every failure a user can cause (a bad flag, an unknown dataset, a checkpoint that
does not fit, an unwritable folder) ends in one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import NoReturn, TextIO, cast

import optimizers
from functional_nn import datasets, random
from functional_nn.activations import ActivationName
from functional_nn.dataloader import Dataset, train_test_split
from functional_nn.datasets import DATASET_NAMES, Standardizer
from functional_nn.functional import argmax, softmax
from functional_nn.mlp import MLP, Params
from functional_nn.serialization import (
    CheckpointError,
    Json,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    state_dict,
    write_atomically,
)
from functional_nn.train import (
    BatchEnd,
    EarlyStopping,
    EpochEnd,
    EpochLog,
    Event,
    NonFiniteTrainingError,
    evaluate,
    fit,
)
from optimizers.state import OptState

PROG = "fnn"
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "exponential", "warmup-cosine")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


@dataclass(frozen=True)
class Config:
    """Everything that determines a training run (saved in every checkpoint)."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    epochs: int = 12
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float = 0.0
    dropout: float = 0.0
    clip: float | None = None
    schedule: str = "constant"
    patience: int | None = None
    seed: int = 0

    def learning_rate(self) -> float:
        """The learning rate, defaulting by optimizer (0.1 for SGD-like, 0.01 for Adam-like)."""
        if self.lr is not None:
            return self.lr
        return 0.1 if self.optimizer in ("sgd", "momentum") else 0.01

    def to_json(self) -> dict[str, Json]:
        """The config as JSON values."""
        out = cast(dict[str, Json], asdict(self))
        out["hidden"] = list(self.hidden)
        return out

    @staticmethod
    def from_json(obj: object) -> Config:
        """A config from :meth:`to_json`'s output; a CheckpointError if it does not fit."""
        if not isinstance(obj, dict):
            raise CheckpointError("the checkpoint holds no training config")
        names = {f.name for f in fields(Config)}
        if set(obj) != names:
            raise CheckpointError(f"the checkpoint's config has keys {sorted(obj)}, expected {sorted(names)}")
        values = dict(obj)
        hidden = values["hidden"]
        if not isinstance(hidden, list) or not all(_is_int(h) and h > 0 for h in hidden):
            raise CheckpointError(f"the checkpoint's hidden sizes {hidden!r} are not positive ints")
        values["hidden"] = tuple(hidden)
        for name, kind in _FIELD_KINDS.items():
            value = values[name]
            optional = name in _OPTIONAL
            if value is None and optional:
                continue
            if kind is str and not isinstance(value, str):
                raise CheckpointError(f"the checkpoint's config has {name} = {value!r}, not a string")
            if kind is int and not _is_int(value):
                raise CheckpointError(f"the checkpoint's config has {name} = {value!r}, not an integer")
            if kind is float:
                if not (_is_int(value) or isinstance(value, float)):
                    raise CheckpointError(f"the checkpoint's config has {name} = {value!r}, not a number")
                values[name] = float(value)
        try:
            config = Config(**values)
            validate(config)
        except (TypeError, UsageError) as error:
            raise CheckpointError(f"the checkpoint's config is invalid: {error}") from error
        return config


_FIELD_KINDS: dict[str, type] = {
    "dataset": str,
    "activation": str,
    "epochs": int,
    "batch_size": int,
    "optimizer": str,
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "dropout": float,
    "clip": float,
    "schedule": str,
    "patience": int,
    "seed": int,
}
_OPTIONAL = frozenset({"lr", "momentum", "clip", "patience"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(config: Config) -> None:
    """Raise :class:`UsageError` for a config no run can use."""
    if config.dataset not in DATASET_NAMES:
        raise UsageError(f"unknown dataset {config.dataset!r}; choose one of: {', '.join(DATASET_NAMES)}")
    if config.activation not in ACTIVATIONS:
        raise UsageError(f"unknown activation {config.activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    if config.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {config.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if config.schedule not in SCHEDULES:
        raise UsageError(f"unknown schedule {config.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    checks: list[tuple[bool, str]] = [
        (config.epochs >= 1, f"--epochs must be >= 1, got {config.epochs}"),
        (config.batch_size >= 1, f"--batch-size must be >= 1, got {config.batch_size}"),
        (config.learning_rate() > 0, f"--lr must be > 0, got {config.lr}"),
        (
            config.momentum is None or 0.0 <= config.momentum < 1.0,
            f"--momentum must be in [0, 1), got {config.momentum}",
        ),
        (
            config.momentum is None or config.optimizer in ("sgd", "momentum"),
            f"--momentum applies to --optimizer sgd or momentum, not {config.optimizer}",
        ),
        (config.weight_decay >= 0.0, f"--weight-decay must be >= 0, got {config.weight_decay}"),
        (0.0 <= config.dropout < 1.0, f"--dropout must be in [0, 1), got {config.dropout}"),
        (config.clip is None or config.clip > 0, f"--clip must be > 0, got {config.clip}"),
        (config.patience is None or config.patience >= 1, f"--patience must be >= 1, got {config.patience}"),
        (all(h >= 1 for h in config.hidden), f"--hidden sizes must be >= 1, got {config.hidden}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    for value in (config.lr, config.momentum, config.weight_decay, config.dropout, config.clip):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"numeric flags must be finite, got {value}")


# --- building a run from a config -------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """The data, model and optimizer a config describes."""

    train: Dataset
    validation: Dataset
    test: Dataset
    standardizer: Standardizer
    model: MLP
    optimizer: optimizers.Optimizer
    steps_per_epoch: int


def _outputs(data: Dataset) -> int:
    return data.num_classes if data.num_classes is not None else 1


def build(config: Config) -> Setup:
    """Load and split the data, standardise it on the training part, build model and optimizer."""
    validate(config)
    data_key, split_key, val_key = random.split(random.key(config.seed), 3)
    data = datasets.load(config.dataset, key=data_key)
    rest, test = train_test_split(data, TEST_FRACTION, key=split_key)
    train, validation = train_test_split(rest, VALIDATION_FRACTION, key=val_key)
    train, validation, test, standardizer = datasets.standardize(train, validation, test)
    model = MLP(
        data.num_features,
        [*config.hidden, _outputs(data)],
        activation=cast(ActivationName, config.activation),
        dropout=config.dropout,
    )
    steps = math.ceil(len(train) / config.batch_size)
    return Setup(train, validation, test, standardizer, model, make_optimizer(config, steps), steps)


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
        return optimizers.exponential_decay(lr, total, 0.01)
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


# --- output -----------------------------------------------------------------------------


class Progress:
    """A per-epoch progress bar (tqdm when installed) and one summary line per epoch."""

    def __init__(self, total_epochs: int, out: TextIO, quiet: bool) -> None:
        self.total_epochs = total_epochs
        self.out = out
        self.quiet = quiet
        self.bar: object | None = None
        self.tqdm: Callable[..., object] | None
        try:
            self.tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:  # plain epoch lines without the optional progress extra
            self.tqdm = None

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, BatchEnd):
            self._batch(event)
        else:
            self._epoch(event)

    def _batch(self, event: BatchEnd) -> None:
        if self.tqdm is None:
            return
        if event.step == 0:
            self.bar = self.tqdm(
                total=event.steps,
                desc=f"epoch {event.epoch + 1}/{self.total_epochs}",
                unit="batch",
                file=self.out,
                leave=False,
                dynamic_ncols=True,
            )
        bar = cast("_Bar", self.bar)
        postfix = {"loss": f"{event.metrics['loss']:.4f}"}
        if "accuracy" in event.metrics:
            postfix["acc"] = f"{event.metrics['accuracy']:.3f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    def _epoch(self, event: EpochEnd) -> None:
        if self.bar is not None:
            cast("_Bar", self.bar).close()
            self.bar = None
        print(format_epoch(event.log, self.total_epochs), file=self.out, flush=True)


class _Bar:  # the part of tqdm's interface used above
    def set_postfix(self, postfix: dict[str, str], refresh: bool) -> None: ...
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def format_epoch(log: EpochLog, total: int) -> str:
    """One line per epoch: losses, accuracies and time."""
    width = len(str(total))
    parts = [f"epoch {log.epoch + 1:>{width}}/{total}", f"train loss {log.train_loss:.4f}"]
    if not math.isnan(log.train_accuracy):
        parts.append(f"acc {_pct(log.train_accuracy)}")
    parts.append(f"val loss {log.val_loss:.4f}")
    if not math.isnan(log.val_accuracy):
        parts.append(f"acc {_pct(log.val_accuracy)}")
    parts.append(f"{log.seconds:.1f}s")
    return " | ".join(parts)


METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def metrics_csv(history: Sequence[EpochLog]) -> str:
    """The per-epoch metrics as CSV text (epochs counted from 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for log in history:
        writer.writerow(
            [
                log.epoch + 1,
                repr(log.train_loss),
                repr(log.train_accuracy),
                repr(log.val_loss),
                repr(log.val_accuracy),
                f"{log.seconds:.3f}",
            ]
        )
    return buffer.getvalue()


def _history_json(history: Sequence[EpochLog]) -> list[Json]:
    return [
        cast(
            Json, {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(log).items()}
        )
        for log in history
    ]


def _history_from_json(obj: object) -> list[EpochLog]:
    if not isinstance(obj, list):
        raise CheckpointError("the checkpoint's history is not a list")
    out: list[EpochLog] = []
    for item in obj:
        if not isinstance(item, dict):
            raise CheckpointError("the checkpoint's history is damaged")
        try:
            out.append(
                EpochLog(
                    int(item["epoch"]),
                    *(
                        math.nan if item[k] is None else float(item[k])
                        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
                    ),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"the checkpoint's history is damaged: {error}") from error
    return out


# --- train ------------------------------------------------------------------------------


def _metadata(
    config: Config,
    epoch: int,
    standardizer: Standardizer,
    history: Sequence[EpochLog],
    stopper: EarlyStopping,
) -> dict[str, Json]:
    return {
        "kind": "fnn-train",
        "config": config.to_json(),
        "epochs_done": epoch,
        "key": random.key(config.seed).data,
        "standardizer": {"mean": list(standardizer.mean), "scale": list(standardizer.scale)},
        "history": _history_json(history),
        "early_stopping": {
            "best_loss": None if math.isinf(stopper.best_loss) else stopper.best_loss,
            "best_epoch": stopper.best_epoch,
            "waited": stopper.waited,
            "best_params": None
            if stopper.best_params is None or config.patience is None
            else cast(Json, state_dict(stopper.best_params)),
        },
    }


def _write_outputs(
    out_dir: str, params: Params, state: OptState, metadata: dict[str, Json], history: Sequence[EpochLog]
) -> None:
    save_checkpoint(os.path.join(out_dir, "checkpoint.json"), params, state, metadata)
    try:
        write_atomically(os.path.join(out_dir, "metrics.csv"), metrics_csv(history).encode())
    except CheckpointError as error:
        raise UsageError(str(error)) from error


def _prepare_out(out_dir: str) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --out {out_dir}: {error.strerror}") from error
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"--out {out_dir} is not writable")
    for name in os.listdir(out_dir):  # a write cut short by a crash leaves its temporary file
        if name.startswith(".checkpoint-") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(out_dir, name))


@dataclass(frozen=True)
class Resumed:
    """What a run continues from."""

    config: Config
    params: Params
    opt_state: OptState
    epochs_done: int
    history: list[EpochLog]
    stopper: EarlyStopping


def _resume(path: str, epochs: int | None) -> Resumed:
    checkpoint = load_checkpoint(path)
    meta = checkpoint.metadata
    if meta.get("kind") != "fnn-train":
        raise CheckpointError(f"{path} was not written by `fnn train`")
    config = Config.from_json(meta.get("config"))
    if epochs is not None:
        config = Config(**{**asdict(config), "epochs": epochs})
    setup = build(config)
    try:
        params = setup.model.check_params(checkpoint.params)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} does not fit the model: {error}") from error
    done = meta.get("epochs_done")
    if not isinstance(done, int) or done < 0:
        raise CheckpointError(f"{path} has no valid epoch count")
    if checkpoint.opt_state is None:
        raise CheckpointError(f"{path} holds no optimizer state to resume from")
    stop = meta.get("early_stopping")
    if not isinstance(stop, dict):
        raise CheckpointError(f"{path} holds no early-stopping state")
    best = stop.get("best_loss")
    best_params = stop.get("best_params")
    try:
        stopper = EarlyStopping(
            math.inf if best is None else float(cast(float, best)),
            int(cast(int, stop.get("best_epoch", -1))),
            None
            if best_params is None
            else setup.model.check_params(load_state_dict(cast(dict[str, object], best_params))),
            int(cast(int, stop.get("waited", 0))),
        )
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} holds a damaged early-stopping state: {error}") from error
    return Resumed(
        config,
        params,
        checkpoint.opt_state,
        done,
        _history_from_json(meta.get("history")),
        stopper,
    )


_RESUME_FLAGS = frozenset({"epochs", "out", "plot", "quiet", "resume", "command"})


def _check_resume_flags(args: argparse.Namespace) -> None:
    """A resumed run keeps its checkpoint's config: refuse flags that would be ignored."""
    defaults = parser().parse_args(["train"])
    changed = sorted(
        f"--{name.replace('_', '-')}"
        for name, value in vars(args).items()
        if name not in _RESUME_FLAGS and value != getattr(defaults, name)
    )
    if changed:
        raise UsageError(
            f"--resume continues the checkpoint's run with its own config; drop {', '.join(changed)} "
            "(only --epochs, --out, --plot and --quiet apply when resuming)"
        )


def run_train(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn train``: train, checkpoint every epoch, print the test metrics."""
    if args.plot:
        try:
            importlib.import_module("matplotlib")
        except ImportError as error:
            from functional_nn.plot import MISSING_MATPLOTLIB

            raise ImportError(MISSING_MATPLOTLIB) from error
    if args.resume:
        _check_resume_flags(args)
        resumed = _resume(args.resume, args.epochs)
        config = resumed.config
    else:
        config = config_from_args(args)
        resumed = None
    setup = build(config)
    if args.out:
        _prepare_out(args.out)
    params = resumed.params if resumed else setup.model.init(random.fold_in(random.key(config.seed), 1))
    state = resumed.opt_state if resumed else setup.optimizer.init(params)
    start = resumed.epochs_done if resumed else 0
    history = list(resumed.history) if resumed else []
    stopper = resumed.stopper if resumed else EarlyStopping()
    last: dict[str, object] = {"params": params, "state": state, "epoch": start, "stopper": stopper}
    quiet = bool(args.quiet)
    if not quiet:
        print(
            f"training {config.dataset}: {len(setup.train)} train / {len(setup.validation)} validation / "
            f"{len(setup.test)} test examples, MLP {setup.model.n_in}-"
            f"{'-'.join(str(s) for s in setup.model.sizes)} ({config.activation}), "
            f"{config.optimizer} lr {config.learning_rate():g}, {config.epochs} epochs"
            + (f", resuming after epoch {start}" if resumed else ""),
            file=out,
            flush=True,
        )
    progress = Progress(config.epochs, out, quiet)

    def on_event(event: Event) -> None:
        if isinstance(event, EpochEnd):  # remember the finished epoch before anything can interrupt
            last.update(
                params=event.params,
                state=event.opt_state,
                epoch=event.log.epoch + 1,
                stopper=event.best,
                history=[*history, event.log],
            )
            history.append(event.log)
        progress(event)
        if isinstance(event, EpochEnd) and args.out:
            meta = _metadata(config, event.log.epoch + 1, setup.standardizer, history, event.best)
            _write_outputs(args.out, event.params, event.opt_state, meta, history)

    key = random.fold_in(random.key(config.seed), 2)
    try:
        result = fit(
            setup.model,
            params,
            setup.optimizer,
            setup.train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            key=key,
            validation=setup.validation,
            opt_state=state,
            start_epoch=start,
            patience=config.patience,
            early_stopping=stopper,
            callbacks=(on_event,),
        )
    except KeyboardInterrupt:
        where = _save_interrupted(args.out, config, setup, history, last)
        print(
            f"{PROG}: interrupted; the last finished epoch ({last['epoch']}) is saved in {where}",
            file=sys.stderr,
        )
        return 130
    except NonFiniteTrainingError as error:
        kept = f"; the last good checkpoint is {args.out}/checkpoint.json" if args.out and history else ""
        print(f"{PROG}: training diverged at {error}{kept}. Try a smaller --lr or --clip.", file=sys.stderr)
        return 3
    if result.stopped_early and args.out:
        # The run ends with the best epoch's params: save those, so the checkpoint is the
        # model this summary describes.
        best = result.early_stopping
        meta = _metadata(
            config,
            len(history) + start if not history else history[-1].epoch + 1,
            setup.standardizer,
            history,
            best,
        )
        meta["restored_best_epoch"] = best.best_epoch + 1
        _write_outputs(args.out, result.params, result.opt_state, meta, history)
    test_loss, test_accuracy = evaluate(setup.model, result.params, setup.test)
    if args.plot:
        from functional_nn.plot import save_plot

        path = save_plot(args.out or ".", setup, result.params, history)
        print(f"plot: {path}", file=out)
    if result.stopped_early:
        print(
            f"stopped early: no better validation loss for {config.patience} epochs "
            f"(best at epoch {result.early_stopping.best_epoch + 1})",
            file=out,
        )
    if args.out:
        print(f"checkpoint: {os.path.join(args.out, 'checkpoint.json')}", file=out)
    print(f"test loss: {test_loss:.4f}", file=out)
    if not math.isnan(test_accuracy):
        print(f"test accuracy: {100 * test_accuracy:.1f}%", file=out)
    return 0


def _saved_epochs(path: str) -> int:
    """``epochs_done`` of the checkpoint at ``path``, or -1 if there is none readable."""
    try:
        done = load_checkpoint(path).metadata.get("epochs_done")
    except CheckpointError:
        return -1
    return done if isinstance(done, int) else -1


def _save_interrupted(
    out_dir: str | None, config: Config, setup: Setup, history: list[EpochLog], last: dict[str, object]
) -> str:
    folder = out_dir or "."
    path = os.path.join(folder, "checkpoint.json" if out_dir else "interrupted-checkpoint.json")
    if out_dir and _saved_epochs(path) == last["epoch"]:
        return path  # written at the end of the last finished epoch
    history = cast("list[EpochLog]", last.get("history", history))
    meta = _metadata(
        config, cast(int, last["epoch"]), setup.standardizer, history, cast(EarlyStopping, last["stopper"])
    )
    save_checkpoint(path, last["params"], cast(OptState, last["state"]), meta)
    return path


# --- evaluate and predict ------------------------------------------------------------------


def _load_for_inference(path: str) -> tuple[Config, MLP, Params, Standardizer]:
    checkpoint = load_checkpoint(path)
    meta = checkpoint.metadata
    if meta.get("kind") != "fnn-train":
        raise CheckpointError(f"{path} was not written by `fnn train`")
    config = Config.from_json(meta.get("config"))
    setup = build(config)
    try:
        params = setup.model.check_params(checkpoint.params)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} does not fit its model: {error}") from error
    return config, setup.model, params, setup.standardizer


def confusion_matrix(model: MLP, params: Params, data: Dataset) -> list[list[int]]:
    """Counts of (true class, predicted class) on ``data``."""
    k = cast(int, data.num_classes)
    matrix = [[0] * k for _ in range(k)]
    for x, target in zip(data.inputs, data.targets):
        matrix[int(target)][argmax(model.apply(params, x))] += 1
    return matrix


def run_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn evaluate``: loss, accuracy and confusion matrix on the test split (or another dataset)."""
    config, model, params, standardizer = _load_for_inference(args.checkpoint)
    if args.dataset and args.dataset != config.dataset:
        raw = datasets.load(args.dataset, key=random.key(config.seed))
        if raw.num_features != model.n_in or _outputs(raw) != model.sizes[-1]:
            raise UsageError(
                f"{args.dataset} has {raw.num_features} features and {_outputs(raw)} outputs; "
                f"the model takes {model.n_in} and gives {model.sizes[-1]}"
            )
        data = standardizer.transform(raw)
        where = f"all of {args.dataset}"
    else:
        data = build(config).test
        where = f"the {config.dataset} test split"
    loss, accuracy = evaluate(model, params, data)
    print(f"evaluated on {where} ({len(data)} examples)", file=out)
    print(f"loss: {loss:.4f}", file=out)
    if data.num_classes is not None:
        print(f"accuracy: {100 * accuracy:.1f}%", file=out)
        matrix = confusion_matrix(model, params, data)
        width = max(3, *(len(str(c)) for row in matrix for c in row))
        print("confusion matrix (rows: true class, columns: predicted):", file=out)
        print("     " + " ".join(f"{j:>{width}}" for j in range(len(matrix))), file=out)
        for i, row in enumerate(matrix):
            print(f"{i:>4} " + " ".join(f"{c:>{width}}" for c in row), file=out)
    return 0


def run_predict(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn predict``: class probabilities (or the regression output) for one input row."""
    _, model, params, standardizer = _load_for_inference(args.checkpoint)
    try:
        row = [float(part) for part in args.input.split(",")]
    except ValueError as error:
        raise UsageError(f"--input must be comma-separated numbers: {error}") from error
    if not all(math.isfinite(x) for x in row):
        raise UsageError("--input values must be finite")
    if len(row) != model.n_in:
        raise UsageError(f"--input has {len(row)} values; the model takes {model.n_in}")
    outputs = model.apply(params, standardizer.apply(row))
    if model.sizes[-1] == 1:
        print(f"prediction: {float(outputs[0]):.6g}", file=out)
        return 0
    probs = softmax([float(o) for o in outputs])
    best = argmax(probs)
    for k, p in enumerate(probs):
        print(f"class {k}: {float(p):.4f}" + ("  <- predicted" if k == best else ""), file=out)
    return 0


# --- argument parsing -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes like 32,32, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    p = _Parser(prog=PROG, description="Train and use pure-Python MLPs on embedded datasets.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = Config()
    t = sub.add_parser("train", help="train an MLP (defaults: the digits set)")
    t.add_argument("--dataset", choices=DATASET_NAMES, default=d.dataset)
    t.add_argument("--hidden", type=_hidden, default=d.hidden, help="hidden sizes, e.g. 32,32")
    t.add_argument("--activation", choices=ACTIVATIONS, default=d.activation)
    t.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs}")
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    t.add_argument("--lr", type=float, default=None, help="default 0.1 (sgd, momentum) or 0.01 (adam, adamw)")
    t.add_argument(
        "--momentum", type=float, default=None, help="sgd: default 0 (plain); momentum: default 0.9"
    )
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--dropout", type=float, default=d.dropout)
    t.add_argument("--clip", type=float, default=None, help="clip gradients to this global norm")
    t.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    t.add_argument("--patience", type=int, default=None, help="stop after this many epochs without progress")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--out", default=None, help="folder for checkpoint.json, metrics.csv and plots")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue a run from its checkpoint")
    t.add_argument("--plot", action="store_true", help="save training curves (needs matplotlib)")
    t.add_argument("--quiet", action="store_true", help="print only the final summary")
    e = sub.add_parser("evaluate", help="loss, accuracy and confusion matrix of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", choices=DATASET_NAMES, default=None)
    r = sub.add_parser("predict", help="class probabilities for one input")
    r.add_argument("checkpoint")
    r.add_argument("--input", required=True, help='comma-separated features, e.g. "0.5,-1.2"')
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The training config the flags describe."""
    d = Config()
    config = Config(
        dataset=args.dataset,
        hidden=tuple(args.hidden),
        activation=args.activation,
        epochs=args.epochs if args.epochs is not None else d.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        clip=args.clip,
        schedule=args.schedule,
        patience=args.patience,
        seed=args.seed,
    )
    validate(config)
    return config


def _join_input_values(argv: list[str]) -> list[str]:
    """``--input -0.5,1`` as ``--input=-0.5,1``: argparse would take ``-0.5,1`` for an option."""
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--input":
            value = next(items, None)
            out.append(item if value is None else f"--input={value}")
        else:
            out.append(item)
    return out


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(_join_input_values(list(sys.argv[1:] if argv is None else argv)))
    stream = out or sys.stdout
    commands = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict}
    try:
        return commands[args.command](args, stream)
    except (UsageError, CheckpointError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: {error.strerror or error}", file=sys.stderr)
        return 2


def entry_point() -> None:
    """The ``fnn`` console script."""
    sys.exit(main())
