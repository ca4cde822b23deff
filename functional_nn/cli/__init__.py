"""The command line: ``python -m functional_nn train | evaluate | predict`` (also ``fnn``).

Every failure a user can cause (a bad flag, an unknown dataset, a checkpoint that
does not fit, an unwritable folder, Ctrl-C, a closed pipe) ends in at most one line
on stderr and a non-zero exit status, never a traceback. This package is the
application: it imports the library (``functional_nn``, ``optimizers``, ``tape``),
and nothing in the library imports it.

- ``config``: the training config and its checks; ``arguments``: the parser;
- ``assembly``: a run's keys, data, model and optimizer from a config;
- ``checkpoints``: the run metadata beside the library's training state, and its versions;
- ``progress``: epoch lines, the progress bar and metrics.csv; ``plot``: training.png;
- ``commands``: ``train``, ``evaluate`` and ``predict`` over :func:`functional_nn.train.fit`;
- ``executors``: the local process pool or Dask cluster of ``--workers`` and ``--scheduler``;
- ``sweep``: ``fnn sweep``, a grid of train runs and its summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from functional_nn.cli.arguments import PROG, join_input_values, parser
from functional_nn.cli.assembly import Setup, build, run_keys
from functional_nn.cli.commands import run_evaluate, run_export, run_predict, run_train
from functional_nn.cli.config import Config, UsageError
from functional_nn.cli.sweep import run_sweep
from functional_nn.serialization import CheckpointError

__all__ = ["PROG", "Config", "Setup", "UsageError", "build", "entry_point", "main", "run_keys"]

BROKEN_PIPE_STATUS = 141
"""The exit status after the reader of stdout went away (128 + SIGPIPE, as a shell reports it)."""


def _silence_stdout() -> None:
    """Point stdout at devnull, so the interpreter's final flush cannot fail on a closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    stream = out or sys.stdout
    commands = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict, "export": run_export}
    try:
        args, extra = parser().parse_known_args(
            join_input_values(list(sys.argv[1:] if argv is None else argv))
        )
        if args.command == "sweep":
            status = run_sweep(args, extra, stream)
        elif extra:
            parser().error(f"unrecognized arguments: {' '.join(extra)}")
        else:
            status = commands[args.command](args, stream)
        stream.flush()
        return status
    except BrokenPipeError:
        if stream is sys.stdout:
            _silence_stdout()
        return BROKEN_PIPE_STATUS
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, CheckpointError, ImportError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: {error.strerror or error}", file=sys.stderr)
        return 2


def entry_point() -> None:
    """The ``fnn`` console script."""
    sys.exit(main())
