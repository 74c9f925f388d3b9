"""The shared harness, proved rather than assumed.

Isolation is checked from outside a test (pytester runs a small generated
suite in-process; `leftover_rows` looks at the database after a session
closed), never by tests that rely on running in a given order.
"""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core.database import make_engine
from core.models import (
    Team,
    User,
)
from core.schema import Base
from tests import harness
from tests.factories import UserFactory
from tests.unit.harness.scenarios import integrity_error, users

# The plugins INNER_RUN loads that the generated suites do not use; each one
# adds start-up time to every in-process run. (pytest-randomly is not loaded:
# "the last test" is the last one written.)
INNER_PLUGINS_OFF = [f"-pno:{name}" for name in ("hypothesispytest", "pytest_asyncio.plugin")]


def _run_suite(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """Run `source` as a test module in-process, with this project's harness."""
    pytester.makepyfile(test_generated=textwrap.dedent(source))
    return pytester.runpytest(
        *harness.INNER_RUN,
        *INNER_PLUGINS_OFF,
        *args,
    )


# --------------------------------------------------------------------------
# Isolation: commit, IntegrityError, delete
# --------------------------------------------------------------------------

ISOLATION_SUITE = """
    from sqlalchemy import delete, select

    from core.models import AgentRegistry, User
    from tests.factories import AgentFactory, UserFactory
    from tests.harness import tables_with_rows
    from tests.unit.harness.scenarios import integrity_error, users


    def test_commit(db):
        assert tables_with_rows(db.connection()) == {}
        UserFactory(email="kept@example.com")
        AgentFactory(with_owner=True)
        db.commit()
        assert users(db) == 2


    def test_integrity_error_then_rollback(db):
        assert tables_with_rows(db.connection()) == {}
        integrity_error(db)


    def test_delete(db):
        assert tables_with_rows(db.connection()) == {}
        UserFactory.create_batch(3)
        AgentFactory()
        db.commit()
        db.execute(delete(User))
        db.delete(db.scalars(select(AgentRegistry)).one())
        db.commit()
        assert tables_with_rows(db.connection()) == {}


    def test_same_unique_email_again(db):
        # Would fail on the UNIQUE constraint if test_commit's row had leaked.
        UserFactory(email="kept@example.com")
        db.commit()


    def test_last_sees_an_empty_database(db):
        assert tables_with_rows(db.connection()) == {}
"""


def test_commit_integrity_error_and_delete_leave_nothing_behind(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, ISOLATION_SUITE, "--check-isolation", "-v")
    result.assert_outcomes(passed=5)
    passed = [line.split("::")[1].split()[0] for line in result.stdout.lines if "PASSED" in line]
    # Written order is run order: the empty-database check really came last.
    assert passed[-1] == "test_last_sees_an_empty_database"


def commit(session: Session) -> None:
    session.add(User(email="committed@example.com"))
    session.commit()
    assert users(session) == 1


def uncommitted_write(session: Session) -> None:
    session.add(User(email="pending@example.com"))
    session.flush()


@pytest.mark.parametrize("scenario", [commit, integrity_error, uncommitted_write])
def test_isolated_session_leaves_no_rows(
    engine: Engine, scenario: Callable[[Session], None]
) -> None:
    with engine.connect() as connection, harness.isolated_session(connection) as session:
        scenario(session)
    assert harness.leftover_rows(engine) == {}


# --------------------------------------------------------------------------
# SAVEPOINT semantics on SQLite
# --------------------------------------------------------------------------


def test_rolled_back_nested_transaction_undoes_its_writes(db: Session) -> None:
    UserFactory(email="outer@example.com")
    nested = db.begin_nested()
    UserFactory(email="inner@example.com")
    assert users(db) == 2
    nested.rollback()
    assert db.scalars(select(User.email)).all() == ["outer@example.com"]


def test_commit_in_a_test_only_releases_a_savepoint(engine: Engine) -> None:
    statements: list[str] = []
    real_commits: list[Connection] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def record_commit(connection: Connection) -> None:
        real_commits.append(connection)

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", record_commit)
    try:
        with engine.connect() as connection, harness.isolated_session(connection) as session:
            session.add(User(email="released@example.com"))
            session.commit()
            assert users(session) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "commit", record_commit)

    assert any(sql.startswith("RELEASE SAVEPOINT") for sql in statements)
    assert not any(sql.strip().upper().startswith("COMMIT") for sql in statements)
    assert real_commits == []
    assert harness.leftover_rows(engine) == {}


def _commit_through_the_recipe(engine: Engine) -> int:
    """Run the `db` fixture's recipe, commit inside it, count what survived."""
    Base.metadata.create_all(engine)
    with engine.connect() as connection, harness.isolated_session(connection) as session:
        session.add(User(email="leaked@example.com"))
        session.commit()
    with Session(engine) as fresh:
        return users(fresh)


def test_without_the_begin_workaround_a_commit_leaks() -> None:
    # Python 3.11's sqlite3 driver emits no BEGIN for the outer
    # transaction, so the session's SAVEPOINT is the outermost one and
    # its RELEASE commits for real.
    plain = create_engine("sqlite://", poolclass=StaticPool)
    try:
        assert _commit_through_the_recipe(plain) == 1
    finally:
        plain.dispose()


def test_with_make_engine_the_same_commit_is_rolled_back() -> None:
    engine = make_engine("sqlite://")
    try:
        assert _commit_through_the_recipe(engine) == 0
    finally:
        engine.dispose()


def test_savepoint_probe_tells_the_two_engines_apart() -> None:
    plain = create_engine("sqlite://", poolclass=StaticPool)
    fixed = make_engine("sqlite://")
    try:
        with plain.connect() as connection:
            assert harness.sqlite_savepoint_works(connection) is False
        with fixed.connect() as connection:
            assert harness.sqlite_savepoint_works(connection) is True
    finally:
        plain.dispose()
        fixed.dispose()


def test_foreign_keys_are_enforced(db: Session) -> None:
    # SQLite enforces them only because make_engine turns `PRAGMA foreign_keys`
    # on; PostgreSQL always does.
    db.add(Team(name="orphans", workspace_id="no-such-workspace"))
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        db.flush()


# --------------------------------------------------------------------------
# The development-database guard
# --------------------------------------------------------------------------


def test_guard_refuses_the_same_file_by_relative_and_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = f"sqlite:///{tmp_path / 'app.db'}"
    with pytest.raises(harness.DevelopmentDatabaseError) as refused:
        harness.refuse_development_database("sqlite:///app.db", absolute)
    message = str(refused.value)
    assert "TEST_DATABASE_URL (sqlite:///app.db) is the application database" in message
    assert f"DATABASE_URL={absolute}" in message
    assert "must never run there" in message


def test_guard_reads_database_url_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(harness.DevelopmentDatabaseError):
        harness.refuse_development_database(url)


@pytest.mark.parametrize(
    "test_url",
    ["sqlite://", "sqlite:///:memory:", "sqlite:///other.db", "postgresql://localhost/app"],
)
def test_guard_lets_other_databases_through(tmp_path: Path, test_url: str) -> None:
    harness.refuse_development_database(test_url, f"sqlite:///{tmp_path / 'app.db'}")


def test_default_test_database_is_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    assert harness.test_database_url() == "sqlite://"
    monkeypatch.setenv("TEST_DATABASE_URL", "sqlite:///elsewhere.db")
    assert harness.test_database_url() == "sqlite:///elsewhere.db"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A test that needs no database, then one that does: a guard that waited for
# the `engine` fixture would let the first one pass before refusing.
GUARDED_SUITE = """
    from pathlib import Path


    def test_needs_no_database():
        Path("ran_without_db").touch()


    def test_needs_the_database(db):
        Path("ran_with_db").touch()
"""


def _refused_before_any_test(pytester: pytest.Pytester, message: str) -> None:
    result = _run_suite(pytester, GUARDED_SUITE)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in str(result.stdout) + str(result.stderr)
    assert not list(pytester.path.glob("ran_*")), "a test ran before the refusal"


def test_suite_pointed_at_the_development_database_exits_untouched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_db = pytester.path / "app.db"
    with sqlite3.connect(app_db) as raw:
        raw.execute("CREATE TABLE precious (x INTEGER)")
        raw.execute("INSERT INTO precious VALUES (42)")
    raw.close()
    before = _digest(app_db)
    # Relative for the tests, absolute for the application: still one file.
    monkeypatch.setenv("TEST_DATABASE_URL", "sqlite:///app.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{app_db}")

    _refused_before_any_test(pytester, "TEST_DATABASE_URL (sqlite:///app.db) is the application*")

    assert _digest(app_db) == before
    assert sorted(p.name for p in pytester.path.glob("app.db*")) == ["app.db"]


@pytest.mark.parametrize(
    ("test_url", "message"),
    [
        ("mssql+pymssql://sa@127.0.0.1/test", "names a mssql database*sqlite, postgresql, mysql"),
        ("nonsense", "TEST_DATABASE_URL is not a database URL (got 'nonsense')"),
    ],
)
def test_suite_refuses_a_database_it_cannot_use_before_any_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, test_url: str, message: str
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", test_url)

    _refused_before_any_test(pytester, message)


# --------------------------------------------------------------------------
# --check-isolation
# --------------------------------------------------------------------------

LEAKING_SUITE = """
    from sqlalchemy.orm import Session

    from core.models import Workspace


    def test_commits_outside_the_fixture(engine):
        with Session(engine) as session:
            session.add(Workspace(name="leaked"))
            session.commit()
"""

CLEAN_SUITE = """
    from tests.factories import WorkspaceFactory


    def test_commits_inside_the_fixture(db):
        WorkspaceFactory()
        db.commit()


    def test_without_a_database():
        assert True
"""


def test_check_isolation_fails_a_leaking_test_naming_the_table(
    pytester: pytest.Pytester,
) -> None:
    result = _run_suite(pytester, LEAKING_SUITE, "--check-isolation")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*isolation broken: test_generated.py::test_commits_outside_the_fixture"
            " left rows behind: {'workspaces': 1}*"
        ]
    )


def test_leak_goes_unnoticed_without_the_flag(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, LEAKING_SUITE)
    result.assert_outcomes(passed=1)


def test_check_isolation_passes_a_clean_suite(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, CLEAN_SUITE, "--check-isolation")
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------
# count_queries
# --------------------------------------------------------------------------


def test_count_queries_fixture_passes_on_the_exact_count(
    db: Session, count_queries: harness.QueryCounter
) -> None:
    with count_queries(2) as log:
        db.execute(select(User)).all()
        db.execute(select(Team)).all()
    assert len(log) == 2
    assert log.statements[0].startswith("SELECT users.id")


def test_count_queries_fails_listing_the_statements(
    db: Session, count_queries: harness.QueryCounter
) -> None:
    def insert_then_select() -> None:
        with count_queries(1):
            UserFactory(email="counted@example.com")
            db.execute(select(User.email)).all()

    with pytest.raises(AssertionError) as failure:
        insert_then_select()
    message = str(failure.value)
    assert message.startswith("expected 1 query, ran 2:\n")
    assert "  1. INSERT INTO users" in message
    assert "  2. SELECT users.email FROM users" in message


def test_count_queries_context_manager(db: Session) -> None:
    with harness.count_queries(db, 0):
        pass
    with (
        pytest.raises(AssertionError, match=r"expected 3 queries, ran 1:\n  1\. SELECT"),
        harness.count_queries(db, 3),
    ):
        db.execute(select(User)).all()
    with (
        pytest.raises(AssertionError, match=r"expected 1 query, ran 0:\n  \(none\)"),
        harness.count_queries(db, 1),
    ):
        pass


def test_count_queries_without_an_expectation_only_records(db: Session) -> None:
    with harness.count_queries(db) as log:
        db.execute(select(User)).all()
        db.execute(select(User)).all()
    assert len(log) == 2


def test_count_queries_ignores_savepoints(db: Session) -> None:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        with harness.count_queries(db, 1) as log:
            with db.begin_nested():
                db.add(User(email="nested@example.com"))
            db.commit()
    finally:
        event.remove(connection, "before_cursor_execute", record)
    # The block did run transaction control, and none of it was counted.
    assert any(sql.startswith("SAVEPOINT") for sql in seen)
    assert any(sql.startswith("RELEASE SAVEPOINT") for sql in seen)
    assert [sql.split()[0] for sql in log.statements] == ["INSERT"]


def test_count_queries_accepts_an_engine(engine: Engine) -> None:
    with harness.count_queries(engine, 1), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
