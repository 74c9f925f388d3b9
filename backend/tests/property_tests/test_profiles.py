"""The hypothesis profiles (`tests.profiles`): registered once for the whole
suite, one setting (`HYPOTHESIS_PROFILE`) for every example count, and what a
failure prints."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests import harness
from tests.profiles import EXAMPLES, PROFILE_ENV, examples_per_case, machine_examples


@pytest.fixture
def restore_profile() -> Iterator[None]:
    """Load the run's own profile again afterwards: loading one is global."""
    name = settings.get_current_profile_name()
    yield
    settings.load_profile(name)


def test_default_is_fast_and_ci_is_thorough() -> None:
    dev, default, ci = (settings.get_profile(name) for name in ("dev", "default", "ci"))
    assert dev.max_examples <= default.max_examples <= 50 < ci.max_examples
    for profile in (dev, default, ci):
        assert profile.deadline is None
        assert profile.print_blob is True
        # Left on everywhere: it refuses a plain @given test that takes `db`.
        assert HealthCheck.function_scoped_fixture not in profile.suppress_health_check


@pytest.mark.usefixtures("restore_profile")
def test_every_count_follows_the_one_setting() -> None:
    counts = {}
    for name in EXAMPLES:
        settings.load_profile(name)
        counts[name] = (settings().max_examples, examples_per_case(), machine_examples())
        assert counts[name][0] == EXAMPLES[name]
        assert all(2 <= count <= EXAMPLES[name] for count in counts[name][1:])
    assert counts["dev"] <= counts["default"]
    assert all(a < b for a, b in zip(counts["default"], counts["ci"], strict=True))


COUNTS = """
    from hypothesis import settings

    from tests.profiles import examples_per_case, machine_examples


    def test_counts():
        print("counts:", settings().max_examples, examples_per_case(), machine_examples())
"""


@pytest.mark.parametrize(
    ("profile", "options", "expected"),
    [
        ("ci", [], "*counts: 200 40 100"),
        ("", [], f"*counts: {EXAMPLES['default']} *"),
        ("ci", ["--hypothesis-profile=dev"], f"*counts: {EXAMPLES['dev']} 2 2"),
    ],
    ids=["environment", "unset", "command-line-wins"],
)
def test_the_setting_reaches_a_test_in_any_folder(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    options: list[str],
    expected: str,
) -> None:
    outer = settings.get_current_profile_name()
    monkeypatch.setenv(PROFILE_ENV, profile)
    pytester.makepyfile(test_anywhere=textwrap.dedent(COUNTS))
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-p",
        "no:randomly",
        "-s",
        *options,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([expected])
    # Loading a profile is global: the inner session put this run's back.
    assert settings.get_current_profile_name() == outer


def test_an_unknown_profile_stops_the_run_naming_the_setting(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = settings.get_current_profile_name()
    monkeypatch.setenv(PROFILE_ENV, "fast")
    pytester.makepyfile(test_anywhere=textwrap.dedent(COUNTS))
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-p",
        "no:randomly",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: HYPOTHESIS_PROFILE must be one of dev, default, ci (got 'fast')"]
    )
    assert settings.get_current_profile_name() == outer


def test_a_failing_property_prints_how_to_reproduce_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_fails(n):
            assert n < 10
        """
    )
    result = pytester.runpytest(
        "--disable-plugin-autoload", "-p", "hypothesispytest", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failing test case*", "*n=10,*", "*@reproduce_failure(*"])
