"""``Tape.to_dot``: Graphviz DOT text of the recorded nodes."""

from __future__ import annotations

import re

import pytest

import tape
from tape import Tape, TapeError
from tape import arrays as A


def test_the_whole_tape_and_a_targets_history() -> None:
    with Tape() as t:
        x, y = t.watch(2.0), t.watch(3.0)
        unused = y.exp()
        z = x * x + 1.0
    whole = t.to_dot()
    assert whole.startswith("digraph tape {") and whole.endswith("}")
    assert len(re.findall(r"^  n\d+ \[label=", whole, flags=re.M)) == len(t.nodes) == 5
    assert "grad" not in whole
    history = t.to_dot(z)
    assert 'n0 [label="{#0 leaf | value 2 | grad 4}"];' in history
    assert f"n{unused.position} " not in history and "n1 " not in history  # not in z's history
    assert history.count("n0 -> n3;") == 2  # x * x: two edges
    assert 'n4 [label="{#4 add | value 5 | grad 1}"];' in history


def test_arrays_show_their_shapes() -> None:
    with Tape() as t:
        W = t.watch_array([[1.0, 2.0], [3.0, 4.0]])
        loss = A.mean(A.relu(A.linear(W, None, [[1.0, 1.0]])))
    assert isinstance(loss, tape.Value)
    dot = t.to_dot(loss)
    assert "{#0 leaf | value array 2x2 | grad array 2x2}" in dot
    assert "{#1 linear | value array 1x2 | grad array 1x2}" in dot
    assert "{#3 array_mean | value 5 | grad 1}" in dot


def test_a_target_of_another_tape_is_refused() -> None:
    with Tape() as t, Tape() as other:
        x = other.watch(1.0)
    with pytest.raises(TapeError, match="not on this tape"):
        t.to_dot(x)
    assert (
        tape.Tape().to_dot()
        == 'digraph tape {\n  rankdir=LR;\n  node [shape=record, fontname="monospace"];\n}'
    )
