"""The README's commands and examples are the ones that work."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

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
