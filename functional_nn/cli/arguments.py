"""The argument parser, and the training config its flags describe."""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import NoReturn

from functional_nn.cli.config import (
    ACTIVATIONS,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    Config,
    UsageError,
    validate,
)
from functional_nn.csv_data import TASKS
from functional_nn.datasets import DATASET_NAMES

PROG = "fnn"
DISTRIBUTION = "functional-nn"
MAX_WORKERS = 256
"""The most local worker processes ``--workers`` starts."""


def version() -> str:
    """The installed package's version ("unknown" when run from a source tree that is not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``"32,16"`` as ``(32, 16)``; an ArgumentTypeError for an empty, non-integer or non-positive size."""
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes like 32,32, got {text!r}, which has an empty size"
        )
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes like 32,32, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands; ``--help`` shows every default."""
    p = _Parser(
        prog=PROG,
        description="Train and use pure-Python MLPs and small CNNs on embedded datasets or CSV files.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = Config()
    t = sub.add_parser("train", help="train an MLP or a CNN (defaults: an MLP on the digits set)")
    t.add_argument("--dataset", choices=DATASET_NAMES, default=None, help=f"(default: {d.dataset})")
    _data_flags(t)
    t.add_argument(
        "--model",
        choices=MODELS,
        default=d.model,
        help="mlp: dense layers; cnn: conv blocks over each row as a square image (the 8x8 digits), "
        f"then dense layers (default: {d.model})",
    )
    t.add_argument(
        "--hidden",
        type=hidden_sizes,
        default=d.hidden,
        help=f"hidden dense layer sizes, e.g. 32,32 (default: {','.join(map(str, d.hidden))})",
    )
    t.add_argument(
        "--channels",
        type=hidden_sizes,
        default=d.channels,
        help="--model cnn: the channels of each conv block (3x3 conv, activation, 2x2 max pool), "
        f"e.g. 8,16 (default: {','.join(map(str, d.channels))})",
    )
    t.add_argument(
        "--activation", choices=ACTIVATIONS, default=d.activation, help=f"(default: {d.activation})"
    )
    t.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"(default: {d.epochs}; when resuming, the checkpoint's, and it must exceed the epochs done)",
    )
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default: {d.batch_size})")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help=f"(default: {d.optimizer})")
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="(default: 0.1 for sgd and momentum, 0.01 for adam and adamw; 0.003 for adam and "
        "adamw with --model cnn)",
    )
    t.add_argument(
        "--momentum", type=float, default=None, help="(default: 0, plain, for sgd; 0.9 for momentum)"
    )
    t.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"(default: {d.weight_decay})")
    t.add_argument("--dropout", type=float, default=d.dropout, help=f"(default: {d.dropout})")
    t.add_argument(
        "--clip", type=float, default=None, help="clip gradients to this global norm (default: off)"
    )
    t.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help=f"(default: {d.schedule})")
    t.add_argument(
        "--patience",
        type=int,
        default=None,
        help="stop after this many epochs without a better validation loss (default: off)",
    )
    t.add_argument("--seed", type=int, default=d.seed, help=f"(default: {d.seed})")
    add_parallel_flags(t)
    t.add_argument(
        "--out",
        default=None,
        help="folder for checkpoint.json, metrics.csv and plots (default: none; when resuming, "
        "the checkpoint's folder)",
    )
    t.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue a run from its checkpoint")
    t.add_argument("--plot", action="store_true", help="save training curves (needs matplotlib)")
    t.add_argument("--quiet", action="store_true", help="print only the final summary")
    t.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    t.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the training step with tape.jit: the same numbers, bit for bit, faster "
        "(default: on; --no-compile records and sweeps the tape every step)",
    )
    add_sweep_parser(sub)
    for name, about in (
        ("evaluate", "loss, accuracy and confusion matrix of a checkpoint"),
        ("predict", "class probabilities for one input"),
        ("export", "write a checkpoint's model as safetensors for PyTorch and print the code loading it"),
    ):
        c = sub.add_parser(name, help=about)
        c.add_argument("checkpoint")
        if name == "evaluate":
            c.add_argument(
                "--dataset",
                choices=DATASET_NAMES,
                default=None,
                help="evaluate on all of this dataset (default: the run's test split)",
            )
            c.add_argument(
                "--data",
                default=None,
                metavar="FILE.csv",
                help="evaluate on all of this CSV file, with the run's columns (for a run trained on --data)",
            )
        elif name == "export":
            c.add_argument("out", metavar="OUT.safetensors", help="the file to write (atomically)")
            c.add_argument(
                "--dtype",
                choices=("F64", "F32"),
                default="F64",
                help="the tensors' type: float64 (exact) or float32",
            )
        else:
            given = c.add_mutually_exclusive_group(required=True)
            given.add_argument("--input", help='comma-separated features, e.g. "0.5,-1.2"')
            given.add_argument(
                "--input-file",
                metavar="FILE.csv",
                help="predict every row of this CSV file (a header naming the features; a target "
                "column is ignored); writes CSV to stdout",
            )
        c.add_argument(
            "--activation",
            choices=ACTIVATIONS,
            default=None,
            help="for a checkpoint saved by the library's save_checkpoint, which does not store it "
            "(default: relu); a `fnn train` checkpoint uses its own",
        )
    return p


def _data_flags(t: argparse.ArgumentParser) -> None:
    """``fnn train``'s flags for training on a CSV file."""
    t.add_argument(
        "--data",
        default=None,
        metavar="FILE.csv",
        help="train on this CSV file: a header line, numeric features, one target column "
        "(instead of --dataset)",
    )
    t.add_argument("--target", default=None, metavar="COLUMN", help="the target column (default: the last)")
    t.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="(default: inferred from the target column: regression if it holds numbers that are "
        "not all integers, else classification)",
    )


def add_parallel_flags(p: argparse.ArgumentParser) -> None:
    """``--shards``, ``--workers``, ``--scheduler``: in how many pieces, and where, gradients are computed."""
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="split each batch's gradient into this many shards; saved in the run, so the result "
        "depends on it and not on the workers (default: --workers when given, else 1)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="compute the shards in this many local processes",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="compute the shards on the Dask cluster of this scheduler, e.g. tcp://127.0.0.1:8786 "
        "(needs the distributed extra)",
    )


def check_workers(args: argparse.Namespace) -> None:
    """Raise UsageError for a --workers count out of range, or --workers with --scheduler."""
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be in [1, {MAX_WORKERS}], got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        raise UsageError("--workers starts local workers and --scheduler uses a Dask cluster: choose one")


def add_sweep_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The ``sweep`` subcommand's own flags; every other flag is a ``fnn train`` flag to sweep."""
    s = sub.add_parser(
        "sweep",
        allow_abbrev=False,  # --seed is a train flag to sweep, not --seeds
        help="train a grid of configs: any train flag may list values separated by |",
        description="Train every combination of the given fnn train flags, whose values may be "
        "lists separated by | (e.g. --lr '0.01|0.1' --hidden '16|32,32').",
    )
    s.add_argument(
        "--out", required=True, metavar="DIR", help="folder for one run folder per config and summary.csv"
    )
    s.add_argument(
        "--seeds", type=int, default=None, metavar="N", help="train each config with seeds 0 .. N-1"
    )
    s.add_argument("--sample", type=int, default=None, metavar="K", help="train a random subset of K configs")
    s.add_argument(
        "--sample-seed", type=int, default=0, metavar="S", help="the seed of --sample's choice (default: 0)"
    )
    s.add_argument(
        "--workers", type=int, default=None, metavar="N", help="run the configs in this many local processes"
    )
    s.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the configs on this Dask scheduler's cluster",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The training config the flags describe (a data file's fields are filled in by ``train``)."""
    d = Config()
    if args.model != "cnn" and tuple(args.channels) != d.channels:
        raise UsageError("--channels sizes the conv blocks of --model cnn; add --model cnn")
    config = Config(
        dataset=args.dataset or d.dataset,
        hidden=tuple(args.hidden),
        activation=args.activation,
        model=args.model,
        channels=tuple(args.channels),
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
        shards=args.shards if args.shards is not None else (args.workers or 1),
        compile=args.compile if getattr(args, "compile", None) is not None else d.compile,
    )
    validate(config)
    return config


def join_input_values(argv: list[str]) -> list[str]:
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
