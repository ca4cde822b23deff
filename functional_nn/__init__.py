"""Pure model functions over persistent parameter maps.

Models are frozen specs with pure ``init(key)`` and ``apply(params, x)``; params are
pyrsistent maps of persistent vectors of floats; randomness comes from explicit keys.

>>> from functional_nn import MLP, random
>>> model = MLP(2, [8, 3], activation="tanh")
>>> params = model.init(random.key(0))
>>> [name for name, _ in named_parameters(params)]
['layers.0.bias', 'layers.0.weight', 'layers.1.bias', 'layers.1.weight']
>>> num_params(params), len(model.apply(params, [0.5, -1.0]))
(51, 3)
"""

from functional_nn import datasets, layers, random
from functional_nn.dataloader import Batch, DataLoader, Dataset, train_test_split
from functional_nn.functional import accuracy, argmax, log_softmax, logsumexp, predict, softmax
from functional_nn.layers import Layer, serial
from functional_nn.loss import (
    bce_loss,
    bce_loss_batch,
    bce_with_logits,
    bce_with_logits_batch,
    cross_entropy,
    cross_entropy_batch,
    cross_entropy_with_logits,
    cross_entropy_with_logits_batch,
    hinge_loss,
    hinge_loss_batch,
    mse_loss,
    mse_loss_batch,
    multi_margin_loss,
    multi_margin_loss_batch,
)
from functional_nn.mlp import MLP, Params, named_parameters, num_params
from functional_nn.regularization import dropout
from functional_nn.safetensors import load_safetensors, save_safetensors
from functional_nn.serialization import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    state_dict,
)

__all__ = [
    "MLP",
    "Batch",
    "Checkpoint",
    "CheckpointError",
    "DataLoader",
    "Dataset",
    "Layer",
    "Params",
    "accuracy",
    "argmax",
    "bce_loss",
    "bce_loss_batch",
    "bce_with_logits",
    "bce_with_logits_batch",
    "cross_entropy",
    "cross_entropy_batch",
    "cross_entropy_with_logits",
    "cross_entropy_with_logits_batch",
    "datasets",
    "dropout",
    "hinge_loss",
    "hinge_loss_batch",
    "layers",
    "load_checkpoint",
    "load_safetensors",
    "load_state_dict",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "mse_loss_batch",
    "multi_margin_loss",
    "multi_margin_loss_batch",
    "named_parameters",
    "num_params",
    "predict",
    "random",
    "save_checkpoint",
    "save_safetensors",
    "serial",
    "softmax",
    "state_dict",
    "train_test_split",
]
