"""``tape.jit``: a user op's effects (a log, an exception) at replay are the interpreter's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import tape
from tape import jit
from tests.tape.test_jit import assert_same


def _logging_op(name: str, calls: list[float]) -> tape.Op:
    def forward(x: float) -> float:
        calls.append(x)
        return 2.0 * x

    return tape.define(name, forward, lambda v, x: 2.0, replace=True)


def test_a_user_ops_forward_runs_once_per_call_when_a_partial_is_not_finite() -> None:
    """The code testing each adjoint (run when a partial is inf) runs the user op's forward a second time."""
    calls: list[float] = []
    op = _logging_op("jit_effects_logged_fallback", calls)

    def f(x: Any, y: Any) -> Any:
        return op(x + 1.0) * tape.exp(y)

    jitted = jit(tape.value_and_grad(f, (0, 1)))
    jitted(1.0, 1.0)
    for args in ((0.5, 2.0), (0.5, 1000.0)):  # exp(1000.0) is inf: a partial that is not finite
        calls.clear()
        want = tape.value_and_grad(f, (0, 1))(*args)
        interpreted = list(calls)
        calls.clear()
        got = jitted(*args)
        assert_same(got, want)
        assert calls == interpreted == [1.5]


def test_a_user_op_whose_value_is_unused_still_runs() -> None:
    """A user op whose result nothing reads is dropped from the code: its effect (or exception) is lost."""
    calls: list[float] = []
    op = _logging_op("jit_effects_logged_unused", calls)

    def f(x: Any) -> Any:
        op(x)  # an effect (a log, a check that may raise); its value is not used
        return x * 2.0

    functions: list[Callable[[Any], Any]] = [f, tape.grad(f)]
    for function in functions:
        jitted = jit(function)
        jitted(1.0)
        calls.clear()
        want = function(3.0)
        interpreted = list(calls)
        calls.clear()
        assert_same(jitted(3.0), want)
        assert calls == interpreted == [3.0]


def test_a_library_op_on_a_user_ops_non_float_raises_before_a_later_user_ops_effect() -> None:
    """tanh of a user op's complex result raises; moved into its reader's line, after a later op logs."""
    calls: list[float] = []
    root = tape.define("jit_effects_root", lambda x: x**0.5, lambda v, x: 0.5 / v, replace=True)
    logged = _logging_op("jit_effects_logged_after", calls)

    def f(x: Any) -> Any:
        t = tape.tanh(root(x))  # complex below 0: tanh raises a TypeError
        return t + logged(x)

    jitted = jit(f)
    jitted(1.0)
    calls.clear()
    with pytest.raises(TypeError):
        f(-4.0)
    assert calls == []
    with pytest.raises(TypeError):
        jitted(-4.0)
    assert calls == []
