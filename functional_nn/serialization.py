"""Checkpoints: parameters (and optimizer state) as JSON, written atomically, checked on load.

``state_dict(params)`` gives a plain dict of named nested lists, as ``torch``'s
``state_dict`` names tensors; ``load_state_dict`` turns it back into parameters.
A checkpoint file wraps params, optimizer state and metadata with a format id, a
version and the SHA-256 of its payload. Saving writes a temporary file beside the
target, flushes and fsyncs it and atomically replaces the target, so a crash
leaves the old checkpoint or the new one, never half of one. Floats round-trip
bit-exactly (JSON holds their shortest round-tripping ``repr``). Never pickle.

>>> import tempfile, os
>>> from pyrsistent import pmap, pvector
>>> params = pmap({"layers": pvector([pmap({"weight": pvector([pvector([0.1, -2.0])]),
...                                         "bias": pvector([0.3])})])})
>>> state_dict(params)
{'layers.0.bias': [0.3], 'layers.0.weight': [[0.1, -2.0]]}
>>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.json")
>>> save_checkpoint(path, params, metadata={"epoch": 3})
>>> loaded = load_checkpoint(path, like=params)
>>> loaded.params == params, loaded.metadata["epoch"]
(True, 3)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias, TypeVar, cast

from pyrsistent import PMap, PVector, pmap, pvector

from optimizers.state import OptState, state_from_json, state_to_json
from tape.tree import TreeError, named_parameters, tree_flatten, tree_structure, tree_unflatten

FORMAT = "functional-nn-checkpoint"
VERSION = 1

T = TypeVar("T")
Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
Nested: TypeAlias = "float | list[Nested]"
StateDict: TypeAlias = "dict[str, Nested]"
Params: TypeAlias = "PMap[str, object]"


class CheckpointError(ValueError):
    """A checkpoint could not be written or read; the message says what is wrong."""


# --- state dicts -----------------------------------------------------------------------


def _plain(tree: object, name: str) -> Nested:
    if isinstance(tree, (PVector, list, tuple)):
        return [_plain(item, name) for item in tree]
    if isinstance(tree, bool) or not isinstance(tree, (int, float)):
        raise CheckpointError(f"parameter {name!r} holds a {type(tree).__name__}, not a float")
    value = float(tree)
    if not math.isfinite(value):
        raise CheckpointError(f"parameter {name!r} holds {value!r}; refusing to save non-finite values")
    return value


def state_dict(params: object) -> StateDict:
    """Parameters as ``{name: nested lists of floats}``, names as :func:`tape.tree.named_parameters`."""
    return {name: _plain(tree, name) for name, tree in named_parameters(params)}


def _shape(value: object, name: str) -> tuple[int, ...]:
    """The rectangular shape of nested lists of numbers, or a CheckpointError."""
    if isinstance(value, (list, PVector, tuple)):
        if not value:
            return (0,)
        inner = [_shape(item, name) for item in value]
        if any(shape != inner[0] for shape in inner):
            raise CheckpointError(f"parameter {name!r} is ragged: rows of shapes {sorted(set(inner))}")
        return (len(value), *inner[0])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"parameter {name!r} holds a {type(value).__name__}, not a number")
    if not math.isfinite(value):
        raise CheckpointError(f"parameter {name!r} holds the non-finite value {value!r}")
    return ()


def _from_names(flat: Mapping[str, object]) -> Params:
    """Rebuild a tree from dotted names: numeric parts index vectors, other parts key maps."""
    root: dict[str, object] = {}
    for name, value in flat.items():
        parts = name.split(".")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CheckpointError(f"parameter {name!r} clashes with another parameter's name")
            node = child
        if parts[-1] in node:
            raise CheckpointError(f"parameter {name!r} clashes with another parameter's name")
        node[parts[-1]] = value

    def freeze(node: object) -> object:
        if isinstance(node, dict):
            keys = list(node)
            if keys and all(k.isdigit() for k in keys):
                if sorted(int(k) for k in keys) != list(range(len(keys))):
                    raise CheckpointError(f"indices {sorted(keys)} are not 0..{len(keys) - 1}")
                return pvector([freeze(node[str(i)]) for i in range(len(keys))])
            return pmap({k: freeze(v) for k, v in node.items()})
        if isinstance(node, list):
            return pvector([freeze(item) for item in node])
        return float(cast(float, node))

    out = freeze(root)
    if not isinstance(out, PMap):
        raise CheckpointError("a state dict's names must start with a map key, not an index")
    return out


def load_state_dict(state: Mapping[str, object], like: T | None = None) -> T | Params:
    """Parameters from a state dict; with ``like``, checked against its names and shapes.

    With ``like`` the result has exactly ``like``'s structure and container types;
    missing, unexpected or differently shaped parameters raise :class:`CheckpointError`
    naming them. Without it, dotted names are rebuilt as maps and vectors.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"a state dict is a mapping of names, not a {type(state).__name__}")
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"parameter names are strings, not {name!r}")
        _shape(value, name)
    if like is None:
        return _from_names(state)
    expected = named_parameters(like)
    names = [name for name, _ in expected]
    missing = [name for name in names if name not in state]
    unexpected = sorted(set(state) - set(names))
    if missing or unexpected:
        raise CheckpointError(
            f"the checkpoint does not fit the model: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}"
        )
    leaves: list[float] = []
    for name, tree in expected:
        want, got = _shape(tree, name), _shape(state[name], name)
        if want != got:
            raise CheckpointError(
                f"parameter {name!r} has shape {got} in the checkpoint but {want} in the model"
            )
        leaves += [float(x) for x in tree_flatten(_as_lists(state[name]))[0]]
    try:
        return tree_unflatten(tree_structure(like), leaves)
    except TreeError as error:  # pragma: no cover - shapes were checked above
        raise CheckpointError(str(error)) from error


def _as_lists(value: object) -> object:
    if isinstance(value, (list, PVector, tuple)):
        return [_as_lists(item) for item in value]
    return value


# --- checkpoint files ------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds."""

    params: object
    opt_state: OptState | None
    metadata: Mapping[str, Json]


def _canonical(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    except OSError as error:
        raise CheckpointError(f"cannot write a checkpoint in {folder}: {error.strerror}") from error
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise CheckpointError(f"cannot write {path}: {error.strerror}") from error
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def save_checkpoint(
    path: str | os.PathLike[str],
    params: object,
    opt_state: OptState | None = None,
    metadata: Mapping[str, Json] | None = None,
) -> None:
    """Write params (with optional optimizer state and JSON metadata) to ``path`` atomically."""
    try:
        payload: dict[str, object] = {
            "params": state_dict(params),
            "opt_state": None if opt_state is None else state_to_json(opt_state),
            "metadata": dict(metadata or {}),
        }
        body = _canonical(payload)
    except (TypeError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"cannot save this checkpoint: {error}") from error
    document = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": hashlib.sha256(body).hexdigest(),
        "payload": payload,
    }
    _atomic_write(os.fspath(path), _canonical(document) + b"\n")


def _reject_constant(name: str) -> float:
    raise CheckpointError(f"the checkpoint holds {name}, which is not a finite number")


def load_checkpoint(path: str | os.PathLike[str], like: object | None = None) -> Checkpoint:
    """Read and verify a checkpoint; with ``like``, params get its structure and shapes checked.

    Any problem (missing, truncated or corrupt file, other format or version, wrong
    checksum, wrong shapes) raises :class:`CheckpointError` and returns nothing partial.
    """
    where = os.fspath(path)
    try:
        with open(where, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        raise CheckpointError(f"cannot read {where}: {error.strerror}") from error
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except CheckpointError:
        raise
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{where} is not a valid checkpoint (not JSON: {error})") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT} file")
    if document.get("version") != VERSION:
        raise CheckpointError(
            f"{where} has checkpoint format version {document.get('version')!r}; this library reads {VERSION}"
        )
    payload = document.get("payload")
    if not isinstance(payload, dict) or set(payload) != {"params", "opt_state", "metadata"}:
        raise CheckpointError(f"{where} is damaged: its payload is missing or incomplete")
    try:
        body = _canonical(payload)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{where} is damaged: {error}") from error
    if hashlib.sha256(body).hexdigest() != document.get("sha256"):
        raise CheckpointError(f"{where} is damaged: its checksum does not match its contents")
    metadata = payload["metadata"]
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where} is damaged: metadata is not an object")
    try:
        params = load_state_dict(payload["params"], like)
        raw_state = payload["opt_state"]
        if raw_state is not None and not isinstance(raw_state, dict):
            raise CheckpointError(f"{where} is damaged: opt_state is not an object")
        opt_state = None if raw_state is None else state_from_json(raw_state)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from error
    except (ValueError, TypeError, RecursionError) as error:
        raise CheckpointError(f"{where} is damaged: {error}") from error
    return Checkpoint(params, opt_state, metadata)
