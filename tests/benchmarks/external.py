"""micrograd and PyTorch versions of the workloads, for when those packages are installed.

Neither is a dependency of the project: each is imported with :mod:`importlib`
when first needed, and everything typed ``Any`` stays inside this module. Each
``*_w*`` function returns a ``prepare`` callable (untimed set-up, e.g. copying
the initial weights in) that gives the timed thunk, plus a function turning the
thunk's output into the library's form (floats, params) for the agreement check.

- micrograd (PyPI ``micrograd``, Karpathy's engine): its own ``MLP`` with our
  weights copied in; ``zero_grad``, forward, loss, ``backward``, manual update.
  Its ``backward`` sorts the graph with a recursive function, so W2's deep graph
  needs a higher recursion limit: :func:`micrograd_w2` raises it for micrograd's
  run only and restores it after. micrograd has no ``exp`` or ``log`` (no
  cross-entropy) and no tape-free evaluation, so W3 and W4 are not run with it.
- PyTorch eager on CPU, float64, one thread (``torch.set_num_threads(1)``):
  ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` with our weights, ``torch.optim``;
  for W5 ``Conv2d``, ``ReLU``, ``MaxPool2d``, ``Flatten`` and ``Linear``, for W6
  ``nn.MultiheadAttention`` with a causal mask, for W8 ``nn.RNN`` (tanh) and ``Linear``.
  Inputs are converted to tensors once, in set-up.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, cast

from functional_nn.mlp import Params
from tests.benchmarks import baseline
from tests.benchmarks.baseline import Net
from tests.benchmarks.nd_workloads import (
    AttentionProblem,
    AttentionWeights,
    CnnProblem,
    CnnWeights,
    RnnProblem,
    RnnWeights,
)
from tests.benchmarks.workloads import DigitsProblem, GraphProblem, RegressionProblem, replay

__all__ = [
    "Prepared",
    "micrograd_w1",
    "micrograd_w2",
    "micrograd_w2_bytes",
    "package_version",
    "torch_w1",
    "torch_w2",
    "torch_w3",
    "torch_w4",
    "torch_w5",
    "torch_w6",
    "torch_w8",
]

Prepared: TypeAlias = "tuple[Callable[[], Callable[[], object]], Callable[[object], object]]"
"""``(prepare, convert)``: ``prepare()`` gives the thunk to time; ``convert(output)`` its result.

Where the result lives in a mutable model (micrograd, torch), ``convert`` reads the
model last prepared: every run is one step from the same initial state, so that is
the warm-up run's result too.
"""

_loaded: dict[str, Any] = {}


def _module(name: str) -> Any | None:
    """The module ``name``, or ``None`` when it is not installed (cached)."""
    if name not in _loaded:
        try:
            _loaded[name] = importlib.import_module(name)
        except ImportError:
            _loaded[name] = None
        if name == "torch" and _loaded[name] is not None:
            _loaded[name].set_num_threads(1)
    return _loaded[name]


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` if it imports, else ``None``."""
    module = {"micrograd": "micrograd.engine"}.get(name, name)
    if _module(module) is None:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- micrograd ----------------------------------------------------------------------------


def _micrograd_load(model: Any, net: Net) -> None:
    """Copy ``net``'s weights into micrograd's ``MLP`` (same layout: one neuron per weight row)."""
    for layer, (weight, bias) in zip(model.layers, net, strict=True):
        for neuron, row, b in zip(layer.neurons, weight, bias, strict=True):
            for p, w in zip(neuron.w, row, strict=True):
                p.data = w
            neuron.b.data = b


def _micrograd_net(model: Any) -> Net:
    return [
        (
            [[p.data for p in neuron.w] for neuron in layer.neurons],
            [neuron.b.data for neuron in layer.neurons],
        )
        for layer in model.layers
    ]


def micrograd_w1(problem: RegressionProblem) -> Prepared | None:
    """W1 with micrograd's own ``MLP(2, [16, 16, 1])``: one SGD step on the mean squared error."""
    nn = _module("micrograd.nn")
    if nn is None:
        return None
    net = baseline.from_params(problem.params)
    model = nn.MLP(problem.model.n_in, list(problem.model.sizes))
    parameters = model.parameters()
    xs = [list(x) for x in problem.inputs]
    ys = list(problem.targets)
    lr = problem.lr
    scale = 1.0 / len(xs)

    def prepare() -> Callable[[], object]:
        _micrograd_load(model, net)

        def step() -> object:
            model.zero_grad()
            squares = []
            for x, y in zip(xs, ys, strict=True):
                d = model(x) - y
                squares.append(d * d)
            loss = sum(squares) * scale
            loss.backward()
            for p in parameters:
                p.data -= lr * p.grad
            return loss.data

        return step

    def convert(output: object) -> tuple[float, Params]:
        return cast(float, output), baseline.to_params(_micrograd_net(model))

    return prepare, convert


def micrograd_w2(problem: GraphProblem) -> Prepared | None:
    """W2 with micrograd ``Value``s: replay the same program, then ``out.backward()``."""
    engine = _module("micrograd.engine")
    if engine is None:
        return None
    value = engine.Value
    limit = problem.num_nodes + 1_000  # micrograd's topological sort recurses once per node of a path

    def prepare() -> Callable[[], object]:
        def run() -> object:
            leaves = [value(x) for x in problem.leaves]
            out = replay(problem.program, leaves)[-1]
            previous = sys.getrecursionlimit()
            sys.setrecursionlimit(max(previous, limit))
            try:
                out.backward()
            finally:
                sys.setrecursionlimit(previous)
            return out, leaves

        return run

    def convert(output: object) -> tuple[float, list[float]]:
        out, leaves = cast("tuple[Any, list[Any]]", output)
        return float(out.data), [float(leaf.grad) for leaf in leaves]

    return prepare, convert


def micrograd_w2_bytes(problem: GraphProblem) -> Callable[[], Sequence[object]] | None:
    """A function recording W2's graph with micrograd and returning its Values (for tracemalloc)."""
    engine = _module("micrograd.engine")
    if engine is None:
        return None
    value = engine.Value

    def record() -> Sequence[object]:
        return replay(problem.program, [value(x) for x in problem.leaves])

    return record


# --- PyTorch ------------------------------------------------------------------------------


def _torch_model(torch: Any, net: Net) -> Any:
    """``nn.Sequential`` of float64 ``Linear`` layers (relu between) holding ``net``'s weights."""
    layers: list[Any] = []
    for i, (weight, bias) in enumerate(net):
        linear = torch.nn.Linear(len(weight[0]), len(weight), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(weight, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(bias, dtype=torch.float64))
        layers.append(linear)
        if i < len(net) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _torch_net(model: Any) -> Net:
    linears = [m for m in model if hasattr(m, "weight")]
    return [(m.weight.detach().tolist(), m.bias.detach().tolist()) for m in linears]


def torch_w1(problem: RegressionProblem) -> Prepared | None:
    """W1 in PyTorch: ``mse_loss``, ``backward``, ``torch.optim.SGD`` step."""
    torch = _module("torch")
    if torch is None:
        return None
    functional = torch.nn.functional
    net = baseline.from_params(problem.params)
    xs = torch.tensor(problem.inputs, dtype=torch.float64)
    ys = torch.tensor(problem.targets, dtype=torch.float64)
    holder: dict[str, Any] = {}

    def prepare() -> Callable[[], object]:
        model = _torch_model(torch, net)
        optimizer = torch.optim.SGD(model.parameters(), lr=problem.lr)
        holder["model"] = model

        def step() -> object:
            optimizer.zero_grad()
            loss = functional.mse_loss(model(xs).squeeze(1), ys)
            loss.backward()
            optimizer.step()
            return loss

        return step

    def convert(output: object) -> tuple[float, Params]:
        return float(output.item()), baseline.to_params(_torch_net(holder["model"]))  # type: ignore[attr-defined]

    return prepare, convert


def torch_w2(problem: GraphProblem) -> Prepared | None:
    """W2 with 0-d float64 tensors: replay the same program, then ``out.backward()``."""
    torch = _module("torch")
    if torch is None:
        return None

    def prepare() -> Callable[[], object]:
        def run() -> object:
            leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in problem.leaves]
            out = replay(problem.program, leaves)[-1]
            out.backward()
            return out, leaves

        return run

    def convert(output: object) -> tuple[float, list[float]]:
        out, leaves = cast("tuple[Any, list[Any]]", output)
        return float(out.item()), [float(leaf.grad.item()) for leaf in leaves]

    return prepare, convert


def torch_w3(problem: DigitsProblem) -> Prepared | None:
    """W3 in PyTorch: ``cross_entropy``, ``backward``, ``torch.optim.Adam`` over the same batches."""
    torch = _module("torch")
    if torch is None:
        return None
    functional = torch.nn.functional
    net = baseline.from_params(problem.params)
    batches = [
        (torch.tensor(batch.inputs, dtype=torch.float64), torch.tensor(batch.labels(), dtype=torch.int64))
        for batch in problem.batches()
    ]
    holder: dict[str, Any] = {}

    def prepare() -> Callable[[], object]:
        model = _torch_model(torch, net)
        optimizer = torch.optim.Adam(model.parameters(), lr=problem.lr)
        holder["model"] = model

        def epoch() -> object:
            losses = []
            for xs, labels in batches:
                optimizer.zero_grad()
                loss = functional.cross_entropy(model(xs), labels)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            return losses

        return epoch

    def convert(output: object) -> tuple[list[float], Params]:
        losses = [float(loss.item()) for loss in output]  # type: ignore[attr-defined]
        return losses, baseline.to_params(_torch_net(holder["model"]))

    return prepare, convert


def torch_w4(problem: DigitsProblem, params: Params) -> Prepared | None:
    """W4 in PyTorch: one batched forward pass over the test split under ``no_grad``."""
    torch = _module("torch")
    if torch is None:
        return None
    model = _torch_model(torch, baseline.from_params(params))
    xs = torch.tensor(problem.test.inputs, dtype=torch.float64)

    def prepare() -> Callable[[], object]:
        def infer() -> object:
            with torch.no_grad():
                return model(xs)

        return infer

    def convert(output: object) -> list[list[float]]:
        return output.tolist()  # type: ignore[attr-defined, no-any-return]

    return prepare, convert


def _tensor(torch: Any, data: object) -> Any:
    return torch.tensor(data, dtype=torch.float64)


def _load(torch: Any, pairs: Sequence[tuple[Any, object]]) -> None:
    with torch.no_grad():
        for parameter, data in pairs:
            parameter.copy_(_tensor(torch, data))


def _as_tuples(tensor: Any) -> Any:
    """A tensor's values as nested tuples of floats (the canonical form of the N-d workloads)."""
    values = tensor.detach().tolist()

    def freeze(x: object) -> object:
        return tuple(freeze(v) for v in x) if isinstance(x, list) else float(cast(float, x))

    return freeze(values)


def torch_w5(problem: CnnProblem) -> Prepared | None:
    """W5 in PyTorch: the CNN as ``nn.Sequential``, ``cross_entropy``, ``torch.optim.Adam``."""
    torch = _module("torch")
    if torch is None:
        return None
    nn, functional = torch.nn, torch.nn.functional
    w = problem.weights
    batches = [
        (_tensor(torch, images), torch.tensor(labels, dtype=torch.int64))
        for images, labels in problem.batches()
    ]
    holder: dict[str, Any] = {}

    def prepare() -> Callable[[], object]:
        conv = nn.Conv2d(1, problem.channels, 3, padding=1, dtype=torch.float64)
        linear = nn.Linear(problem.channels * 16, 10, dtype=torch.float64)
        _load(torch, [(conv.weight, w.conv_weight), (conv.bias, w.conv_bias)])
        _load(torch, [(linear.weight, w.linear_weight), (linear.bias, w.linear_bias)])
        model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), linear)
        optimizer = torch.optim.Adam(model.parameters(), lr=problem.lr)
        holder["layers"] = (conv, linear)

        def epoch() -> object:
            losses = []
            for images, labels in batches:
                optimizer.zero_grad()
                loss = functional.cross_entropy(model(images), labels)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            return losses

        return epoch

    def convert(output: object) -> tuple[list[float], tuple[object, ...]]:
        conv, linear = holder["layers"]
        losses = [float(loss.item()) for loss in cast("list[Any]", output)]
        return losses, tuple(
            CnnWeights(*(_as_tuples(p) for p in (conv.weight, conv.bias, linear.weight, linear.bias)))
        )

    return prepare, convert


def torch_w6(problem: AttentionProblem) -> Prepared | None:
    """W6 in PyTorch: ``nn.MultiheadAttention(batch_first=True)`` with a causal mask, ``mean(y ** 2)``."""
    torch = _module("torch")
    if torch is None:
        return None
    w = problem.weights
    d = problem.d_model
    inputs = _tensor(torch, problem.inputs)
    time = len(problem.inputs[0])
    mask = torch.ones(time, time, dtype=torch.bool).triu(1)  # True: may not attend
    block = torch.nn.MultiheadAttention(d, problem.heads, batch_first=True, dtype=torch.float64)
    parameters = (block.in_proj_weight, block.in_proj_bias, block.out_proj.weight, block.out_proj.bias)

    def prepare() -> Callable[[], object]:
        _load(torch, list(zip(parameters, w, strict=True)))
        block.zero_grad()

        def run() -> object:
            y, _ = block(inputs, inputs, inputs, attn_mask=mask, need_weights=False)
            loss = (y * y).mean()
            loss.backward()
            return loss.detach()

        return run

    def convert(output: object) -> tuple[float, tuple[object, ...]]:
        grads = AttentionWeights(*(_as_tuples(p.grad) for p in parameters))
        return float(cast(Any, output).item()), tuple(grads)

    return prepare, convert


def torch_w8(problem: RnnProblem) -> Prepared | None:
    """W8 in PyTorch: ``nn.RNN(batch_first=True)`` and a ``Linear`` head, ``cross_entropy``, one Adam step."""
    torch = _module("torch")
    if torch is None:
        return None
    nn, functional = torch.nn, torch.nn.functional
    w = problem.weights
    hidden, features = len(w.weight_ih), len(w.weight_ih[0])
    inputs = _tensor(torch, problem.inputs)
    labels = torch.tensor(problem.labels, dtype=torch.int64)
    rnn = nn.RNN(features, hidden, batch_first=True, dtype=torch.float64)
    head = nn.Linear(hidden, 2, dtype=torch.float64)
    parameters = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, head.weight, head.bias)

    def prepare() -> Callable[[], object]:
        _load(torch, list(zip(parameters, w, strict=True)))
        optimizer = torch.optim.Adam(parameters, lr=problem.lr)
        optimizer.zero_grad()

        def step() -> object:
            _, last = rnn(inputs)
            loss = functional.cross_entropy(head(last[0]), labels)
            loss.backward()
            optimizer.step()  # leaves the gradients in .grad
            return loss.detach()

        return step

    def convert(output: object) -> tuple[float, tuple[object, ...], tuple[object, ...]]:
        grads = RnnWeights(*(_as_tuples(p.grad) for p in parameters))
        new = RnnWeights(*(_as_tuples(p) for p in parameters))
        return float(cast(Any, output).item()), tuple(grads), tuple(new)

    return prepare, convert
