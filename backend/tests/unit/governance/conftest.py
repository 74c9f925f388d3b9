"""Fixtures of the governance tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core import governance
from core.governance import Announcement

# Microseconds included: every database the suite runs on keeps them.
NOW = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The governance rules read the clock as NOW for the test, so the time
    a rule writes is known exactly. Column defaults (`created_at`,
    `started_at` when not given) still read the real clock."""
    monkeypatch.setattr(governance, "utc_now", lambda: NOW)
    return NOW


@pytest.fixture
def heard() -> Iterator[list[Announcement]]:
    """What a subscriber heard during the test."""
    announcements: list[Announcement] = []
    with governance.subscribed(announcements.append):
        yield announcements
