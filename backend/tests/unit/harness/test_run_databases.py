"""The run's databases (`tests.databases`): each run (and each xdist worker)
writes only to its own, and nothing drops a database it did not create.

Most run on whichever backend the suite runs on. On PostgreSQL the run
creates `<configured>_<run id>[_<worker>]` beside the configured database and
drops it at the end; in-memory SQLite needs nothing (every process has its
own); a SQLite file gets the same suffixes, as sibling files. The tests of a
database made by someone else run on SQLite and on PostgreSQL (the suite's
server, or the local one) whatever the suite runs on.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.database import make_engine
from core.models import (
    Base,
    User,
)
from tests import databases, harness
from tests.factories import UserFactory
from tests.migrations.databases import ScratchDatabases

BACKEND_DIR = Path(harness.__file__).resolve().parents[1]
ALREADY_EXISTS = {
    "postgresql": ProgrammingError,
    "mysql": ProgrammingError,
    "sqlite": FileExistsError,
}


@pytest.fixture
def scratch_base(engine: Engine, tmp_path: Path) -> URL:
    """Where scratch databases go: beside the run's own, or in tmp_path for in-memory SQLite."""
    if databases.is_memory_sqlite(engine.url):
        return make_url(f"sqlite:///{tmp_path / 'scratch.db'}")
    return engine.url


def _scratch_url(base: URL, label: str) -> URL:
    return databases.sibling_database_url(base, f"{label}_{uuid.uuid4().hex[:8]}")


class _WorkerConfig:
    """What xdist gives a worker's config (`pytest.Config.workerinput`)."""

    workerinput = {"workerid": "gw3", "testrunuid": "0123456789abcdef0123456789abcdef"}


class TestDatabaseNames:
    def test_a_server_database_gets_a_suffixed_sibling(self) -> None:
        url = databases.sibling_database_url(
            "postgresql+psycopg://postgres@db.local:5433/test", "1a2b3c4d_gw0"
        )
        assert url.render_as_string(hide_password=False) == (
            "postgresql+psycopg://postgres@db.local:5433/test_1a2b3c4d_gw0"
        )

    def test_a_sqlite_file_gets_a_sibling_file(self) -> None:
        url = databases.sibling_database_url("sqlite:////srv/t/tests.db", "1a2b3c4d_gw1")
        assert url.database == "/srv/t/tests_1a2b3c4d_gw1.db"

    def test_in_memory_sqlite_is_left_alone(self) -> None:
        assert databases.sibling_database_url("sqlite://", "1a2b3c4d_gw1") == make_url("sqlite://")

    def test_an_xdist_worker_is_tagged_with_the_run_it_shares_and_its_name(self) -> None:
        config = cast(pytest.Config, _WorkerConfig())
        assert harness.run_tag(config) == "01234567_gw3"

    def test_every_other_session_gets_a_new_run_id(self) -> None:
        # A session that is not an xdist worker: this one, when run serially,
        # or a pytester run inside a test, which must not reuse the outer
        # session's database.
        config = cast(pytest.Config, object())
        tags = {harness.run_tag(config) for _ in range(3)}
        assert len(tags) == 3
        assert all(re.fullmatch(r"[0-9a-f]{8}", tag) for tag in tags)


def test_the_engine_is_this_runs_own_database(engine: Engine) -> None:
    configured = make_url(harness.test_database_url())
    if databases.is_memory_sqlite(configured):
        # Nothing to name: each process has a memory database of its own.
        assert engine.url == configured
        return
    configured_name = Path(configured.database or "").stem
    own_name = Path(engine.url.database or "").stem
    assert re.fullmatch(rf"{re.escape(configured_name)}_[0-9a-f]{{8}}(_gw\d+)?", own_name)
    assert not databases.same_database(engine.url, configured)
    assert databases.database_exists(engine.url)


def test_creating_a_database_that_exists_fails_and_drops_nothing(scratch_base: URL) -> None:
    url = _scratch_url(scratch_base, "exists")
    with databases.created_database(url):
        assert databases.database_exists(url)
        with (
            pytest.raises(ALREADY_EXISTS[url.get_backend_name()]),
            databases.created_database(url),
        ):
            raise AssertionError("a second creation of the same database went through")
        assert databases.database_exists(url), "the failed creation dropped a database"
    assert not databases.database_exists(url)


def _creation_refused(
    url: str | URL, expected: type[Exception], match: str | None = None, **options: Any
) -> None:
    """Creating `url` must raise `expected` before its block would run."""
    with pytest.raises(expected, match=match), databases.created_database(url, **options):
        raise AssertionError(f"created {url}")


def test_an_existing_sqlite_file_is_left_untouched(tmp_path: Path) -> None:
    # Someone else's database, open, in WAL mode: its -wal and -shm files
    # hold a committed row not yet copied into the main file.
    path = tmp_path / "theirs.db"
    theirs = sqlite3.connect(path)
    try:
        theirs.execute("PRAGMA journal_mode=WAL")
        theirs.execute("CREATE TABLE kept (x INTEGER)")
        theirs.execute("INSERT INTO kept VALUES (1)")
        theirs.commit()
        files = sorted(tmp_path.iterdir())
        assert [file.name for file in files] == ["theirs.db", "theirs.db-shm", "theirs.db-wal"]
        before = {file: file.read_bytes() for file in files}

        _creation_refused(f"sqlite:///{path}", FileExistsError)

        assert {file: file.read_bytes() for file in sorted(tmp_path.iterdir())} == before
        assert theirs.execute("SELECT x FROM kept").fetchall() == [(1,)]
    finally:
        theirs.close()


@pytest.mark.parametrize("companion", databases.SQLITE_COMPANIONS)
def test_a_leftover_sqlite_companion_file_is_left_untouched(tmp_path: Path, companion: str) -> None:
    # A log or journal whose database file is gone still belongs to it:
    # SQLite would read it into a new database of that name.
    leftover = tmp_path / f"t.db{companion}"
    leftover.write_bytes(b"someone else's")
    _creation_refused(f"sqlite:///{tmp_path / 't.db'}", FileExistsError, leftover.name)
    assert sorted(tmp_path.iterdir()) == [leftover]
    assert leftover.read_bytes() == b"someone else's"


@pytest.mark.server("postgresql")
def test_an_existing_postgresql_database_of_the_same_name_is_left_untouched() -> None:
    server = harness.run_server("postgresql")
    url = databases.sibling_database_url(server, f"theirs_{uuid.uuid4().hex[:8]}")
    # Someone else's database, made without tests.databases: a connection the
    # database guard would refuse, allowed here on purpose.
    allowed = ExitStack()
    allowed.enter_context(databases.allowed_database(server.set(database="postgres")))
    allowed.enter_context(databases.allowed_database(url))
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    name = admin.dialect.identifier_preparer.quote(url.database or "")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    theirs = create_engine(url, poolclass=NullPool)
    try:
        with theirs.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE kept (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO kept VALUES (1)")

        _creation_refused(url, ProgrammingError, "already exists")

        assert databases.database_exists(url)
        with theirs.connect() as connection:
            assert connection.exec_driver_sql("SELECT x FROM kept").all() == [(1,)]
    finally:
        theirs.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()
        allowed.close()


def test_scratch_databases_drop_only_what_they_created(engine: Engine, tmp_path: Path) -> None:
    scratch = ScratchDatabases(engine.url, tmp_path)
    with pytest.raises(ValueError, match="not created by these scratch databases"):
        scratch.drop(engine.url)
    assert databases.database_exists(engine.url)

    url = scratch.create("mine")
    with pytest.raises(ALREADY_EXISTS[url.get_backend_name()]):
        scratch.create("mine")
    assert databases.database_exists(url), "the failed creation dropped a database"
    scratch.drop(url)
    assert not databases.database_exists(url)
    with pytest.raises(ValueError, match="not created by these scratch databases"):
        scratch.drop(url)
    scratch.drop_all()  # nothing left to drop
    assert databases.database_exists(engine.url)


@pytest.mark.parametrize(
    "url", ["mssql+pymssql://sa@127.0.0.1/test", "mariadb://root@127.0.0.1:3306/test"]
)
def test_an_unsupported_backend_is_refused_naming_the_supported_ones(url: str) -> None:
    supported = r"created on sqlite, postgresql and mysql only, not on m"
    with pytest.raises(databases.UnsupportedBackendError, match=supported):
        databases.check_server_answers(url, setting="TEST_DATABASE_URL")
    with pytest.raises(databases.UnsupportedBackendError, match=supported):
        databases.database_exists(url)
    _creation_refused(url, databases.UnsupportedBackendError, supported)


def test_an_over_long_server_name_is_refused_before_connecting() -> None:
    # Port 1: nothing listens there. The name is checked first.
    url = f"postgresql+psycopg://postgres@127.0.0.1:1/{'x' * 64}"
    _creation_refused(url, ValueError, "is over PostgreSQL's 63 bytes")


def test_in_memory_sqlite_cannot_be_a_copy(tmp_path: Path) -> None:
    template = f"sqlite:///{tmp_path / 't.db'}"
    _creation_refused("sqlite://", ValueError, "cannot be a copy", template=template)


def test_a_sqlite_copy_holds_its_templates_rows(tmp_path: Path) -> None:
    template = f"sqlite:///{tmp_path / 'template.db'}"
    with databases.created_database(template):
        with closing(sqlite3.connect(tmp_path / "template.db")) as connection:
            connection.execute("CREATE TABLE kept (x INTEGER)")
            connection.execute("INSERT INTO kept VALUES (1)")
            connection.commit()
        copy = tmp_path / "copy.db"
        with (
            databases.created_database(f"sqlite:///{copy}", template=template),
            closing(sqlite3.connect(copy)) as connection,
        ):
            assert connection.execute("SELECT x FROM kept").fetchall() == [(1,)]
        assert not copy.exists()


def test_removing_sqlite_files_takes_the_database_and_its_companions_only(
    tmp_path: Path,
) -> None:
    names = ["t.db", "t.db-wal", "t.db-shm", "t.db-journal", "t.db-other", "t_1.db", "u.db"]
    for name in names:
        (tmp_path / name).touch()
    databases.remove_sqlite_files(tmp_path / "t.db")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["t.db-other", "t_1.db", "u.db"]


@pytest.mark.parametrize(
    ("url", "in_memory"),
    [
        ("sqlite://", True),
        ("sqlite:///", True),
        ("sqlite:///:memory:", True),
        ("sqlite:///file:app.db?mode=memory&uri=true", True),
        ("sqlite:///app.db", False),
        ("postgresql://localhost", False),
        ("postgresql://localhost/app", False),
    ],
)
def test_in_memory_sqlite_is_told_apart(url: str, in_memory: bool) -> None:
    assert databases.is_memory_sqlite(url) is in_memory


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("sqlite:///app.db", "sqlite:///app.db", True),
        ("sqlite:///app.db", "sqlite:///./sub/../app.db", True),
        ("sqlite:///app.db", "sqlite:///other.db", False),
        ("sqlite://", "sqlite://", False),
        ("sqlite:///:memory:", "sqlite:///:memory:", False),
        ("sqlite:///file:app.db?mode=memory&uri=true", "sqlite:///app.db", False),
        ("sqlite:///app.db", "postgresql://localhost/app.db", False),
        ("postgresql+psycopg://u:secret@localhost/app", "postgresql://localhost/app", True),
        ("postgresql://db.internal/app", "postgresql://db.internal/app_test", False),
        ("postgresql://db.internal/app", "postgresql://other.internal/app", False),
        ("postgresql://db.internal:5433/app", "postgresql://db.internal/app", False),
        # The default port, written or not, is the same server.
        ("postgresql://db.internal:5432/app", "postgresql://db.internal/app", True),
        # So is the loopback interface, whatever name it goes by.
        ("postgresql://127.0.0.1/app", "postgresql://localhost/app", True),
        ("postgresql://[::1]:5432/app", "postgresql:///app", True),
    ],
)
def test_same_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, second: str, same: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert databases.same_database(first, second) is same
    assert databases.same_database(second, first) is same


def test_same_database_resolves_a_relative_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert databases.same_database("sqlite:///app.db", f"sqlite:///{tmp_path / 'app.db'}")


def test_equal_sequence_values_never_meet_across_worker_databases(scratch_base: URL) -> None:
    # Every worker counts factory sequences from the same start, so two
    # workers do make `user0@example.com`. Only a shared database would
    # refuse the second one; each worker has a database of its own.
    email = "user0@example.com"
    run = uuid.uuid4().hex[:8]
    urls = [databases.sibling_database_url(scratch_base, f"{run}_{w}") for w in ("gw0", "gw1")]
    with databases.created_database(urls[0]), databases.created_database(urls[1]):
        engines = [make_engine(url) for url in urls]
        try:
            for engine in engines:
                Base.metadata.create_all(engine)
                with Session(engine) as session:
                    UserFactory(_session=session, email=email)
                    session.commit()
            with Session(engines[0]) as shared, pytest.raises(IntegrityError):
                UserFactory(_session=shared, email=email)
        finally:
            for engine in engines:
                engine.dispose()


def test_a_missing_server_stops_the_run_with_one_clear_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1: nothing listens there, so the connection is refused at once.
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(
        "from pathlib import Path\ndef test_never_runs(db):\n    Path('test_ran').touch()\n"
    )

    result = pytester.runpytest("--disable-plugin-autoload", "-p", "no:cacheprovider")

    assert result.ret == 4
    result.stderr.fnmatch_lines(["*No PostgreSQL server answers at 127.0.0.1:1*"])
    assert not (pytester.path / "test_ran").exists()


def test_a_missing_driver_is_named_with_the_scheme_to_use_instead() -> None:
    with pytest.raises(databases.DatabaseServerError, match=r"\(pg8000\) is not installed"):
        databases.check_server_answers(
            "postgresql+pg8000://postgres@127.0.0.1/test", setting="TEST_DATABASE_URL"
        )


def test_sqlite_has_no_server_to_wait_for() -> None:
    databases.check_server_answers("sqlite:///no/such/folder/t.db", setting="TEST_DATABASE_URL")


INNER_TEST = """
import os
from pathlib import Path
from typing import Any, cast

from tests import databases, harness
from tests.factories import UserFactory


def test_record_my_database(engine, db):
    # Every worker writes the same email and commits: no collision.
    UserFactory(email="same@example.com")
    db.commit()
    assert databases.database_exists(engine.url)
    record = Path(os.environ["RECORD_DIR"], os.environ["PYTEST_XDIST_WORKER"])
    record.write_text(engine.url.render_as_string(hide_password=False))
"""


# Two workers, each running every test, under the isolation sentinel.
XDIST_RUN = (
    "-p",
    "xdist",
    "-n",
    "2",
    "--dist",
    "each",
    "--check-isolation",
    "-p",
    "no:cacheprovider",
)


def test_each_xdist_worker_creates_its_own_database_and_drops_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = harness.test_database_url()
    if databases.is_memory_sqlite(configured):
        # Nothing to name in memory: a SQLite file shows the same lifecycle.
        configured = f"sqlite:///{pytester.path / 'inner.db'}"
    records = pytester.mkdir("records")
    monkeypatch.setenv("TEST_DATABASE_URL", configured)
    monkeypatch.setenv("RECORD_DIR", str(records))
    monkeypatch.setenv("PYTHONPATH", str(BACKEND_DIR))
    # Three processes start: load only the plugins the run needs (halves its cost).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(INNER_TEST)

    result = pytester.runpytest_inprocess(*XDIST_RUN)

    result.assert_outcomes(passed=2)
    used = {w: make_url((records / w).read_text()) for w in ("gw0", "gw1")}
    found = re.search(r"_([0-9a-f]{8})_gw0", used["gw0"].database or "")
    assert found, used
    expected = {w: databases.sibling_database_url(configured, f"{found[1]}_{w}") for w in used}
    assert used == expected
    assert not any(databases.database_exists(url) for url in used.values())


class TestAbortedTransactions:
    """On PostgreSQL an error aborts the whole transaction; SAVEPOINT contains it."""

    def test_a_test_can_go_on_after_an_integrity_error(self, db: Session) -> None:
        UserFactory(email="twice@example.com")
        with pytest.raises(IntegrityError):
            UserFactory(email="twice@example.com")
        db.rollback()

        UserFactory(email="twice@example.com")
        assert db.scalar(select(func.count()).select_from(User)) == 1

    def test_an_unhandled_failed_flush_does_not_poison_the_next_test(self, engine: Engine) -> None:
        # Two tests in a row, as the `db` fixture runs them; the first leaves
        # its failed flush unhandled (no rollback), as a careless test would.
        with engine.connect() as connection, harness.isolated_session(connection) as first:
            UserFactory(_session=first, email="twice@example.com")
            with pytest.raises(IntegrityError):
                UserFactory(_session=first, email="twice@example.com")

        with engine.connect() as connection, harness.isolated_session(connection) as second:
            assert second.scalar(select(func.count()).select_from(User)) == 0
            UserFactory(_session=second, email="twice@example.com")
            second.commit()
            assert second.scalar(select(func.count()).select_from(User)) == 1

        assert harness.leftover_rows(engine) == {}
