"""A user's own code, type-checked outside this repository, gets the library's real types.

A small user module is written to a temporary folder and checked there with
``mypy --strict`` and no configuration file, as a user's project would be: mypy finds
``tape``, ``functional_nn`` and ``optimizers`` through the installed package (the
editable install must be a static path a type checker can follow) and pyrsistent
through its own stubs, never this project's ``typings/``. Its types are spelled
``pyrsistent.typing.PMap``; the project's stubs spell them ``pyrsistent.PMap``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from textwrap import dedent
from typing import NamedTuple

import pytest

PMAP = "pyrsistent.typing.PMap"
PVECTOR = "pyrsistent.typing.PVector"
PARAMS = f"{PMAP}[str, {PVECTOR}[{PMAP}[str, {PVECTOR}[{PVECTOR}[float]] | {PVECTOR}[float]]]]"
OPT_STATE = f"{PMAP}[str, bool | int | float | str | {PMAP}[str, ...] | {PVECTOR}[...]]"

USER_CODE = dedent(
    """\
    from __future__ import annotations

    from collections.abc import Sequence

    from pyrsistent import PMap, PVector, pmap, pvector

    import functional_nn
    import optimizers
    import tape
    from functional_nn import MLP, Params, cross_entropy_with_logits


    def energy(p: PMap[str, float]) -> tape.Scalar:
        return p["w"] * p["b"] + tape.tanh(p["w"])


    def energy_and_note(p: PMap[str, float], scale: float) -> tuple[tape.Scalar, str]:
        return p["w"] * scale, "note"


    def squares(p: PMap[str, PVector[float]]) -> tape.Scalar:
        return tape.vsum([w * w for w in p["w"]])


    def loss(params: Params, xs: Sequence[Sequence[float]], ys: Sequence[int]) -> tape.Scalar:
        losses = [cross_entropy_with_logits(model.apply(params, x), y) for x, y in zip(xs, ys)]
        return tape.vsum(losses) / len(losses)


    def weighted(p: PMap[str, float], scale: float) -> tape.Scalar:
        return p["w"] * scale


    def curve(x: tuple[float, ...]) -> tape.Scalar:
        return x[0] * x[0] * x[1]


    def both(x: tuple[float, ...]) -> tuple[tape.Scalar, tape.Scalar]:
        return x[0] * x[1], x[0] + x[1]


    scalars = pmap({"w": 0.5, "b": -1.0})
    vectors = pmap({"w": pvector([1.0, 2.0])})
    model = MLP(2, [4, 2], activation="tanh")
    params = model.init(functional_nn.random.key(0))
    opt = optimizers.adam(0.01)
    state = opt.init(params)
    value, grads = tape.value_and_grad(loss)(params, [[0.5, -0.5]], [1])
    new_params, new_state = opt.step(params, grads, state)
    vjp_value, pullback = tape.vjp(weighted, scalars, 2.0)
    with tape.Tape() as t:
        x, y = t.watch(1.0), t.watch(2.0)
        z = x * y
        watched = t.watch_tree(vectors)
    """
)


class Reveal(NamedTuple):
    expression: str
    expected: str


REVEALS = [
    pytest.param(Reveal("scalars", f"{PMAP}[str, float]"), id="pmap"),
    pytest.param(Reveal("tape.grad(energy)(scalars)", f"{PMAP}[str, float]"), id="grad-floats"),
    pytest.param(Reveal("tape.grad(squares)(vectors)", f"{PMAP}[str, {PVECTOR}[float]]"), id="grad-vectors"),
    pytest.param(
        Reveal("tape.value_and_grad(energy)(scalars)", f"tuple[float, {PMAP}[str, float]]"),
        id="value-and-grad",
    ),
    pytest.param(
        Reveal("tape.grad(energy_and_note, has_aux=True)(scalars, 2.0)", f"tuple[{PMAP}[str, float], str]"),
        id="grad-aux",
    ),
    pytest.param(Reveal("tape.stop_gradient(vectors)", f"{PMAP}[str, {PVECTOR}[float]]"), id="stop-gradient"),
    pytest.param(Reveal("functional_nn.random.key(0)", "functional_nn.random.Key"), id="key"),
    pytest.param(Reveal("params", PARAMS), id="mlp-init"),
    pytest.param(Reveal("model.apply(params, [0.5, -0.5])", "tuple[float, ...]"), id="mlp-apply"),
    pytest.param(Reveal("value", "float"), id="loss-value"),
    pytest.param(Reveal("grads", PARAMS), id="loss-grads"),
    pytest.param(Reveal("state", OPT_STATE), id="opt-state"),
    pytest.param(Reveal("new_params", PARAMS), id="step-params"),
    pytest.param(Reveal("new_state", OPT_STATE), id="step-state"),
    pytest.param(Reveal("tape.numerical_grad(energy, scalars)", f"{PMAP}[str, float]"), id="numerical-grad"),
    pytest.param(
        Reveal(
            "tape.numerical_grad(weighted, scalars, 2.0, argnums=(0, 1))", f"tuple[{PMAP}[str, float], float]"
        ),
        id="numerical-grad-argnums-tuple",
    ),
    pytest.param(
        Reveal("tape.grad(weighted, (0, 1))(scalars, 2.0)", f"tuple[{PMAP}[str, float], float]"),
        id="grad-argnums-tuple",
    ),
    pytest.param(
        Reveal(
            "tape.value_and_grad(weighted, (0, 1))(scalars, 2.0)",
            f"tuple[float, tuple[{PMAP}[str, float], float]]",
        ),
        id="value-and-grad-argnums-tuple",
    ),
    pytest.param(Reveal("vjp_value", "float"), id="vjp-value"),
    pytest.param(Reveal("pullback(1.0)", f"tuple[{PMAP}[str, float], float]"), id="vjp-pullback"),
    pytest.param(Reveal("tape.jacobian(both)((1.0, 2.0))", "tuple[tuple[float, ...], ...]"), id="jacobian"),
    pytest.param(
        Reveal("tape.hessian(curve)((1.0, 2.0))", "tuple[tuple[float, ...], ...]"), id="hessian-tuple"
    ),
    pytest.param(
        Reveal("tape.hessian(energy)(scalars)", f"{PMAP}[str, {PMAP}[str, float]]"), id="hessian-pmap"
    ),
    pytest.param(Reveal("t.gradient(z, (x, y))", "tuple[float, float]"), id="gradient-tuple"),
    pytest.param(Reveal('t.gradient(z, {"x": x})', "dict[str, float]"), id="gradient-dict"),
    pytest.param(
        Reveal('t.gradient(z, pmap({"w": pvector([x, y])}))', f"{PMAP}[str, {PVECTOR}[float]]"),
        id="gradient-pmap-of-vectors",
    ),
    pytest.param(
        Reveal("t.gradient(z, watched)", f"{PMAP}[str, {PVECTOR}[float]]"), id="gradient-watched-tree"
    ),
    pytest.param(Reveal('t.gradient(z, {"x": x, "pair": (x, y)})', "object"), id="gradient-other-tree"),
]


def _reveals() -> list[Reveal]:
    found: list[Reveal] = []
    for param in REVEALS:
        (reveal,) = param.values
        assert isinstance(reveal, Reveal)
        found.append(reveal)
    return found


FIRST_REVEAL_LINE = len(USER_CODE.splitlines()) + 1
_REPORT = re.compile(r"^user_code\.py:(?P<line>\d+): (?P<kind>error|note): (?P<message>.*)$")


class Checked(NamedTuple):
    status: int
    report: str
    revealed: dict[int, list[str]]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """mypy --strict over the user module, in a folder with no configuration of ours."""
    folder = tmp_path_factory.mktemp("downstream")
    reveal_lines = "".join(f"reveal_type({reveal.expression})\n" for reveal in _reveals())
    (folder / "user_code.py").write_text(USER_CODE + reveal_lines)
    # The packages must be found through the install alone.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file", "", "user_code.py"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    report = done.stdout + done.stderr
    revealed: dict[int, list[str]] = {}
    for line in report.splitlines():
        found = _REPORT.match(line)
        if found and found["kind"] == "note" and found["message"].startswith("Revealed type is "):
            # Older mypy versions spell builtin types out in full.
            message = found["message"].removeprefix("Revealed type is ").strip('"').replace("builtins.", "")
            revealed.setdefault(int(found["line"]), []).append(message)
    return Checked(done.returncode, report, revealed)


def test_user_code_passes_mypy_strict(checked: Checked) -> None:
    assert checked.status == 0, f"mypy --strict failed on user code:\n{checked.report}"


@pytest.mark.parametrize("reveal", REVEALS)
def test_user_code_sees_precise_types(checked: Checked, reveal: Reveal) -> None:
    line = FIRST_REVEAL_LINE + _reveals().index(reveal)
    assert checked.revealed.get(line) == [reveal.expected], (
        f"reveal_type({reveal.expression}): wanted {reveal.expected}, got {checked.revealed.get(line)}"
        f"\n\nmypy said:\n{checked.report}"
    )
