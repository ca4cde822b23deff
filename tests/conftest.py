"""Shared pytest set-up: hypothesis profiles.

The default profiles (``ci`` when ``CI`` is set, ``dev`` otherwise) are derandomized
and keep no example database, so the suite tests the same cases on every run and
machine and never depends on luck. ``HYPOTHESIS_PROFILE=thorough`` searches at
random with 1000 examples per property; pin every case it finds with ``@example``.
"""

from __future__ import annotations

import os

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
