"""The layering of ``tape/``: imports point down only, none is deferred, no private name crosses modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TAPE = Path(__file__).resolve().parents[2] / "tape"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "tape.errors",
        "tape.floats",
        "tape.tree",
        "tape.kernels",
        "tape.kernels.shapes",
        "tape.kernels.broadcast",
        "tape.kernels.reduce",
        "tape.kernels.matmul",
        "tape.kernels.softmax",
        "tape.kernels.indexing",
        "tape.kernels.conv",
        "tape.kernels.attention",
        "tape.kernels.written",
    ),
    ("tape.core", "tape.core.op"),
    ("tape.core.node",),
    ("tape.core.recording",),
    ("tape.validate",),
    ("tape.value",),
    ("tape.array",),
    ("tape.ops.arithmetic", "tape.ops.reductions", "tape.ops.normalization", "tape.ops.shape"),
    ("tape.ops.elementwise", "tape.ops.broadcasting", "tape.ops.indexing"),
    ("tape.ops.linear", "tape.ops.losses", "tape.ops.convolution", "tape.ops.attention"),
    ("tape.ops",),
    ("tape.graph", "tape.gradient_tape", "tape.arrays", "tape.primitives"),
    ("tape.transforms",),
    ("tape.jit",),
    ("tape.forward",),
    ("tape.higher_order",),
    ("tape.gradient_check",),
    ("tape.testing",),
    ("tape",),
)
"""Every module of ``tape/`` by layer, bottom first: a module may import only from layers below it
(or, inside one layer, modules listed before it)."""

ORDER = [name for layer in LAYERS for name in layer]
LEVEL = {name: level for level, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = path.relative_to(TAPE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(TAPE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert sorted(_module_name(p) for p in MODULES) == sorted(ORDER)


def _tape_imports(tree: ast.AST) -> list[tuple[ast.stmt, str, list[str]]]:
    found: list[tuple[ast.stmt, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tape":
            found.append((node, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tape":
                    found.append((node, alias.name, []))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_down_and_are_not_deferred(path: Path) -> None:
    name = _module_name(path)
    tree = ast.parse(path.read_text())
    top_level = {id(stmt) for stmt in tree.body}
    typing_only = {
        id(inner)
        for stmt in tree.body
        if isinstance(stmt, ast.If) and ast.unparse(stmt.test) == "TYPE_CHECKING"
        for inner in stmt.body
    }
    for stmt, module, names in _tape_imports(tree):
        if id(stmt) in typing_only:
            continue  # annotations only: no import at run time
        assert id(stmt) in top_level, f"{name} imports {module} inside a function"
        targets = [f"{module}.{n}" if f"{module}.{n}" in LEVEL else module for n in names] or [module]
        for target in targets:
            assert target in LEVEL, f"{name} imports {target}, which has no layer"
            if name == "tape":
                continue
            below = LEVEL[target] < LEVEL[name] or (
                LEVEL[target] == LEVEL[name] and ORDER.index(target) < ORDER.index(name)
            )
            assert below, f"{name} (layer {LEVEL[name]}) imports {target} (layer {LEVEL[target]})"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_private_name_crosses_modules(path: Path) -> None:
    """No ``from tape.x import _y``, and ``obj._attr`` only on ``self``, ``cls`` or a class of its own."""
    name = _module_name(path)
    tree = ast.parse(path.read_text())
    for _, module, names in _tape_imports(tree):
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{name} imports private names {private} from {module}"
    own_classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            owner = base.id if isinstance(base, ast.Name) else None
            assert owner in {"self", "cls", *own_classes}, (
                f"{name} line {node.lineno}: reaches into {node.attr} of {ast.unparse(base)}"
            )
