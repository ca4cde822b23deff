"""What ``functional_nn`` exports: every loss, and only names that exist and are used."""

from __future__ import annotations

import ast
from pathlib import Path

import functional_nn
from functional_nn import loss, regularization


def test_every_loss_is_importable_from_the_package() -> None:
    losses = [name for name in loss.__all__ if name != "LOG_FLOOR"]
    assert {name for name in losses if name.endswith("_batch")} == {
        "bce_loss_batch",
        "bce_with_logits_batch",
        "cross_entropy_batch",
        "cross_entropy_with_logits_batch",
        "hinge_loss_batch",
        "mse_loss_batch",
        "multi_margin_loss_batch",
    }
    for name in losses:
        assert name in functional_nn.__all__
        assert getattr(functional_nn, name) is getattr(loss, name)


def test_everything_exported_exists() -> None:
    assert sorted(functional_nn.__all__) == sorted(set(functional_nn.__all__))
    for name in functional_nn.__all__:
        assert hasattr(functional_nn, name), name
    for name in regularization.__all__:
        assert hasattr(regularization, name), name


def test_weight_decay_naming_lives_in_the_optimizers_only() -> None:
    # optimizers.masks.default_decay_mask is the one rule for which parameters decay.
    assert not hasattr(functional_nn, "is_decayed")
    assert not hasattr(regularization, "is_decayed")
    assert not hasattr(regularization, "DECAYED_NAMES")


def test_one_linspace_in_the_package() -> None:
    package = Path(functional_nn.__file__).parent
    definitions = [
        f"{path.name}:{node.name}"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and "linspace" in node.name
    ]
    assert definitions == ["datasets.py:linspace"]
