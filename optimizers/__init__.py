"""Pure optimizers that return new parameter and state maps.

Nothing is mutated: ``step`` takes params, grads and a state and gives new params and
a new state. Ready-made optimizers (:func:`sgd`, :func:`momentum`, :func:`adam`,
:func:`adamw`) match ``torch.optim`` step for step and are chains of small gradient
transformations, which compose with :func:`chain`.

>>> from pyrsistent import pmap, pvector
>>> import optimizers
>>> opt = optimizers.chain(optimizers.clip_by_global_norm(1.0), optimizers.adam(0.1))
>>> params = pmap({"layer": pmap({"weight": pvector([1.0, 2.0]), "bias": 0.0})})
>>> state = opt.init(params)
>>> for _ in range(100):  # minimise the sum of squares: its gradient is 2 * p
...     grads = pmap({"layer": pmap({"weight": pvector([2 * w for w in params["layer"]["weight"]]),
...                                  "bias": 2 * params["layer"]["bias"]})})
...     params, state = opt.step(params, grads, state)
>>> max(abs(w) for w in params["layer"]["weight"]) < 0.1, state["step"]
(True, 100)
"""

from __future__ import annotations

from optimizers import masks, schedules
from optimizers.alias import adam, adamw, momentum, sgd
from optimizers.base import (
    GradientTransformation,
    InitFn,
    Optimizer,
    Params,
    UpdateFn,
    Updates,
    apply_updates,
    chain,
)
from optimizers.masks import Mask, all_parameters, default_decay_mask, names_ending_in
from optimizers.schedules import (
    Schedule,
    constant,
    cosine_decay,
    exponential_decay,
    join_schedules,
    linear_warmup,
    step_decay,
)
from optimizers.state import OptState, StateError, StateValue, state_from_json, state_to_json
from optimizers.transforms import (
    LearningRate,
    add_decoupled_weight_decay,
    add_l2_decay,
    clip_by_global_norm,
    scale_by_adam,
    scale_by_learning_rate,
    trace,
)
from optimizers.validation import check_state

__all__ = [
    "GradientTransformation",
    "InitFn",
    "LearningRate",
    "Mask",
    "OptState",
    "Optimizer",
    "Params",
    "Schedule",
    "StateError",
    "StateValue",
    "UpdateFn",
    "Updates",
    "adam",
    "adamw",
    "add_decoupled_weight_decay",
    "add_l2_decay",
    "all_parameters",
    "apply_updates",
    "chain",
    "check_state",
    "clip_by_global_norm",
    "constant",
    "cosine_decay",
    "default_decay_mask",
    "exponential_decay",
    "join_schedules",
    "linear_warmup",
    "masks",
    "momentum",
    "names_ending_in",
    "scale_by_adam",
    "scale_by_learning_rate",
    "schedules",
    "sgd",
    "state_from_json",
    "state_to_json",
    "step_decay",
    "trace",
]
