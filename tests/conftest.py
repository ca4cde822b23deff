"""Shared pytest set-up: hypothesis profiles.

The default profiles (``ci`` when ``CI`` is set, ``dev`` otherwise) are derandomized
and keep no example database, so the suite tests the same cases on every run and
machine and never depends on luck. ``HYPOTHESIS_PROFILE=thorough`` searches at
random with 1000 examples per property; pin every case it finds with ``@example``.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "repeatable",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", settings.get_profile("repeatable"), max_examples=25)
settings.register_profile("dev", settings.get_profile("repeatable"), max_examples=60)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the PyTorch parity tests (modules with ``torch`` in their name) ``torch``.

    They skip where torch is not installed; ``FNN_REQUIRE_TORCH=1`` (set by ``.ci/run``,
    which installs torch after the README's test command) makes a missing torch an error.
    """
    if os.environ.get("FNN_REQUIRE_TORCH") == "1" and importlib.util.find_spec("torch") is None:
        raise pytest.UsageError("FNN_REQUIRE_TORCH=1 but torch is not installed")
    for item in items:
        if "torch" in item.path.name:
            item.add_marker(pytest.mark.torch)
