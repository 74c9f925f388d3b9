"""The hypothesis profiles this suite registers, and what a failure prints."""

from __future__ import annotations

import pytest
from hypothesis import settings


def test_default_is_fast_and_ci_is_thorough() -> None:
    default, ci = settings.get_profile("default"), settings.get_profile("ci")
    assert default.max_examples <= 50 < ci.max_examples
    for profile in (default, ci):
        assert profile.deadline is None
        assert profile.print_blob is True


def test_a_failing_property_prints_how_to_reproduce_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_fails(n):
            assert n < 10
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failing test case*", "*n=10,*", "*@reproduce_failure(*"])
