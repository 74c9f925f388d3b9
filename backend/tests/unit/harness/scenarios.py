"""A scenario the harness tests run twice: inside a generated suite, through
the `db` fixture (the next test shows whether anything leaked), and by hand
around `isolated_session` (the database is looked at after it closed)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import User
from tests.factories import UserFactory


def users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def integrity_error(session: Session) -> None:
    """Commit a user, have the same e-mail refused, roll back: one user is left."""
    UserFactory(_session=session, email="twice@example.com")
    session.commit()
    session.add(User(email="twice@example.com"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert users(session) == 1
