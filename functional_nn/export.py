"""An MLP for PyTorch: its ``torch.nn.Sequential`` layout, tensor names, metadata and loading code.

The equivalent of ``MLP(n_in, sizes, activation, dropout)`` is a ``torch.nn.Sequential``
of one ``Linear`` per layer with, after each hidden one, the activation module (``ReLU``,
``Tanh``, ``Sigmoid``, ``LeakyReLU(0.01)`` or ``Identity``) and, when ``dropout > 0``,
a ``Dropout``. Each module takes one index, so the library's ``layers.{i}.weight``
is the Sequential's ``{index}.weight``. :func:`export_torch` writes the params under
those names with the model's metadata and gives the code that loads them.

>>> from functional_nn.mlp import MLP
>>> model = MLP(4, (8, 8, 3), activation="tanh", dropout=0.1)
>>> torch_modules(model)[:4]
['torch.nn.Linear(4, 8)', 'torch.nn.Tanh()', 'torch.nn.Dropout(0.1)', 'torch.nn.Linear(8, 8)']
>>> torch_sequential_names(model)["layers.1.weight"]
'3.weight'
>>> torch_metadata(model)["layer_sizes"]
'[4, 8, 8, 3]'
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from functional_nn.activations import LEAKY_RELU_SLOPE
from functional_nn.datasets import Standardizer
from functional_nn.mlp import MLP
from functional_nn.safetensors import Dtype, save_safetensors
from functional_nn.serialization import CheckpointError

__all__ = [
    "export_torch",
    "sequential_snippet",
    "torch_metadata",
    "torch_modules",
    "torch_sequential_names",
    "torch_snippet",
]

_TORCH_ACTIVATIONS = {
    "relu": "torch.nn.ReLU()",
    "tanh": "torch.nn.Tanh()",
    "sigmoid": "torch.nn.Sigmoid()",
    "leaky_relu": f"torch.nn.LeakyReLU({LEAKY_RELU_SLOPE!r})",
    "identity": "torch.nn.Identity()",
}
_TORCH_DTYPES = {"F64": "torch.float64", "F32": "torch.float32"}


def _layout(model: MLP) -> list[tuple[str, int | None]]:
    """Each module of the Sequential, as code, with the MLP layer it holds the params of."""
    modules: list[tuple[str, int | None]] = []
    fans = model.layer_shapes
    for i, (fan_out, fan_in) in enumerate(fans):
        modules.append((f"torch.nn.Linear({fan_in}, {fan_out})", i))
        if i < len(fans) - 1:
            modules.append((_TORCH_ACTIVATIONS[model.activation], None))
            if model.dropout > 0:
                modules.append((f"torch.nn.Dropout({model.dropout!r})", None))
    return modules


def torch_modules(model: MLP) -> list[str]:
    """The code of each module of the ``torch.nn.Sequential`` equivalent to ``model``, in order."""
    return [code for code, _ in _layout(model)]


def torch_sequential_names(model: MLP) -> dict[str, str]:
    """The tensor name, in the equivalent ``torch.nn.Sequential``, of each of ``model``'s parameters.

    ``{"layers.0.bias": "0.bias", "layers.0.weight": "0.weight", "layers.1.bias": "2.bias", ...}``;
    give it to :func:`functional_nn.safetensors.save_safetensors` (or ``load_safetensors``) as ``names``.
    """
    return {
        f"layers.{layer}.{part}": f"{index}.{part}"
        for index, (_, layer) in enumerate(_layout(model))
        if layer is not None
        for part in ("bias", "weight")
    }


def torch_metadata(model: MLP, standardizer: Standardizer | None = None) -> dict[str, str]:
    """What a safetensors file of ``model`` records about it, as strings (JSON for numbers and lists).

    ``format`` (``"pt"``), ``layer_sizes`` (``[n_in, *sizes]``), ``activation``,
    ``dropout`` and, given the standardizer the model's inputs went through,
    ``input_mean`` and ``input_scale`` (a feature of scale 0 maps to 0).
    """
    metadata = {
        "format": "pt",
        "layer_sizes": json.dumps([model.n_in, *model.sizes]),
        "activation": model.activation,
        "dropout": json.dumps(model.dropout),
    }
    if standardizer is not None:
        if standardizer.num_features != model.n_in:
            raise ValueError(
                f"the standardizer expects {standardizer.num_features} features, the model {model.n_in}"
            )
        metadata["input_mean"] = json.dumps(list(standardizer.mean))
        metadata["input_scale"] = json.dumps(list(standardizer.scale))
    return metadata


def torch_snippet(
    model: MLP, path: str | os.PathLike[str], *, dtype: Dtype = "F64", standardized: bool = False
) -> str:
    """Python code that builds ``model`` in PyTorch as ``model`` and loads the file at ``path`` into it.

    With ``standardized``, the code also reads ``input_mean`` and ``input_scale`` from
    the file's metadata and defines ``standardize(x)``, to apply to inputs first.
    """
    return sequential_snippet(torch_modules(model), path, dtype=dtype, standardized=standardized)


def sequential_snippet(
    modules: Sequence[str], path: str | os.PathLike[str], *, dtype: Dtype = "F64", standardized: bool = False
) -> str:
    """Python code that builds ``torch.nn.Sequential`` of the ``modules`` (their code) as ``model``
    and loads the file at ``path`` into it; ``standardized`` as for :func:`torch_snippet`."""
    torch_dtype = _TORCH_DTYPES[dtype]
    where = repr(os.fspath(path))
    listed = "".join(f"    {code},\n" for code in modules)
    lines = [
        "import json\n\n" if standardized else "",
        "import torch\n",
        "from safetensors import safe_open\n" if standardized else "",
        "from safetensors.torch import load_file\n",
        "\n",
        f"model = torch.nn.Sequential(\n{listed}).to({torch_dtype})\n",
        f"model.load_state_dict(load_file({where}))\n",
        "model.eval()\n",
    ]
    if standardized:
        lines += [
            f'with safe_open({where}, framework="pt") as file:\n',
            "    metadata = file.metadata()\n",
            f'mean = torch.tensor(json.loads(metadata["input_mean"]), dtype={torch_dtype})\n',
            f'scale = torch.tensor(json.loads(metadata["input_scale"]), dtype={torch_dtype})\n',
            "\n",
            "\n",
            "def standardize(x: torch.Tensor) -> torch.Tensor:\n",
            '    """(x - mean) / scale; a feature of scale 0 (constant in training) maps to 0."""\n',
            "    return torch.where(scale > 0, (x - mean) / torch.where(scale > 0, scale, 1.0), 0.0)\n",
            "\n",
            "\n",
            f"# outputs = model(standardize(torch.tensor([...], dtype={torch_dtype})))\n",
        ]
    else:
        lines.append(f"# outputs = model(torch.tensor([...], dtype={torch_dtype}))\n")
    return "".join(lines)


def export_torch(
    path: str | os.PathLike[str],
    model: MLP,
    params: object,
    *,
    dtype: Dtype = "F64",
    standardizer: Standardizer | None = None,
) -> str:
    """Save ``params`` of ``model`` at ``path`` for PyTorch; return the code that loads them.

    The file holds the tensors under :func:`torch_sequential_names` with
    :func:`torch_metadata`, so ``load_state_dict(..., strict=True)`` accepts it on the
    Sequential that :func:`torch_snippet` (the returned code) builds. Raises
    :class:`CheckpointError` for params that do not fit ``model`` and for whatever
    :func:`functional_nn.safetensors.save_safetensors` refuses.
    """
    try:
        model.check_params(params)
    except ValueError as error:
        raise CheckpointError(str(error)) from error
    save_safetensors(
        path,
        params,
        dtype=dtype,
        metadata=torch_metadata(model, standardizer),
        names=torch_sequential_names(model),
    )
    return torch_snippet(model, path, dtype=dtype, standardized=standardizer is not None)
