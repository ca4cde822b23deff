"""The application sits on the library: no module outside ``functional_nn/cli`` imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import functional_nn

PACKAGE = Path(functional_nn.__file__).parent
APP = PACKAGE / "cli"
ROOTS = [PACKAGE, PACKAGE.parent / "tape", PACKAGE.parent / "optimizers"]


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (``from a.b import c`` counts ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def library_files() -> list[Path]:
    files = [p for root in ROOTS for p in root.rglob("*.py") if APP not in p.parents]
    return sorted(p for p in files if p.name != "__main__.py")  # ``python -m`` runs the app


def test_the_library_files_are_found() -> None:
    names = {p.relative_to(PACKAGE.parent).as_posix() for p in library_files()}
    assert {"functional_nn/train.py", "functional_nn/serialization.py", "tape/__init__.py"} <= names
    assert not any(name.startswith("functional_nn/cli/") for name in names)


def test_no_library_module_imports_the_application() -> None:
    offenders = {
        p.relative_to(PACKAGE.parent).as_posix(): sorted(
            m for m in imported_modules(p) if m == "functional_nn.cli" or m.startswith("functional_nn.cli.")
        )
        for p in library_files()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_the_whole_library_loads_nothing_of_the_application() -> None:
    modules = sorted(
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in library_files()
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('functional_nn.cli'))\n"
        "print(len(sys.modules), loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[1].strip() == "[]", done.stdout
