"""Two processes starting at once on one fresh database, and the lock that
lets them: migrated once, demo rounds 1 and 2, one tenant; on the run's
backend (conftest.py): a SQLite file under `make test`, PostgreSQL under
`make test-postgres`, MariaDB under `make test-mariadb`.

Real processes, each running the command line's `main(["demo"])` (what
`python -m core demo` runs). Each prints "ready" once its imports are done
and then waits for its stdin to close; both are released together, so "at
once" does not depend on which interpreter happened to start faster.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL

from core import migrate
from core.database import (
    DATABASE_URL_ENV,
    PROJECT_ROOT,
    STARTUP_LOCK_KEY,
    exclusive_transaction,
    make_engine,
    mysql_startup_lock_name,
)
from core.models import (
    AgentRegistry,
    Team,
    User,
    Workspace,
)
from core.tools.problems import TRACEBACK_ENV
from tests import harness

STARTER = (
    "import sys\n"
    "from core.tools.cli import main\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "raise SystemExit(main(['demo']))\n"
)


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[URL | str]:
    """A database nobody has migrated, on the run's backend (the parameter,
    conftest.py): a new SQLite file, or a scratch PostgreSQL or MariaDB
    database on the run's server (created here, dropped afterwards)."""
    backend = harness.run_backend()
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'startup.db'}"
        return
    with harness.scratch_database(backend, "startup") as url:
        yield url


def _demos_started_together(url: URL | str, count: int) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of `count` demos released at the same moment."""
    shown = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    environment = {**os.environ, DATABASE_URL_ENV: shown}
    environment.pop(TRACEBACK_ENV, None)
    # One pipe is every process's stdin: closing its write end is one
    # end-of-file that releases them all.
    release, go = os.pipe()
    with ExitStack() as stack:  # leaving it waits for every process
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", STARTER],
                    cwd=PROJECT_ROOT,
                    env=environment,
                    stdin=release,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(count)
        ]
        os.close(release)
        try:
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline() == "ready\n"
        finally:
            os.close(go)
        results = [process.communicate(timeout=120) for process in processes]
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, results, strict=True)]


def _count(engine: Engine, model: type[object]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def test_two_demos_started_at_once_migrate_once_and_play_rounds_1_and_2(
    fresh_database: URL | str,
) -> None:
    (first, out_1, err_1), (second, out_2, err_2) = _demos_started_together(fresh_database, 2)

    assert (first, second) == (0, 0), err_1 + err_2
    outputs = [out_1, out_2]
    head = migrate.script_directory().get_current_head()
    migrated = sorted(line for out in outputs for line in out.splitlines() if "revision:" in line)
    assert migrated == [
        f"revision: {head} (head, already at head)",
        f"revision: {head} (head, upgraded from empty)",
    ]
    rounds = sorted(line for out in outputs for line in out.splitlines() if "== demo run" in line)
    assert rounds == ["== demo run 1", "== demo run 2"]
    announced = [sum(line.startswith("agent ") for line in out.splitlines()) for out in outputs]
    assert announced[0] == announced[1] > 0

    engine = make_engine(fresh_database)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(row) for row in versions] == [(head,)]
        assert (_count(engine, Workspace), _count(engine, Team), _count(engine, User)) == (1, 1, 2)
        assert _count(engine, AgentRegistry) == sum(announced)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# The lock itself
# --------------------------------------------------------------------------


def _someone_else_can_lock(engine: Engine) -> bool:
    """Whether another connection could take the start-up lock right now,
    asked without waiting."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as other:
            taken = other.scalar(select(func.pg_try_advisory_xact_lock(STARTUP_LOCK_KEY)))
            other.rollback()
        return bool(taken)
    if engine.dialect.name == "mysql":
        with engine.connect() as other:
            name = mysql_startup_lock_name(other)
            taken = other.scalar(select(func.get_lock(name, 0)))
            if taken:
                other.scalar(select(func.release_lock(name)))
            other.rollback()
        return bool(taken)
    raw = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "database is locked" not in str(error):
            raise
        return False
    else:
        raw.execute("ROLLBACK")
        return True
    finally:
        raw.close()


@pytest.fixture
def fresh_engine(fresh_database: URL | str) -> Iterator[Engine]:
    engine = make_engine(fresh_database)
    yield engine
    engine.dispose()


def test_the_lock_is_held_until_the_transaction_commits(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as connection:
        assert _someone_else_can_lock(fresh_engine)
        with exclusive_transaction(connection):
            connection.execute(select(1))
            assert not _someone_else_can_lock(fresh_engine)
        assert not connection.in_transaction()
        assert _someone_else_can_lock(fresh_engine)


def test_the_lock_must_begin_the_transaction(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as connection:
        connection.execute(select(1))
        with (
            pytest.raises(RuntimeError, match="none may be open"),
            exclusive_transaction(connection),
        ):
            pass


def _engine_sending(begin: str, path: Path) -> Engine:
    """A SQLite engine that begins each transaction with `begin`, not with
    make_engine's BEGIN or the driver's own."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _driver_begins_nothing(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _send(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


@pytest.mark.parametrize("begin", ["BEGIN", "BEGIN DEFERRED", "BEGIN IMMEDIATE"])
def test_on_sqlite_any_begin_the_engine_sends_becomes_the_write_lock(
    tmp_path: Path, begin: str
) -> None:
    # Whichever BEGIN an engine is set up to send (make_engine's, or one
    # configured otherwise), the exclusive transaction holds the write lock.
    engine = _engine_sending(begin, tmp_path / "begin.db")
    try:
        with engine.connect() as connection, exclusive_transaction(connection):
            assert not _someone_else_can_lock(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("begin", "sent"),
    [
        ("BEGIN", "BEGIN IMMEDIATE"),
        ("begin deferred", "BEGIN IMMEDIATE"),
        ("BEGIN TRANSACTION", "BEGIN IMMEDIATE"),
        ("BEGIN DEFERRED TRANSACTION", "BEGIN IMMEDIATE"),
        ("BEGIN IMMEDIATE TRANSACTION", "BEGIN IMMEDIATE TRANSACTION"),
        ("BEGIN EXCLUSIVE", "BEGIN EXCLUSIVE"),
    ],
)
def test_a_deferred_begin_is_sent_as_begin_immediate_and_a_locking_one_as_it_is(
    tmp_path: Path, begin: str, sent: str
) -> None:
    engine = _engine_sending(begin, tmp_path / "begin.db")
    statements: list[str] = []

    @event.listens_for(engine, "after_cursor_execute")
    def _record(_conn: Connection, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    try:
        with engine.connect() as connection, exclusive_transaction(connection):
            pass
    finally:
        engine.dispose()
    assert statements[0] == sent


def test_a_sqlite_engine_without_make_engines_begin_is_refused(tmp_path: Path) -> None:
    # The sqlite3 driver's own BEGIN comes with the first write, after the
    # reads: no BEGIN IMMEDIATE to be had, so no lock to promise.
    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        with (
            engine.connect() as connection,
            pytest.raises(
                RuntimeError,
                match=r"^exclusive_transaction needs a SQLite engine made by make_engine$",
            ),
            exclusive_transaction(connection),
        ):
            pass
    finally:
        engine.dispose()
