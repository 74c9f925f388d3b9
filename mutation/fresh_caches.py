"""A pytest plugin for mutation runs: each test starts with `core`'s caches empty.

mutmut forks every mutant's test run from a process that has already run
the suite, so a cache in `core` (a `functools.cache`: the models'
constructor defaults, their SET NULL keys; the bulk path's per-model row
plans) would hand every mutant the answer the unmutated function gave, and
no mutant of a cached function could be seen.
Cleared before each test, not once per run: mutmut also learns which tests
reach a function by watching it run, and a cached function runs only in the
first test that asks for each answer.
"""

from __future__ import annotations

import sys

import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name, module in list(sys.modules.items()):
        if name == "core" or name.startswith("core."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()
    validation = sys.modules.get("core.validation")
    for rules in getattr(validation, "_MODEL_RULES", {}).values():
        rules._plans.clear()
