"""A pytest plugin for mutation runs: each run starts with `core`'s caches empty.

mutmut forks every mutant's test run from a process that has already run
the suite, so a `functools.cache` in `core` (the models' constructor
defaults, their SET NULL keys) would hand every mutant the answer the
unmutated function gave, and no mutant of a cached function could be seen.
A fresh process computes them anew; so does a run with this plugin.
"""

from __future__ import annotations

import sys

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    for name, module in list(sys.modules.items()):
        if name == "core" or name.startswith("core."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()
