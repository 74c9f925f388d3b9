"""Hypothesis profiles for the property suite.

`default` keeps `make test` fast; `HYPOTHESIS_PROFILE=ci make test` runs the
thorough one. Both print a reproduction blob on failure (`print_blob`); a
failing run is replayed with `pytest --hypothesis-seed=<seed>` or by pasting
the printed `@reproduce_failure(...)` decorator. Failing examples are also
saved in `.hypothesis/` (not committed) and replayed first next time.
"""

from __future__ import annotations

import os

from hypothesis import settings

# No deadline: the timing of one example says nothing about correctness, and
# a loaded two-core machine (or PostgreSQL) would make deadlines flaky.
settings.register_profile("default", max_examples=25, deadline=None, print_blob=True)
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
