"""safetensors files: exact round trips, the real package agrees both ways, and damaged files are refused."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import example, given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn import MLP, CheckpointError, load_safetensors, random, save_safetensors, state_dict
from functional_nn.safetensors import MAX_HEADER_BYTES
from tape.tree import tree_leaves, tree_structure

F32_MAX = float(np.finfo(np.float32).max)
F32_TIE = 3.4028235677973366e38
"""Halfway between float32's largest value and the next power of two: it rounds to inf, not to F32_MAX."""
BELOW_TIE = math.nextafter(F32_TIE, 0.0)

finite = st.floats(allow_nan=False, allow_infinity=False)
in_f32_range = st.floats(min_value=-F32_MAX, max_value=F32_MAX)


def tensors(elements: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    """A float, a vector (maybe empty) or a matrix (maybe with empty rows), as pyrsistent vectors."""
    vector = st.integers(0, 4).flatmap(lambda n: st.lists(elements, min_size=n, max_size=n).map(pvector))
    matrix = st.tuples(st.integers(1, 3), st.integers(0, 3)).flatmap(
        lambda shape: st.lists(
            st.lists(elements, min_size=shape[1], max_size=shape[1]).map(pvector),
            min_size=shape[0],
            max_size=shape[0],
        ).map(pvector)
    )
    return st.one_of(elements, vector, matrix)


def trees(elements: st.SearchStrategy[float] = finite) -> st.SearchStrategy[PMap[str, object]]:
    """Parameter trees: maps of tensors, and vectors of maps of tensors (like an MLP's layers)."""
    names = st.text("abcdefgh_", min_size=1, max_size=6)
    leaf = tensors(elements)
    layers = st.lists(st.dictionaries(names, leaf, min_size=1, max_size=3).map(pmap), min_size=1, max_size=3)
    return st.dictionaries(names, st.one_of(leaf, layers.map(pvector)), min_size=1, max_size=4).map(pmap)


def bits(tree: object) -> list[bytes]:
    return [struct.pack("<d", x) for x in tree_leaves(tree)]


def as_tuples(value: object) -> object:
    return tuple(as_tuples(item) for item in value) if isinstance(value, list) else value


def to_f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def file_of(header: object, data: bytes = b"", *, pad: bool = True) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write(tmp_path: Path, raw: bytes, name: str = "model.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


LAYER = pmap(
    {"weight": pvector([pvector([0.5, -1.25]), pvector([3.0, 1e-300])]), "bias": pvector([0.0, -0.0])}
)
PARAMS = pmap({"layers": pvector([LAYER]), "scale": 2.5})


# --- round trips -----------------------------------------------------------------------


@given(trees())
@example(pmap({"w": pvector([-0.0, 5e-324, 1.7976931348623157e308, -1e-310])}))
@example(pmap({"empty": pvector([]), "rows": pvector([pvector([]), pvector([])])}))
def test_f64_round_trips_bit_exactly(
    tmp_path_factory: pytest.TempPathFactory, params: PMap[str, object]
) -> None:
    path = tmp_path_factory.mktemp("f64") / "params.safetensors"
    save_safetensors(path, params)
    loaded = load_safetensors(path, like=params)
    assert loaded.params == params
    assert bits(loaded.params) == bits(params)
    assert tree_structure(loaded.params) == tree_structure(params)  # the same containers throughout
    flat = load_safetensors(path).params
    assert flat == {name: as_tuples(value) for name, value in state_dict(params).items()}


@given(trees(in_f32_range))
@example(pmap({"w": pvector([F32_MAX, -F32_MAX, 0.1, 1e-46, BELOW_TIE, -BELOW_TIE])}))
def test_f32_round_trips_to_the_nearest_float32(
    tmp_path_factory: pytest.TempPathFactory, params: PMap[str, object]
) -> None:
    path = tmp_path_factory.mktemp("f32") / "params.safetensors"
    save_safetensors(path, params, dtype="F32")
    loaded = load_safetensors(path, like=params).params
    assert bits(loaded) == [struct.pack("<d", to_f32(x)) for x in tree_leaves(params)]
    assert [float(x) for x in np.array(tree_leaves(params), dtype=np.float32)] == tree_leaves(loaded)


def test_the_file_is_laid_out_as_the_format_says(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(path, pmap({"w": pvector([pvector([1.0, 2.0, 3.0])])}), metadata={"epoch": "3"})
    header = b'{"__metadata__":{"epoch":"3"},"w":{"dtype":"F64","shape":[1,3],"data_offsets":[0,24]}}'
    header += b" " * (-len(header) % 8)
    assert path.read_bytes() == struct.pack("<Q", len(header)) + header + struct.pack("<3d", 1.0, 2.0, 3.0)
    assert (8 + len(header)) % 8 == 0


def test_names_rename_the_tensors_both_ways(tmp_path: Path) -> None:
    names = {"layers.0.bias": "0.bias", "layers.0.weight": "0.weight", "scale": "s"}
    path = tmp_path / "renamed.safetensors"
    save_safetensors(path, PARAMS, names=names)
    assert set(load_safetensors(path).params) == {"0.bias", "0.weight", "s"}
    assert load_safetensors(path, like=PARAMS, names=names).params == PARAMS
    assert load_safetensors(path, names=names).params["scale"] == 2.5
    with pytest.raises(CheckpointError, match=r"does not fit names: missing \['t'\], unexpected \['s'\]"):
        load_safetensors(path, names={**names, "scale": "t"})


def test_a_scalar_parameter_is_a_tensor_of_shape_empty(tmp_path: Path) -> None:
    path = tmp_path / "scalar.safetensors"
    save_safetensors(path, pmap({"t": 0.25}))
    assert safetensors.numpy.load_file(str(path))["t"].shape == ()
    assert load_safetensors(path).params == {"t": 0.25}


# --- the real package ------------------------------------------------------------------


@given(trees(in_f32_range), st.sampled_from(["F64", "F32"]))
def test_the_safetensors_package_reads_our_files(
    tmp_path_factory: pytest.TempPathFactory, params: PMap[str, object], dtype: Any
) -> None:
    path = tmp_path_factory.mktemp("ours") / "params.safetensors"
    save_safetensors(path, params, dtype=dtype, metadata={"kind": "test", "note": "ünïcode"})
    arrays = safetensors.numpy.load_file(str(path))
    expected = state_dict(params)
    assert set(arrays) == set(expected)
    numpy_dtype = np.float64 if dtype == "F64" else np.float32
    for name, value in expected.items():
        want = np.array(value, dtype=numpy_dtype)
        assert arrays[name].dtype == numpy_dtype
        assert arrays[name].shape == want.shape
        assert arrays[name].tobytes() == want.tobytes()
    with safetensors.safe_open(str(path), framework="numpy") as file:
        assert file.metadata() == {"kind": "test", "note": "ünïcode"}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda s: s != "__metadata__"),
        st.tuples(
            st.sampled_from([np.float64, np.float32, np.float16]),
            st.lists(st.integers(0, 3), max_size=3),
            st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=4,
    ),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_files_of_the_safetensors_package_load_here(
    tmp_path_factory: pytest.TempPathFactory,
    specs: dict[str, tuple[Any, list[int], int]],
    metadata: dict[str, str],
) -> None:
    arrays = {
        name: np.random.default_rng(seed).uniform(-1e4, 1e4, size=shape).astype(dtype)
        for name, (dtype, shape, seed) in specs.items()
    }
    path = tmp_path_factory.mktemp("theirs") / "arrays.safetensors"
    safetensors.numpy.save_file(arrays, str(path), metadata=metadata)
    loaded = load_safetensors(path)
    assert loaded.metadata == metadata
    for name, array in arrays.items():
        got = loaded.params[name]
        want = float(array) if array.ndim == 0 else as_tuples(array.astype(np.float64).tolist())
        assert got == want  # nested as tolist() nests: shape [2, 0] is ((), ()), shape [0, 3] is ()


# --- saving refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [
        (
            pmap({"w": pvector([1e39])}),
            {"dtype": "F32"},
            r"'w' holds 1e\+39 at element 0, outside the range of F32",
        ),
        (pmap({"w": pvector([0.0, -3.5e38])}), {"dtype": "F32"}, "at element 1, outside the range of F32"),
        (pmap({"w": pvector([F32_TIE])}), {"dtype": "F32"}, "at element 0, outside the range of F32"),
        (pmap({"w": pvector([math.nan])}), {}, "non-finite"),
        (pmap({"w": pvector([pvector([1.0]), pvector([1.0, 2.0])])}), {}, "'w' is ragged"),
        (pmap({"w": 1.0}), {"names": {"v": "x"}}, r"names do not fit the parameters: missing \['w'\]"),
        (pmap({"w": 1.0, "v": 2.0}), {"names": {"w": "x", "v": "x"}}, "the same tensor name 'x'"),
        (pmap({"w": 1.0}), {"names": {"w": "__metadata__"}}, "reserved for metadata"),
        (pmap({"__metadata__": 1.0}), {}, "reserved for metadata"),
        (pmap({"w": 1.0}), {"metadata": {"epoch": 3}}, r"metadata\['epoch'\] is a int, not a str"),
        (pmap({"w": 1.0}), {"metadata": {"k": "\ud800"}}, "lone surrogate"),
        (pmap({"\udc00": 1.0}), {}, "lone surrogate"),
    ],
)
def test_saving_refuses_what_cannot_be_written_and_keeps_the_old_file(
    tmp_path: Path, params: object, kwargs: dict[str, Any], message: str
) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(CheckpointError, match=message):
        save_safetensors(path, params, **kwargs)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_float32_max_itself_and_what_rounds_down_to_it_are_saved(tmp_path: Path) -> None:
    path = tmp_path / "edge.safetensors"
    save_safetensors(path, pmap({"w": pvector([F32_MAX, BELOW_TIE])}), dtype="F32")
    assert load_safetensors(path).params["w"] == (F32_MAX, F32_MAX)
    with np.errstate(over="ignore"):
        assert np.float32(BELOW_TIE) == F32_MAX and np.isinf(np.float32(F32_TIE))


def test_an_unknown_dtype_and_a_missing_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype must be one of 'F64', 'F32', not 'F16'"):
        save_safetensors(tmp_path / "x", PARAMS, dtype="F16")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="cannot write"):
        save_safetensors(tmp_path / "missing" / "x.safetensors", PARAMS)


# --- loading refuses --------------------------------------------------------------------

W = {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}
TWO = struct.pack("<2d", 1.0, 2.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "fewer than the 8 of the header length"),
        (struct.pack("<Q", 2**64 - 1), "over the limit of"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}", "over the limit of"),
        (struct.pack("<Q", 64) + b"{}", "runs past the end of the file"),
        (file_of(b"[1, 2]"), "does not start with '{'"),
        (file_of(b' {"w":1}'), "does not start with '{'"),
        (file_of(b"{\xff}"), "not UTF-8"),
        (file_of(b'{"w": '), "not JSON"),
        (file_of(b'{"w": 1} x'), "not JSON"),
        (file_of(b'{"w": NaN}'), "holds NaN"),
        (file_of(b'{"w": {}, "w": {}}'), "gives the key 'w' twice"),
        (file_of(b'{"w": {"dtype": "F64", "dtype": "F32"}}'), "gives the key 'dtype' twice"),
        (file_of({"w": [1]}), "must be an object of dtype, shape and data_offsets"),
        (file_of({"w": {**W, "extra": 1}}, TWO), "must be an object of dtype, shape and data_offsets"),
        (file_of({"w": {**W, "dtype": "F128"}}, TWO), "dtype 'F128', which is unknown"),
        (file_of({"w": {**W, "dtype": "I64"}}, TWO), "dtype 'I64', which holds no floats"),
        (file_of({"w": {**W, "dtype": ["F64"]}}, TWO), r"dtype \['F64'\], which is unknown"),
        (file_of({"w": {**W, "dtype": None}}, TWO), "dtype None, which is unknown"),
        (file_of({"w": {**W, "shape": [-2]}}, TWO), "not a list of integers >= 0"),
        (file_of({"w": {**W, "shape": [2.0]}}, TWO), "not a list of integers >= 0"),
        (file_of({"w": {**W, "shape": [True, 2]}}, TWO), "not a list of integers >= 0"),
        (file_of({"w": {**W, "shape": 2}}, TWO), "not a list of integers >= 0"),
        (file_of({"w": {**W, "shape": [1] * 65 + [2]}}, TWO), "66 dimensions, more than 64"),
        (
            file_of({"w": {"dtype": "F64", "shape": [10**18, 0], "data_offsets": [0, 0]}}),
            "is empty but has more",
        ),
        (file_of({"w": {**W, "data_offsets": [0]}}, TWO), "not a list of two integers"),
        (file_of({"w": {**W, "data_offsets": [0, 16.0]}}, TWO), "not a list of two integers"),
        (file_of({"w": {**W, "data_offsets": [16, 0]}}, TWO), "need 0 <= begin <= end"),
        (file_of({"w": {**W, "data_offsets": [-16, 0]}}, TWO), "need 0 <= begin <= end"),
        (file_of({"w": {**W, "data_offsets": [0, 8]}}, TWO), "needs 16 bytes, but its data_offsets"),
        (file_of({"w": {**W, "data_offsets": [8, 24]}}, TWO + TWO[:8]), "gap of 8 bytes before tensor 'w'"),
        (file_of({"w": W, "v": W}, TWO), "tensor 'v' overlaps tensor 'w'|tensor 'w' overlaps tensor 'v'"),
        (
            file_of({"w": W, "v": {**W, "data_offsets": [8, 24]}}, TWO + TWO[:8]),
            "tensor 'v' overlaps tensor 'w'",
        ),
        (file_of({"w": W}, TWO + b"\0"), "cover 16 bytes, but the file holds 17 bytes of data"),
        (file_of({"w": W}, TWO[:15]), "cover 16 bytes, but the file holds 15 bytes of data"),
        (file_of({"w": W}, TWO, pad=False) + b"\0" * 3, "cover 16 bytes, but the file holds 19"),
        (file_of({"__metadata__": {"k": 1}, "w": W}, TWO), "__metadata__ must be an object of strings"),
        (file_of({"__metadata__": ["k"], "w": W}, TWO), "__metadata__ must be an object of strings"),
        (file_of({"w": W}, struct.pack("<2d", 1.0, math.nan)), "'w' holds nan at element 1"),
        (file_of({"w": W}, struct.pack("<2d", -math.inf, 1.0)), "'w' holds -inf at element 0"),
        (file_of({"w": {**W, "dtype": "F16", "data_offsets": [0, 4]}}, b"\x00\x7c\x00\x00"), "holds inf"),
    ],
)
def test_a_damaged_or_hostile_file_is_refused_naming_the_problem(
    tmp_path: Path, raw: bytes, message: str
) -> None:
    with pytest.raises(CheckpointError, match=message):
        load_safetensors(write(tmp_path, raw))


SIZES = {"F64": 8, "F32": 4, "F16": 2}


@st.composite
def nearly_valid_files(draw: st.DrawFn) -> bytes:
    """A valid file of random tensors, then maybe one field of its header or its length changed."""
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(SIZES)), st.lists(st.integers(0, 3), max_size=3)),
            max_size=3,
        )
    )
    header: dict[str, Any] = {}
    offset = 0
    for index, (dtype, shape) in enumerate(specs):
        size = math.prod(shape) * SIZES[dtype]
        header[f"t{index}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    data = draw(st.binary(min_size=offset, max_size=offset))
    mutate: bool = draw(st.booleans())
    if header and mutate:
        entry = header[draw(st.sampled_from(sorted(header)))]
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        entry[field] = draw(
            st.one_of(
                st.sampled_from(["F64", "F32", "F16", "I8", "BF16", "X"]),
                st.lists(st.integers(-1, 2 * offset + 1), max_size=3),
                st.integers(-1, 3),
                st.none(),
            )
        )
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=3))
    return file_of(header, data, pad=draw(st.booleans()))


@given(nearly_valid_files())
def test_whatever_a_header_says_we_refuse_it_or_read_what_the_package_reads(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = write(tmp_path_factory.mktemp("fuzz"), raw)
    try:
        loaded = load_safetensors(path).params
    except CheckpointError:
        return
    theirs = safetensors.numpy.load(raw)
    assert set(loaded) == set(theirs)
    for name, array in theirs.items():
        want = float(array) if array.ndim == 0 else as_tuples(array.astype(np.float64).tolist())
        assert loaded[name] == want


def test_a_header_without_tensors_is_an_empty_file_of_tensors(tmp_path: Path) -> None:
    loaded = load_safetensors(write(tmp_path, file_of({"__metadata__": {"k": "v"}})))
    assert (loaded.params, loaded.metadata) == ({}, {"k": "v"})


def test_tensors_that_do_not_fit_like_are_named(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_safetensors(path, PARAMS)
    other = pmap({"layers": pvector([LAYER.set("bias", pvector([0.0]))]), "scale": 1.0})
    with pytest.raises(
        CheckpointError, match=r"'layers.0.bias' has shape \(2,\) in the checkpoint but \(1,\)"
    ):
        load_safetensors(path, like=other)
    with pytest.raises(CheckpointError, match=r"missing \['offset'\]"):
        load_safetensors(path, like=PARAMS.set("offset", 0.0))


def test_not_a_regular_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    with pytest.raises(CheckpointError, match="it is a FIFO"):
        load_safetensors(fifo)
    with pytest.raises(CheckpointError, match="it is a character device"):
        load_safetensors("/dev/zero")
    with pytest.raises(CheckpointError, match="it is a folder"):
        load_safetensors(tmp_path)
    with pytest.raises(CheckpointError, match=r"cannot read .*: No such file"):
        load_safetensors(tmp_path / "missing.safetensors")


def test_a_file_over_max_bytes_is_refused_and_one_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_safetensors(path, PARAMS)
    size = path.stat().st_size
    assert load_safetensors(path, like=PARAMS, max_bytes=size).params == PARAMS
    with pytest.raises(CheckpointError, match=f"is {size} bytes, over the limit of {size - 1}"):
        load_safetensors(path, max_bytes=size - 1)
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0"):
        load_safetensors(path, max_bytes=-1)


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    params = MLP(2, (3, 2)).init(random.key(0))
    path = tmp_path_factory.mktemp("good") / "mlp.safetensors"
    save_safetensors(path, params, metadata={"k": "v"})
    return path.read_bytes()


MLP_PARAMS = MLP(2, (3, 2)).init(random.key(0))


def test_every_truncation_is_refused(tmp_path: Path, good_file: bytes) -> None:
    for cut in range(len(good_file)):
        with pytest.raises(CheckpointError):
            load_safetensors(write(tmp_path, good_file[:cut]), like=MLP_PARAMS)


def test_every_wrong_header_length_is_refused(tmp_path: Path, good_file: bytes) -> None:
    (length,) = struct.unpack_from("<Q", good_file)
    for wrong in [*range(len(good_file) + 9), 2**63, 2**64 - 1]:
        if wrong != length:
            with pytest.raises(CheckpointError):
                load_safetensors(write(tmp_path, struct.pack("<Q", wrong) + good_file[8:]))


def test_every_bit_flip_is_refused_or_loads_finite_params_of_the_same_tree(
    tmp_path: Path, good_file: bytes
) -> None:
    refused = 0
    for position in range(len(good_file)):
        for bit in range(8):
            damaged = bytearray(good_file)
            damaged[position] ^= 1 << bit
            try:
                loaded = load_safetensors(write(tmp_path, bytes(damaged)), like=MLP_PARAMS)
            except CheckpointError:
                refused += 1
                continue
            assert isinstance(loaded.params, PMap) and isinstance(loaded.params["layers"], PVector)
            assert all(math.isfinite(x) for x in tree_leaves(loaded.params))
            (length,) = struct.unpack_from("<Q", good_file)
            if 8 <= position < 8 + length and loaded.metadata == {"k": "v"}:
                assert loaded.params == MLP_PARAMS  # a header flip changes no value silently
    assert refused > len(good_file)  # most flips of the header length and the header are caught
