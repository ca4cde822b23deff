"""``tape.validate``: one validator per kind of input, with messages naming what was wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from tape import Tape
from tape import validate as V


def test_number() -> None:
    assert V.number(3, "x") == 3.0 and type(V.number(3, "x")) is float
    with pytest.raises(TypeError, match=r"^x must be a float or a Value, not bool: True$"):
        V.number(True, "x")
    with pytest.raises(TypeError, match=r"^x must be a real number, not NoneType: None$"):
        V.number(None, "x", expected="a real number")
    with pytest.raises(ValueError, match=r"^x is an int too large for a float \(401 digits\)$"):
        V.number(10**400, "x")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_finite_number(x: float) -> None:
    if x != x or x in (float("inf"), float("-inf")):
        with pytest.raises(ValueError, match="must be finite"):
            V.finite_number(x, "x")
    else:
        assert V.finite_number(x, "x") == x


def test_sequences_and_matrices() -> None:
    assert V.float_vector(pvector([1, 2.5]), "v") == (1.0, 2.5)
    assert V.sequence([1], "s") == [1]
    for bad in (None, "ab", 3):
        with pytest.raises(TypeError, match=r"^s must be a sequence"):
            V.sequence(bad, "s")
    with pytest.raises(ValueError, match=r"^m is ragged: row 1 has 1 entries but row 0 has 2$"):
        V.float_matrix([[1.0, 2.0], [3.0]], "m")
    with pytest.raises(TypeError, match=r"^m: row 0: element 1 must be a float or a Value, not str"):
        V.float_matrix([[1.0, "2"]], "m")  # type: ignore[list-item]
    with Tape() as t:
        x = t.watch(1.0)
    with pytest.raises(V.HoldsTracked):
        V.float_vector([1.0, x], "v")  # type: ignore[list-item]


def test_class_targets() -> None:
    assert V.class_targets([0, 2], 2, 3, "loss") == (0, 2)
    with pytest.raises(ValueError, match=r"^loss: 2 rows of logits but 1 targets"):
        V.class_targets([0], 2, 3, "loss")
    with pytest.raises(ValueError, match=r"^loss: empty batch"):
        V.class_targets([], 0, 3, "loss")
    with pytest.raises(ValueError, match=r"^loss: row 1: class target 3 is out of range for 3 classes"):
        V.class_targets([0, 3], 2, 3, "loss")
    with pytest.raises(TypeError, match=r"^loss: row 0: class target must be an int, not bool"):
        V.class_targets([True, 0], 2, 3, "loss")
    with pytest.raises(TypeError, match=r"^loss: targets must be a sequence of ints, not NoneType"):
        V.class_targets(None, 2, 3, "loss")  # type: ignore[arg-type]
