"""Per-test isolation strategies, each running the same test body.

A strategy is a context manager that prepares what it shares between tests
(an engine, a schema, a template) and yields `run_test`: one whole test,
from isolation set-up to clean-up, around `test_body`. The harness strategy
calls the project's own `isolated_session`, exactly as the `db` fixture
does; it is the real thing, not a copy. The test body builds its rows
itself, with the models' constructors, as the factories would (one flush per
row), so the benchmark depends on no test factory.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bench.schema import Schema
from bench.servers import BenchServer
from core.database import make_engine
from core.models import (
    AgentExecution,
    AgentFeedback,
    AgentRegistry,
    User,
    Workspace,
)
from core.schema import Base
from tests.databases import remove_sqlite_files

# The `db` and `async_db` fixtures' own code, which the harness strategies time.
from tests.harness import (
    DEFAULT_TEST_DATABASE_URL,
    async_engine_for,
    async_isolated_session,
    isolated_session,
)

RunTest = Callable[[], None]
StrategyFactory = Callable[[Schema], AbstractContextManager[RunTest]]
SharedDatabaseStrategy = Callable[[str | URL, Schema], AbstractContextManager[RunTest]]

# The suite's own default test database: SQLite in memory.
SQLITE_MEMORY = DEFAULT_TEST_DATABASE_URL


# Unique names for rows that pile up (the floor never removes any).
_serial = itertools.count()

ModelT = TypeVar("ModelT", bound=Base)


def _inserted(session: Session, row: ModelT) -> ModelT:
    """Add and flush one row, as a factory does."""
    session.add(row)
    session.flush()
    return row


def test_body(session: Session) -> None:
    """A typical ORM test: 7 inserts, each flushed, 2 selects, 1 commit."""
    n = next(_serial)
    owner = _inserted(session, User(email=f"bench{n}@example.com"))
    workspace = _inserted(session, Workspace(name=f"Workspace {n}"))
    agent = _inserted(
        session,
        AgentRegistry(
            name=f"Agent {n}",
            category="operations",
            module_path="agents.operations",
            class_name=f"OperationsAgent{n}",
            owner=owner,
            workspace=workspace,
        ),
    )
    for run in range(3):
        _inserted(session, AgentExecution(agent=agent, input_summary=f"run {run}"))
    feedback = AgentFeedback(
        agent=agent, user=owner, original_output="draft", user_correction="better", rating=4
    )
    _inserted(session, feedback)
    runs = session.scalar(
        select(func.count()).select_from(AgentExecution).where(AgentExecution.agent_id == agent.id)
    )
    found = session.scalars(select(AgentRegistry).where(AgentRegistry.name == agent.name)).one()
    if runs != 3 or found is not agent:
        raise RuntimeError(f"the test body saw {runs} runs and agent {found!r}")
    session.commit()


def _body_in_new_session(engine: Engine) -> None:
    with Session(engine) as session:
        test_body(session)


# --------------------------------------------------------------------------
# Strategies that share one database (SQLite in memory, or a PostgreSQL URL)
# --------------------------------------------------------------------------


@contextmanager
def _schema_once(url: str | URL, schema: Schema) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        schema.create_all(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def floor(url: str | URL, schema: Schema) -> Iterator[RunTest]:
    """No isolation at all: rows pile up. The cost of the body alone."""
    with _schema_once(url, schema) as engine:
        yield lambda: _body_in_new_session(engine)


@contextmanager
def harness(url: str | URL, schema: Schema) -> Iterator[RunTest]:
    """The project's harness: schema once, outer transaction, savepoint session."""
    with _schema_once(url, schema) as engine:

        def run_test() -> None:
            # The `db` fixture of backend/tests/conftest.py, call for call
            # (less binding the factories, which this body does not use).
            with engine.connect() as connection, isolated_session(connection) as session:
                test_body(session)

        yield run_test
        _check_empty(engine, schema)


def async_strategy(driver: str, *, isolated: bool) -> SharedDatabaseStrategy:
    """The async side on `driver`, the same body run through `run_sync`.

    `async_engine` once, on the sync engine's database as the fixture makes
    it (`async_engine_for`); then per test either the async harness (an
    `AsyncConnection`, an outer transaction and an `AsyncSession` joined with
    a savepoint: `async_db`, call for call) or, as its floor, a plain
    `AsyncSession` that commits. One loop for the whole strategy, as
    pytest-asyncio's session-scoped loop is for a test run; each test is one
    `run()` on it, as pytest-asyncio runs an async test.
    """

    @contextmanager
    def strategy(url: str | URL, schema: Schema) -> Iterator[RunTest]:
        with _schema_once(url, schema) as engine, asyncio.Runner() as runner:
            opened = async_engine_for(engine, driver)
            async_engine = runner.run(opened.__aenter__())

            async def one_test() -> None:
                if not isolated:
                    async with AsyncSession(async_engine) as plain:
                        await plain.run_sync(test_body)
                    return
                async with (
                    async_engine.connect() as connection,
                    async_isolated_session(connection) as session,
                ):
                    await session.run_sync(test_body)

            try:
                yield lambda: runner.run(one_test())
            finally:
                runner.run(opened.__aexit__(None, None, None))
            if isolated:
                _check_empty(engine, schema)

    return strategy


def async_strategies(driver: str) -> list[tuple[str, SharedDatabaseStrategy]]:
    """The async floor and the async harness on `driver`, named for the tables."""
    return [
        (f"async floor ({driver})", async_strategy(driver, isolated=False)),
        (f"async harness ({driver})", async_strategy(driver, isolated=True)),
    ]


@contextmanager
def _emptied_after_each_test(
    engine: Engine, schema: Schema, empty: Callable[[Connection], None]
) -> Iterator[RunTest]:
    """Each test: the body in a new session, then `empty` in one transaction."""

    def run_test() -> None:
        _body_in_new_session(engine)
        with engine.begin() as connection:
            empty(connection)

    yield run_test
    _check_empty(engine, schema)


@contextmanager
def delete_all(url: str | URL, schema: Schema) -> Iterator[RunTest]:
    """Schema once; DELETE FROM every table, children first, after each test."""
    deletes = [table.delete() for table in reversed(schema.tables)]

    def delete(connection: Connection) -> None:
        for statement in deletes:
            connection.execute(statement)

    with (
        _schema_once(url, schema) as engine,
        _emptied_after_each_test(engine, schema, delete) as run_test,
    ):
        yield run_test


@contextmanager
def truncate_all(url: str | URL, schema: Schema) -> Iterator[RunTest]:
    """Schema once; TRUNCATE every table after each test (servers only).

    PostgreSQL truncates them all in one statement. MariaDB truncates one
    table at a time and refuses a table other tables reference, even empty,
    unless foreign key checks are off for the while.
    """
    with _schema_once(url, schema) as engine:
        quote = engine.dialect.identifier_preparer.format_table
        if engine.dialect.name == "postgresql":
            names = ", ".join(quote(table) for table in schema.tables)
            truncates = [f"TRUNCATE {names} RESTART IDENTITY CASCADE"]
        else:
            truncates = [
                "SET FOREIGN_KEY_CHECKS = 0",
                *(f"TRUNCATE TABLE {quote(table)}" for table in schema.tables),
                "SET FOREIGN_KEY_CHECKS = 1",
            ]

        def truncate(connection: Connection) -> None:
            for statement in truncates:
                connection.exec_driver_sql(statement)

        with _emptied_after_each_test(engine, schema, truncate) as run_test:
            yield run_test


def _check_empty(engine: Engine, schema: Schema) -> None:
    # A strategy that leaks rows is not an isolation strategy: its timings
    # would be meaningless, so say so instead of printing them.
    with engine.connect() as connection:
        for table in schema.tables:
            if connection.scalar(select(func.count()).select_from(table)):
                raise RuntimeError(f"isolation broken: rows left in {table.name}")


# --------------------------------------------------------------------------
# Strategies that build a new database for every test
# --------------------------------------------------------------------------


@contextmanager
def new_sqlite_file(schema: Schema) -> Iterator[RunTest]:
    """A new temporary SQLite file and create_all per test (the seed project's way)."""
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as directory:
        path = Path(directory) / "test.db"

        def run_test() -> None:
            engine = make_engine(f"sqlite:///{path}")
            try:
                schema.create_all(engine)
                _body_in_new_session(engine)
            finally:
                engine.dispose()
                remove_sqlite_files(path)

        yield run_test


def _create_all_then_body(url: str | URL, schema: Schema) -> None:
    """One test on a database just made: create_all, then the body."""
    engine = make_engine(url)
    try:
        schema.create_all(engine)
        _body_in_new_session(engine)
    finally:
        engine.dispose()


@contextmanager
def new_sqlite_memory(schema: Schema) -> Iterator[RunTest]:
    """A new in-memory SQLite database and create_all per test."""
    yield lambda: _create_all_then_body(SQLITE_MEMORY, schema)


@contextmanager
def template_clone(server: BenchServer, schema: Schema) -> Iterator[RunTest]:
    """CREATE DATABASE ... TEMPLATE per test, dropped afterwards (PostgreSQL)."""
    with server.scratch_database("template") as template:
        builder = make_engine(template)
        schema.create_all(builder)
        # A template must have no open connections while it is copied.
        builder.dispose()

        def run_test() -> None:
            with server.scratch_database("clone", template=template) as clone:
                engine = make_engine(clone)
                try:
                    _body_in_new_session(engine)
                finally:
                    engine.dispose()

        yield run_test


@contextmanager
def new_database(server: BenchServer, schema: Schema) -> Iterator[RunTest]:
    """CREATE DATABASE and create_all per test, dropped afterwards: what a
    server without template databases (MariaDB) offers instead of a clone."""

    def run_test() -> None:
        with server.scratch_database("new") as url:
            _create_all_then_body(url, schema)

    yield run_test


# --------------------------------------------------------------------------
# Running them
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    name: str
    open: StrategyFactory


def sqlite_strategies() -> list[Strategy]:
    return [
        Strategy("floor (no isolation)", lambda s: floor(SQLITE_MEMORY, s)),
        Strategy("harness (savepoint)", lambda s: harness(SQLITE_MEMORY, s)),
        Strategy("new temp file + create_all", new_sqlite_file),
        Strategy("new :memory: + create_all", new_sqlite_memory),
        Strategy("DELETE every table", lambda s: delete_all(SQLITE_MEMORY, s)),
    ] + [
        Strategy(name, partial(shared, SQLITE_MEMORY))
        for name, shared in async_strategies("aiosqlite")
    ]


def _on_scratch(server: BenchServer, shared: SharedDatabaseStrategy) -> StrategyFactory:
    return lambda schema: _on_scratch_database(server, shared, schema)


def _shared_database_strategies(server: BenchServer) -> list[Strategy]:
    """The strategies that keep one database per strategy on `server`."""
    return [
        Strategy("floor (no isolation)", _on_scratch(server, floor)),
        Strategy("harness (savepoint)", _on_scratch(server, harness)),
        Strategy("DELETE every table", _on_scratch(server, delete_all)),
        Strategy("TRUNCATE every table", _on_scratch(server, truncate_all)),
    ]


def postgres_strategies(server: BenchServer) -> list[Strategy]:
    return [
        *_shared_database_strategies(server),
        Strategy("clone template database", lambda schema: template_clone(server, schema)),
    ] + [
        Strategy(name, _on_scratch(server, shared))
        for driver in ("psycopg", "asyncpg")
        for name, shared in async_strategies(driver)
    ]


def mariadb_strategies(server: BenchServer) -> list[Strategy]:
    # No CREATE DATABASE ... TEMPLATE on MariaDB: a new database is the nearest.
    return [
        *_shared_database_strategies(server),
        Strategy("new database + create_all", lambda schema: new_database(server, schema)),
    ]


@contextmanager
def _on_scratch_database(
    server: BenchServer, shared: SharedDatabaseStrategy, schema: Schema
) -> Iterator[RunTest]:
    # Each strategy gets a database of its own: the floor's leftover rows
    # must not land in another strategy's tables.
    with server.scratch_database("shared") as url, shared(url, schema) as run_test:
        yield run_test


@dataclass
class Samples:
    """Per-test times of one strategy, in nanoseconds."""

    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)  # this process only, not the server


def measure(
    cases: list[tuple[Schema, Strategy]],
    tests: int,
    *,
    budget_seconds: float | None = None,
    warmup: int = 2,
    block: int = 10,
) -> list[Samples]:
    """Time `tests` whole tests of each (schema, strategy) case.

    The cases take turns in blocks of `block` tests, so that a burst of load
    from elsewhere on the machine falls on all of them, not on one. A case
    whose tests have used up `budget_seconds` stops early (after at least one
    block), so that one slow strategy cannot stretch the run.
    """
    samples = [Samples() for _ in cases]
    with ExitStack() as stack:
        runners = [stack.enter_context(strategy.open(schema)) for schema, strategy in cases]
        for run_test in runners:
            for _ in range(warmup):
                run_test()
        gc.collect()
        active = set(range(len(cases)))
        while active:
            for index in sorted(active):
                run_test, taken = runners[index], samples[index]
                for _ in range(min(block, tests - len(taken.wall))):
                    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
                    run_test()
                    taken.cpu.append(time.process_time_ns() - cpu)
                    taken.wall.append(time.perf_counter_ns() - wall)
                spent = sum(taken.wall) / 1e9
                if len(taken.wall) >= tests or (budget_seconds and spent >= budget_seconds):
                    active.remove(index)
    return samples
