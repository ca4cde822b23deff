"""Checkpoints: parameters (and optimizer state) as JSON, written atomically, checked on load.

``state_dict(params)`` gives a plain dict of named nested lists, as ``torch``'s
``state_dict`` names tensors; ``load_state_dict`` turns it back into parameters.
A checkpoint file wraps params, optimizer state and metadata with a format id, a
version and the SHA-256 of its payload. Saving writes a temporary file beside the
target, flushes and fsyncs it and atomically replaces the target, so a crash
leaves the old checkpoint or the new one, never half of one (and a temporary file
that :func:`remove_stale_temporaries` can tell from anyone else's). Floats round-trip
bit-exactly (JSON holds their shortest round-tripping ``repr``). Never pickle.

The checksum detects damage, not tampering: whoever edits a file can recompute it.
Loading therefore checks everything behind it too: only regular files of at most
``max_bytes`` are read, a JSON object may not give a key twice, no integer may be too
large for a float, params must be finite numbers (of ``like``'s shapes, if given) and
an optimizer state must fit them (:func:`optimizers.check_state`).

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
import errno
import functools
import hashlib
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias, TypeVar, cast

from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn.files import (
    FileRefused,
    check_max_bytes,
    no_duplicate_keys,
    open_regular,
    read_regular_file,
    short,
)
from functional_nn.files import reason as _reason
from optimizers.state import (
    OptState,
    Shape,
    StateError,
    array_shape,
    combine_shapes,
    state_from_json,
    state_to_json,
)
from optimizers.validation import check_state
from tape.tree import TreeError, named_parameters, tree_flatten, tree_structure, tree_unflatten

FORMAT = "functional-nn-checkpoint"
VERSION = 1

MAX_CHECKPOINT_BYTES = 256 * 2**20
"""The largest checkpoint file (256 MiB) that :func:`load_checkpoint` reads and
:func:`save_checkpoint` writes unless given another ``max_bytes``: about three million
parameters with their Adam moments."""

STALE_AFTER_SECONDS = 60.0
"""How long a temporary file of this library must have gone unmodified before
:func:`remove_stale_temporaries` takes it for one left behind by a crash."""

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
    try:
        value = float(tree)
    except OverflowError as error:
        raise CheckpointError(f"parameter {name!r} holds an integer too large for a float") from error
    if not math.isfinite(value):
        raise CheckpointError(f"parameter {name!r} holds {value!r}; refusing to save non-finite values")
    return value


def _holds_map(tree: object) -> bool:
    if isinstance(tree, (PMap, dict)):
        return True
    return isinstance(tree, (PVector, list, tuple)) and any(_holds_map(item) for item in tree)


def _expand(tree: object, name: str, out: list[tuple[str, object]]) -> None:
    """Split a leafless subtree at its map keys, so that no parameter holds a map."""
    if isinstance(tree, (PMap, dict)):
        for key in sorted(tree, key=str):
            _expand(tree[key], f"{name}.{key}" if name else str(key), out)
    elif isinstance(tree, (PVector, list, tuple)) and _holds_map(tree):
        for index, item in enumerate(tree):
            _expand(item, f"{name}.{index}" if name else str(index), out)
    else:
        out.append((name, tree))


def _parameters(params: object) -> list[tuple[str, object]]:
    """:func:`tape.tree.named_parameters`, with subtrees that hold maps but no floats split further.

    ``named_parameters`` keeps such a subtree (``pmap()``, ``{"w": []}``) whole; as a
    state dict value it must be nested lists, so its maps become names (an empty map
    holds nothing and gets none).
    """
    out: list[tuple[str, object]] = []
    for name, tree in named_parameters(params):
        _expand(tree, name, out)
    return out


def state_dict(params: object) -> StateDict:
    """Parameters as ``{name: nested lists of floats}``, names as :func:`tape.tree.named_parameters`.

    Raises :class:`CheckpointError` for a leaf that is not a finite number, or for two
    parameters that would share a name (a map key holding a dot, say).
    """
    out: StateDict = {}
    for name, tree in _parameters(params):
        if name in out:
            raise CheckpointError(f"two parameters share the name {name!r} (a map key with a '.' in it?)")
        out[name] = _plain(tree, name)
    return out


def _shape(value: object, name: str) -> Shape:
    """The shape of a checkpoint's nested lists of finite numbers, or a CheckpointError."""
    if isinstance(value, (list, PVector, tuple)):
        return combine_shapes([_shape(item, name) for item in value])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"parameter {name!r} holds a {type(value).__name__}, not a number")
    try:
        finite = math.isfinite(value)
    except OverflowError as error:
        raise CheckpointError(f"parameter {name!r} holds an integer too large for a float") from error
    if not finite:
        raise CheckpointError(f"parameter {name!r} holds the non-finite value {value!r}")
    return ()


"""A name part ``state_dict`` writes for an index: not ``"00"``, ``"+1"`` or a non-ASCII digit."""


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _from_names(flat: Mapping[str, object]) -> Params:
    """Rebuild a tree from dotted names: index parts give vectors, other parts key maps."""
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

    def freeze(node: object, path: str) -> object:
        if isinstance(node, dict):
            keys = list(node)
            if keys and sorted(keys) == sorted(str(i) for i in range(len(keys))):
                return pvector([freeze(node[str(i)], _join(path, str(i))) for i in range(len(keys))])
            return pmap({k: freeze(v, _join(path, k)) for k, v in node.items()})
        if isinstance(node, (list, tuple, PVector)):
            return pvector([freeze(item, path) for item in node])
        return float(cast(float, node))

    out = freeze(root, "")
    if not isinstance(out, PMap):
        raise CheckpointError("a state dict's names must start with a map key, not an index")
    return out


def load_state_dict(state: Mapping[str, object], like: T | None = None) -> T | Params:
    """Parameters from a state dict; with ``like``, checked against its names and shapes.

    With ``like`` the result has exactly ``like``'s structure and container types
    (``like``'s own leaf values are ignored); missing, unexpected or differently shaped
    parameters raise :class:`CheckpointError` naming them. Without it, dotted names are
    rebuilt as maps and vectors: parts that number their level ``0, 1, ..., n-1`` make a
    ``PVector``, any other parts (``1, 5, 7``, as ``nn.Sequential`` numbers the layers
    that have parameters) ``PMap`` keys. Nothing is returned unless all is well.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"a state dict is a mapping of names, not a {type(state).__name__}")
    try:
        return _load_state_dict(state, like)
    except RecursionError as error:
        raise CheckpointError("the state dict is nested too deeply to be parameters") from error


def _load_state_dict(state: Mapping[str, object], like: T | None) -> T | Params:
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"parameter names are strings, not {_short(name)}")
        _shape(value, name)
    if like is None:
        return _from_names(state)
    expected = _parameters(like)
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
        want, got = array_shape(tree), _shape(state[name], name)  # like's leaves may be anything, NaN too
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


_short = short


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _check_text(text: str, where: str) -> None:
    # Lone surrogates survive JSON as escapes, but a high one followed by a low one is read back
    # as the single character they encode in UTF-16: the string would not come back as it was.
    if _SURROGATE_PAIR.search(text):
        raise CheckpointError(
            f"{where} holds a pair of lone surrogates, which JSON reads back as one character"
        )


def _check_json(value: object, where: str) -> None:
    """Raise CheckpointError naming the first place ``value`` would not come back from JSON as it is."""
    if isinstance(value, str):
        _check_text(value, where)
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        try:
            repr(value)  # what json.dumps writes
        except ValueError as error:  # beyond sys.get_int_max_str_digits(): json.loads would refuse it
            raise CheckpointError(f"{where} is an integer with too many digits for JSON") from error
        if abs(value) > sys.float_info.max:
            raise CheckpointError(f"{where} is an integer too large for a float, which checkpoints refuse")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CheckpointError(f"{where} is {value!r}; JSON holds only finite numbers")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            if type(item) is not float or not math.isfinite(item):  # finite floats: the common case
                _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{where} has the key {_short(key)}; JSON object keys are strings")
            _check_text(key, f"a key in {where}")
            _check_json(item, f"{where}[{_short(key)}]")
        return
    hint = "; use a list" if isinstance(value, tuple) else ""
    raise CheckpointError(
        f"{where} is a {type(value).__name__}, which JSON cannot hold exactly "
        f"(use None, bool, int, float, str, list or dict){hint}"
    )


_TEMPORARY = re.compile(r"\.checkpoint-([0-9a-f]{8})([0-9a-f]{8})\.tmp\Z")
"""The name of a temporary file of :func:`write_atomically`: 8 random hex digits, then its tag."""

_TAGGED_BYTES = 64


def _tag(nonce: str, head: bytes) -> str:
    """8 hex digits that tie a temporary file's name (``nonce``) to the first bytes it holds."""
    digest = hashlib.blake2b(head[:_TAGGED_BYTES], digest_size=4, key=nonce.encode(), person=b"fnn-temporary")
    return digest.hexdigest()


def _create_temporary(folder: str, data: bytes) -> tuple[int, str]:
    """A new file beside the target, named for :func:`remove_stale_temporaries` to recognise.

    Unlike ``mkstemp`` (mode 0600) its mode follows the umask.
    """
    for _ in range(100):
        nonce = secrets.token_hex(4)
        temporary = os.path.join(folder, f".checkpoint-{nonce}{_tag(nonce, data)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")  # pragma: no cover


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a fsynced temporary file in the same
    folder, atomically renamed over ``path``; the folder is fsynced too.

    The temporary file's name carries a digest of the first bytes of ``data``, so that
    :func:`remove_stale_temporaries` can tell it from other files after a crash."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = _create_temporary(folder, data)
    except OSError as error:
        reason = _reason(error)
        raise CheckpointError(f"cannot write {path}: no file can be made in {folder}: {reason}") from error
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(handle, view)
                if written <= 0:  # never loop forever on a device that takes nothing
                    raise OSError(errno.EIO, "the file system accepted no bytes")
                view = view[written:]
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise CheckpointError(f"cannot write {path}: {_reason(error)}") from error
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


def _read_head(path: str, size: int) -> bytes:
    """The first ``size`` bytes of the regular file at ``path`` (not following a symbolic link)."""
    handle, _ = open_regular(path, follow=False)
    try:
        return os.read(handle, size)
    finally:
        os.close(handle)


def remove_stale_temporaries(
    folder: str | os.PathLike[str], *, older_than: float = STALE_AFTER_SECONDS
) -> list[str]:
    """Remove the temporary files a crash in :func:`write_atomically` left in ``folder``.

    A file is removed only if this library can tell that it wrote it: the name is one
    ``write_atomically`` gives (``.checkpoint-`` and 16 hex digits, ``.tmp``), whose
    last 8 digits are a keyed digest of the first 64 bytes it was to hold, and the file
    does start with those bytes; it is a regular file; and it has not been modified
    for ``older_than`` seconds, which leaves alone a save that another process is
    making right now. Anything else is kept: a user's ``.checkpoint-mine.tmp``, a file
    that merely looks like ours, and a temporary file cut short within its first 64
    bytes (it cannot be told from the others). Returns the paths removed, sorted; a
    file that cannot be read or removed is left alone. Call it before writing into a
    folder that a crashed run may have written to.
    """
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or not older_than >= 0:
        raise ValueError(f"older_than must be a number of seconds >= 0, got {older_than!r}")
    where = os.fspath(folder)
    try:
        names = sorted(os.listdir(where))
    except OSError as error:
        raise CheckpointError(f"cannot list {where}: {_reason(error)}") from error
    now = time.time()
    removed: list[str] = []
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None:
            continue
        path = os.path.join(where, name)
        try:
            if now - os.lstat(path).st_mtime < older_than:
                continue
            if _tag(match[1], _read_head(path, _TAGGED_BYTES)) != match[2]:
                continue
            os.unlink(path)
        except (OSError, FileRefused):
            continue
        removed.append(path)
    return removed


def _check_size(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise CheckpointError(
            f"{what} is {size} bytes, over the limit of {max_bytes} bytes "
            "(pass a larger max_bytes to allow it)"
        )


def _check_limit(max_bytes: int) -> None:
    check_max_bytes(max_bytes)


def save_checkpoint(
    path: str | os.PathLike[str],
    params: object,
    opt_state: OptState | None = None,
    metadata: Mapping[str, Json] | None = None,
    *,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> None:
    """Write params (with optional optimizer state and JSON metadata) to ``path`` atomically.

    Raises :class:`CheckpointError`, leaving any earlier file at ``path`` untouched, for
    a non-finite parameter, a state or metadata value JSON cannot hold exactly (NaN, a
    tuple, a non-``str`` key, an integer too large for a float, ...), a file that would
    be larger than ``max_bytes`` (which :func:`load_checkpoint` would refuse), or a
    folder that cannot be written.
    """
    _check_limit(max_bytes)
    try:
        params_json = state_dict(params)
        for name in params_json:
            _check_text(name, f"the parameter name {_short(name)}")
        state_json = None if opt_state is None else state_to_json(opt_state)
        _check_json(state_json, "opt_state")
        metadata_json = dict(metadata or {})
        _check_json(metadata_json, "metadata")
        payload: dict[str, object] = {
            "params": params_json,
            "opt_state": state_json,
            "metadata": metadata_json,
        }
        body = _canonical(payload)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot save this checkpoint: {error}") from error
    except RecursionError as error:
        raise CheckpointError("cannot save this checkpoint: it is nested too deeply") from error
    document = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": hashlib.sha256(body).hexdigest(),
        "payload": payload,
    }
    data = _canonical(document) + b"\n"
    _check_size(len(data), max_bytes, f"the checkpoint for {os.fspath(path)}")
    write_atomically(os.fspath(path), data)


def _reject_constant(name: str) -> float:
    raise CheckpointError(f"the checkpoint holds {name}, which is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise CheckpointError(f"the checkpoint holds the number {_short(text, 40)}, too large for a float")
    return value


_FLOAT_DIGITS = len(str(int(sys.float_info.max)))
"""How many digits the largest finite float has as an integer (309)."""


class _TooLarge:
    """Stands, in a file just parsed, for an integer too large for a float (code reading it may convert)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_int(text: str, too_large: list[_TooLarge]) -> int | _TooLarge:
    """An integer of the file; one too large for a float is set aside in ``too_large``."""
    if len(text.lstrip("-")) <= _FLOAT_DIGITS:
        value = int(text)
        if abs(value) <= sys.float_info.max:
            return value
    too_large.append(_TooLarge(text))
    return too_large[-1]


def _find_too_large(value: object, where: str) -> tuple[str, _TooLarge] | None:
    """Where the first :class:`_TooLarge` in a parsed document is, and it."""
    if isinstance(value, _TooLarge):
        return where, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if not isinstance(item, (float, str)):
            found = _find_too_large(item, f"{where}[{_short(key)}]")
            if found is not None:
                return found
    return None


def _refuse_too_large(path: str, document: object, first: _TooLarge) -> None:
    try:
        found = _find_too_large(document, "")
    except RecursionError:  # pragma: no cover - json.loads refuses deeper nesting first
        found = None
    where, value = found if found is not None else ("", first)
    raise CheckpointError(
        f"{path} is not a valid checkpoint: {f'at {where} ' if where else ''}it holds the integer "
        f"{_short(value.text, 40)}, too large for a float"
    )


_unique_keys = no_duplicate_keys(
    lambda key: CheckpointError(f"the checkpoint has the key {key} twice in one object")
)


def load_checkpoint(
    path: str | os.PathLike[str],
    like: object | None = None,
    *,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
    check_opt_state: bool = True,
) -> Checkpoint:
    """Read and verify a checkpoint; with ``like``, params get its structure and shapes checked.

    Any problem raises :class:`CheckpointError` and returns nothing partial: a path
    that is not a regular file (a folder, a FIFO, a device), a file over ``max_bytes``
    (:data:`MAX_CHECKPOINT_BYTES` by default), a truncated or corrupt file, a key twice
    in one JSON object, an integer too large for a float anywhere, another format or
    version, a wrong checksum, wrong shapes. With ``check_opt_state`` (the default) an
    optimizer state must also fit the params just loaded, entry by entry, as
    :func:`optimizers.check_state` checks; pass ``False`` to read a state that an
    optimizer of your own made, unchecked.

    The SHA-256 detects damage (a truncated or corrupted file), not tampering: anyone
    who edits a file can recompute it. What the checks above refuse is refused
    whatever the checksum says.
    """
    _check_limit(max_bytes)
    where = os.fspath(path)
    try:
        raw = read_regular_file(where, max_bytes)
    except FileRefused as error:
        raise CheckpointError(str(error)) from error
    too_large: list[_TooLarge] = []
    try:
        document = json.loads(
            raw,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=functools.partial(_parse_int, too_large=too_large),
            object_pairs_hook=_unique_keys,
        )
    except CheckpointError as error:
        raise CheckpointError(f"{where} is not a valid checkpoint: {error}") from error
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{where} is not a valid checkpoint (not JSON: {error})") from error
    if too_large:
        _refuse_too_large(where, document, too_large[0])
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT} file")
    version = document.get("version")
    if type(version) is not int or version != VERSION:
        raise CheckpointError(
            f"{where} has checkpoint format version {_short(version)}; this library reads {VERSION}"
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
            raise CheckpointError("opt_state is not an object")
        opt_state = None if raw_state is None else state_from_json(raw_state)
        if opt_state is not None and check_opt_state:
            check_state(opt_state, params)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from error
    except StateError as error:
        raise CheckpointError(f"{where}: optimizer state refused: {error}") from error
    except (ValueError, TypeError, RecursionError) as error:
        raise CheckpointError(f"{where} is damaged: {error}") from error
    return Checkpoint(params, opt_state, metadata)
