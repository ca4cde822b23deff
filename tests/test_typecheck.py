"""The strict type check, proof that the stubs in ``typings/`` are tight and true, and
the exact types the tape's transformations give.

``test_strict_type_check`` runs mypy with the project's configuration over every
package, so the single test command proves typing and behaviour together.

The other tests keep ``typings/`` honest in both directions: a snippet that must
produce exact revealed types and exact errors (so the stubs are tight), and checks
that every name and keyword parameter the stubs promise exists at run time (so they
are true).
"""

from __future__ import annotations

import ast
import inspect
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent

import pyrsistent
import pyrsistent.typing
import pytest
import toolz
from mypy import api
from pyrsistent import PMap, PVector, pmap, pset, pvector

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
TYPINGS = ROOT / "typings"
PACKAGES = ("tape", "functional_nn", "optimizers", "tests")


def run_mypy(monkeypatch: pytest.MonkeyPatch, *targets: str) -> tuple[str, int]:
    """Run mypy in-process with the project's strict config; return (report, status)."""
    # mypy_path = "typings" (and the default cache dir) are relative to the working
    # directory, not to the config file.
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run(["--config-file", str(CONFIG), *targets])
    return stdout + stderr, status


def test_strict_type_check(monkeypatch: pytest.MonkeyPatch) -> None:
    report, status = run_mypy(monkeypatch, *PACKAGES)
    assert status == 0, f"mypy --strict failed:\n{report}"


# Each ``# R: T`` line must reveal exactly type T; each ``# E: text`` line must raise an
# error containing text; no other line may raise an error.
SNIPPET = dedent(
    """\
    from collections.abc import Mapping, Sequence

    import toolz
    from pyrsistent import PMap, PVector, freeze, m, pmap, pvector, thaw, v

    params = pmap({"w": pvector([1.0, 2.0])})
    reveal_type(params)  # R: pyrsistent.PMap[str, pyrsistent.PVector[float]]
    reveal_type(pmap({"a": 1}).update({"b": 2}))  # R: pyrsistent.PMap[str, int]
    mixed: PMap[str, int | str] = pmap({"a": 1}).set("b", "x")
    not_mixed: PMap[str, int] = pmap({"a": 1}).set("b", "x")  # E: Argument 2 to "set" of "PMap"
    reveal_type(pmap({"a": 1}).discard("a"))  # R: pyrsistent.PMap[str, int]
    reveal_type(pmap({"a": 1})["a"])  # R: int
    reveal_type(m(a=1.0).evolver())  # R: pyrsistent.typing.PMapEvolver[str, float]
    reveal_type(pvector([1.0])[0])  # R: float
    reveal_type(pvector([1.0])[1:])  # R: pyrsistent.PVector[float]
    reveal_type(pvector([1.0]).append(2.0))  # R: pyrsistent.PVector[float]
    reveal_type(v(1, 2).evolver().persistent())  # R: pyrsistent.PVector[int]
    reveal_type(pvector([1.0]) + [2.0])  # R: pyrsistent.PVector[float]
    reveal_type(thaw(params))  # R: dict[str, list[float]]
    reveal_type(freeze({"w": [1.0]}))  # R: pyrsistent.PMap[str, pyrsistent.PVector[float]]
    as_mapping: Mapping[str, Sequence[float]] = params
    widened: PMap[str, object] = params
    empty: PMap[str, float] = pmap()
    vector: PVector[float] = pvector()
    pmap({"a": 1}).tyop  # E: "PMap[str, int]" has no attribute "tyop"
    pmap({"a": 1}).update({"b": 2}).tyop  # E: "PMap[str, int]" has no attribute "tyop"
    pmap({"a": 1}) < pmap({"a": 1})  # E: Unsupported left operand type for <
    pvector([1.0]).tyop  # E: "PVector[float]" has no attribute "tyop"
    pvector([1.0])[0].tyop  # E: "float" has no attribute "tyop"
    evolver = pmap({"a": 1}).evolver()
    evolver["b"] = "x"  # E: Incompatible types in assignment
    narrow: PMap[str, int] = pmap({"a": 1}).set("b", 2.5)  # E: Argument 2 to "set" of "PMap"
    PVector()  # E: Cannot instantiate abstract class "PVector"
    from pyrsistent import PMapEvolver  # E: "pyrsistent" does not explicitly export

    reveal_type(toolz.pipe(1, str))  # R: str
    reveal_type(toolz.pipe(1.5, round, str, len))  # R: int
    reveal_type(toolz.partition_all(2, [1, 2, 3]))  # R: typing.Iterator[tuple[int, ...]]
    reveal_type(toolz.partition(2, [1, 2, 3]))  # R: typing.Iterator[tuple[int, int]]
    reveal_type(toolz.compose(str, abs)(-1))  # R: str
    reveal_type(toolz.compose_left(abs, str, len)(-1))  # R: int
    reveal_type(toolz.juxt(len, str)("ab"))  # R: tuple[int, str]
    reveal_type(toolz.groupby(len, ["a", "bb"]))  # R: dict[int, list[str]]
    reveal_type(toolz.valmap(str, {"a": 1}))  # R: dict[str, str]
    reveal_type(toolz.merge({"a": 1}, {"b": 2}))  # R: dict[str, int]
    reveal_type(toolz.first(pvector([1.0])))  # R: float
    reveal_type(toolz.get_in(["a"], {"a": 1}))  # R: object
    toolz.pipe(1, len)  # E: Argument 2 to "pipe" has incompatible type
    toolz.valmap(len, {"a": 1})  # E: Argument 1 to "valmap" has incompatible type
    toolz.no_such_function  # E: Module has no attribute "no_such_function"
    """
)

# The same marks, for the types the tape's transformations give typed user code.
TAPE_SNIPPET = dedent(
    """\
    from collections.abc import Callable, Mapping, Sequence

    from pyrsistent import PMap, pmap, pvector

    import tape
    from tape import Scalar, Tape, Value
    from tape import arrays as A


    def energy(p: PMap[str, float], x: float) -> Scalar:
        return p["w"] * x


    def three(a: float, b: float, c: tuple[float, float]) -> Scalar:
        return a * b * c[0]


    def plain(a: float, b: float, c: float) -> Scalar:
        return a * b * c


    def four(a: float, b: float, c: float, d: str) -> Scalar:
        return a * b * c


    def noted(a: float, b: float) -> tuple[Scalar, str]:
        return a * b, "note"


    def smooth(x: tuple[float, ...]) -> Scalar:
        return x[0] * x[0] * x[1]


    def smooth2(x: tuple[float, float]) -> Scalar:
        return x[0] * x[0] * x[1]


    def in_map(p: PMap[str, float]) -> Scalar:
        return p["a"] * p["b"]


    def pair(x: tuple[float, ...]) -> tuple[Scalar, Scalar]:
        return x[0] * x[1], x[0] + x[1]


    def named(x: tuple[float, ...]) -> dict[str, Scalar]:
        return {"product": x[0] * x[1]}


    def listed(x: tuple[float, ...]) -> list[Scalar]:
        return [x[0] * x[1]]


    def nested(x: tuple[float, ...]) -> tuple[tuple[Scalar, Scalar]]:
        return ((x[0], x[1]),)


    untyped: Callable[..., Scalar] = smooth
    scalars = pmap({"w": 0.5})
    xs = (3.0, 4.0)
    reveal_type(tape.grad(energy)(scalars, 2.0))  # R: pyrsistent.PMap[str, float]
    reveal_type(tape.grad(energy, 1)(scalars, 2.0))  # R: float
    reveal_type(tape.grad(energy, (0, 1))(scalars, 2.0))  # R: tuple[pyrsistent.PMap[str, float], float]
    reveal_type(tape.grad(three, argnums=(0, 1))(1.0, 2.0, xs))  # R: tuple[float, float]
    reveal_type(tape.grad(three, (0, 1, 2))(1.0, 2.0, xs))  # R: tuple[float, float, tuple[float, float]]
    reveal_type(tape.grad(noted, (0, 1), has_aux=True)(1.0, 2.0))  # R: tuple[tuple[float, float], str]
    reveal_type(tape.grad(noted, 1, True)(1.0, 2.0))  # R: tuple[float, str]
    reveal_type(tape.value_and_grad(three, (0, 1))(1.0, 2.0, xs))  # R: tuple[float, tuple[float, float]]
    noted_both = tape.value_and_grad(noted, (0, 1), True)(1.0, 2.0)
    reveal_type(noted_both)  # R: tuple[tuple[float, str], tuple[float, float]]
    skip = tape.grad(plain, (0, 2))
    reveal_type(skip)  # R: tape.transforms.Transformed[[a: float, b: float, c: float], object]
    reveal_type(skip(1.0, 2.0, 3.0))  # R: object
    reveal_type(tape.grad(lambda a, b: a * b, (0, 1))(2.0, 3.0))  # R: Any
    tape.grad(energy, (0, 1))(scalars, "x")  # E: Argument 2 has incompatible type "str"; expected "float"

    reveal_type(tape.numerical_grad(energy, scalars, 2.0))  # R: pyrsistent.PMap[str, float]
    reveal_type(tape.numerical_grad(energy, scalars, 2.0, argnums=1, eps=1e-4))  # R: float
    both = tape.numerical_grad(energy, scalars, 2.0, argnums=(0, 1))
    reveal_type(both)  # R: tuple[pyrsistent.PMap[str, float], float]
    each = tape.numerical_grad(three, 1.0, 2.0, xs, argnums=(0, 1, 2))
    reveal_type(each)  # R: tuple[float, float, tuple[float, float]]
    reveal_type(tape.numerical_grad(four, 1.0, 2.0, 3.0, "s", argnums=1))  # R: float
    reveal_type(tape.numerical_grad(three, 1.0, 2.0, xs, argnums=(0, 2)))  # R: object
    reveal_type(tape.numerical_grad(lambda x: x * x, 2.0))  # R: float
    tape.numerical_grad(energy, scalars, "x")  # E: Argument 1 to "numerical_grad" has incompatible type
    tape.numerical_grad(energy, scalars)  # E: Argument 1 to "numerical_grad" has incompatible type

    value, pullback = tape.vjp(lambda x, y: (x * y, x + y), 2.0, 3.0)
    reveal_type(value)  # R: tuple[float, float]
    reveal_type(pullback)  # R: def (tuple[float, float]) -> tuple[float, float]
    reveal_type(tape.vjp(smooth, (1.0, 2.0))[0])  # R: float
    smooth_pullback = tape.vjp(smooth, (1.0, 2.0))[1]
    reveal_type(smooth_pullback)  # R: def (float | tape.value.Value) -> tuple[tuple[float, float]]
    reveal_type(tape.vjp(three, 1.0, 2.0, xs)[1](1.0))  # R: tuple[float, float, tuple[float, float]]
    reveal_type(tape.vjp(pair, (1.0, 2.0))[0])  # R: tuple[float | tape.value.Value, float | tape.value.Value]
    reveal_type(tape.vjp(pair, (1.0, 2.0))[1]((1.0, 0.0)))  # R: tuple[tuple[float, float]]
    reveal_type(tape.vjp(four, 1.0, 2.0, 3.0, "s")[1](1.0))  # R: tuple[builtins.object, ...]

    reveal_type(tape.jacobian(smooth)((1.0, 2.0)))  # R: tuple[float, ...]
    reveal_type(tape.jacobian(pair)((1.0, 2.0)))  # R: tuple[tuple[float, ...], ...]
    reveal_type(tape.jacobian(named)((1.0, 2.0)))  # R: typing.Mapping[str, tuple[float, ...]]
    reveal_type(tape.jacobian(listed)((1.0, 2.0)))  # R: typing.Sequence[tuple[float, ...]]
    reveal_type(tape.jacobian(energy, 1)(scalars, 2.0))  # R: float
    reveal_type(tape.jacobian(nested)((1.0, 2.0)))  # R: object
    reveal_type(tape.jacobian(lambda x: (x[0] * x[1], x[0] + x[1]))((2.0, 3.0)))  # R: Any
    reveal_type(tape.hessian(smooth)((1.0, 2.0)))  # R: tuple[tuple[float, ...], ...]
    reveal_type(tape.hessian(smooth2)((1.0, 2.0)))  # R: tuple[tuple[float, float], ...]
    reveal_type(tape.hessian(in_map)(scalars))  # R: pyrsistent.PMap[str, pyrsistent.PMap[str, float]]
    reveal_type(tape.hessian(lambda x: x * x * x)(2.0))  # R: Any
    reveal_type(tape.hessian(untyped)((1.0, 2.0)))  # R: Any
    reveal_type(tape.hessian(energy, 1)(scalars, 2.0))  # R: object

    with Tape() as t:
        x, y = t.watch(1.0), t.watch(2.0)
        z = x * y
        row = t.watch_array([1.0, 2.0])
        watched = t.watch_tree(pmap({"w": pvector([1.0, 2.0])}))
    values: Mapping[str, Value] = {"x": x}
    value_lists: Mapping[str, Sequence[Value]] = {"x": [x]}
    vectors = pmap({"w": pvector([x, y])})
    matrices = pmap({"w": pvector([pvector([x])])})
    reveal_type(t.gradient(z, x))  # R: float
    reveal_type(t.gradient(z, row))  # R: tuple[Any, ...]
    reveal_type(t.gradient(z, (x, y)))  # R: tuple[float, float]
    reveal_type(t.gradient(z, (x, y, x, y)))  # R: tuple[float, ...]
    reveal_type(t.gradient(z, [x, y]))  # R: list[float]
    reveal_type(t.gradient(z, pvector([x, y])))  # R: pyrsistent.PVector[float]
    reveal_type(t.gradient(z, ((x, y), (y, x))))  # R: tuple[tuple[float, ...], ...]
    reveal_type(t.gradient(z, [[x], [y]]))  # R: list[list[float]]
    reveal_type(t.gradient(z, (row, row))[0])  # R: tuple[Any, ...]
    reveal_type(t.gradient(z, {"x": x}))  # R: dict[str, float]
    reveal_type(t.gradient(z, pmap({"x": x})))  # R: pyrsistent.PMap[str, float]
    reveal_type(t.gradient(z, {"x": [x, y]}))  # R: dict[str, list[float]]
    reveal_type(t.gradient(z, vectors))  # R: pyrsistent.PMap[str, pyrsistent.PVector[float]]
    reveal_type(t.gradient(z, matrices)["w"])  # R: pyrsistent.PVector[pyrsistent.PVector[float]]
    reveal_type(t.gradient(z, pmap({"w": row}))["w"])  # R: tuple[Any, ...]
    reveal_type(t.gradient(z, values))  # R: typing.Mapping[str, float]
    reveal_type(t.gradient(z, value_lists))  # R: typing.Mapping[str, typing.Sequence[float]]
    reveal_type(t.gradient(z, watched))  # R: pyrsistent.PMap[str, pyrsistent.PVector[float]]
    reveal_type(t.gradient(z, {"x": x, "row": row}))  # R: object
    reveal_type(t.gradient(z, {"x": x, "pair": (x, y)}))  # R: object
    grid = A.asarray([[1.0, 2.0], [3.0, 4.0]])
    images = [[[[1.0, 2.0], [3.0, 4.0]]]]
    reveal_type(A.add(grid, 1.0))  # R: tape.array.Array
    reveal_type(A.multiply(2.0, grid))  # R: tape.array.Array
    reveal_type(A.add(x, y))  # R: tape.value.Value
    reveal_type(A.subtract([1.0], [2.0]))  # R: tuple[Any, ...]
    reveal_type(A.less(grid, 2.0))  # R: tape.array.Array
    reveal_type(A.where(A.less(grid, 2.0), grid, 0.0))  # R: tape.array.Array
    reveal_type(A.reshape(grid, (4,)))  # R: tape.array.Array
    reveal_type(A.reshape(grid, ()))  # R: float | tape.value.Value
    reveal_type(A.transpose(grid))  # R: tape.array.Array
    reveal_type(A.take(grid, [1, 0]))  # R: tape.array.Array
    reveal_type(A.pad([[1.0]], 1))  # R: tuple[Any, ...]
    reveal_type(A.conv2d(images, A.asarray([[[[1.0]]]])))  # R: tape.array.Array
    reveal_type(A.max_pool2d(images, 2))  # R: tuple[Any, ...]
    reveal_type(A.scaled_dot_product_attention(grid, grid, grid))  # R: tape.array.Array
    """
)

_MARK = re.compile(r"#\s*(?P<kind>[RE]):\s*(?P<text>.+?)\s*$")
_REPORT = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<kind>error|note): (?P<message>.*)$")


def _expectations(snippet: str) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(snippet.splitlines(), start=1):
        mark = _MARK.search(line)
        if mark:
            yield number, mark["kind"], mark["text"]


def _snippet_problems(snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each way mypy's report on ``snippet`` differs from its ``# R:`` and ``# E:`` marks."""
    path = tmp_path / "typing_snippet.py"
    path.write_text(snippet)
    report, _ = run_mypy(monkeypatch, str(path))
    errors: dict[int, list[str]] = {}
    revealed: dict[int, list[str]] = {}
    for line in report.splitlines():
        found = _REPORT.match(line)
        if found is None or not found["path"].endswith(path.name):
            continue
        number = int(found["line"])
        if found["kind"] == "error":
            errors.setdefault(number, []).append(found["message"])
        elif found["message"].startswith("Revealed type is "):
            # Older mypy versions spell builtin types out in full.
            message = found["message"].replace("builtins.", "")
            revealed.setdefault(number, []).append(message)

    problems: list[str] = []
    expected_error_lines = set()
    for number, kind, text in _expectations(snippet):
        if kind == "R":
            want = f'Revealed type is "{text.replace("builtins.", "")}"'
            if revealed.get(number) != [want]:
                problems.append(f"line {number}: wanted {want}, got {revealed.get(number)}")
        else:
            expected_error_lines.add(number)
            if not any(text in message for message in errors.get(number, [])):
                problems.append(f"line {number}: wanted an error with {text!r}, got {errors.get(number)}")
    problems += [
        f"line {number}: unexpected error {messages}"
        for number, messages in sorted(errors.items())
        if number not in expected_error_lines
    ]
    if problems:
        problems.append(f"\nmypy said:\n{report}")
    return problems


def test_stubs_are_tight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    problems = _snippet_problems(SNIPPET, tmp_path, monkeypatch)
    assert not problems, "\n".join(problems)


def test_tape_transformations_give_precise_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """grad, value_and_grad, numerical_grad, vjp, jacobian, hessian and Tape.gradient:
    the exact types typed code gets, the catch-alls' ``object``, and ``Any`` (never an
    error) where mypy cannot choose an overload for a lambda or ``Callable[..., X]``."""
    problems = _snippet_problems(TAPE_SNIPPET, tmp_path, monkeypatch)
    assert not problems, "\n".join(problems)


def _stub(relative: str) -> ast.Module:
    return ast.parse((TYPINGS / relative).read_text())


STUBS: dict[str, types.ModuleType] = {
    "pyrsistent/__init__.pyi": pyrsistent,
    "pyrsistent/typing.pyi": pyrsistent.typing,
    "toolz/__init__.pyi": toolz,
}

# Stub class -> the run-time class its instances really have.
RUNTIME_CLASSES: dict[str, type[object]] = {
    "PMap": PMap,
    "PVector": type(pvector()),
    "PSet": pyrsistent.PSet,
    "PList": type(pyrsistent.plist([1])),
    "PDeque": pyrsistent.PDeque,
    "PBag": pyrsistent.PBag,
    "PRecord": pyrsistent.PRecord,
    "PClass": pyrsistent.PClass,
    "PMapEvolver": type(pmap().evolver()),
    "PVectorEvolver": type(pvector().evolver()),
    "PSetEvolver": type(pset().evolver()),
    "curry": toolz.curry,
    "juxt": toolz.juxt,
}


def _public_names(module: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname for alias in node.names if alias.asname == alias.name)
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("relative", sorted(STUBS))
def test_stub_names_exist_at_run_time(relative: str) -> None:
    module = STUBS[relative]
    missing = sorted(name for name in _public_names(_stub(relative)) if not hasattr(module, name))
    assert not missing, f"{relative} promises names {module.__name__} lacks: {missing}"


@pytest.mark.parametrize("relative", sorted(STUBS))
def test_stub_methods_exist_at_run_time(relative: str) -> None:
    missing: list[str] = []
    for node in _stub(relative).body:
        if not isinstance(node, ast.ClassDef) or node.name not in RUNTIME_CLASSES:
            continue
        runtime = RUNTIME_CLASSES[node.name]
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and not hasattr(runtime, item.name):
                missing.append(f"{node.name}.{item.name}")
    assert not missing, f"{relative} declares members missing at run time: {missing}"


_POSITIONAL_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _signature_problems(name: str, stub: ast.FunctionDef, runtime: Callable[..., object]) -> list[str]:
    """Ways one stub signature promises calls the run-time callable would reject."""
    try:
        signature = inspect.signature(runtime)
    except ValueError:  # C code without signature metadata
        return []
    parameters = list(signature.parameters.values())
    kinds = {parameter.kind for parameter in parameters}
    takes_any_keyword = inspect.Parameter.VAR_KEYWORD in kinds
    takes_any_positional = inspect.Parameter.VAR_POSITIONAL in kinds
    runtime_positional = [p for p in parameters if p.kind in _POSITIONAL_KINDS]
    arguments = stub.args
    stub_positional = [*arguments.posonlyargs, *arguments.args]
    if any(isinstance(d, ast.Name) and d.id == "classmethod" for d in stub.decorator_list):
        stub_positional = stub_positional[1:]  # the run-time signature is already bound
    keywords = {arg.arg for arg in [*arguments.args, *arguments.kwonlyargs]} - {"self", "cls"}
    problems: list[str] = []
    unknown = sorted(k for k in keywords if k not in signature.parameters and not takes_any_keyword)
    if unknown:
        problems.append(f"{name}: no run-time parameters {unknown}")
    if len(stub_positional) > len(runtime_positional) and not takes_any_positional:
        problems.append(f"{name}: {len(stub_positional)} positional parameters, run time fewer")
    if arguments.vararg is not None and not takes_any_positional:
        problems.append(f"{name}: *{arguments.vararg.arg} in the stub but not at run time")
    required = [p.name for p in runtime_positional if p.default is inspect.Parameter.empty]
    if len(required) > len(stub_positional) and arguments.vararg is None:
        problems.append(f"{name}: a signature omits required parameters {required}")
    return problems


def _is_property(function: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in function.decorator_list)


@pytest.mark.parametrize("relative", sorted(STUBS))
def test_stub_signatures_match_run_time(relative: str) -> None:
    """Each stub signature (every overload) takes only parameters the run time takes,
    and every parameter the run time requires."""
    module = STUBS[relative]
    problems: list[str] = []
    for node in _stub(relative).body:
        if isinstance(node, ast.FunctionDef) and hasattr(module, node.name):
            problems += _signature_problems(node.name, node, getattr(module, node.name))
        elif isinstance(node, ast.ClassDef) and node.name in RUNTIME_CLASSES:
            runtime = RUNTIME_CLASSES[node.name]
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef)
                    and not item.name.startswith("__")
                    and not _is_property(item)
                    and hasattr(runtime, item.name)
                ):
                    method = getattr(runtime, item.name)
                    problems += _signature_problems(f"{node.name}.{item.name}", item, method)
    assert not problems, f"{relative}:\n" + "\n".join(problems)


def test_annotated_classes_are_the_run_time_classes() -> None:
    assert isinstance(pmap({"a": 1}), PMap)
    assert isinstance(pvector([1.0]), PVector)
    assert isinstance(pset([1]), pyrsistent.PSet)
