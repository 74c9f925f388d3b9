"""The harness's databases: each run (and each xdist worker) writes only to its own.

These run on whichever backend the suite runs on. On PostgreSQL the run
creates `<configured>_<run id>[_<worker>]` beside the configured database and
drops it at the end; in-memory SQLite needs nothing (every process has its
own); a SQLite file gets the same suffixes, as sibling files.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from core.database import make_engine, same_database
from core.models import Base, User
from tests import harness
from tests.factories import UserFactory

BACKEND_DIR = Path(harness.__file__).resolve().parents[1]
ALREADY_EXISTS = {"postgresql": ProgrammingError, "sqlite": FileExistsError}


@pytest.fixture
def scratch_base(engine: Engine, tmp_path: Path) -> URL:
    """Where scratch databases go: beside the run's own, or in tmp_path for in-memory SQLite."""
    if harness.is_memory_database(engine.url):
        return make_url(f"sqlite:///{tmp_path / 'scratch.db'}")
    return engine.url


def _scratch_url(base: URL, label: str) -> URL:
    return harness.sibling_database_url(base, f"{label}_{uuid.uuid4().hex[:8]}")


class _WorkerConfig:
    """What xdist gives a worker's config (`pytest.Config.workerinput`)."""

    workerinput = {"workerid": "gw3", "testrunuid": "0123456789abcdef0123456789abcdef"}


class TestDatabaseNames:
    def test_a_server_database_gets_a_suffixed_sibling(self) -> None:
        url = harness.sibling_database_url(
            "postgresql+psycopg://postgres@db.local:5433/test", "1a2b3c4d_gw0"
        )
        assert url.render_as_string(hide_password=False) == (
            "postgresql+psycopg://postgres@db.local:5433/test_1a2b3c4d_gw0"
        )

    def test_a_sqlite_file_gets_a_sibling_file(self) -> None:
        url = harness.sibling_database_url("sqlite:////srv/t/tests.db", "1a2b3c4d_gw1")
        assert url.database == "/srv/t/tests_1a2b3c4d_gw1.db"

    def test_in_memory_sqlite_is_left_alone(self) -> None:
        assert harness.sibling_database_url("sqlite://", "1a2b3c4d_gw1") == make_url("sqlite://")

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
    if harness.is_memory_database(configured):
        # Nothing to name: each process has a memory database of its own.
        assert engine.url == configured
        return
    configured_name = Path(configured.database or "").stem
    own_name = Path(engine.url.database or "").stem
    assert re.fullmatch(rf"{re.escape(configured_name)}_[0-9a-f]{{8}}(_gw\d+)?", own_name)
    assert not same_database(engine.url, configured)
    assert harness.database_exists(engine.url)


def test_creating_a_database_that_exists_fails_and_drops_nothing(scratch_base: URL) -> None:
    url = _scratch_url(scratch_base, "exists")
    with harness.created_database(url):
        assert harness.database_exists(url)
        with (
            pytest.raises(ALREADY_EXISTS[url.get_backend_name()]),
            harness.created_database(url),
        ):
            raise AssertionError("a second creation of the same database went through")
        assert harness.database_exists(url), "the failed creation dropped a database"
    assert not harness.database_exists(url)


def test_equal_sequence_values_never_meet_across_worker_databases(scratch_base: URL) -> None:
    # Every worker counts factory sequences from the same start, so two
    # workers do make `user0@example.com`. Only a shared database would
    # refuse the second one; each worker has a database of its own.
    email = "user0@example.com"
    run = uuid.uuid4().hex[:8]
    urls = [harness.sibling_database_url(scratch_base, f"{run}_{w}") for w in ("gw0", "gw1")]
    with harness.created_database(urls[0]), harness.created_database(urls[1]):
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

    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")

    assert result.ret == 4
    result.stderr.fnmatch_lines(["*No PostgreSQL server answers at 127.0.0.1:1*"])
    assert not (pytester.path / "test_ran").exists()


def test_a_missing_driver_is_named_with_the_scheme_to_use_instead() -> None:
    with pytest.raises(harness.DatabaseServerError, match=r"\(pg8000\) is not installed"):
        harness.check_server_answers("postgresql+pg8000://postgres@127.0.0.1/test")


def test_sqlite_has_no_server_to_wait_for() -> None:
    harness.check_server_answers("sqlite:///no/such/folder/t.db")


INNER_TEST = """
import os
from pathlib import Path
from typing import cast

from tests import harness
from tests.factories import UserFactory


def test_record_my_database(engine, db):
    # Every worker writes the same email and commits: no collision.
    UserFactory(email="same@example.com")
    db.commit()
    assert harness.database_exists(engine.url)
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
    if harness.is_memory_database(configured):
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
    expected = {w: harness.sibling_database_url(configured, f"{found[1]}_{w}") for w in used}
    assert used == expected
    assert not any(harness.database_exists(url) for url in used.values())


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
