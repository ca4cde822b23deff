"""The recording core: the op record and its registry, frozen nodes, and the recordings.

Bottom to top: :mod:`tape.core.op` (``Op`` and ``define``), :mod:`tape.core.node`
(the frozen ``Node`` and the ``Tracked`` handle every Value and Array is),
:mod:`tape.core.recording` (append-only recording, its one reverse sweep, the
forward-mode recording, lifecycle and nesting). Nothing here knows any particular op.
"""
