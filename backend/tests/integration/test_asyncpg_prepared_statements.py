"""asyncpg's prepared statements after DDL: the failure, and the two cures.

SQLAlchemy's asyncpg dialect prepares every statement and keeps it per
connection (`prepared_statement_cache_size`, 100 by default). DDL run by
another engine or process (a migration, the harness's sync engine, another
test) changes what a cached statement returns; its next use fails with
`InvalidCachedStatementError` ("cached statement plan is invalid"), once,
after which SQLAlchemy drops its caches. So does DDL rolled back in the
pool itself: a statement prepared while the change stood outlives it. In a
test suite that is a failure in an unrelated test, and only in some orders.

The cures, each shown here on a scratch PostgreSQL database (so these tests
run in `make test-postgres` only: `@pytest.mark.server`):
- the harness's: no cache (`prepared_statement_cache_size=0`, what
  `harness.async_engine_for` sets for asyncpg): every statement is prepared
  afresh, one more round trip each;
- the application's: keep the cache (it is faster) and run DDL before the
  engine starts, or `await engine.dispose()` after it, so no connection
  keeps a plan from before.
psycopg's async mode is not affected: it re-prepares by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import NotSupportedError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import (
    make_async_engine,
    make_engine,
)
from core.models import Workspace
from core.schema import Base
from tests import harness

# Widening a column, as a migration might: the type a cached SELECT of it
# returns is no longer the type the database returns.
DDL = "ALTER TABLE workspaces ALTER COLUMN name TYPE text"
NAMES = select(Workspace.name).order_by(Workspace.name)

pytestmark = pytest.mark.server("postgresql")


@pytest.fixture
def ddl_engine() -> Iterator[Engine]:
    """A sync engine on a fresh database with the schema and one row: the
    migration's side, another engine than the one under test."""
    with harness.scratch_postgres("stale") as url:
        engine = make_engine(url)
        try:
            Base.metadata.create_all(engine)
            with engine.begin() as connection:
                connection.execute(insert(Workspace).values(id="w", name="Acme"))
            yield engine
        finally:
            engine.dispose()


async def names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list(await connection.scalars(NAMES))


def change_the_schema(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(DDL)


@pytest.fixture
async def cached(ddl_engine: Engine) -> AsyncIterator[AsyncEngine]:
    """asyncpg as the application makes it (cache on), one pooled connection."""
    engine = make_async_engine(ddl_engine.url, driver="asyncpg", pool_size=1)
    yield engine
    await engine.dispose()


async def test_ddl_from_another_engine_makes_a_cached_statement_fail_once(
    ddl_engine: Engine, cached: AsyncEngine
) -> None:
    assert await names(cached) == ["Acme"]  # prepared and cached on the pooled connection

    change_the_schema(ddl_engine)

    with pytest.raises(NotSupportedError, match="InvalidCachedStatementError") as stale:
        await names(cached)
    assert "cached statement plan is invalid" in str(stale.value)
    assert await names(cached) == ["Acme"]  # SQLAlchemy dropped its caches after the failure


async def test_ddl_rolled_back_in_the_same_pool_leaves_a_stale_statement_behind(
    cached: AsyncEngine,
) -> None:
    # A test that alters a table inside its own transaction, rolled back as
    # the harness does: the statement it prepared meanwhile was prepared
    # against a schema that the rollback undid, and the next test fails.
    async with cached.connect() as connection:
        transaction = await connection.begin()
        await connection.exec_driver_sql(DDL)
        assert list(await connection.scalars(NAMES)) == ["Acme"]
        await transaction.rollback()

    with pytest.raises(NotSupportedError, match="InvalidCachedStatementError"):
        await names(cached)


async def test_disposing_the_pool_after_ddl_avoids_it(
    ddl_engine: Engine, cached: AsyncEngine
) -> None:
    assert await names(cached) == ["Acme"]

    change_the_schema(ddl_engine)
    await cached.dispose()  # the application's cure: no connection outlives the DDL

    assert await names(cached) == ["Acme"]


async def test_the_harness_engine_keeps_no_statements_and_never_meets_it(
    ddl_engine: Engine,
) -> None:
    async with harness.async_engine_for(ddl_engine, "asyncpg") as engine:
        async with engine.connect() as connection:  # DDL rolled back in the same pool
            transaction = await connection.begin()
            await connection.exec_driver_sql(DDL)
            assert list(await connection.scalars(NAMES)) == ["Acme"]
            await transaction.rollback()
        assert await names(engine) == ["Acme"]

        change_the_schema(ddl_engine)  # DDL from another engine

        assert await names(engine) == ["Acme"]


async def test_psycopg_prepares_again_by_itself(ddl_engine: Engine) -> None:
    engine = make_async_engine(ddl_engine.url, driver="psycopg", pool_size=1)
    try:
        for _ in range(6):  # past psycopg's prepare_threshold: prepared on the server
            assert await names(engine) == ["Acme"]

        change_the_schema(ddl_engine)

        assert await names(engine) == ["Acme"]
    finally:
        await engine.dispose()
