"""``define``: how a user adds a primitive op, scalar or array, with its derivative rules.

A scalar op gives its forward rule and one partial rule per argument,
``d value / d argument`` from ``(value, *args)``; written with ``tape``'s own
functions and operators, the rules are themselves differentiable, so the op works
under ``grad`` of ``grad`` and in forward mode. An array op gives ``vjp`` and ``jvp``
rules instead:

- ``vjp(adjoint, value, *args)`` returns one cotangent per argument (``None`` where
  there is none): nested lists or tuples shaped like the argument;
- ``jvp(value, args, tangents)`` returns the output's tangent, given one tangent per
  argument (zeros for arguments that are not tracked).

Calling the returned :class:`~tape.core.op.Op` applies it: floats in, floats out;
tracked Values or Arrays in, one recorded node out.

>>> import tape
>>> softplus = tape.define(
...     "softplus_example", lambda x: tape.log(1.0 + tape.exp(x)), lambda v, x: tape.sigmoid(x)
... )
>>> softplus(0.0) == tape.log(2.0), tape.grad(lambda x: softplus(x))(0.0)
(True, 0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tape.array import custom_jvp, custom_vjp
from tape.core import op as core
from tape.core.op import Op
from tape.validate import positional_arity

__all__ = ["define"]


def define(
    name: str,
    forward: Callable[..., object],
    *partials: Callable[..., object],
    vjp: Callable[..., Sequence[object]] | None = None,
    jvp: Callable[..., object] | None = None,
    replace: bool = False,
) -> Op:
    """Register the primitive op ``name`` and return it (call it to apply it).

    Give ``partials`` for a scalar op, or ``vjp`` and ``jvp`` for an array op (see the
    module docstring for their signatures). A name that exists is a ValueError unless
    ``replace=True``, which redefines it in place: every later use follows the new rules.
    """
    for what, rule in (
        ("its forward rule", forward),
        *((f"partial rule {k}", r) for k, r in enumerate(partials)),
    ):
        if not callable(rule):
            raise TypeError(f"op {name!r}: {what} must be callable, not {type(rule).__name__}")
    if partials:
        _check_arity(name, forward, len(partials))
    if vjp is not None or jvp is not None:
        if partials:
            raise ValueError(f"op {name!r}: give partial rules or vjp and jvp rules, not both")
        if vjp is None or jvp is None:
            raise ValueError(f"op {name!r} needs partial rules, or both a vjp and a jvp rule")
        return core.define(name, forward, vjp=custom_vjp(vjp), jvp=custom_jvp(jvp), replace=replace)
    return core.define(name, forward, *partials, replace=replace)


def _check_arity(name: str, forward: Callable[..., object], rules: int) -> None:
    """One partial rule per argument ``forward`` takes (unless it takes ``*args``, or has no signature)."""
    arity = positional_arity(forward)
    if arity is None:
        return
    required, most = arity
    if not required <= rules <= most:
        takes = f"{required}" if required == most else f"{required} to {most}"
        raise ValueError(
            f"op {name!r}: its forward rule takes {takes} argument{'s' if most != 1 else ''} "
            f"but {rules} partial rule{'s are' if rules != 1 else ' is'} given; give one per argument"
        )
