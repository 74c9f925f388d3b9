"""Fixtures the unit suite's subject folders share (the harness's own, `db`
included, come from `backend/tests/conftest.py`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session


@pytest.fixture
def commit_and_expire(db: Session) -> Callable[[], None]:
    """Commit, then expire every object, so the next reads come from the database."""

    def commit_then_expire() -> None:
        db.commit()
        db.expire_all()

    return commit_then_expire
