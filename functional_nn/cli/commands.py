"""The subcommands ``train``, ``evaluate`` and ``predict``: thin layers over the library."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from functional_nn import datasets
from functional_nn.cli.arguments import PROG, check_workers, config_from_args, parser
from functional_nn.cli.assembly import (
    RunModel,
    Setup,
    build,
    build_model,
    describe_model,
    make_optimizer,
    outputs,
    read_data_file,
    run_keys,
)
from functional_nn.cli.checkpoints import KIND, SavedRun, infer_mlp, read_run, run_metadata
from functional_nn.cli.config import DATA_FILE, Config, UsageError, validate
from functional_nn.cli.executors import SHARD_TIMEOUT_SECONDS, describe_workers, open_workers
from functional_nn.cli.plot import MISSING_MATPLOTLIB, save_plot
from functional_nn.cli.progress import Progress, metrics_csv
from functional_nn.csv_data import CsvData, CsvError, CsvSchema, read_csv_inputs, read_csv_like
from functional_nn.dataloader import Dataset
from functional_nn.datasets import Standardizer
from functional_nn.export import export_torch, sequential_snippet
from functional_nn.functional import argmax, softmax
from functional_nn.mlp import MLP
from functional_nn.models import ConvNet
from functional_nn.objective import Params
from functional_nn.safetensors import Dtype, save_safetensors
from functional_nn.serialization import (
    CheckpointError,
    Json,
    load_checkpoint,
    remove_stale_temporaries,
    write_atomically,
)
from functional_nn.train import (
    Checkpointing,
    EarlyStopping,
    EpochEnd,
    Event,
    NonFiniteTrainingError,
    ShardError,
    TrainingState,
    evaluate,
    fit,
    regression_errors,
)
from functional_nn.train import outputs as model_outputs
from functional_nn.training_state import read_training_state, save_training_state
from optimizers import Optimizer
from tape.validate import number_text

CHECKPOINT_NAME = "checkpoint.json"
METRICS_NAME = "metrics.csv"
INTERRUPTED_NAME = "interrupted-checkpoint.json"
WORKER_FAILED_STATUS = 4
"""The exit status when a worker computing a shard died or failed."""

# --- train ------------------------------------------------------------------------------


def _prepare_out(out_dir: str) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --out {out_dir}: {error.strerror}") from error
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"--out {out_dir} is not writable")
    # Only the library's own temporary files, left by a write a crash cut short; at any age,
    # since a run owns its --out folder.
    remove_stale_temporaries(out_dir, older_than=0)


_RESUME_FLAGS = frozenset(
    {"epochs", "out", "plot", "quiet", "progress", "resume", "command", "workers", "scheduler", "compile"}
)


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
            "(only --epochs, --out, --plot, --quiet, --progress, --workers, --scheduler and --compile "
            "apply when resuming)"
        )


def _checked_state(path: str, saved: SavedRun, model: RunModel, optimizer: Optimizer) -> TrainingState:
    """The run's training state, every part checked against the run's model and optimizer."""
    try:
        params = model.check_params(saved.checkpoint.params)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} does not fit the model its config describes: {error}") from error
    try:
        state = read_training_state(saved.checkpoint, params, optimizer.init(params))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    if state.key != run_keys(saved.config.seed).train:
        raise CheckpointError(f"{path}: its key is not the one its config's seed gives")
    if len(saved.standardizer.mean) != model.n_in:
        raise CheckpointError(f"{path} has a standardizer for {len(saved.standardizer.mean)} features")
    return state


@dataclass(frozen=True)
class _Start:
    """Where a training run starts: its config, and the state it resumes from (if any)."""

    config: Config
    resumed: TrainingState | None
    out_dir: str | None
    data: CsvData | None = None
    """The data file, as read when the run started (not when resuming)."""


def _data_config(args: argparse.Namespace, config: Config) -> tuple[Config, CsvData | None]:
    """The config with ``--data``'s file, target and task filled in (and the file as read)."""
    if not args.data:
        for flag, value in (("--target", args.target), ("--task", args.task)):
            if value is not None:
                raise UsageError(f"{flag} applies to a data file: add --data FILE.csv")
        return config, None
    if args.dataset is not None:
        raise UsageError("--data and --dataset each name the data to train on: give one")
    data = read_data_file(args.data, target=args.target, task=args.task)
    filled = replace(
        config,
        dataset=DATA_FILE,
        data=os.path.abspath(args.data),
        data_sha256=data.sha256,
        target=data.schema.target,
        task=data.schema.task,
    )
    validate(filled)
    return filled, data


def _start(args: argparse.Namespace) -> _Start:
    if not args.resume:
        config, data = _data_config(args, config_from_args(args))
        return _Start(config, None, args.out, data)
    _check_resume_flags(args)
    saved = read_run(args.resume)
    config = saved.config if args.epochs is None else replace(saved.config, epochs=args.epochs)
    try:
        config = Config.from_json(config.to_json())  # the new --epochs checked like any config
    except CheckpointError as error:
        raise UsageError(str(error).replace("the checkpoint's config is invalid: ", "")) from error
    setup = build(config)
    state = _checked_state(args.resume, saved, setup.model, setup.optimizer)
    if state.stopped_early:
        raise UsageError(
            f"{args.resume} is a run that stopped early after epoch {state.epochs_done} "
            f"(best epoch {state.early_stopping.best_epoch + 1}); there is nothing to resume"
        )
    if config.epochs <= state.epochs_done:
        asked = f"--epochs {args.epochs}" if args.epochs is not None else f"its {config.epochs} epochs"
        raise UsageError(
            f"{args.resume} has already trained {state.epochs_done} epochs, so {asked} adds none; "
            f"pass --epochs above {state.epochs_done}"
        )
    out_dir = args.out if args.out else os.path.dirname(args.resume) or "."
    return _Start(config, state, out_dir)


def _bar_stream(args: argparse.Namespace) -> TextIO | None:
    """stderr when the bar is asked for (``--progress``) or stderr is a terminal, else None."""
    if args.quiet or args.progress is False:
        return None
    if args.progress or sys.stderr.isatty():
        return sys.stderr
    return None


def _write_metrics(out_dir: str, state: TrainingState) -> None:
    try:
        write_atomically(os.path.join(out_dir, METRICS_NAME), metrics_csv(state.history).encode())
    except CheckpointError as error:
        raise UsageError(str(error)) from error


def _saved_epochs(path: str) -> int:
    """``epochs_done`` of the checkpoint at ``path``, or -1 if there is none readable."""
    try:
        done = load_checkpoint(path).metadata.get("epochs_done")
    except CheckpointError:
        return -1
    return done if isinstance(done, int) and not isinstance(done, bool) else -1


def run_train(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn train``: train (or resume), checkpoint every epoch, print the test metrics."""
    if args.plot:
        try:
            importlib.import_module("matplotlib")
        except ImportError as error:
            raise ImportError(MISSING_MATPLOTLIB) from error
    check_workers(args)
    start = _start(args)
    config, out_dir = start.config, start.out_dir
    setup = build(config)
    if out_dir:
        _prepare_out(out_dir)
    keys = run_keys(config.seed)
    params = setup.model.init(keys.init)
    metadata = run_metadata(config, setup.standardizer, setup.schema)
    last = start.resumed or TrainingState(
        params, setup.optimizer.init(params), 0, keys.train, EarlyStopping(), ()
    )
    quiet = bool(args.quiet)
    if not quiet:
        if setup.schema is not None:
            print(
                _data_line(setup.schema, len(setup.train) + len(setup.validation) + len(setup.test), start),
                file=out,
            )
        print(_headline(config, setup, start) + _parallel_headline(args, config), file=out, flush=True)
    progress = Progress(config.epochs, out, quiet, _bar_stream(args))
    finished: list[TrainingState] = [last]

    def on_event(event: Event) -> None:
        if isinstance(event, EpochEnd):  # remember the finished epoch before anything can interrupt
            finished[0] = event.state
        progress(event)
        if isinstance(event, EpochEnd) and out_dir:
            _write_metrics(out_dir, event.state)

    checkpoint = Checkpointing(os.path.join(out_dir, CHECKPOINT_NAME), metadata) if out_dir else None
    try:
        with open_workers(args.workers, args.scheduler, setup.train) as workers:
            result = fit(
                setup.model,
                params,
                setup.optimizer,
                setup.train,
                epochs=config.epochs,
                batch_size=config.batch_size,
                key=keys.train,
                validation=setup.validation,
                patience=config.patience,
                callbacks=(on_event,),
                checkpoint=checkpoint,
                resume=start.resumed,
                shards=config.shards,
                executor=workers.executor if workers else None,
                worker_data=workers.worker_data if workers else None,
                timeout=SHARD_TIMEOUT_SECONDS,
                compile=config.compile if args.compile is None else args.compile,
            )
    except KeyboardInterrupt:
        where, epochs = _save_interrupted(out_dir, finished[0], metadata)
        print(f"{PROG}: interrupted; the last finished epoch ({epochs}) is saved in {where}", file=sys.stderr)
        return 130
    except NonFiniteTrainingError as error:
        kept = ""
        if out_dir and finished[0].epochs_done > 0:
            kept = f"; the last good checkpoint is {os.path.join(out_dir, CHECKPOINT_NAME)}"
        print(f"{PROG}: training diverged at {error}{kept}. Try a smaller --lr or --clip.", file=sys.stderr)
        return 3
    except ShardError as error:
        kept = ""
        if out_dir and finished[0].epochs_done > 0:
            path = os.path.join(out_dir, CHECKPOINT_NAME)
            kept = f"; epoch {finished[0].epochs_done} is saved: continue with --resume {path}"
        print(f"{PROG}: error: {error}{kept}", file=sys.stderr)
        return WORKER_FAILED_STATUS
    test_loss, test_accuracy = evaluate(setup.model, result.params, setup.test)
    if args.plot:
        path = save_plot(out_dir or ".", setup, result.params, result.history)
        print(f"plot: {path}", file=out)
    if result.stopped_early:
        print(
            f"stopped early: no better validation loss for {config.patience} epochs "
            f"(best at epoch {result.early_stopping.best_epoch + 1})",
            file=out,
        )
    if out_dir:
        print(f"checkpoint: {os.path.join(out_dir, CHECKPOINT_NAME)}", file=out)
    print(f"test loss: {test_loss:.4f}", file=out)
    if not math.isnan(test_accuracy):
        print(f"test accuracy: {100 * test_accuracy:.1f}%", file=out)
    else:
        rmse, mae = regression_errors(setup.model, result.params, setup.test)
        print(f"test rmse: {rmse:.4g}", file=out)
        print(f"test mae: {mae:.4g}", file=out)
    return 0


def _data_line(schema: CsvSchema, rows: int, start: _Start) -> str:
    """What ``train`` read from a data file, and what it inferred."""
    if schema.labels is not None:
        task = f"classification into {len(schema.labels)} classes ({', '.join(schema.labels)})"
    else:
        task = "regression"
    inferred = start.data.inferred if start.data is not None else None
    how = f"; task inferred: {inferred} (--task sets it)" if inferred else ""
    features = f"{len(schema.features)} feature{'s' if len(schema.features) > 1 else ''}"
    return f"data: {rows} rows, {features}, target {schema.target!r}: {task}{how}"


def _parallel_headline(args: argparse.Namespace, config: Config) -> str:
    """``, 2 shards on 2 local workers`` and the like; empty for one shard computed here."""
    where = describe_workers(args.workers, args.scheduler)
    if config.shards == 1 and where is None:
        return ""
    return f", {config.shards} shard{'s' if config.shards > 1 else ''} on {where or 'this process'}"


def _headline(config: Config, setup: Setup, start: _Start) -> str:
    name = os.path.basename(config.data) if config.data is not None else config.dataset
    return (
        f"training {name}: {len(setup.train)} train / {len(setup.validation)} validation / "
        f"{len(setup.test)} test examples, {describe_model(setup.model)}, "
        f"{config.optimizer} lr {config.learning_rate():g}, {config.epochs} epochs"
        + (f", resuming after epoch {start.resumed.epochs_done}" if start.resumed else "")
    )


def _save_interrupted(out_dir: str | None, last: TrainingState, metadata: dict[str, Json]) -> tuple[str, int]:
    """Where the last finished epoch is saved, and its number.

    Under ``--out``, ``fit`` has saved it (even one whose callbacks had not run yet, so
    the file may be ahead of ``last``); without, it goes into the working folder.
    """
    path = os.path.join(out_dir, CHECKPOINT_NAME) if out_dir else INTERRUPTED_NAME
    saved = _saved_epochs(path)
    if out_dir and saved >= last.epochs_done:
        return path, saved
    save_training_state(path, last, metadata)
    return path, last.epochs_done


# --- evaluate and predict ------------------------------------------------------------------


@dataclass(frozen=True)
class _Inference:
    """A model to use: from a run checkpoint (with its run), or inferred from a plain one."""

    model: RunModel
    params: Params
    standardizer: Standardizer | None
    run: SavedRun | None

    @property
    def schema(self) -> CsvSchema | None:
        """The data file's columns, for a run trained on one."""
        return self.run.schema if self.run is not None else None


def _load_for_inference(path: str, activation: str | None) -> _Inference:
    checkpoint = load_checkpoint(path)
    if checkpoint.metadata.get("kind") != KIND:
        if "kind" in checkpoint.metadata:
            raise CheckpointError(f"{path} was not written by `fnn train` (its kind is not {KIND!r})")
        try:
            mlp = infer_mlp(checkpoint.params, activation or "relu")
        except CheckpointError as error:
            raise CheckpointError(
                f"{path} was not written by `fnn train` and {error}; fnn can use a library checkpoint "
                "only of an MLP"
            ) from error
        return _Inference(mlp, mlp.check_params(checkpoint.params), None, None)
    if activation is not None:
        raise UsageError(f"--activation is for library checkpoints; {path} names its own")
    saved = read_run(path, checkpoint)
    config = saved.config
    model: RunModel
    if saved.schema is not None:  # the model without reading the data file, which may be gone
        labels = saved.schema.labels
        model = build_model(config, len(saved.schema.features), len(labels) if labels is not None else 1)
        optimizer = make_optimizer(config, 1)  # for checking the state only: its schedule is not used
    else:
        setup = build(config)
        model, optimizer = setup.model, setup.optimizer
    params = _checked_state(path, saved, model, optimizer).params
    return _Inference(model, params, saved.standardizer, saved)


def confusion_matrix(model: RunModel, params: Params, data: Dataset) -> list[list[int]]:
    """Counts of (true class, predicted class) on ``data``."""
    k = data.num_classes if data.num_classes is not None else 0
    matrix = [[0] * k for _ in range(k)]
    for out, target in zip(model_outputs(model, params, data.inputs), data.targets, strict=True):
        matrix[int(target)][argmax(out)] += 1
    return matrix


def _evaluation_data(args: argparse.Namespace, use: _Inference) -> tuple[Dataset, str]:
    model = use.model
    if args.data:
        return _file_evaluation_data(args, use)
    if use.run is not None and use.run.config.data is not None and args.dataset:
        raise UsageError(
            f"{args.checkpoint} was trained on {os.path.basename(use.run.config.data)}; evaluate it on "
            "a file of the same columns with --data"
        )
    if use.run is not None and use.run.config.data is not None:
        return build(use.run.config).test, f"the {os.path.basename(use.run.config.data)} test split"
    if use.run is not None and (not args.dataset or args.dataset == use.run.config.dataset):
        return build(use.run.config).test, f"the {use.run.config.dataset} test split"
    if not args.dataset:
        raise UsageError(
            f"{args.checkpoint} holds params but no run: name the data to evaluate on with --dataset"
        )
    seed = use.run.config.seed if use.run is not None else 0
    raw = datasets.load(args.dataset, key=run_keys(seed).data)
    if raw.num_features != model.n_in or outputs(raw) != model.n_out:
        raise UsageError(
            f"{args.dataset} has {raw.num_features} features and {outputs(raw)} outputs; "
            f"the model takes {model.n_in} and gives {model.n_out}"
        )
    if use.standardizer is None:
        return raw, f"all of {args.dataset} (not standardized: the checkpoint holds no standardizer)"
    return use.standardizer.transform(raw), f"all of {args.dataset}"


def _file_evaluation_data(args: argparse.Namespace, use: _Inference) -> tuple[Dataset, str]:
    if args.dataset:
        raise UsageError("--data and --dataset each name the data to evaluate on: give one")
    if use.schema is None or use.standardizer is None:
        trained = f"on {use.run.config.dataset}" if use.run is not None else "by the library"
        raise UsageError(
            f"--data needs a run trained on a CSV file (fnn train --data); "
            f"{args.checkpoint} was trained {trained}"
        )
    try:
        data = read_csv_like(args.data, use.schema)
    except CsvError as error:
        raise UsageError(str(error)) from error
    try:
        return use.standardizer.transform(data.dataset), f"all of {os.path.basename(args.data)}"
    except ValueError as error:
        raise UsageError(f"{args.data}: {error}") from error


def run_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn evaluate``: loss, accuracy and confusion matrix on the test split (or another dataset)."""
    use = _load_for_inference(args.checkpoint, args.activation)
    data, where = _evaluation_data(args, use)
    loss, accuracy = evaluate(use.model, use.params, data)
    print(f"evaluated on {where} ({len(data)} examples)", file=out)
    print(f"loss: {loss:.4f}", file=out)
    if data.num_classes is None:
        rmse, mae = regression_errors(use.model, use.params, data)
        print(f"rmse: {rmse:.4g}", file=out)
        print(f"mae: {mae:.4g}", file=out)
    else:
        print(f"accuracy: {100 * accuracy:.1f}%", file=out)
        labels = use.schema.labels if use.schema is not None else None
        if labels is not None:
            print("classes: " + ", ".join(f"{k} {label}" for k, label in enumerate(labels)), file=out)
        matrix = confusion_matrix(use.model, use.params, data)
        width = max(3, *(len(str(c)) for row in matrix for c in row))
        print("confusion matrix (rows: true class, columns: predicted):", file=out)
        print("     " + " ".join(f"{j:>{width}}" for j in range(len(matrix))), file=out)
        for i, row in enumerate(matrix):
            print(f"{i:>4} " + " ".join(f"{c:>{width}}" for c in row), file=out)
    return 0


def _standardized(use: _Inference, row: Sequence[float], where: str) -> Sequence[float]:
    """``row`` standardized as the run's training data were (as it is without a standardizer)."""
    if use.standardizer is None:
        return row
    try:
        return use.standardizer.apply(row)
    except ValueError as error:
        raise UsageError(f"{where}: {error}") from error


def _class_names(use: _Inference) -> list[str]:
    labels = use.schema.labels if use.schema is not None else None
    return list(labels) if labels is not None else [str(k) for k in range(use.model.n_out)]


def _predict_file(args: argparse.Namespace, use: _Inference, out: TextIO) -> int:
    """``fnn predict --input-file``: one CSV row out per row in (header first)."""
    schema = use.schema
    try:
        if schema is not None:
            inputs = read_csv_inputs(args.input_file, schema.features, ignore=(schema.target,))
        else:
            inputs = read_csv_inputs(args.input_file, None)
    except CsvError as error:
        raise UsageError(str(error)) from error
    if len(inputs.features) != use.model.n_in:
        raise UsageError(
            f"{args.input_file} has {len(inputs.features)} columns; the model takes {use.model.n_in} features"
        )
    rows = [_standardized(use, row, f"{args.input_file} row {k}") for k, row in enumerate(inputs.rows, 1)]
    writer = csv.writer(out, lineterminator="\n")
    regression = use.model.n_out == 1
    names = _class_names(use)
    writer.writerow(["predicted"] if regression else ["predicted", *(f"P({name})" for name in names)])
    for x in rows:
        result = [float(o) for o in model_outputs(use.model, use.params, [x])[0]]
        if regression:
            writer.writerow([repr(result[0])])
        else:
            probs = softmax(result)
            writer.writerow([names[argmax(probs)], *(f"{float(p):.4f}" for p in probs)])
    return 0


def run_export(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn export``: the model as safetensors under ``nn.Sequential``'s names, and its loading code."""
    use = _load_for_inference(args.checkpoint, args.activation)
    if isinstance(use.model, MLP):
        code = export_torch(args.out, use.model, use.params, dtype=args.dtype, standardizer=use.standardizer)
    else:
        code = _export_conv_net(args.out, use.model, use.params, args.dtype, use.standardizer)
    print(f"wrote {args.out}: {use.model!r} as {args.dtype} tensors; to load it in PyTorch:", file=out)
    print(file=out)
    print(code, file=out)
    return 0


def _export_conv_net(
    path: str, model: ConvNet, params: Params, dtype: Dtype, standardizer: Standardizer | None
) -> str:
    """Save a ConvNet's params (its own dotted names, which are its ``nn.Sequential``'s); the loading code."""
    metadata = {"format": "pt", "model": model.describe()}
    if standardizer is not None:
        metadata["input_mean"] = json.dumps(list(standardizer.mean))
        metadata["input_scale"] = json.dumps(list(standardizer.scale))
    save_safetensors(path, model.check_params(params), dtype=dtype, metadata=metadata)
    return sequential_snippet(model.torch_modules(), path, dtype=dtype, standardized=standardizer is not None)


def run_predict(args: argparse.Namespace, out: TextIO) -> int:
    """``fnn predict``: class probabilities (or the regression output) for one input row, or a file's."""
    use = _load_for_inference(args.checkpoint, args.activation)
    if args.input_file is not None:
        return _predict_file(args, use, out)
    model = use.model
    try:
        row = [number_text(part, f"--input value {k}") for k, part in enumerate(args.input.split(","), 1)]
    except ValueError as error:
        raise UsageError(f"{error} (--input takes comma-separated numbers)") from error
    if len(row) != model.n_in:
        raise UsageError(f"--input has {len(row)} values; the model takes {model.n_in}")
    inputs = _standardized(use, row, "--input")
    outputs_ = model_outputs(model, use.params, [inputs])[0]
    if model.n_out == 1:
        print(f"prediction: {float(outputs_[0]):.6g}", file=out)
        return 0
    probs = softmax([float(o) for o in outputs_])
    best = argmax(probs)
    names = [f"class {name}" for name in _class_names(use)] if use.schema is None else _class_names(use)
    for k, p in enumerate(probs):
        print(f"{names[k]}: {float(p):.4f}" + ("  <- predicted" if k == best else ""), file=out)
    return 0
