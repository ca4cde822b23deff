"""The wheel holds every module, marker and data file of the three packages, and nothing else.

The wheel is built from this checkout with the installed build backend (no build
isolation, so no network), and compared with the files on disk: a module or subpackage
added later is covered without touching this test.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tape", "functional_nn", "optimizers")
DATA = ROOT / "functional_nn" / "data"


def _shipped_on_disk() -> set[str]:
    """Every ``*.py`` and ``py.typed`` of the packages and every data file, as wheel paths."""
    files: set[Path] = set()
    for package in PACKAGES:
        files.update((ROOT / package).rglob("*.py"))
        files.update((ROOT / package).rglob("py.typed"))
    files.update(path for path in DATA.rglob("*") if path.is_file())
    return {path.relative_to(ROOT).as_posix() for path in files if "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out)]
    done = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"building the wheel failed:\n{done.stdout}{done.stderr}"
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {wheels}"
    with zipfile.ZipFile(wheels[0]) as wheel:
        return set(wheel.namelist())


def test_the_wheel_holds_every_module_marker_and_data_file(wheel_names: set[str]) -> None:
    expected = _shipped_on_disk()
    assert {f"{package}/__init__.py" for package in PACKAGES} <= expected  # the walk found the packages
    assert {f"{package}/py.typed" for package in PACKAGES} <= expected
    assert {"functional_nn/data/iris.csv", "functional_nn/data/digits.csv.gz"} <= expected
    missing = sorted(expected - wheel_names)
    assert not missing, f"files left out of the wheel: {missing}"


def test_the_wheel_holds_only_the_three_packages_and_its_metadata(wheel_names: set[str]) -> None:
    tops = {PurePosixPath(name).parts[0] for name in wheel_names}
    metadata = {top for top in tops if top.startswith("functional_nn-") and top.endswith(".dist-info")}
    assert len(metadata) == 1 and tops - metadata == set(PACKAGES), sorted(tops)
    compiled = sorted(name for name in wheel_names if "__pycache__" in name or name.endswith(".pyc"))
    assert not compiled, f"compiled files in the wheel: {compiled}"
