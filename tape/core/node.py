"""The frozen ``Node`` a recording appends, and ``Tracked``, the handle of a recorded value."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from tape.core.op import Op

if TYPE_CHECKING:
    from tape.core.recording import Recording


class Node(NamedTuple):
    """One recorded operation. Frozen: nothing in it changes after recording.

    ``saved`` is what the op's derivative rule needs: for a scalar op the local
    partials, ``saved[k] = d value / d (value at parents[k])``; for an array op what
    its ``vjp`` rule reads. A node of an op with ``recompute`` saves nothing
    (``None``): its partials are recomputed from its inputs' values, already on the tape.
    """

    op: Op
    parents: tuple[int, ...]
    value: object
    saved: tuple[object, ...] | None

    @property
    def partials(self) -> tuple[object, ...] | None:
        """A scalar op's local partials (the same as ``saved``)."""
        return self.saved


class Tracked:
    """What a front-end value (a scalar ``Value``, an ``Array``) is made of.

    ``primal`` is the value as its own recording sees it (a float or nested tuples of
    floats, or a Value of an enclosing tape while that records); ``tape`` the recording
    that tracks it (``None`` for a constant); ``position`` its node's place there
    (``-1`` for a constant). Read-only by contract: only a recording sets them, in
    :meth:`tape.core.recording.Recording.record`, the one constructor of tracked values.
    """

    __slots__ = ("position", "primal", "tape")

    primal: object
    tape: Recording | None
    position: int
