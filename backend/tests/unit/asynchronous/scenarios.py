"""A scenario the async harness tests run twice: inside a generated suite,
through the `async_db` fixture (the next test shows whether anything
leaked), and by hand around `async_isolated_session` (the database is looked
at after it closed)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import User
from tests.factories import UserFactory, async_create


async def users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def integrity_error(session: AsyncSession) -> None:
    """Commit a user, have the same e-mail refused, roll back: one user is left."""
    await async_create(UserFactory, _session=session, email="twice@example.com")
    await session.commit()
    session.add(User(email="twice@example.com"))
    with pytest.raises(IntegrityError):
        await session.flush()
    await session.rollback()
    assert await users(session) == 1
