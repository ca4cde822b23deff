"""Tests for functional_nn.serialization: exact round trips, names, atomic writes, a fuzzed loader.

The loader's promise (issue 7) is tested as a property: whatever bytes are on disk,
``load_checkpoint`` either raises :class:`CheckpointError` with a message or returns
exactly what was saved. Mutations that recompute the checksum reach the checks behind
it (types, shapes, names); those must also end in a ``CheckpointError`` or in a
well-formed checkpoint that saves and loads again unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import optimizers
from functional_nn.serialization import (
    FORMAT,
    VERSION,
    Checkpoint,
    CheckpointError,
    Json,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    state_dict,
)
from optimizers.state import OptState, StateValue

# --- exact comparison -------------------------------------------------------------------


def fingerprint(tree: object) -> object:
    """``tree`` with each float as its 8 bytes and each container tagged with its exact type.

    Two trees have equal fingerprints only if they hold bit-identical floats (``-0.0``
    and ``0.0`` differ) in the same kinds of containers, and ints, bools and strings
    that are equal and of the same type (``1``, ``1.0`` and ``True`` all differ).
    """
    if isinstance(tree, PMap):
        return ("PMap", sorted((repr(k), fingerprint(v)) for k, v in tree.items()))
    if isinstance(tree, dict):
        return ("dict", sorted((repr(k), fingerprint(v)) for k, v in tree.items()))
    if isinstance(tree, PVector):
        return ("PVector", [fingerprint(item) for item in tree])
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, [fingerprint(item) for item in tree])
    if isinstance(tree, float):
        return ("float", struct.pack("<d", tree))
    return (type(tree).__name__, tree)


def leaves_of(tree: object) -> Iterator[object]:
    """Every non-container value in ``tree``."""
    if isinstance(tree, (PMap, dict)):
        for value in tree.values():
            yield from leaves_of(value)
    elif isinstance(tree, (PVector, list, tuple)):
        for item in tree:
            yield from leaves_of(item)
    else:
        yield tree


def structure_of(tree: object) -> object:
    """``fingerprint`` with every leaf blanked out: containers, keys and lengths only."""
    if isinstance(tree, (PMap, dict)):
        return (type(tree).__name__, sorted((repr(k), structure_of(v)) for k, v in tree.items()))
    if isinstance(tree, (PVector, list, tuple)):
        return (type(tree).__name__, [structure_of(item) for item in tree])
    return "leaf"


def test_fingerprint_tells_apart_what_equality_does_not() -> None:
    assert fingerprint(-0.0) != fingerprint(0.0)
    assert fingerprint(1.0) != fingerprint(1) != fingerprint(True)
    assert fingerprint(pvector([1.0])) != fingerprint([1.0])
    assert fingerprint(pmap({"a": 1.0})) != fingerprint({"a": 1.0})
    assert fingerprint(pmap({"a": pvector([0.1])})) == fingerprint(pmap({"a": pvector([0.1])}))


# --- strategies -------------------------------------------------------------------------

EDGE_FLOATS = (
    0.0,
    -0.0,
    5e-324,  # smallest subnormal
    -5e-324,
    2.225073858507201e-308,  # largest subnormal
    2.2250738585072014e-308,  # smallest normal
    1.7976931348623157e308,  # largest finite
    -1.7976931348623157e308,
    0.1,
    1 / 3,
    2.0**53 + 2,
    1e16,
    1e-7,
    123456789.12345679,
    -2.5e-310,
)

finite_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-300, max_value=1e-300),  # tiny and subnormal
    st.sampled_from(EDGE_FLOATS),
)

# No dots (they separate names) and never a plain index, so names rebuild exactly without ``like``.
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)

vectors = st.lists(finite_floats, max_size=4).map(pvector)


@st.composite
def matrices(draw: st.DrawFn) -> PVector[PVector[float]]:
    rows, cols = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    return pvector(
        [pvector(draw(st.lists(finite_floats, min_size=cols, max_size=cols))) for _ in range(rows)]
    )


ragged = st.lists(vectors, max_size=3).map(pvector)

parameters: st.SearchStrategy[object] = st.one_of(finite_floats, vectors, matrices(), ragged)


@st.composite
def mlp_params(draw: st.DrawFn) -> PMap[str, object]:
    """``{"layers": [{"weight": matrix, "bias": vector}, ...]}`` as an MLP holds them."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        weight = draw(matrices())
        bias = pvector(draw(st.lists(finite_floats, min_size=len(weight), max_size=len(weight))))
        layers.append(pmap({"weight": weight, "bias": bias}))
    return pmap({"layers": pvector(layers)})


params_trees: st.SearchStrategy[PMap[str, object]] = st.one_of(
    mlp_params(), st.dictionaries(names, parameters, max_size=4).map(pmap)
)

SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")

# Lone surrogates too: JSON escapes them and reads them back (but not a high one then a low one).
texts = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=6).filter(
    lambda text: not SURROGATE_PAIR.search(text)
)

state_scalars: st.SearchStrategy[StateValue] = st.one_of(
    st.booleans(), st.integers(), st.integers(-(10**40), 10**40), finite_floats, texts
)


def _state_containers(kids: st.SearchStrategy[StateValue]) -> st.SearchStrategy[StateValue]:
    return st.one_of(
        st.lists(kids, max_size=3).map(pvector), st.dictionaries(texts, kids, max_size=3).map(pmap)
    )


state_values = st.recursive(state_scalars, _state_containers, max_leaves=12)
opt_states: st.SearchStrategy[OptState | None] = st.one_of(
    st.none(), st.dictionaries(texts, state_values, max_size=4).map(pmap)
)

json_scalars: st.SearchStrategy[Json] = st.one_of(
    st.none(), st.booleans(), st.integers(), finite_floats, texts
)


def _json_containers(kids: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    return st.one_of(st.lists(kids, max_size=3), st.dictionaries(texts, kids, max_size=3))


json_values = st.recursive(json_scalars, _json_containers, max_leaves=12)
metadatas: st.SearchStrategy[dict[str, Json]] = st.dictionaries(texts, json_values, max_size=4)


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the hypothesis tests (a function-scoped tmp_path is not reset per example)."""
    return tmp_path_factory.mktemp("serialization")


def roundtrip(
    folder: Path,
    params: object,
    opt_state: OptState | None = None,
    metadata: dict[str, Json] | None = None,
    like: object | None = None,
) -> Checkpoint:
    """Save and load. These tests hold arbitrary states, so the optimizer-state check is off;
    ``test_checkpoint_state.py`` tests it on real optimizer states."""
    path = folder / "roundtrip.json"
    save_checkpoint(path, params, opt_state, metadata)
    return load_checkpoint(path, like=like, check_opt_state=False)


def attempt(path: Path, data: bytes, like: object | None = None) -> Checkpoint | CheckpointError:
    """Load ``data`` from ``path``: the checkpoint, or the CheckpointError (any other exception fails).

    The reference state is not an optimizer's, so the optimizer-state check is off.
    """
    path.write_bytes(data)
    try:
        return load_checkpoint(path, like=like, check_opt_state=False)
    except CheckpointError as error:
        assert str(error).strip(), "a CheckpointError must say what is wrong"
        return error


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def resign(document: dict[str, object]) -> bytes:
    """The document with its sha256 recomputed over its (edited) payload, as a writer would."""
    return canonical({**document, "sha256": hashlib.sha256(canonical(document["payload"])).hexdigest()})


def nested_lists(depth: int, leaf: object = 1.0) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# The checkpoint the loader is fuzzed from: every kind of value in every section.
REFERENCE_PARAMS: PMap[str, object] = pmap(
    {
        "layers": pvector(
            [
                pmap(
                    {
                        "weight": pvector([pvector([0.1, -2.0, 5e-324]), pvector([-0.0, 1e300, 1e-05])]),
                        "bias": pvector([0.5, -1.25]),
                    }
                ),
                pmap({"weight": pvector([pvector([3.0, 1 / 3])]), "bias": pvector([2.5e-310])}),
            ]
        ),
        "scale": 1.5,
    }
)
REFERENCE_STATE: OptState = pmap(
    {
        "step": 7,
        "name": "adam",
        "nesterov": False,
        "mu": pmap({"layers": pvector([pmap({"bias": pvector([0.01, -0.02])})])}),
        "lr": 0.001,
    }
)
REFERENCE_METADATA: dict[str, Json] = {"epoch": 3, "loss": 0.25, "tags": ["a", None, True], "note": "ok"}


@cache
def reference_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.json"
        save_checkpoint(path, REFERENCE_PARAMS, REFERENCE_STATE, REFERENCE_METADATA)
        return path.read_bytes()


def reference_document() -> dict[str, object]:
    document = json.loads(reference_bytes())
    assert isinstance(document, dict)
    return document


def is_reference(loaded: Checkpoint) -> bool:
    return (
        fingerprint(loaded.params) == fingerprint(REFERENCE_PARAMS)
        and fingerprint(loaded.opt_state) == fingerprint(REFERENCE_STATE)
        and fingerprint(loaded.metadata) == fingerprint(REFERENCE_METADATA)
    )


def assert_reference_or_error(outcome: Checkpoint | CheckpointError) -> None:
    if isinstance(outcome, Checkpoint):
        assert is_reference(outcome), "a damaged file loaded as something other than what was saved"


# --- round trips ------------------------------------------------------------------------


@given(params=params_trees, opt_state=opt_states, metadata=metadatas)
def test_save_load_is_bit_exact(
    scratch: Path, params: PMap[str, object], opt_state: OptState | None, metadata: dict[str, Json]
) -> None:
    for like in (None, params):
        loaded = roundtrip(scratch, params, opt_state, metadata, like=like)
        assert fingerprint(loaded.params) == fingerprint(params)
        assert fingerprint(loaded.opt_state) == fingerprint(opt_state)
        assert fingerprint(loaded.metadata) == fingerprint(metadata)


def test_edge_floats_round_trip_bit_exactly(tmp_path: Path) -> None:
    params = pmap({"w": pvector(EDGE_FLOATS), "s": -0.0})
    loaded = roundtrip(tmp_path, params, pmap({"m": pvector(EDGE_FLOATS)}), {"x": list(EDGE_FLOATS)})
    assert isinstance(loaded.params, PMap)
    assert [x.hex() for x in loaded.params["w"]] == [x.hex() for x in EDGE_FLOATS]
    assert math.copysign(1.0, loaded.params["s"]) == -1.0
    assert fingerprint(loaded.opt_state) == fingerprint(pmap({"m": pvector(EDGE_FLOATS)}))
    assert fingerprint(loaded.metadata) == fingerprint({"x": list(EDGE_FLOATS)})


@given(params=params_trees)
def test_state_dict_round_trips_in_memory_and_through_json(params: PMap[str, object]) -> None:
    state = state_dict(params)
    through_json = json.loads(json.dumps(state, allow_nan=False))
    for source in (state, through_json):
        assert fingerprint(load_state_dict(source)) == fingerprint(params)
        assert fingerprint(load_state_dict(source, like=params)) == fingerprint(params)


class Pair(NamedTuple):
    first: float
    second: tuple[float, float]


def test_like_decides_container_types_and_its_values_are_ignored() -> None:
    like = {"layers": [{"weight": ((1.0, 2.0), (3.0, 4.0)), "pair": Pair(5.0, (6.0, 7.0))}]}
    new = {"layers": [{"weight": ((-1.0, -2.0), (-3.0, -4.0)), "pair": Pair(-5.0, (-6.0, -0.0))}]}
    loaded = load_state_dict(state_dict(new), like=like)
    assert isinstance(loaded, dict)
    assert fingerprint(loaded) == fingerprint(new)
    assert type(loaded["layers"][0]["pair"]) is Pair
    # A model whose training diverged (NaN everywhere) can still take its last good checkpoint.
    nan_like = {"layers": [{"weight": ((math.nan,) * 2,) * 2, "pair": Pair(math.inf, (math.nan, 0.0))}]}
    assert fingerprint(load_state_dict(state_dict(new), like=nan_like)) == fingerprint(new)


def test_optimizer_state_round_trips_and_training_resumes_bit_identically(tmp_path: Path) -> None:
    opt = optimizers.adamw(0.05, weight_decay=0.01)
    params: PMap[str, object] = TWO_LAYERS.set("scale", -0.0)
    state = opt.init(params)

    def grads_of(p: PMap[str, object]) -> PMap[str, object]:  # gradient of sum(x**2 / 2): p itself
        return p

    for _ in range(3):
        params, state = opt.step(params, grads_of(params), state)
    loaded = roundtrip(tmp_path, params, state, {"epoch": 3}, like=params)
    assert fingerprint(loaded.params) == fingerprint(params)
    assert fingerprint(loaded.opt_state) == fingerprint(state)
    assert isinstance(loaded.params, PMap)
    assert loaded.opt_state is not None
    straight = opt.step(params, grads_of(params), state)
    resumed = opt.step(loaded.params, grads_of(loaded.params), loaded.opt_state)
    assert fingerprint(resumed) == fingerprint(straight)


def test_checkpoint_file_has_format_version_and_checksum(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, REFERENCE_PARAMS, REFERENCE_STATE, REFERENCE_METADATA)
    document = json.loads(path.read_bytes())
    assert document["format"] == FORMAT
    assert document["version"] == VERSION
    assert document["sha256"] == hashlib.sha256(canonical(document["payload"])).hexdigest()
    assert document["payload"]["params"] == state_dict(REFERENCE_PARAMS)
    assert path.read_bytes() == reference_bytes()  # deterministic bytes


def test_save_accepts_str_paths_and_none_state(tmp_path: Path) -> None:
    path = str(tmp_path / "checkpoint.json")
    save_checkpoint(path, REFERENCE_PARAMS)
    loaded = load_checkpoint(path)
    assert loaded.opt_state is None
    assert loaded.metadata == {}
    assert fingerprint(loaded.params) == fingerprint(REFERENCE_PARAMS)


# --- state dict names -------------------------------------------------------------------

TWO_LAYERS: PMap[str, object] = pmap(
    {
        "layers": pvector(
            [
                pmap(
                    {
                        "weight": pvector([pvector([1.0, 2.0]), pvector([3.0, 4.0])]),
                        "bias": pvector([5.0, 6.0]),
                    }
                ),
                pmap({"weight": pvector([pvector([7.0, 8.0])]), "bias": pvector([9.0])}),
            ]
        )
    }
)


def test_state_dict_names_parameters_like_torch() -> None:
    state = state_dict(TWO_LAYERS)
    assert list(state) == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]
    assert state["layers.0.weight"] == [[1.0, 2.0], [3.0, 4.0]]
    assert state["layers.1.bias"] == [9.0]
    assert all(type(value) is list for value in state.values())
    assert type(state["layers.0.weight"][0]) is list
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_load_state_dict_without_like_rebuilds_maps_and_vectors() -> None:
    loaded = load_state_dict({"layers.0.weight": [[1, 2.5]], "layers.1.bias": [3], "scale": 2})
    expected = pmap(
        {
            "layers": pvector(
                [pmap({"weight": pvector([pvector([1.0, 2.5])])}), pmap({"bias": pvector([3.0])})]
            ),
            "scale": 2.0,
        }
    )
    assert fingerprint(loaded) == fingerprint(expected)  # ints become floats


def test_name_parts_that_are_not_plain_indices_stay_map_keys() -> None:
    params = pmap({"a": pmap({"00": pvector([1.0]), "+1": pvector([2.0]), "\u0661": pvector([3.0])})})
    assert fingerprint(load_state_dict(state_dict(params))) == fingerprint(params)


@pytest.mark.parametrize(
    ("params", "state"),
    [
        (pmap(), {}),
        (pmap({"w": pvector()}), {"w": []}),
        (pmap({"w": pvector(), "b": pvector([1.0])}), {"b": [1.0], "w": []}),
        (
            pmap({"layers": pvector([pmap({"weight": pvector(), "bias": pvector()})])}),
            {"layers.0.bias": [], "layers.0.weight": []},
        ),
    ],
    ids=["empty model", "empty vector", "empty and full", "zero-width layer"],
)
def test_models_without_floats_save_and_load(
    tmp_path: Path, params: PMap[str, object], state: object
) -> None:
    assert state_dict(params) == state
    for like in (None, params):
        assert fingerprint(roundtrip(tmp_path, params, like=like).params) == fingerprint(params)


def test_an_empty_map_comes_back_from_like_only() -> None:
    params = pmap({"a": pmap(), "w": pvector([1.0])})
    assert state_dict(params) == {"w": [1.0]}
    assert fingerprint(load_state_dict(state_dict(params), like=params)) == fingerprint(params)
    assert fingerprint(load_state_dict(state_dict(params))) == fingerprint(pmap({"w": pvector([1.0])}))


def test_indices_that_do_not_run_from_0_are_map_keys_as_in_nn_sequential() -> None:
    loaded = load_state_dict({"layers.0.w": [1.0], "layers.2.w": [2.0], "net.1.w": [3.0]})
    assert loaded == pmap(
        {
            "layers": pmap({"0": pmap({"w": pvector([1.0])}), "2": pmap({"w": pvector([2.0])})}),
            "net": pmap({"1": pmap({"w": pvector([3.0])})}),
        }
    )
    assert isinstance(load_state_dict({"layers.1.w": [1.0], "layers.0.w": [1.0]})["layers"], PVector)


@pytest.mark.parametrize(
    ("state", "fragments"),
    [
        ({"0": [1.0]}, ["map key"]),
        ({"a": [1.0], "a.b": [1.0]}, ["'a.b'", "clashes"]),
        ({"a.b": [1.0], "a": [1.0]}, ["'a'", "clashes"]),
        ({1: [1.0]}, ["names are strings"]),
    ],
)
def test_load_state_dict_rejects_names_it_cannot_rebuild(
    state: dict[object, object], fragments: list[str]
) -> None:
    with pytest.raises(CheckpointError) as caught:
        load_state_dict(state)  # type: ignore[arg-type]  # a non-str key on purpose
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_state_dict_refuses_two_parameters_with_one_name(tmp_path: Path) -> None:
    params = pmap({"a.b": pvector([1.0]), "a": pmap({"b": pvector([2.0])})})
    with pytest.raises(CheckpointError, match=r"'a\.b'"):
        state_dict(params)
    with pytest.raises(CheckpointError, match=r"'a\.b'"):
        save_checkpoint(tmp_path / "c.json", params)
    assert os.listdir(tmp_path) == []


# --- load_state_dict against a model ----------------------------------------------------


def _edit(state: dict[str, object], name: str, value: object | None) -> dict[str, object]:
    edited = dict(state)
    if value is None:
        del edited[name]
    else:
        edited[name] = value
    return edited


@pytest.mark.parametrize(
    ("name", "value", "fragments"),
    [
        ("layers.1.bias", None, ["missing ['layers.1.bias']", "unexpected nothing"]),
        ("layers.9.gain", [1.0], ["missing nothing", "unexpected ['layers.9.gain']"]),
        ("layers.0.weight", [[1.0, 3.0], [2.0, 4.0], [0.0, 0.0]], ["'layers.0.weight'", "(3, 2)", "(2, 2)"]),
        ("layers.0.weight", [[1.0, 2.0, 3.0, 4.0]], ["'layers.0.weight'", "(1, 4)", "(2, 2)"]),
        ("layers.0.weight", [[1.0, 2.0], [3.0]], ["'layers.0.weight'", "(2, 2)"]),
        ("layers.0.bias", 5.0, ["'layers.0.bias'", "()", "(2,)"]),
        ("layers.0.bias", [[5.0], [6.0]], ["'layers.0.bias'", "(2, 1)", "(2,)"]),
        ("layers.1.bias", [], ["'layers.1.bias'", "(0,)", "(1,)"]),
    ],
)
def test_load_state_dict_against_a_model_names_what_does_not_fit(
    name: str, value: object | None, fragments: list[str]
) -> None:
    state = _edit(dict(state_dict(TWO_LAYERS)), name, value)
    with pytest.raises(CheckpointError) as caught:
        load_state_dict(state, like=TWO_LAYERS)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_missing_and_unexpected_are_reported_together() -> None:
    state = dict(state_dict(TWO_LAYERS))
    state["layers.1.gain"] = state.pop("layers.1.bias")
    with pytest.raises(CheckpointError) as caught:
        load_state_dict(state, like=TWO_LAYERS)
    assert "'layers.1.bias'" in str(caught.value)
    assert "'layers.1.gain'" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([math.nan, 1.0], "non-finite"),
        ([1.0, math.inf], "non-finite"),
        ([-math.inf, 1.0], "non-finite"),
        ([10**400, 1.0], "too large"),
        (["1.0", 2.0], "str"),
        ([True, 2.0], "bool"),
        ([None, 2.0], "NoneType"),
        ([{"x": 1.0}, 2.0], "dict"),
    ],
)
@pytest.mark.parametrize("with_like", [False, True])
def test_load_state_dict_rejects_values_that_are_not_finite_numbers(
    value: list[object], fragment: str, with_like: bool
) -> None:
    state = _edit(dict(state_dict(TWO_LAYERS)), "layers.1.bias", [])
    state["layers.0.bias"] = value
    with pytest.raises(CheckpointError) as caught:
        load_state_dict(state, like=TWO_LAYERS if with_like else None)
    assert "'layers.0.bias'" in str(caught.value)
    assert fragment in str(caught.value)


def test_load_state_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(CheckpointError, match="mapping"):
        load_state_dict([("layers.0.bias", [1.0])])  # type: ignore[arg-type]


def test_load_state_dict_survives_deep_nesting() -> None:
    deep = 100_000
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_state_dict({"w": nested_lists(deep)})
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_state_dict({".".join(["a"] * deep): [1.0]})


# --- refusing to save -------------------------------------------------------------------


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """A folder holding one good checkpoint, ``checkpoint.json``."""
    save_checkpoint(tmp_path / "checkpoint.json", REFERENCE_PARAMS, REFERENCE_STATE, REFERENCE_METADATA)
    assert (tmp_path / "checkpoint.json").read_bytes() == reference_bytes()
    return tmp_path


def assert_untouched(folder: Path) -> None:
    assert os.listdir(folder) == ["checkpoint.json"], "a temporary file was left behind"
    assert (folder / "checkpoint.json").read_bytes() == reference_bytes()
    assert is_reference(load_checkpoint(folder / "checkpoint.json", check_opt_state=False))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_parameters_refuse_to_save(previous: Path, bad: float) -> None:
    layers = pvector([pmap({"bias": pvector([1.0])}), pmap({"bias": pvector([1.0, bad])})])
    params = pmap({"layers": layers, "scale": 1.0})
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(previous / "checkpoint.json", params)
    assert "'layers.1.bias'" in str(caught.value)
    assert "non-finite" in str(caught.value)
    assert_untouched(previous)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [("0.5", "str"), (True, "bool"), (None, "NoneType"), (10**400, "too large")],
    ids=["str", "bool", "None", "huge int"],
)
def test_parameters_that_are_not_floats_refuse_to_save(previous: Path, bad: object, fragment: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(previous / "checkpoint.json", pmap({"w": pvector([1.0, bad])}))
    assert "'w'" in str(caught.value)
    assert fragment in str(caught.value)
    assert_untouched(previous)


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"loss": math.nan}, "metadata['loss']"),
        ({"x": [1.0, math.inf]}, "metadata['x'][1]"),
        ({"x": object()}, "object"),
        ({"x": {1, 2}}, "set"),
        ({"x": (1, 2)}, "tuple"),
        ({"x": {"y": {3: "a"}}}, "metadata['x']['y']"),
        ({1: "a"}, "key 1"),
        ({"x": 10**5000}, "digits"),
        ({"x": nested_lists(100_000)}, "nested too deeply"),
        ({"x": b"bytes"}, "bytes"),
    ],
)
def test_metadata_json_cannot_hold_exactly_refuses_to_save(
    previous: Path, metadata: dict[object, object], fragment: str
) -> None:
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(previous / "checkpoint.json", REFERENCE_PARAMS, None, metadata)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert_untouched(previous)


def test_lone_surrogates_round_trip_but_a_pair_of_them_refuses_to_save(previous: Path) -> None:
    lone: dict[str, Json] = {"a": "\ud800", "b": "x\udc00y", "\udfff": ["\udc00\ud800"]}
    assert roundtrip(previous, REFERENCE_PARAMS, None, lone).metadata == lone
    os.remove(previous / "roundtrip.json")
    # json.loads reads the escapes of a high then a low surrogate back as the one character they encode.
    assert json.loads(json.dumps("\ud800\udc00")) == "\U00010000"
    cases: list[tuple[dict[str, Json], OptState | None]] = [
        ({"a": "\ud800\udc00"}, None),
        ({"\udbff\udfff": 1}, None),
        ({}, pmap({"name": "\ud83d\ude00"})),
    ]
    for metadata, state in cases:
        with pytest.raises(CheckpointError, match="surrogates"):
            save_checkpoint(previous / "checkpoint.json", REFERENCE_PARAMS, state, metadata)
    with pytest.raises(CheckpointError, match="surrogates"):
        save_checkpoint(previous / "checkpoint.json", pmap({"\ud800\udc00": 1.0}))
    assert_untouched(previous)


@pytest.mark.parametrize(
    ("opt_state", "fragment"),
    [
        (pmap({"mu": pvector([1.0, math.nan])}), "opt_state['mu'][1]"),
        (pmap({"v": math.inf}), "opt_state['v']"),
        (pmap({"x": object()}), "object"),
        (pmap({1: 2}), "1"),
        ({"step": 1}, "dict"),
    ],
)
def test_optimizer_state_json_cannot_hold_refuses_to_save(
    previous: Path, opt_state: object, fragment: str
) -> None:
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(previous / "checkpoint.json", REFERENCE_PARAMS, opt_state)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert_untouched(previous)


# --- atomic writing ---------------------------------------------------------------------


def test_saving_leaves_only_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, REFERENCE_PARAMS)
    save_checkpoint(path, TWO_LAYERS, metadata={"epoch": 2})
    assert os.listdir(tmp_path) == ["checkpoint.json"]
    loaded = load_checkpoint(path)
    assert fingerprint(loaded.params) == fingerprint(TWO_LAYERS)
    assert loaded.metadata == {"epoch": 2}


def _failing(error: BaseException) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    return fail


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to see open files")
@pytest.mark.parametrize(
    ("function", "error", "fragment"),
    [
        ("replace", OSError(errno.EXDEV, "Invalid cross-device link"), "cross-device"),
        ("replace", PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        ("fsync", OSError(errno.EIO, "Input/output error"), "Input/output error"),
        ("fsync", OSError("disk full"), "disk full"),  # an OSError without strerror
        ("write", OSError(errno.ENOSPC, "No space left on device"), "No space left"),
        ("close", OSError(errno.EIO, "Input/output error"), "Input/output error"),
    ],
)
def test_a_failed_write_keeps_the_previous_checkpoint(
    previous: Path, monkeypatch: pytest.MonkeyPatch, function: str, error: OSError, fragment: str
) -> None:
    real = getattr(os, function)

    def fail_on_the_temporary_file(fd_or_path: object, *args: object) -> object:
        if function == "replace" or os.readlink(f"/proc/self/fd/{fd_or_path}").endswith(".tmp"):
            if function == "close":  # a close that reports an error still frees the descriptor
                real(fd_or_path)
            raise error
        return real(fd_or_path, *args)

    before = open_files()
    monkeypatch.setattr(os, function, fail_on_the_temporary_file)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(previous / "checkpoint.json", TWO_LAYERS)
    monkeypatch.undo()
    assert fragment in str(caught.value)
    assert "checkpoint.json" in str(caught.value)
    assert open_files() == before, "a file descriptor leaked"
    assert_untouched(previous)


def open_files() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def test_a_write_that_fails_halfway_keeps_the_previous_checkpoint(
    previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls: list[int] = []

    def write(fd: int, data: bytes) -> int:  # the disk fills up after 100 bytes
        calls.append(fd)
        if len(calls) == 1:
            return real_write(fd, data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(previous / "checkpoint.json", TWO_LAYERS)
    monkeypatch.undo()
    assert len(calls) == 2
    assert_untouched(previous)


def test_a_file_system_that_takes_no_bytes_is_an_error_not_a_hang(
    previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(CheckpointError, match="accepted no bytes"):
        save_checkpoint(previous / "checkpoint.json", TWO_LAYERS)
    monkeypatch.undo()
    assert_untouched(previous)


def test_an_interrupt_mid_save_keeps_the_previous_checkpoint(
    previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _failing(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(previous / "checkpoint.json", TWO_LAYERS)
    monkeypatch.undo()
    assert_untouched(previous)


def test_failing_to_sync_the_folder_after_the_rename_is_not_an_error(
    previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    calls: list[bool] = []

    def fsync(fd: int) -> None:
        is_folder = stat.S_ISDIR(os.fstat(fd).st_mode)
        calls.append(is_folder)
        if is_folder:
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    save_checkpoint(previous / "checkpoint.json", TWO_LAYERS)
    assert calls == [False, True]  # the file, then the folder
    monkeypatch.undo()
    assert os.listdir(previous) == ["checkpoint.json"]
    assert fingerprint(load_checkpoint(previous / "checkpoint.json").params) == fingerprint(TWO_LAYERS)


def test_saving_into_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"write .*checkpoint\.json: no file can be made in .*missing"):
        save_checkpoint(tmp_path / "missing" / "checkpoint.json", REFERENCE_PARAMS)
    assert os.listdir(tmp_path) == []


def test_saving_under_a_regular_file_raises(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"write .*checkpoint\.json: no file can be made in .*file"):
        save_checkpoint(tmp_path / "file" / "checkpoint.json", REFERENCE_PARAMS)
    assert os.listdir(tmp_path) == ["file"]
    assert (tmp_path / "file").read_text() == "not a folder"


def test_saving_over_a_folder_raises_and_leaves_it(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").mkdir()
    (tmp_path / "checkpoint.json" / "inside").write_text("keep")
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(tmp_path / "checkpoint.json", REFERENCE_PARAMS)
    assert os.listdir(tmp_path) == ["checkpoint.json"]
    assert (tmp_path / "checkpoint.json" / "inside").read_text() == "keep"


def test_new_checkpoints_get_the_usual_file_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        save_checkpoint(tmp_path / "checkpoint.json", REFERENCE_PARAMS)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "checkpoint.json").st_mode) == 0o640


# --- the loader, fuzzed -----------------------------------------------------------------


def test_the_reference_loads(scratch: Path) -> None:
    outcome = attempt(scratch / "fuzz.json", reference_bytes(), like=REFERENCE_PARAMS)
    assert isinstance(outcome, Checkpoint)
    assert is_reference(outcome)


def test_every_truncation_is_rejected(scratch: Path) -> None:
    data = reference_bytes()
    assert data.endswith(b"\n")
    for cut in range(len(data)):
        outcome = attempt(scratch / "fuzz.json", data[:cut], like=REFERENCE_PARAMS)
        if cut == len(data) - 1:  # only the final newline is gone
            assert isinstance(outcome, Checkpoint)
            assert is_reference(outcome)
        else:
            assert isinstance(outcome, CheckpointError), f"a file cut at byte {cut} loaded"


def test_every_single_bit_flip_is_rejected_or_harmless(scratch: Path) -> None:
    data = reference_bytes()
    loaded = 0
    for index in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[index] ^= 1 << bit
            outcome = attempt(scratch / "fuzz.json", bytes(flipped), like=REFERENCE_PARAMS)
            assert_reference_or_error(outcome)
            loaded += isinstance(outcome, Checkpoint)
    assert loaded < 10  # e.g. "1e-05" -> "1E-05": the same number


@given(params=params_trees, opt_state=opt_states, metadata=metadatas, data=st.data())
def test_truncated_random_checkpoints_are_rejected(
    scratch: Path,
    params: PMap[str, object],
    opt_state: OptState | None,
    metadata: dict[str, Json],
    data: st.DataObject,
) -> None:
    path = scratch / "fuzz.json"
    save_checkpoint(path, params, opt_state, metadata)
    whole = path.read_bytes()
    cut = data.draw(st.integers(0, len(whole) - 2))
    assert isinstance(attempt(path, whole[:cut], like=params), CheckpointError)


@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
    with_like=st.booleans(),
)
def test_flipped_bytes_are_rejected_or_harmless(
    scratch: Path, flips: list[tuple[int, int]], with_like: bool
) -> None:
    data = bytearray(reference_bytes())
    for position, mask in flips:
        data[position % len(data)] ^= mask
    assert_reference_or_error(
        attempt(scratch / "fuzz.json", bytes(data), REFERENCE_PARAMS if with_like else None)
    )


class Raw(NamedTuple):
    """JSON text spliced in verbatim where ``json.dumps`` cannot write it."""

    text: str


DEEP = 100_000
WEIRD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    1.0,
    -0.0,
    1.5,
    "",
    "x",
    "NaN",
    "Infinity",
    "-Infinity",
    "1.0",
    [],
    {},
    [1.0],
    [[1.0]],
    [[[1.0]]],
    [None],
    ["1.0"],
    {"a": 1.0},
    {"layers.0.weight": [[1.0]]},
    10**400,
    -(10**400),
    1e308,
    5e-324,
    FORMAT,
    VERSION + 1,
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1e-400"),
    Raw("1" + "0" * 5000),
    Raw("[" * DEEP + "]" * DEEP),
    Raw('{"a":' * DEEP + "1" + "}" * DEEP),
    Raw("[" * 900 + "1.0" + "]" * 900),
    Raw('"\\ud800"'),
    Raw('"\\u0000"'),
]

weird_values = st.sampled_from(WEIRD_VALUES)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, bool]:
    """A reference document with one value replaced, deleted or added somewhere; resigned or not."""
    document: object = reference_document()
    raws: dict[str, str] = {}

    def weird() -> object:
        value = draw(weird_values)
        if isinstance(value, Raw):
            marker = f"@raw{len(raws)}@"
            raws[marker] = value.text
            return marker
        return value

    def mutate(node: object) -> object:
        children: list[object] = []
        if isinstance(node, dict):
            children = sorted(node)
        elif isinstance(node, list):
            children = list(range(len(node)))
        if children and draw(st.integers(0, 3)) > 0:  # go deeper, mostly
            where = draw(st.sampled_from(children))
            if isinstance(node, dict):
                assert isinstance(where, str)
                return {**node, where: mutate(node[where])}
            assert isinstance(node, list) and isinstance(where, int)
            return [*node[:where], mutate(node[where]), *node[where + 1 :]]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and children:
            gone = draw(st.sampled_from(children))
            if isinstance(node, dict):
                return {k: v for k, v in node.items() if k != gone}
            assert isinstance(node, list)
            return [v for i, v in enumerate(node) if i != gone]
        if action == "add" and isinstance(node, dict):
            return {**node, draw(st.sampled_from(["extra", "sha256", "", "params", "0"])): weird()}
        if action == "add" and isinstance(node, list):
            at = draw(st.integers(0, len(node)))
            return [*node[:at], weird(), *node[at:]]
        return weird()

    text = json.dumps(mutate(document), sort_keys=True, separators=(",", ":"))
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker), raw)
    if draw(st.booleans()):
        resigned = resign_text(text)
        if resigned is not None:
            return resigned, True
    return text, False


def resign_text(text: str) -> str | None:
    """``text`` with the checksum recomputed over its payload, or None where no writer could."""
    try:
        document = json.loads(text)
        new = hashlib.sha256(canonical(document["payload"])).hexdigest()
    except (ValueError, RecursionError, TypeError, KeyError):
        return None
    old = f'"sha256":{json.dumps(document.get("sha256"))}'
    if text.count(old) != 1:
        return None
    return text.replace(old, f'"sha256":"{new}"')


def assert_well_formed(loaded: Checkpoint, like: object | None) -> None:
    """What a checksum-valid checkpoint must hold: finite float params of the model's shape and so on."""
    assert all(type(leaf) is float and math.isfinite(leaf) for leaf in leaves_of(loaded.params))
    if like is not None:
        assert structure_of(loaded.params) == structure_of(like)
    assert loaded.opt_state is None or isinstance(loaded.opt_state, PMap)
    assert isinstance(loaded.metadata, dict)


@given(mutation=mutations(), with_like=st.booleans())
def test_mutated_documents_are_rejected_or_well_formed(
    scratch: Path, mutation: tuple[str, bool], with_like: bool
) -> None:
    text, resigned = mutation
    like = REFERENCE_PARAMS if with_like else None
    outcome = attempt(scratch / "fuzz.json", text.encode(), like)
    if isinstance(outcome, Checkpoint):  # then the header is exactly right: not version True, not 1.0
        document = json.loads(text)
        assert fingerprint(document["format"]) == fingerprint(FORMAT)
        assert fingerprint(document["version"]) == fingerprint(VERSION)
    if not resigned:
        assert_reference_or_error(outcome)
    elif isinstance(outcome, Checkpoint):
        assert_well_formed(outcome, like)
        # Whatever loads saves and loads again unchanged.
        again = roundtrip(scratch, outcome.params, outcome.opt_state, dict(outcome.metadata), like=like)
        assert fingerprint(again) == fingerprint(outcome)


def _bad_files() -> list[tuple[str, bytes]]:
    document = reference_document()
    payload = document["payload"]
    assert isinstance(payload, dict)
    text = reference_bytes().decode()
    versions: list[object] = [0, 2, -1, "1", 1.0, True, None, [1], 10**400]
    formats: list[object] = [FORMAT.upper(), FORMAT + "-v2", "", None, 1, [FORMAT]]
    sums: list[object] = [None, "", 0, "0" * 64, str(document["sha256"]).upper(), [document["sha256"]]]
    payloads: list[object] = [None, [], {}, "payload", {**payload, "extra": 1}]
    cases = [
        ("empty", b""),
        ("newline", b"\n"),
        ("spaces", b"   "),
        ("null", b"null"),
        ("list", b"[]"),
        ("object", b"{}"),
        ("string", b'"text"'),
        ("number", b"0"),
        ("binary", bytes(range(256))),
        ("not utf-8", b"\xff\xfe\xfd"),
        ("latin-1 inside a string", reference_bytes().replace(b'"adam"', b'"ad\xe9m"')),
        ("continuation byte", b"\x80" + reference_bytes()),
        ("deep arrays", b"[" * DEEP + b"]" * DEEP),
        ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        ("deep params", text.replace('"scale":1.5', '"scale":' + "[" * DEEP + "1.5" + "]" * DEEP).encode()),
        ("two documents", reference_bytes() * 2),
        ("trailing junk", reference_bytes() + b"x"),
        ("wrapped", b"[" + reference_bytes() + b"]"),
        ("NaN param", text.replace("0.5", "NaN").encode()),
        ("Infinity param", text.replace("0.5", "Infinity").encode()),
        ("-Infinity metadata", text.replace("0.25", "-Infinity").encode()),
        ("1e400 param", text.replace("0.5", "1e400").encode()),
        ("1e400 state", text.replace("0.001", "1e400").encode()),
        ("huge int", text.replace('"epoch":3', '"epoch":1' + "0" * 5000).encode()),
        ("edited without checksum", text.replace("0.5", "0.25").encode()),
        ("missing format", canonical({k: v for k, v in document.items() if k != "format"})),
        ("missing version", canonical({k: v for k, v in document.items() if k != "version"})),
        ("missing sha256", canonical({k: v for k, v in document.items() if k != "sha256"})),
        ("missing payload", canonical({k: v for k, v in document.items() if k != "payload"})),
    ]
    cases += [(f"version {v!r:.20}", canonical({**document, "version": v})) for v in versions]
    cases += [(f"format {f!r}", canonical({**document, "format": f})) for f in formats]
    cases += [(f"sha256 {s!r:.20}", canonical({**document, "sha256": s})) for s in sums]
    cases += [
        (f"payload {p!r:.20}", resign({**document, "payload": p})) for p in payloads if isinstance(p, dict)
    ]
    cases += [(f"payload {p!r:.20}", canonical({**document, "payload": p})) for p in payloads]
    for section in ("params", "opt_state", "metadata"):
        cases.append(
            (
                f"no {section}",
                resign({**document, "payload": {k: v for k, v in payload.items() if k != section}}),
            )
        )
        for value in ("text", 1, 1.5, True, [1.0]):
            cases.append(
                (f"{section} = {value!r}", resign({**document, "payload": {**payload, section: value}}))
            )
    return cases


BAD_FILES = _bad_files()


@pytest.mark.parametrize(("label", "data"), BAD_FILES, ids=[label for label, _ in BAD_FILES])
@pytest.mark.parametrize("with_like", [False, True])
def test_bad_files_raise_checkpoint_error(scratch: Path, label: str, data: bytes, with_like: bool) -> None:
    outcome = attempt(scratch / "fuzz.json", data, REFERENCE_PARAMS if with_like else None)
    assert isinstance(outcome, CheckpointError), f"{label} loaded"


@pytest.mark.parametrize(
    ("version", "fragment"),
    [(2, "version 2"), (True, "version True"), (1.0, "version 1.0"), ("1", "version '1'")],
)
def test_other_versions_are_named(scratch: Path, version: object, fragment: str) -> None:
    outcome = attempt(scratch / "fuzz.json", canonical({**reference_document(), "version": version}))
    assert isinstance(outcome, CheckpointError)
    assert fragment in str(outcome)
    assert f"reads {VERSION}" in str(outcome)


def test_messages_say_what_is_wrong(scratch: Path) -> None:
    path = scratch / "fuzz.json"
    text = reference_bytes().decode()
    cases = [
        (b"", "not JSON"),
        (b"[" * DEEP + b"]" * DEEP, "not JSON"),
        (reference_bytes()[:100], "not JSON"),
        (text.replace("0.5", "0.25").encode(), "checksum"),
        (text.replace("0.5", "NaN").encode(), "NaN"),
        (text.replace("0.5", "1e400").encode(), "1e400"),
        (canonical({**reference_document(), "format": "zip"}), FORMAT),
    ]
    for data, fragment in cases:
        outcome = attempt(path, data)
        assert isinstance(outcome, CheckpointError)
        assert fragment in str(outcome)
        assert str(path) in str(outcome)


def test_a_missing_file_or_a_folder_raises(scratch: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(scratch / "nothing-here.json")
    folder = scratch / "a-folder.json"
    folder.mkdir(exist_ok=True)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(folder)


def test_harmless_encodings_load_the_original(scratch: Path) -> None:
    data = reference_bytes()
    for variant in (b"\xef\xbb\xbf" + data, data.decode().encode("utf-16"), b"  \r\n\t" + data + b"\n\n"):
        outcome = attempt(scratch / "fuzz.json", variant, REFERENCE_PARAMS)
        assert isinstance(outcome, Checkpoint)
        assert is_reference(outcome)


# --- checksum-valid but wrong checkpoints -----------------------------------------------


def _resigned_with(name: str, value: object | None, rename: str | None = None) -> bytes:
    document = reference_document()
    payload = document["payload"]
    assert isinstance(payload, dict)
    params = dict(payload["params"])
    if rename is not None:
        params[rename] = params.pop(name)
    elif value is None:
        del params[name]
    else:
        params[name] = value
    return resign({**document, "payload": {**payload, "params": params}})


@pytest.mark.parametrize(
    ("name", "value", "rename", "loads_without_like"),
    [
        ("layers.0.weight", [[0.1, -0.0], [-2.0, 1e300], [5e-324, 1e-05]], None, True),  # transposed
        ("layers.0.weight", [[0.1, -2.0, 5e-324]], None, True),  # a row short
        ("layers.0.bias", [0.5, -1.25, 0.0], None, True),
        ("layers.0.bias", [[0.5, -1.25]], None, True),
        ("layers.1.bias", 2.5, None, True),
        ("scale", [1.5], None, True),
        ("layers.1.weight", [[3.0], [1.0, 2.0]], None, True),  # ragged
        ("layers.1.bias", None, None, True),
        ("layers.1.bias", None, "layers.1.gain", True),
        ("layers.1.extra", [1.0], None, True),
        ("layers.0.bias", [0.5, "1.25"], None, False),
        ("layers.0.bias", [0.5, 10**400], None, False),
        ("layers.0.bias", [0.5, True], None, False),
        ("layers.0.bias", [0.5, None], None, False),
        ("layers.0.bias", {"0": 0.5}, None, False),
    ],
)
def test_resigned_checkpoints_that_do_not_fit_the_model_are_rejected_by_name(
    scratch: Path, name: str, value: object | None, rename: str | None, loads_without_like: bool
) -> None:
    data = _resigned_with(name, value, rename)
    path = scratch / "fuzz.json"
    without_like = attempt(path, data)
    # The edit is a well-formed checkpoint (its checksum matches), so only the model can tell.
    assert isinstance(without_like, Checkpoint) == loads_without_like
    if isinstance(without_like, CheckpointError):
        assert "checksum" not in str(without_like)
        assert repr(name) in str(without_like)
    with_like = attempt(path, data, REFERENCE_PARAMS)
    assert isinstance(with_like, CheckpointError)
    assert repr(rename or name) in str(with_like)
    assert "checksum" not in str(with_like)
