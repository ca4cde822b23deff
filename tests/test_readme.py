"""The README's commands and examples are the ones that work."""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    commands = [block.strip() for block in _blocks("bash")]
    assert len(commands) == 2, "the README gives exactly two set-up commands"
    install_and_run, install_and_test = commands
    assert "functional_nn train" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text()
    assert install_and_test in ci.splitlines()


def test_python_examples_run() -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in _blocks("python"):
            exec(compile(block, "README.md", "exec"), namespace)  # the README's own examples
    printed = out.getvalue()
    assert "accuracy 100%" in printed  # the first example learns the moons
    assert "12.0 12.0 6.0" in printed  # derivatives of x**3 at 2
    assert "True" in printed  # the gradient check passed
    assert "True True" in printed  # a resumed fit is the uninterrupted one


def test_custom_op_example_prints_its_graph() -> None:
    """The "Your own ops" block prints the DOT text shown right after it, line for line."""
    section = README.split("### Your own ops, and drawing the tape", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    shown = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None and shown is not None
    out = io.StringIO()
    namespace: dict[str, object] = {"__name__": "readme_custom_op"}
    with contextlib.redirect_stdout(out):
        exec(
            compile(code.group(1).replace('"my_softplus"', '"softplus_readme"'), "README.md", "exec"), namespace
        )
    printed = out.getvalue().splitlines()
    assert printed[0] == "0.6931471805599453 0.6931471805599453"
    assert printed[1] == "0.25"
    assert "\n".join(printed[2:]) == shown.group(1).strip().replace("my_softplus", "softplus_readme")


def _names_imported_from(package: str) -> list[str]:
    """Every name in a ``from <package> import ...`` the README writes, in code or prose."""
    pattern = rf"from {re.escape(package)} import (\([^)]*\)|[^\n`]+)"
    names: list[str] = []
    for group in re.findall(pattern, README):
        for part in group.strip("()").split(","):
            name = part.split(" as ")[0].strip()
            if name:
                names.append(name)
    return names


def test_every_name_the_readme_imports_from_functional_nn_is_there() -> None:
    package = importlib.import_module("functional_nn")
    names = _names_imported_from("functional_nn")
    assert {"MLP", "cross_entropy_with_logits", "hinge_loss_batch", "cross_entropy_with_logits_batch"} <= set(
        names
    )
    missing = [name for name in names if not hasattr(package, name)]
    assert missing == []
    assert set(names) <= set(package.__all__)


_TIMING = re.compile(r" \| \d+\.\ds$")


def _without_timing(lines: list[str]) -> list[str]:
    return [_TIMING.sub("", line) for line in lines]


def test_the_csv_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """Each ``$`` command of "Training on your own CSV file", run in bash with ``fnn`` and
    ``python`` the installed package's, prints the lines shown after it (epochs elided by
    ``...`` are left out; epoch times are not compared)."""
    section = README.split("### Training on your own CSV file", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert [command.split()[:2] for command, _ in steps] == [
        ["python", "-c"],
        ["fnn", "train"],
        ["fnn", "evaluate"],
        ["fnn", "predict"],
        ["fnn", "predict"],
    ]
    prelude = (
        f'fnn() {{ "{sys.executable}" -m functional_nn "$@"; }}; python() {{ "{sys.executable}" "$@"; }}\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for command, shown in steps:
        done = subprocess.run(
            ["bash", "-c", prelude + command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
        printed = done.stdout.splitlines()
        epochs_shown = {line.split("|")[0] for line in shown if line.startswith("epoch ")}
        kept = [
            line for line in printed if not line.startswith("epoch ") or line.split("|")[0] in epochs_shown
        ]
        assert _without_timing(kept) == _without_timing([line for line in shown if line != "..."]), command


def test_the_export_example_is_what_fnn_export_prints(tmp_path: Path) -> None:
    """The "To PyTorch" block is the command's real output for the README's moons run."""
    section = README.split("### To PyTorch", 1)[1]
    shown = re.search(
        r"```text\n\$ fnn export moons/checkpoint.json moons.safetensors\n(.*?)```", section, re.S
    )
    assert shown is not None
    fnn = [sys.executable, "-m", "functional_nn"]
    train = [
        "train",
        "--dataset",
        "moons",
        "--hidden",
        "16,16",
        "--epochs",
        "30",
        "--out",
        "moons",
        "--quiet",
    ]
    subprocess.run([*fnn, *train], cwd=tmp_path, check=True, capture_output=True)
    export = ["export", "moons/checkpoint.json", "moons.safetensors"]
    printed = subprocess.run([*fnn, *export], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert printed.rstrip("\n") == shown.group(1).rstrip("\n")


def _documented_output(lines: list[str], node: ast.stmt) -> str | None:
    """What the README says a ``print(...)`` statement prints: the comment ending its last
    line, or a comment line right after it; cut before a ``": "`` that starts an explanation."""
    last = lines[cast(int, node.end_lineno) - 1]
    following = lines[cast(int, node.end_lineno)] if cast(int, node.end_lineno) < len(lines) else ""
    comment = last.split("  # ", 1)[1] if "  # " in last else None
    if comment is None and following.startswith("# "):
        comment = following[2:]
    return None if comment is None else comment.split(": ", 1)[0].strip()


def test_every_print_in_the_readme_prints_what_its_comment_says() -> None:
    """Each one-line output the README documents is asserted, statement by statement."""
    namespace: dict[str, object] = {"__name__": "readme_prints"}
    checked = 0
    for block in _blocks("python"):
        block = block.replace('"my_softplus"', '"softplus_prints"')  # an op name this process may know
        lines = block.split("\n")
        for node in ast.parse(block).body:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(ast.Module([node], []), "README.md", "exec"), namespace)
            call = node.value if isinstance(node, ast.Expr) else None
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "print"):
                continue
            printed = out.getvalue().rstrip("\n")
            expected = _documented_output(lines, node)
            if expected is None:  # a multi-line output: shown (and checked) as a text block
                assert "\n" in printed, f"README line {ast.unparse(node)!r} documents no output"
                continue
            pattern = ".*".join(re.escape(part) for part in expected.split("..."))
            assert re.fullmatch(pattern, printed), (
                f"{ast.unparse(node)} printed {printed!r}, README: {expected!r}"
            )
            checked += 1
    assert checked >= 20
