"""Hypothesis profiles: one setting, `HYPOTHESIS_PROFILE`, sets every example count.

A pytest plugin (listed in the root conftest's `pytest_plugins`), so that every
`@given` test of the suite, whatever its folder, runs under the same profile:

- `dev`: a quick look while editing (`HYPOTHESIS_PROFILE=dev`);
- `default`: `make test`, the everyday run;
- `ci`: the thorough run (`HYPOTHESIS_PROFILE=ci make test`).

A plain `@given` test runs the profile's `max_examples`. Two counts are
derived from it, so the one setting moves them too: `examples_per_case()`, for
a property parametrized over every column or model (dozens of cases), and
`machine_examples()`, the runs of the governance state machine. Every profile
prints a `@reproduce_failure(...)` blob on failure and has no deadline: the
time one example takes says nothing about correctness, and a loaded two-core
machine (or PostgreSQL) would make deadlines flaky. `pytest
--hypothesis-profile=<name>` picks a profile too, for one run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "default"

# Examples of a plain `@given` test under each profile. `default` is sized for
# the everyday run: 15 examples a property, 3 for each case of a parametrized
# one and 7 state machines, fresh ones every run (failures found earlier are
# replayed first from `.hypothesis/`); `ci` explores more than ten times
# further (200, 40 and 100).
EXAMPLES = {"dev": 5, "default": 15, "ci": 200}


def examples_per_case() -> int:
    """Examples for each case of a property parametrized over every column (or
    model): a fifth of the profile's, as such a property runs dozens of times."""
    return max(2, settings().max_examples // 5)


def machine_examples() -> int:
    """Runs of the governance state machine (each up to 50 steps, every step
    a governance move): half the profile's examples."""
    return max(2, settings().max_examples // 2)


for _name, _examples in EXAMPLES.items():
    settings.register_profile(_name, max_examples=_examples, deadline=None, print_blob=True)


# The profile that was loaded before this pytest session loaded its own.
_PREVIOUS = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before hypothesis's own plugin, so that `--hypothesis-profile` still
    # wins; before collection, so that the settings each test module builds
    # when it is imported inherit the profile.
    name = os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in EXAMPLES:
        raise pytest.UsageError(
            f"{PROFILE_ENV} must be one of {', '.join(EXAMPLES)} (got {name!r})"
        )
    config.stash[_PREVIOUS] = settings.get_current_profile_name()
    settings.load_profile(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    # Loading a profile is global to the process: a session run inside a test
    # (pytester) puts back the outer run's, `--hypothesis-profile` included.
    previous = config.stash.get(_PREVIOUS, None)
    if previous is not None:
        settings.load_profile(previous)
