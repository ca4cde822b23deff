"""Parameters as safetensors files, the tensor format PyTorch and its ecosystem read.

A file is an 8-byte little-endian header length ``N``, ``N`` bytes of UTF-8 JSON
(padded with spaces so that the data starts 8-byte aligned) mapping each tensor's
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` plus an optional
``"__metadata__"`` object of strings, then the data: each tensor's values in
little-endian, row-major order, at its offsets from the start of the data.

Tensors are named by the parameters' dotted names (``layers.0.weight``, as
:func:`functional_nn.serialization.state_dict` names them) unless ``names`` maps
them to others (see :func:`functional_nn.export.torch_sequential_names`). Saving
goes through :func:`functional_nn.serialization.write_atomically`. Loading treats
the file as hostile: only a regular file of at most ``max_bytes`` is read, and a
header that is not a JSON object with unique keys, an unknown dtype, a shape or
offsets that do not fit each other and the file exactly, a non-string metadata
value or a non-finite value is a :class:`CheckpointError` naming the problem.

>>> import tempfile, os
>>> from pyrsistent import pmap, pvector
>>> params = pmap({"layers": pvector([pmap({"weight": pvector([pvector([0.1, -2.0])]),
...                                         "bias": pvector([0.3])})])})
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> save_safetensors(path, params, metadata={"note": "tiny"})
>>> load_safetensors(path, like=params).params == params
True
>>> loaded = load_safetensors(path)
>>> loaded.params, loaded.metadata
({'layers.0.bias': (0.3,), 'layers.0.weight': ((0.1, -2.0),)}, {'note': 'tiny'})
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar, cast, overload

from functional_nn.files import FileRefused, check_max_bytes, no_duplicate_keys, read_regular_file, short
from functional_nn.serialization import (
    CheckpointError,
    Nested,
    load_state_dict,
    state_dict,
    write_atomically,
)

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_SAFETENSORS_BYTES",
    "Dtype",
    "SafetensorsFile",
    "Tensor",
    "load_safetensors",
    "save_safetensors",
]

Dtype: TypeAlias = Literal["F64", "F32"]
"""The dtypes :func:`save_safetensors` writes: float64 (exact) or float32 (rounded)."""

Tensor: TypeAlias = "float | tuple[Tensor, ...]"
"""A tensor read without ``like``: a float (shape ``[]``) or nested tuples, row-major."""

MAX_SAFETENSORS_BYTES = 256 * 2**20
"""The largest file (256 MiB) :func:`load_safetensors` reads unless given another ``max_bytes``."""

MAX_HEADER_BYTES = 100_000_000
"""The longest JSON header read or written (the limit of the reference implementation)."""

MAX_DIMENSIONS = 64
"""The most dimensions a tensor may have."""

_MAX_EMPTY_ROWS = 2**16
"""The most rows an empty tensor may have before its zero dimension (shape ``[10**18, 0]``)."""

T = TypeVar("T")
P = TypeVar("P", covariant=True)

_WRITE: dict[str, str] = {"F64": "d", "F32": "f"}
_READ: dict[str, tuple[str, int]] = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": ("f", 2)}
_NOT_FLOATS = frozenset(
    {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "C64"}
)
_FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_METADATA = "__metadata__"


@dataclass(frozen=True)
class SafetensorsFile(Generic[P]):
    """What :func:`load_safetensors` read: the tensors (as ``like``, or by name) and the metadata."""

    params: P
    metadata: dict[str, str]


# --- writing ---------------------------------------------------------------------------


def _check_text(text: object, where: str) -> str:
    if not isinstance(text, str):
        raise CheckpointError(f"{where} is a {type(text).__name__}, not a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise CheckpointError(
            f"{where} {short(text)} holds a lone surrogate, which UTF-8 cannot hold"
        ) from error
    return text


def _check_names(names: Mapping[str, str]) -> dict[str, str]:
    """``names`` (parameter name -> tensor name) as a dict, if it is one-to-one and all strings."""
    if not isinstance(names, Mapping):
        raise CheckpointError(
            f"names must map parameter names to tensor names, not be a {type(names).__name__}"
        )
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, renamed in names.items():
        _check_text(name, "a parameter name in names")
        _check_text(renamed, f"the tensor name for {name!r}")
        if renamed == _METADATA:
            raise CheckpointError(f"the tensor name {_METADATA!r} (for {name!r}) is reserved for metadata")
        if renamed in seen:
            raise CheckpointError(
                f"names gives {seen[renamed]!r} and {name!r} the same tensor name {renamed!r}"
            )
        seen[renamed] = name
        out[name] = renamed
    return out


def _misfit(what: str, want: Sequence[str], have: Sequence[str]) -> CheckpointError:
    missing = [name for name in want if name not in set(have)]
    unexpected = sorted(set(have) - set(want))
    return CheckpointError(
        f"{what}: missing {short(missing, 200) if missing else 'nothing'}, "
        f"unexpected {short(unexpected, 200) if unexpected else 'nothing'}"
    )


def _flatten(value: Nested, name: str) -> tuple[list[int], list[float]]:
    """The shape and row-major values of a rectangular nested list (a ragged one is an error)."""
    shape: list[int] = []
    level: list[Nested] = [value]
    while level and isinstance(level[0], list):
        width = len(level[0])
        if any(not isinstance(item, list) or len(item) != width for item in level):
            raise CheckpointError(f"parameter {name!r} is ragged (rows of different lengths), not a tensor")
        shape.append(width)
        level = [item for row in cast("list[list[Nested]]", level) for item in row]
    if any(isinstance(item, list) for item in level):
        raise CheckpointError(f"parameter {name!r} is ragged (rows of different lengths), not a tensor")
    return shape, cast("list[float]", level)


def _pack(values: list[float], dtype: str, name: str) -> bytes:
    code = _WRITE[dtype]
    try:
        return struct.pack(f"<{len(values)}{code}", *values)
    except OverflowError:
        index, value = next((i, x) for i, x in enumerate(values) if _overflows(x))
        raise CheckpointError(
            f"parameter {name!r} holds {value!r} at element {index}, outside the range of {dtype} "
            f"(largest {_FLOAT32_MAX!r}); save it as F64"
        ) from None


def _overflows(value: float) -> bool:
    try:
        struct.pack("<f", value)
    except OverflowError:
        return True
    return False


def save_safetensors(
    path: str | os.PathLike[str],
    params: object,
    *,
    dtype: Dtype = "F64",
    metadata: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    """Write every parameter of ``params`` as a tensor of a safetensors file at ``path``, atomically.

    Tensors are named as :func:`functional_nn.serialization.state_dict` names the
    parameters, or by ``names`` (parameter name -> tensor name, covering every
    parameter). ``dtype`` ``"F64"`` keeps every float exactly; ``"F32"`` rounds each to
    the nearest float32. ``metadata`` (strings to strings) goes into the header.

    Raises ValueError for an unknown ``dtype``, and :class:`CheckpointError` (leaving
    any earlier file at ``path`` untouched) for a non-finite or ragged parameter, a
    value outside the float32 range when saving F32, ``names`` that do not fit, a
    non-string metadata entry or a folder that cannot be written.
    """
    if dtype not in _WRITE:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, _WRITE))}, not {short(dtype)}")
    tensors = state_dict(params)
    renamed = {name: name for name in tensors} if names is None else _check_names(names)
    if set(renamed) != set(tensors):
        raise _misfit("names do not fit the parameters", list(tensors), list(renamed))
    header: dict[str, object] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise CheckpointError(f"metadata must map str to str, not be a {type(metadata).__name__}")
        header[_METADATA] = {
            _check_text(key, "a metadata key"): _check_text(value, f"metadata[{short(key)}]")
            for key, value in metadata.items()
        }
    chunks: list[bytes] = []
    offset = 0
    for name, value in tensors.items():
        tensor_name = _check_text(renamed[name], "a parameter name")
        if tensor_name == _METADATA:
            raise CheckpointError(
                f"the parameter name {_METADATA!r} is reserved for metadata; pass names=..."
            )
        shape, values = _flatten(value, name)
        data = _pack(values, dtype, name)
        header[tensor_name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:
        raise CheckpointError(f"the header would be {len(text)} bytes, over the limit of {MAX_HEADER_BYTES}")
    write_atomically(os.fspath(path), struct.pack("<Q", len(text)) + text + b"".join(chunks))


# --- reading ---------------------------------------------------------------------------


def _read_regular(where: str, max_bytes: int) -> bytes:
    try:
        return read_regular_file(where, max_bytes)
    except FileRefused as error:
        raise CheckpointError(str(error)) from error


_unique_keys = no_duplicate_keys(
    lambda key: CheckpointError(f"the header gives the key {key} twice in one object")
)


def _reject_constant(name: str) -> object:
    raise CheckpointError(f"the header holds {name}, which JSON does not allow")


def _is_int(value: object) -> bool:
    return type(value) is int


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _entry(name: str, info: object) -> _Entry:
    where = f"tensor {short(name)}"
    if not isinstance(info, dict) or set(info) != _ENTRY_KEYS:
        found = sorted(info) if isinstance(info, dict) else type(info).__name__
        raise CheckpointError(
            f"{where} must be an object of dtype, shape and data_offsets, not {short(found)}"
        )
    dtype = info["dtype"]
    if not isinstance(dtype, str) or dtype not in _READ:
        known = (
            "holds no floats (this library reads F64, F32, F16 and BF16)"
            if isinstance(dtype, str) and dtype in _NOT_FLOATS
            else "is unknown"
        )
        raise CheckpointError(f"{where} has the dtype {short(dtype)}, which {known}")
    shape = info["shape"]
    if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
        raise CheckpointError(f"{where} has the shape {short(shape)}, not a list of integers >= 0")
    if len(shape) > MAX_DIMENSIONS:
        raise CheckpointError(f"{where} has {len(shape)} dimensions, more than {MAX_DIMENSIONS}")
    if 0 in shape and math.prod(shape[: shape.index(0)]) > _MAX_EMPTY_ROWS:
        raise CheckpointError(f"{where} is empty but has more than {_MAX_EMPTY_ROWS} rows: {short(shape)}")
    offsets = info["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(n) for n in offsets)):
        raise CheckpointError(f"{where} has the data_offsets {short(offsets)}, not a list of two integers")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise CheckpointError(f"{where} has the data_offsets {short(offsets)}; need 0 <= begin <= end")
    size = math.prod(shape) * _READ[dtype][1]
    if end - begin != size:
        raise CheckpointError(
            f"{where} of dtype {dtype} and shape {shape} needs {size} bytes, but its data_offsets "
            f"{short(offsets)} span {end - begin}"
        )
    return _Entry(name, dtype, tuple(shape), begin, end)


def _parse_header(raw: bytes) -> tuple[list[_Entry], dict[str, str], int]:
    """The tensors a file's header describes, its metadata and where its data starts; checked."""
    if len(raw) < 8:
        raise CheckpointError(f"it holds {len(raw)} bytes, fewer than the 8 of the header length")
    (length,) = struct.unpack_from("<Q", raw)
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(f"its header length {length} is over the limit of {MAX_HEADER_BYTES} bytes")
    if length > len(raw) - 8:
        raise CheckpointError(f"its header length {length} runs past the end of the file ({len(raw)} bytes)")
    head = raw[8 : 8 + length]
    if not head.startswith(b"{"):
        raise CheckpointError("its header does not start with '{'")
    try:
        header = json.loads(
            head.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_reject_constant
        )
    except CheckpointError:
        raise
    except UnicodeDecodeError as error:
        raise CheckpointError(
            f"its header is not UTF-8 ({error.reason} at byte {8 + error.start})"
        ) from error
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"its header is not JSON ({short(str(error), 120)})") from error
    if not isinstance(header, dict):  # pragma: no cover - it starts with '{' and parsed
        raise CheckpointError("its header is not a JSON object")
    raw_metadata = header.pop(_METADATA, {})
    if not isinstance(raw_metadata, dict) or not all(isinstance(v, str) for v in raw_metadata.values()):
        raise CheckpointError(f"its {_METADATA} must be an object of strings, not {short(raw_metadata)}")
    entries = [_entry(name, info) for name, info in header.items()]
    data_length = len(raw) - 8 - length
    position = 0
    previous = "the start of the data"
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.begin < position:
            raise CheckpointError(f"tensor {short(entry.name)} overlaps {previous}")
        if entry.begin > position:
            raise CheckpointError(
                f"there is a gap of {entry.begin - position} bytes before tensor {short(entry.name)}"
            )
        position = entry.end
        previous = f"tensor {short(entry.name)}"
    if position != data_length:
        raise CheckpointError(
            f"its tensors cover {position} bytes, but the file holds {data_length} bytes of data"
        )
    return entries, cast("dict[str, str]", raw_metadata), 8 + length


def _values(raw: bytes, start: int, entry: _Entry) -> tuple[float, ...]:
    code, size = _READ[entry.dtype]
    data = memoryview(raw)[start + entry.begin : start + entry.end]
    count = len(data) // size
    if entry.dtype == "BF16":  # the top half of a float32
        padded = bytearray(2 * len(data))
        padded[2::4] = data[0::2]
        padded[3::4] = data[1::2]
        data = memoryview(padded)
    values = struct.unpack(f"<{count}{code}", data)
    if not all(map(math.isfinite, values)):
        index, value = next((i, x) for i, x in enumerate(values) if not math.isfinite(x))
        raise CheckpointError(
            f"tensor {short(entry.name)} holds {value!r} at element {index}; only finite values load"
        )
    return values


def _nest(values: tuple[float, ...], shape: tuple[int, ...]) -> Tensor:
    """Row-major ``values`` as nested tuples of ``shape``, built level by level (no recursion)."""
    if not shape:
        return values[0]
    items: tuple[object, ...] = values
    for level in range(len(shape) - 1, 0, -1):
        width = shape[level]
        items = tuple(items[i * width : (i + 1) * width] for i in range(math.prod(shape[:level])))
    return cast(Tensor, items)


def _check_limit(max_bytes: int) -> None:
    check_max_bytes(max_bytes)


@overload
def load_safetensors(
    path: str | os.PathLike[str],
    *,
    like: None = None,
    names: Mapping[str, str] | None = None,
    max_bytes: int = MAX_SAFETENSORS_BYTES,
) -> SafetensorsFile[dict[str, Tensor]]: ...
@overload
def load_safetensors(
    path: str | os.PathLike[str],
    *,
    like: T,
    names: Mapping[str, str] | None = None,
    max_bytes: int = MAX_SAFETENSORS_BYTES,
) -> SafetensorsFile[T]: ...
def load_safetensors(
    path: str | os.PathLike[str],
    *,
    like: object | None = None,
    names: Mapping[str, str] | None = None,
    max_bytes: int = MAX_SAFETENSORS_BYTES,
) -> SafetensorsFile[object]:
    """Read a safetensors file: with ``like``, as parameters of its structure; else by name.

    With ``like`` the params have exactly ``like``'s structure and container types, and
    every parameter must be in the file with ``like``'s shape (as
    :func:`functional_nn.serialization.load_state_dict` checks). Without it they are a
    dict from tensor name to nested tuples of floats (a float for shape ``[]``; dimensions
    after a zero one leave no trace: shape ``[0, 3]`` reads as ``()``).
    ``names`` (parameter name -> tensor name, as given to :func:`save_safetensors`)
    reads tensors saved under other names; the file must hold exactly those tensors.
    F64, F32, F16 and BF16 tensors are read, as floats.

    Raises ValueError for a bad ``max_bytes``, and :class:`CheckpointError`, returning
    nothing partial, for anything wrong with the file: not a regular file, over
    ``max_bytes``, a header that is too long, not a JSON object or gives a key twice,
    an unknown dtype, a bad shape, offsets that overlap, leave gaps, miss the end of
    the file or disagree with shape and dtype, non-string metadata, a NaN or infinite
    value, or tensors that do not fit ``names`` or ``like``.
    """
    _check_limit(max_bytes)
    where = os.fspath(path)
    raw = _read_regular(where, max_bytes)
    try:
        entries, metadata, start = _parse_header(raw)
        tensors = {entry.name: _nest(_values(raw, start, entry), entry.shape) for entry in entries}
    except CheckpointError as error:
        raise CheckpointError(f"{where} is not a valid safetensors file: {error}") from error
    if names is not None:
        renamed = _check_names(names)
        if set(renamed.values()) != set(tensors):
            raise _misfit(f"{where} does not fit names", list(renamed.values()), list(tensors))
        tensors = {name: tensors[tensor_name] for name, tensor_name in renamed.items()}
    if like is None:
        return SafetensorsFile(tensors, metadata)
    try:
        params = load_state_dict(tensors, like)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from error
    return SafetensorsFile(params, metadata)
