"""``python -m tests.benchmarks``: see :mod:`tests.benchmarks`."""

from tests.benchmarks.run import main

raise SystemExit(main())
