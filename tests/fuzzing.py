"""Settings shared by the property-based (hypothesis) tests.

In CI (`CI` set) the examples are derived from each test's code, so that every CI run tries the same
ones and a failure there is a failure of the change, reproducible anywhere with `CI=1`; elsewhere
each run draws new ones, so running the tests locally keeps looking for the next bug, and a failing
example is kept in `.hypothesis/` and tried first next time. `TREEFLOW_FUZZ_EXAMPLES` sets how many
examples each test tries (for a longer search: `TREEFLOW_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_*`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

IN_CI = bool(os.environ.get("CI"))


def fuzz_settings(examples: int) -> settings:
    """``examples`` per test (each test picks a number that keeps it within a few seconds)."""
    return settings(
        max_examples=int(os.environ.get("TREEFLOW_FUZZ_EXAMPLES", examples)),
        # A shared machine's pauses are not the code's; the test's own time is kept small instead.
        deadline=None,
        derandomize=IN_CI,
        database=None if IN_CI else settings.default.database,
        # Every test here runs under the autouse fixtures of tests/conftest.py, which only point
        # step worktrees at a folder of the test's own: nothing an example could leave to the next.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
