"""The examples in the optimizers' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import optimizers
from optimizers import alias, base, masks, schedules, state, transforms

MODULES = [optimizers, alias, base, masks, schedules, state, transforms]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
    assert tried > 0


def test_readme_training_loop_runs() -> None:
    readme = Path(__file__).resolve().parents[2] / "optimizers" / "README.md"
    failures, tried = doctest.testfile(str(readme), module_relative=False)
    assert failures == 0
    assert tried > 5


def test_every_public_name_is_exported_and_documented() -> None:
    for name in optimizers.__all__:
        value = getattr(optimizers, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, name
    assert set(optimizers.__all__) >= {
        "Optimizer",
        "GradientTransformation",
        "chain",
        "apply_updates",
        "sgd",
        "momentum",
        "adam",
        "adamw",
        "clip_by_global_norm",
        "state_to_json",
        "state_from_json",
    }
