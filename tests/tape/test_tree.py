"""tape.tree: flatten/unflatten, tree_map, leaf paths and parameter names.

Container types are compared with ``type(...) is``: a PMap compares equal to a dict
with the same items and a PVector to a list, so ``==`` alone cannot catch a tree
rebuilt with the wrong containers.
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import tape
import tape.tree
from tape.gradient_tape import is_float_array
from tape.tree import (
    MAX_TREE_DEPTH,
    TreeDef,
    TreeError,
    array_layout,
    assert_same_structure,
    leaf_parameter_names,
    named_leaves,
    named_parameters,
    parameter_name,
    rows_of,
    tree_flatten,
    tree_flatten_floats,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)


class Pair(NamedTuple):
    first: object
    second: object


class Other(NamedTuple):
    first: object
    second: object


# --- strategies and independent reference helpers ------------------------------------

leaves = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# No "." in keys, so a dotted path can be walked back unambiguously.
keys = st.text(alphabet="abcxyz_0", min_size=1, max_size=3)


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    items = st.lists(children, max_size=3)
    maps = st.dictionaries(keys, children, max_size=3)
    return cast(
        "st.SearchStrategy[object]",
        st.one_of(
            items.map(tuple),
            items,
            items.map(pvector),
            st.tuples(children, children).map(lambda pair: Pair(*pair)),
            maps,
            maps.map(pmap),
        ),
    )


trees: st.SearchStrategy[object] = st.recursive(leaves, _containers, max_leaves=12)
"""Random nested trees of floats over every supported container type."""

map_rooted_trees: st.SearchStrategy[object] = st.one_of(
    st.dictionaries(keys, trees, max_size=4), st.dictionaries(keys, trees, max_size=4).map(pmap)
)


def _sequences_only(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    items = st.lists(children, max_size=3)
    return cast("st.SearchStrategy[object]", st.one_of(items.map(tuple), items, items.map(pvector)))


def _parameter_levels(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    maps = st.dictionaries(keys, children, max_size=3)
    map_nodes = cast("st.SearchStrategy[object]", st.one_of(maps, maps.map(pmap)))
    blocks = st.lists(map_nodes, min_size=1, max_size=2)  # sequences of maps, as "layers"
    return cast("st.SearchStrategy[object]", st.one_of(map_nodes, blocks, blocks.map(pvector)))


arrays: st.SearchStrategy[object] = st.recursive(leaves, _sequences_only, max_leaves=4)
parameter_like_trees: st.SearchStrategy[object] = st.dictionaries(
    keys, st.recursive(arrays, _parameter_levels, max_leaves=4), max_size=3
)
"""Maps of map-free arrays, maps and sequences of maps: no sequence mixes both kinds."""


def is_map(node: object) -> bool:
    return isinstance(node, (dict, PMap))


def is_sequence(node: object) -> bool:
    return isinstance(node, (list, tuple, PVector))


def assert_identical(a: object, b: object) -> None:
    """Same container types at every level, same keys, equal leaves."""
    assert type(a) is type(b), f"{type(a).__name__} vs {type(b).__name__}"
    if is_map(a):
        ma, mb = cast("Mapping[Hashable, object]", a), cast("Mapping[Hashable, object]", b)
        assert set(ma) == set(mb)
        for k in ma:
            assert_identical(ma[k], mb[k])
    elif is_sequence(a):
        sa, sb = cast("Sequence[object]", a), cast("Sequence[object]", b)
        assert len(sa) == len(sb)
        for x, y in zip(sa, sb, strict=True):
            assert_identical(x, y)
    else:
        assert a == b


def reference_leaves(tree: object) -> list[object]:
    """Depth-first leaves, maps in sorted key order (written independently of tape.tree)."""
    if is_map(tree):
        mapping = cast("Mapping[str, object]", tree)
        return [leaf for k in sorted(mapping) for leaf in reference_leaves(mapping[k])]
    if is_sequence(tree):
        return [leaf for kid in cast("Sequence[object]", tree) for leaf in reference_leaves(kid)]
    return [tree]


def reference_rebuild(tree: object, new_leaves: Iterator[object]) -> object:
    """``tree`` with its leaves replaced, in flattening order, by ``new_leaves``."""
    if is_map(tree):
        mapping = cast("Mapping[str, object]", tree)
        rebuilt = {k: reference_rebuild(mapping[k], new_leaves) for k in sorted(mapping)}
        return pmap(rebuilt) if isinstance(tree, PMap) else rebuilt
    if is_sequence(tree):
        kids = [reference_rebuild(kid, new_leaves) for kid in cast("Sequence[object]", tree)]
        if isinstance(tree, PVector):
            return pvector(kids)
        if isinstance(tree, list):
            return kids
        return type(tree)(*kids) if hasattr(tree, "_fields") else tuple(kids)
    return next(new_leaves)


def follow(tree: object, path: str) -> object:
    """The node at dotted ``path``: map parts are keys, sequence parts indices."""
    node = tree
    for part in path.split(".") if path else []:
        if is_map(node):
            node = cast("Mapping[str, object]", node)[part]
        else:
            node = cast("Sequence[object]", node)[int(part)]
    return node


def expected_name(tree: object, path: str) -> str:
    """``path`` cut after its last map key."""
    parts = path.split(".") if path else []
    node, cut = tree, 0
    for i, part in enumerate(parts):
        if is_map(node):
            node, cut = cast("Mapping[str, object]", node)[part], i + 1
        else:
            node = cast("Sequence[object]", node)[int(part)]
    return ".".join(parts[:cut])


def holds_map(tree: object) -> bool:
    """Whether a map with at least one leaf below it sits anywhere in ``tree``."""
    if is_map(tree):
        return bool(reference_leaves(tree))
    return is_sequence(tree) and any(holds_map(kid) for kid in cast("Sequence[object]", tree))


# --- flatten / unflatten ---------------------------------------------------------------


@given(trees)
def test_flatten_unflatten_round_trip_preserves_structure_and_container_types(tree: object) -> None:
    flat, treedef = tree_flatten(tree)
    assert treedef.num_leaves == len(flat)
    first = tree_unflatten(treedef, flat)  # the structure's first rebuild walks it
    again = tree_unflatten(treedef, flat)  # a later one runs its compiled builder
    assert_identical(first, tree)
    assert_identical(again, tree)
    if isinstance(again, list) and again:
        again.append(0.0)  # a builder's lists are new lists each time
        assert_identical(tree_unflatten(treedef, flat), tree)


@given(trees)
def test_leaves_come_depth_first_with_maps_in_sorted_key_order(tree: object) -> None:
    assert tree_leaves(tree) == reference_leaves(tree)
    assert tree_flatten(tree)[0] == reference_leaves(tree)


@given(trees)
def test_unflatten_puts_new_leaves_in_flattening_order(tree: object) -> None:
    treedef = tree_structure(tree)
    marked = [float(i) for i in range(treedef.num_leaves)]
    rebuilt = tree_unflatten(treedef, iter(marked))  # any iterable of leaves will do
    assert tree_structure(rebuilt) == treedef
    assert reference_leaves(rebuilt) == marked


def test_round_trip_of_each_container_type_by_hand() -> None:
    examples: list[object] = [
        3.5,
        (1.0, 2.0),
        Pair(1.0, [2.0, 3.0]),
        [1.0, (2.0,)],
        {"b": 1.0, "a": 2.0},
        pmap({"w": pvector([1.0, 2.0]), "b": 0.5}),
        pvector([pvector([1.0]), pvector([])]),
        {"layers": [pmap({"weight": ((1.0, 2.0), (3.0, 4.0)), "bias": Pair(5.0, 6.0)})]},
        [],
        {},
        (),
    ]
    for tree in examples:
        flat, treedef = tree_flatten(tree)
        rebuilt = tree_unflatten(treedef, flat)
        assert_identical(rebuilt, tree)
    assert tree_leaves({"b": 1.0, "a": 2.0}) == [2.0, 1.0]
    assert tree_leaves(pmap({"w": pvector([1.0, 2.0]), "b": 0.5})) == [0.5, 1.0, 2.0]
    assert tree_leaves([]) == []
    assert tree_leaves(3.5) == [3.5]


@pytest.mark.parametrize("depth", [1, 39, 41, 99])
def test_deep_and_wide_structures_rebuild_the_same_past_the_builders_bounds(depth: int) -> None:
    """Structures deeper than a compiled builder nests, or with more containers than it holds,
    are rebuilt by the walk: the same trees either way."""
    deep: object = 1.5
    for level in range(depth):
        deep = pmap({1: deep, 2: (float(level),)}) if level % 2 else [deep, Pair(0.5, 0.25)]
    wide = {"rows": [(float(i), [float(-i)]) for i in range(1500)], "n": 3.0}
    for tree in (deep, wide):
        flat, treedef = tree_flatten(tree)
        for _ in range(3):
            assert_identical(tree_unflatten(treedef, flat), tree)


@given(st.dictionaries(keys, leaves, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_maps_flatten_in_sorted_key_order_whatever_the_insertion_order(
    mapping: dict[str, float], rng: random.Random
) -> None:
    items = list(mapping.items())
    rng.shuffle(items)
    shuffled = dict(items)
    expected = [mapping[k] for k in sorted(mapping)]
    for tree in (mapping, shuffled, pmap(mapping), pmap(shuffled)):
        assert tree_leaves(tree) == expected
        assert [path for path, _ in named_leaves(tree)] == sorted(mapping)
    assert tree_structure(mapping) == tree_structure(shuffled)
    assert tree_structure(pmap(mapping)) == tree_structure(pmap(shuffled))


def test_pmap_flattening_does_not_depend_on_the_hash_seed() -> None:
    names = [f"key{i}" for i in range(40)]
    program = (
        "import json; from pyrsistent import pmap; from tape.tree import named_leaves;"
        f"t = pmap({{k: float(i) for i, k in enumerate({names!r})}});"
        "print(json.dumps(named_leaves(t)))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert [path for path, _ in outputs[0]] == sorted(names)


def test_flatten_of_unsortable_map_keys_is_a_tree_error_naming_where() -> None:
    with pytest.raises(TreeError, match="at the root"):
        tree_flatten({1: 1.0, "a": 2.0})
    with pytest.raises(TreeError, match=r"at outer\.0"):
        named_leaves({"outer": [{1: 1.0, "a": 2.0}]})


def test_structures_differ_when_container_types_differ() -> None:
    same_leaves: list[object] = [(1.0, 2.0), [1.0, 2.0], pvector([1.0, 2.0]), Pair(1.0, 2.0), Other(1.0, 2.0)]
    structures = [tree_structure(t) for t in same_leaves]
    for i, a in enumerate(structures):
        for j, b in enumerate(structures):
            assert (a == b) == (i == j)
    plain: object = {"a": 1.0}
    assert tree_structure(plain) != tree_structure(cast(object, pmap({"a": 1.0})))
    assert tree_structure({"a": 1.0}) != tree_structure({"b": 1.0})


@given(trees, st.integers(1, 3))
def test_unflatten_with_the_wrong_count_of_leaves_errors(tree: object, extra: int) -> None:
    flat, treedef = tree_flatten(tree)
    with pytest.raises(TreeError, match=f"{len(flat)} leaves but {len(flat) + extra} were given"):
        tree_unflatten(treedef, flat + [0.0] * extra)
    if flat:
        with pytest.raises(TreeError, match=f"{len(flat)} leaves but {len(flat) - 1} were given"):
            tree_unflatten(treedef, flat[:-1])


def test_treedef_repr_describes_the_structure() -> None:
    treedef: TreeDef[object] = tree_structure(cast(object, {"a": [1.0, (2.0,)]}))
    assert repr(treedef) == "TreeDef(dict[list[leaf, tuple[leaf]]])"


# --- tree_map --------------------------------------------------------------------------


@given(trees)
def test_tree_map_keeps_structure_and_maps_every_leaf(tree: object) -> None:
    doubled = tree_map(lambda x: 2.0 * x, tree)
    assert tree_structure(doubled) == tree_structure(tree)
    assert reference_leaves(doubled) == [2.0 * cast(float, x) for x in reference_leaves(tree)]
    assert_identical(tree_map(lambda x: x, tree), tree)


@given(trees)
def test_tree_map_over_several_trees_zips_their_leaves(tree: object) -> None:
    treedef = tree_structure(tree)
    second = tree_unflatten(treedef, [float(i) for i in range(treedef.num_leaves)])
    third = tree_unflatten(treedef, [100.0 * i for i in range(treedef.num_leaves)])
    combined = tree_map(lambda a, b, c: a + b - c, tree, second, third)
    assert tree_structure(combined) == treedef
    expected = [cast(float, a) + i - 100.0 * i for i, a in enumerate(reference_leaves(tree))]
    assert reference_leaves(combined) == expected


def test_tree_map_by_hand() -> None:
    out = tree_map(
        lambda a, b: a * b,
        pmap({"w": pvector([1.0, 2.0]), "b": 3.0}),
        pmap({"w": pvector([4.0, 5.0]), "b": 6.0}),
    )
    assert_identical(out, pmap({"w": pvector([4.0, 10.0]), "b": 18.0}))


@pytest.mark.parametrize(
    ("first", "other", "message"),
    [
        ({"a": [1.0, 2.0], "b": (1.0,)}, {"a": [1.0, 2.0], "b": [1.0]}, "at b: tuple of 1 vs list of 1"),
        ({"x": {"a": 1.0}}, {"x": {"b": 1.0}}, r"at x: keys \['a'\] vs \['b'\]"),
        ({"x": [1.0, [2.0]]}, {"x": [1.0, [2.0, 3.0]]}, r"at x\.1: length 1 vs 2"),
        ({"layers": [{"w": 1.0}]}, {"layers": [{"w": [1.0]}]}, r"at layers\.0\.w: leaf vs list of 1"),
        ({"p": Pair(1.0, 2.0)}, {"p": (1.0, 2.0)}, "at p: namedtuple of 2 vs tuple of 2"),
        ({"a": 1.0}, pmap({"a": 1.0}), "at the root: dict of 1 vs pmap of 1"),
        # The first differing path in flattening order, not any later one.
        ({"a": [1.0], "z": [1.0]}, {"a": (1.0,), "z": 2.0}, "at a: list of 1 vs tuple of 1"),
    ],
)
def test_tree_map_structure_mismatch_names_the_first_differing_path(
    first: object, other: object, message: str
) -> None:
    with pytest.raises(TreeError, match=f"tree 1 differs from the first {message}$"):
        tree_map(lambda a, b: a, first, other)
    with pytest.raises(TreeError, match=f"differ in structure {message}$"):
        assert_same_structure(first, other)


def test_tree_map_mismatch_names_which_extra_tree_differs() -> None:
    with pytest.raises(TreeError, match="tree 2 differs from the first at 0: leaf vs list of 1"):
        tree_map(lambda a, b, c: a, [1.0], [1.0], [[1.0]])


def test_assert_same_structure_accepts_equal_structures_and_uses_given_names() -> None:
    assert_same_structure({"a": [1.0]}, {"a": [7.0]})
    with pytest.raises(TreeError, match=r"^params and grads differ"):
        assert_same_structure([1.0], [1.0, 2.0], names=("params", "grads"))


# --- names -----------------------------------------------------------------------------


@given(trees)
def test_named_leaves_paths_lead_to_their_leaves(tree: object) -> None:
    named = named_leaves(tree)
    assert [leaf for _, leaf in named] == reference_leaves(tree)
    for path, leaf in named:
        assert follow(tree, path) == leaf
    # Paths are unique (keys contain no dots, so no two paths collide).
    assert len({path for path, _ in named}) == len(named)


def test_named_leaves_use_keys_and_indices_joined_by_dots() -> None:
    weight = [[float(10 * r + c) for c in range(3)] for r in range(4)]
    tree = {"layers": [pmap({"weight": pvector(pvector(row) for row in weight), "bias": [0.5]})]}
    named = dict(named_leaves(tree))
    assert named["layers.0.weight.3.2"] == 32.0
    assert named["layers.0.weight.0.0"] == 0.0
    assert named["layers.0.bias.0"] == 0.5
    assert next(iter(named)) == "layers.0.bias.0"  # "bias" sorts before "weight"
    assert named_leaves(2.0) == [("", 2.0)]
    assert named_leaves(Pair(1.0, (2.0,))) == [("0", 1.0), ("1.0", 2.0)]
    assert named_leaves({3: 1.0, 10: 2.0}) == [("3", 1.0), ("10", 2.0)]  # numeric key order


@given(map_rooted_trees)
def test_leaf_parameter_names_cut_paths_after_the_last_map_key(tree: object) -> None:
    names = leaf_parameter_names(tree)
    paths = [path for path, _ in named_leaves(tree)]
    assert names == [expected_name(tree, path) for path in paths]
    for name, path in zip(names, paths, strict=True):
        assert path == name or path.startswith(name + ".")
        assert parameter_name(path, tree) == name


def test_leaf_parameter_names_by_hand() -> None:
    params = pmap(
        {
            "layers": pvector(
                [
                    pmap(
                        {
                            "weight": pvector([pvector([1.0, 2.0]), pvector([3.0, 4.0])]),
                            "bias": pvector([0.0, 0.0]),
                        }
                    )
                ]
            ),
            "scale": 1.0,
        }
    )
    assert leaf_parameter_names(params) == ["layers.0.bias"] * 2 + ["layers.0.weight"] * 4 + ["scale"]
    assert parameter_name("layers.0.weight.1.0", params) == "layers.0.weight"
    assert leaf_parameter_names(3.0) == [""]
    with pytest.raises(TreeError, match=r"no leaf at path 'layers\.0\.weight'$"):
        parameter_name("layers.0.weight", params)


@given(parameter_like_trees)
def test_named_parameters_split_at_the_last_map_keys(tree: object) -> None:
    parts = named_parameters(tree)
    names = [name for name, _ in parts]
    assert len(set(names)) == len(names)
    for name, sub in parts:
        assert not holds_map(sub)
        assert_identical(sub, follow(tree, name))
    # Concatenated, the parameters' leaves are the tree's, each named by its parameter.
    assert [leaf for _, sub in parts for leaf in reference_leaves(sub)] == reference_leaves(tree)
    assert [name for name, sub in parts for _ in reference_leaves(sub)] == leaf_parameter_names(tree)


def test_named_parameters_by_hand() -> None:
    w, b = pvector([pvector([1.0, 2.0])]), pvector([3.0])
    tree = pmap({"layers": [pmap({"weight": w, "bias": b})]})
    parts: list[tuple[str, object]] = list(named_parameters(tree))
    assert [name for name, _ in parts] == ["layers.0.bias", "layers.0.weight"]
    assert parts[0][1] is b
    assert parts[1][1] is w
    assert named_parameters(3.0) == [("", 3.0)]


def test_names_beside_a_map_in_a_sequence() -> None:
    # Leaf names follow the contract (cut after the last map key, else the full path);
    # named_parameters must split such a sequence, so there the two differ by design.
    assert leaf_parameter_names([1.0, {"a": 2.0}]) == ["0", "1.a"]
    assert [name for name, _ in named_parameters([1.0, {"a": 2.0}])] == ["0", "1.a"]
    assert leaf_parameter_names({"layer": [1.0, {"a": 2.0}]}) == ["layer", "layer.1.a"]
    assert [name for name, _ in named_parameters({"layer": [1.0, {"a": 2.0}]})] == ["layer.0", "layer.1.a"]
    assert named_parameters([1.0, 2.0]) == [("", [1.0, 2.0])]


def test_a_tree_too_deep_to_walk_is_refused_clearly() -> None:
    deep: object = 1.0
    for _ in range(900):
        deep = [deep]
    for walk in (tree_leaves, named_leaves, named_parameters, leaf_parameter_names):
        with pytest.raises(TreeError, match=f"nested more than {MAX_TREE_DEPTH} levels deep"):
            walk(deep)
    with pytest.raises(TreeError, match=r"^argument 0: the tree is nested more than"):
        tape.grad(lambda p: 0.0)(deep)
    shallow: object = 1.0
    for _ in range(MAX_TREE_DEPTH):
        shallow = [shallow]
    assert tree_leaves(shallow) == [1.0]


def test_flattening_remembers_persistent_trees_without_changing_any_result() -> None:
    params = pmap({"w": pvector([pvector([1.0, 2.0]), pvector([3.0, 4.0])]), "b": pvector([0.5, 0.25])})
    leaves, treedef = tree_flatten(params)
    leaves.append(99.0)  # the caller's list is its own
    again, treedef_again = tree_flatten(params)
    assert again == [0.5, 0.25, 1.0, 2.0, 3.0, 4.0] and treedef_again == treedef
    rebuilt = tree_unflatten(treedef, [float(i) for i in range(6)])
    assert tree_flatten(rebuilt) == ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], treedef)
    arrays_kept = tree_flatten(params, lambda x: isinstance(x, PVector) and not isinstance(x[0], PVector))
    assert len(arrays_kept[0]) == 3  # b and the two rows of w: not taken from the memory
    whole_leaves, whole_def = arrays_kept
    assert tree_leaves(tree_unflatten(whole_def, whole_leaves)) == tree_leaves(params)
    mutable = {"w": [1.0, 2.0]}
    assert tree_leaves(mutable) == [1.0, 2.0]
    mutable["w"][0] = 7.0
    assert tree_leaves(mutable) == [7.0, 2.0]  # mutable containers are walked every time


def _freeze(tree: object) -> object:
    """``tree`` with every container a persistent one (so that flattening remembers it)."""
    if isinstance(tree, (dict, PMap)):
        return pmap({key: _freeze(value) for key, value in tree.items()})
    if isinstance(tree, (list, tuple, PVector)):
        return pvector([_freeze(item) for item in tree])
    return tree


@given(trees, st.booleans(), st.integers(min_value=0, max_value=11), st.sampled_from([1, True, "x", None]))
@example(tree=(), frozen=False, at=0, odd=1)
def test_flatten_floats_is_the_flattening_of_a_tree_of_floats_and_none_otherwise(
    tree: object, frozen: bool, at: int, odd: object
) -> None:
    """For fresh trees, remembered ones and rebuilt ones alike, before and after the
    answer is remembered; one non-float leaf anywhere gives ``None``."""
    tree = _freeze(tree) if frozen else tree
    leaves, treedef = tree_flatten(tree)
    for candidate in (tree, tree, tree_unflatten(treedef, leaves)):
        assert tree_flatten_floats(candidate) == (leaves, treedef)
        assert tree_flatten_floats(candidate) == (leaves, treedef)  # the remembered answer
    if leaves:
        spoiled = [odd if k == at % len(leaves) else leaf for k, leaf in enumerate(leaves)]
        bad = tree_unflatten(treedef, cast("list[float]", spoiled))
        assert tree_flatten(bad)[0] == spoiled
        assert tree_flatten_floats(bad) is None and tree_flatten_floats(bad) is None
    promised = tree_unflatten(treedef, [float(k) for k in range(len(leaves))], floats=True)
    assert tree_flatten_floats(promised) == ([float(k) for k in range(len(leaves))], treedef)


class _Key(str, Enum):
    a = "a"


@pytest.mark.parametrize(
    ("first", "then"),
    [({"a": 1.0}, {_Key.a: 1.0}), ({1: 0.5}, {1.0: 0.5}), ({1: 0.5}, {True: 0.5}), ({0.0: 0.5}, {-0.0: 0.5})],
)
def test_equal_but_distinct_map_keys_are_rebuilt_as_given(first: object, then: object) -> None:
    """Structures with equal keys compare equal; each tree still gets back its own keys."""
    for tree in (first, first, then, then):
        flat, treedef = tree_flatten(tree)
        rebuilt = cast("dict[object, float]", tree_unflatten(treedef, flat))
        given = cast("dict[object, float]", tree)
        assert rebuilt == given
        assert [(type(k), repr(k)) for k in rebuilt] == [(type(k), repr(k)) for k in given]


_sequence_kinds: st.SearchStrategy[Callable[[list[object]], object]] = st.sampled_from([list, tuple, pvector])


@st.composite
def _float_arrays(draw: st.DrawFn) -> object:
    """A rectangular nested sequence of floats, each level of any sequence kind (row by row)."""
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))

    def build(axes: list[int]) -> object:
        if not axes:
            return draw(leaves)
        return draw(_sequence_kinds)([build(axes[1:]) for _ in range(axes[0])])

    return build(shape)


_array_trees = st.recursive(st.one_of(leaves, _float_arrays()), _containers, max_leaves=8)


def _shape(array: Any) -> tuple[int, ...]:
    return () if array.__class__ is float else (len(array), *_shape(array[0]))


@given(_array_trees)
@example({"w": [[1.0, 2.0], (3.0, 4.0)], "b": pvector([]), "n": Pair(0.5, [0.25])})
def test_array_layout_is_the_flattening_with_float_arrays_as_leaves(tree: object) -> None:
    """The structure and leaves ``tree_flatten(tree, is_float_array)`` gives, from the
    float leaves' structure alone: each leaf's floats and shape."""
    floats, treedef = tree_flatten(tree)
    layout = array_layout(treedef)
    arrays, array_def = tree_flatten(tree, is_float_array)
    assert layout.treedef == array_def
    assert len(layout.parts) == len(arrays)
    assert [stop for _, stop, _ in layout.parts[-1:]] == ([len(floats)] if arrays else [])
    for (start, stop, shape), leaf in zip(layout.parts, arrays, strict=True):
        assert floats[start:stop] == tree_leaves(leaf)
        assert shape == (None if leaf.__class__ is float else _shape(leaf))


def _rectangular_shape(x: object) -> tuple[int, ...] | None:
    """The reference: the shape of a nest of floats with equal rows and no empty axis, else None."""
    if x.__class__ is float:
        return ()
    if not isinstance(x, (list, tuple, type(pvector()))) or not x:
        return None
    shapes = {_rectangular_shape(item) for item in cast("Sequence[object]", x)}
    if len(shapes) != 1 or None in shapes:
        return None
    return (len(cast("Sequence[object]", x)), *shapes.pop())  # type: ignore[misc]


_ragged = st.recursive(
    st.floats(-2.0, 2.0),
    lambda inner: st.lists(inner, max_size=3).flatmap(
        lambda items: _sequence_kinds.map(lambda kind: kind(items))
    ),
    max_leaves=10,
)


@given(_ragged)
@example([[[1.0]], []])  # an empty row of a deeper array: IndexError before
@example([[], [[1.0]]])
@example([[1.0, 2.0], [3.0]])
def test_is_float_array_is_exactly_the_rectangular_nests_of_floats(x: object) -> None:
    assert is_float_array(x) == (x.__class__ is not float and _rectangular_shape(x) is not None)


@given(st.lists(st.lists(st.floats(allow_nan=False), min_size=1, max_size=4), min_size=1, max_size=4))
def test_rows_of_a_persistent_matrix_are_its_rows_as_tuples_made_once(rows: list[list[float]]) -> None:
    matrix = pvector(pvector(row) for row in rows)
    got = rows_of(matrix)
    assert got == tuple(tuple(row) for row in rows) and all(type(row) is tuple for row in got)
    assert rows_of(matrix) is got  # remembered for as long as the matrix lives
    for other in (rows, tuple(map(tuple, rows)), [pvector(row) for row in rows]):
        assert rows_of(other) is other  # not a pvector of rows: as it is


def test_rows_of_forgets_a_matrix_when_it_is_collected() -> None:
    """The memo holds a matrix's rows only while the matrix lives: it does not grow over a
    loop that makes new weights, and a new matrix (perhaps at a collected one's id) gets its own."""
    before = len(tape.tree._ROWS)
    for k in range(500):
        matrix = pvector([pvector([float(k), 2.0])])
        assert rows_of(matrix) == ((float(k), 2.0),)
    del matrix
    gc.collect()
    assert len(tape.tree._ROWS) <= before
