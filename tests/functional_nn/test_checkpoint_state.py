"""A checkpoint's optimizer state is checked against its params at load, and tampering that
recomputes the checksum ends in a CheckpointError or in a checkpoint that is valid throughout.

The checksum detects damage, not tampering: anyone who edits a file can recompute it, as
these tests do, exactly as the writer computes it. What keeps a tampered file from being
used is the checking behind the checksum.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import PMap

import optimizers
from functional_nn import MLP, random
from functional_nn.serialization import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from optimizers import Optimizer, OptState, StateError, check_state
from tape.tree import tree_leaves, tree_map, tree_structure

MODEL = MLP(3, (4, 2))  # weights of 4x3 and 2x4: every transpose or swap changes a shape
OPTIMIZERS: dict[str, Optimizer] = {
    "adam": optimizers.adam(0.01),
    "clipped momentum": optimizers.chain(
        optimizers.clip_by_global_norm(1.0), optimizers.sgd(0.1, momentum=0.9, weight_decay=0.01)
    ),
}


def grads_of(params: object) -> Any:
    """A gradient of the params' structure: any will do for checking that a step runs."""
    return tree_map(lambda p: 0.5 * p + 0.1, params)


@cache
def trained(name: str) -> tuple[PMap[str, object], OptState]:
    """An MLP's params and its optimizer's state after three steps."""
    opt = OPTIMIZERS[name]
    params: PMap[str, object] = MODEL.init(random.key(0))
    state = opt.init(params)
    for _ in range(3):
        params, state = opt.step(params, grads_of(params), state)
    return params, state


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@cache
def document_text(name: str) -> bytes:
    """The bytes of a real checkpoint of ``trained(name)``."""
    params, state = trained(name)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.json"
        save_checkpoint(path, params, state, {"epoch": 3, "history": [{"loss": 0.5, "epoch": 0}]})
        return path.read_bytes()


def document(name: str) -> dict[str, Any]:
    loaded = json.loads(document_text(name))
    assert isinstance(loaded, dict)
    return loaded


def resigned(doc: dict[str, Any]) -> bytes:
    """The document with its checksum recomputed over its payload, exactly as the writer does."""
    return canonical({**doc, "sha256": hashlib.sha256(canonical(doc["payload"])).hexdigest()}) + b"\n"


def at(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def replaced(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``tree`` with the node at ``path`` replaced by ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {**tree, head: replaced(tree[head], rest, value)}
    return [*tree[:head], replaced(tree[head], rest, value), *tree[head + 1 :]]


def transpose(matrix: list[list[float]]) -> list[list[float]]:
    return [list(column) for column in zip(*matrix, strict=True)]


ADAM_MU = ("payload", "opt_state", "transform", "parts", 0, "mu", "layers")


def load(path: Path, data: bytes, like: object | None) -> Checkpoint | CheckpointError:
    path.write_bytes(data)
    try:
        return load_checkpoint(path, like=like)
    except CheckpointError as error:
        assert str(error).strip()
        return error


# --- targeted edits ------------------------------------------------------------------------


@pytest.mark.parametrize("with_like", [False, True])
def test_adam_moments_swapped_between_layers_are_refused(tmp_path: Path, with_like: bool) -> None:
    params, _ = trained("adam")
    doc = document("adam")
    layers = at(doc, ADAM_MU)
    first, second = layers
    swapped = [{**first, "weight": second["weight"]}, {**second, "weight": first["weight"]}]
    outcome = load(
        tmp_path / "c.json", resigned(replaced(doc, ADAM_MU, swapped)), params if with_like else None
    )
    assert isinstance(outcome, CheckpointError)
    message = str(outcome)
    assert "optimizer state refused" in message
    assert "'transform.parts.0.mu'" in message
    assert "'layers.0.weight' has shape (4, 3) in the params but (2, 4) in the state" in message


@pytest.mark.parametrize("with_like", [False, True])
def test_a_transposed_second_moment_is_refused(tmp_path: Path, with_like: bool) -> None:
    params, _ = trained("adam")
    doc = document("adam")
    nu = (*ADAM_MU[:-2], "nu", "layers", 1, "weight")
    edited = replaced(doc, nu, transpose(at(doc, nu)))
    outcome = load(tmp_path / "c.json", resigned(edited), params if with_like else None)
    assert isinstance(outcome, CheckpointError)
    assert "'transform.parts.0.nu'" in str(outcome)
    assert "'layers.1.weight' has shape (2, 4) in the params but (4, 2) in the state" in str(outcome)


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("payload", "opt_state", "step"), -1, "'step' should be a step count (an int >= 0), got -1"),
        (("payload", "opt_state", "transform", "parts", 0, "count"), -3, "'transform.parts.0.count'"),
        ((*ADAM_MU[:-2], "nu", "layers", 0, "bias", 2), -0.5, "should be a finite number >= 0"),
        ((*ADAM_MU, 0, "bias", 2), 7, "'transform.parts.0.mu.layers.0.bias.2' is a int, not a float"),
        ((*ADAM_MU, 0, "bias", 2), 10**400, "too large for a float"),
        (("payload", "opt_state", "transform", "parts", 0, "transform"), "trace", "should hold exactly"),
    ],
    ids=["negative step", "negative count", "negative nu", "int in mu", "huge int in mu", "renamed"],
)
def test_damaged_state_values_are_refused_by_key(
    tmp_path: Path, path: tuple[Any, ...], value: object, fragment: str
) -> None:
    outcome = load(tmp_path / "c.json", resigned(replaced(document("adam"), path, value)), None)
    assert isinstance(outcome, CheckpointError)
    assert fragment in str(outcome)


def test_the_check_can_be_turned_off_for_a_state_of_ones_own(tmp_path: Path) -> None:
    doc = document("adam")
    path = tmp_path / "c.json"
    path.write_bytes(resigned(replaced(doc, ("payload", "opt_state"), {"my_optimizer": [1, 2]})))
    with pytest.raises(CheckpointError, match="optimizer state refused"):
        load_checkpoint(path)
    assert load_checkpoint(path, check_opt_state=False).opt_state == {"my_optimizer": [1, 2]}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_real_checkpoint_loads_and_resumes(tmp_path: Path, name: str) -> None:
    params, state = trained(name)
    outcome = load(tmp_path / "c.json", document_text(name), params)
    assert isinstance(outcome, Checkpoint)
    assert outcome.params == params and outcome.opt_state == state
    opt = OPTIMIZERS[name]
    assert opt.step(outcome.params, grads_of(params), outcome.opt_state) == opt.step(
        params, grads_of(params), state
    )


# --- random tampering, checksum recomputed -------------------------------------------------

ODD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    3,
    1.5,
    -0.5,
    "",
    "x",
    "adam",
    "scale_by_adam",
    [],
    {},
    [1.0],
    [[1.0, 2.0]],
    {"a": 1.0},
    10**400,
    -(10**400),
]
KEYS = [
    "extra",
    "step",
    "count",
    "mu",
    "nu",
    "velocity",
    "parts",
    "transform",
    "weight",
    "bias",
    "0",
    "layers.9.w",
]


def node_paths(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node in ``tree``, ``tree`` itself first."""
    yield path
    if isinstance(tree, dict):
        for key in sorted(tree):
            yield from node_paths(tree[key], (*path, key))
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from node_paths(item, (*path, index))


def is_matrix(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(row, list) and len(row) == len(value[0]) > 0 for row in value)
    )


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _negated(value: Any) -> Any:
    return -value - 1 if isinstance(value, int) else -abs(value) - 0.5


Mutation = Callable[[st.DrawFn, Any], Any]


def retype(draw: st.DrawFn, payload: Any) -> Any:
    path = draw(st.sampled_from(list(node_paths(payload))[1:]))
    return replaced(payload, path, draw(st.sampled_from(ODD_VALUES)))


def drop(draw: st.DrawFn, payload: Any) -> Any:
    path = draw(st.sampled_from(list(node_paths(payload))[1:]))
    parent = at(payload, path[:-1])
    if isinstance(parent, dict):
        kept: Any = {k: v for k, v in parent.items() if k != path[-1]}
    else:
        kept = [v for i, v in enumerate(parent) if i != path[-1]]
    return replaced(payload, path[:-1], kept)


def add(draw: st.DrawFn, payload: Any) -> Any:
    containers = [p for p in node_paths(payload) if isinstance(at(payload, p), (dict, list))]
    path = draw(st.sampled_from(containers))
    node, value = at(payload, path), draw(st.sampled_from(ODD_VALUES))
    if isinstance(node, dict):
        return replaced(payload, path, {**node, draw(st.sampled_from(KEYS)): value})
    index = draw(st.integers(0, len(node)))
    return replaced(payload, path, [*node[:index], value, *node[index:]])


def swap(draw: st.DrawFn, payload: Any) -> Any:
    paths = list(node_paths(payload))[1:]
    first = draw(st.sampled_from(paths))
    others = [p for p in paths if p[: len(first)] != first and first[: len(p)] != p]
    second = draw(st.sampled_from(others))
    a, b = at(payload, first), at(payload, second)
    return replaced(replaced(payload, first, b), second, a)


def huge(draw: st.DrawFn, payload: Any) -> Any:
    numbers = [p for p in node_paths(payload) if is_number(at(payload, p))]
    return replaced(payload, draw(st.sampled_from(numbers)), draw(st.sampled_from([10**400, -(10**400)])))


def negate(draw: st.DrawFn, payload: Any) -> Any:
    numbers = [p for p in node_paths(payload) if is_number(at(payload, p))]
    path = draw(st.sampled_from(numbers))
    return replaced(payload, path, _negated(at(payload, path)))


def transposed(draw: st.DrawFn, payload: Any) -> Any:
    matrices = [p for p in node_paths(payload) if is_matrix(at(payload, p))]
    path = draw(st.sampled_from(matrices))
    return replaced(payload, path, transpose(at(payload, path)))


MUTATIONS: dict[str, Mutation] = {
    "retype": retype,
    "drop": drop,
    "add": add,
    "swap": swap,
    "huge": huge,
    "negate": negate,
    "transpose": transposed,
}


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """A real checkpoint whose payload had one to three structural edits; checksum recomputed."""
    name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    doc = document(name)
    payload = doc["payload"]
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(MUTATIONS)))
        payload = MUTATIONS[kind](draw, payload)
        done.append(kind)
    return name, resigned({**doc, "payload": payload}), done


def assert_valid(name: str, loaded: Checkpoint, like: object | None) -> None:
    """Everything a loaded checkpoint holds can be used: params, and a state that fits them."""
    leaves = tree_leaves(loaded.params)
    assert all(type(leaf) is float and math.isfinite(leaf) for leaf in leaves)
    if like is not None:
        assert tree_structure(loaded.params) == tree_structure(like)
    assert isinstance(loaded.metadata, dict)
    if loaded.opt_state is None:
        return
    check_state(loaded.opt_state, loaded.params)  # the loader checked it: it must hold
    opt = OPTIMIZERS[name]
    try:
        check_state(loaded.opt_state, loaded.params, opt)
    except StateError:
        return  # a state of another chain of transformations: the caller is told before any step
    opt.step(loaded.params, grads_of(loaded.params), loaded.opt_state)  # runs: nothing is amiss


@settings(max_examples=300, derandomize=True, deadline=None)
@given(case=tampered(), with_like=st.booleans())
def test_tampered_checkpoints_are_refused_or_valid_throughout(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, bytes, list[str]], with_like: bool
) -> None:
    name, data, done = case
    params, _ = trained(name)
    like = params if with_like else None
    path = tmp_path_factory.getbasetemp() / "tampered.json"
    outcome = load(path, data, like)
    if isinstance(outcome, CheckpointError):
        assert "checksum" not in str(outcome), done
        return
    assert_valid(name, outcome, like)
    again = path.with_name("again.json")
    save_checkpoint(again, outcome.params, outcome.opt_state, dict(outcome.metadata))
    assert load_checkpoint(again, like=like) == outcome
