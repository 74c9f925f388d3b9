"""The database-access guard (`tests.guard`): only the run's databases answer.

Application code that builds its own engine from `DATABASE_URL` inside a
test, which without the guard would write to the development database,
fails before anything is opened, naming the URL and how to get a test
database; the run's own databases, scratch ones and temporary files stay
reachable.
"""

from __future__ import annotations

import contextvars
import re
import tempfile
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from core.database import (
    DEFAULT_DATABASE_PATH,
    make_engine,
    session_scope,
    use_session_factory,
)
from tests import databases, harness
from tests.guard import connect_url, database_guard
from tests.harness import CommittingDatabase

Refused = pytest.fail.Exception


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A folder outside the run's temporary directory (where a developer's
    database could be)."""
    with tempfile.TemporaryDirectory(prefix="not_the_runs_") as folder:
        yield Path(folder)


@pytest.fixture
def dev_database(monkeypatch: pytest.MonkeyPatch, elsewhere: Path) -> Path:
    """`DATABASE_URL` names a development database: a SQLite file elsewhere."""
    path = elsewhere / "dev.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    return path


def _one_unit_of_work() -> None:
    """Application code: a unit of work on the default database."""
    with session_scope() as session:
        session.execute(select(1))


def test_session_scope_without_a_factory_is_refused_naming_the_url(dev_database: Path) -> None:
    with pytest.raises(Refused) as refused:
        _one_unit_of_work()
    message = str(refused.value)
    assert message.startswith(
        f"Database access refused: sqlite:///{dev_database} is not one of this test run's "
        "databases. A test gets a database from the `db` fixture"
    )
    assert "`transactional_db`" in message
    assert not dev_database.exists()  # refused before the driver opened (created) it


def test_make_engine_without_a_url_is_refused(dev_database: Path) -> None:
    engine = make_engine()
    try:
        with pytest.raises(Refused, match=r"Database access refused: sqlite:///.*dev\.db "):
            engine.connect()
    finally:
        engine.dispose()
    assert not dev_database.exists()


def test_the_embedded_default_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(
        Refused, match=re.escape(f"refused: sqlite:///{DEFAULT_DATABASE_PATH} is not")
    ):
        _one_unit_of_work()


def test_a_server_database_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No such host: the refusal comes before the driver would look it up.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app:secret@db.invalid:5432/prod")
    with pytest.raises(Refused) as refused:
        _one_unit_of_work()
    assert "refused: postgresql+psycopg://app@db.invalid:5432/prod is not one" in str(refused.value)
    assert "secret" not in str(refused.value)


def test_it_is_refused_in_a_thread_too(dev_database: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_one_unit_of_work)
        with pytest.raises(Refused, match="Database access refused"):
            future.result(timeout=30)


def test_except_exception_does_not_swallow_it(dev_database: Path) -> None:
    def careless() -> str:
        try:
            _one_unit_of_work()
        except Exception:  # what application code may do around a database call
            return "swallowed"
        return "went through"  # pragma: no cover - refused above

    with pytest.raises(Refused):
        careless()


# --------------------------------------------------------------------------
# What stays reachable
# --------------------------------------------------------------------------


def test_the_runs_own_database_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1


def test_session_scope_pointed_at_the_runs_database_answers(
    dev_database: Path, transactional_db: CommittingDatabase
) -> None:
    _one_unit_of_work()  # transactional_db points session_scope() there
    assert not dev_database.exists()


def test_a_thread_without_the_context_is_refused_and_with_it_answers(
    dev_database: Path, transactional_db: CommittingDatabase
) -> None:
    """`use_session_factory` is a context variable: a new thread starts
    without it, and its unit of work is refused rather than sent to the
    development database; run in a copy of the context, it answers."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(Refused):
            pool.submit(_one_unit_of_work).result(timeout=30)
        pool.submit(contextvars.copy_context().run, _one_unit_of_work).result(timeout=30)


def test_a_sqlite_file_in_the_runs_temporary_folder_answers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'mine.db'}")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1
    engine.dispose()


def test_in_memory_sqlite_answers() -> None:
    for url in ("sqlite://", "sqlite:///file:guarded?mode=memory&cache=shared&uri=true"):
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
        engine.dispose()


def test_a_created_scratch_database_answers_while_it_exists(elsewhere: Path) -> None:
    url = make_url(f"sqlite:///{elsewhere / 'scratch.db'}")
    with databases.created_database(url):
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
        engine.dispose()
    engine = make_engine(url)
    try:
        with pytest.raises(Refused, match=r"scratch\.db is not one of this test run's"):
            engine.connect()
    finally:
        engine.dispose()
    assert not (elsewhere / "scratch.db").exists()


def test_a_test_may_allow_a_database_on_purpose(elsewhere: Path) -> None:
    url = f"sqlite:///{elsewhere / 'theirs.db'}"
    with databases.allowed_database(url):
        sessions = sessionmaker(make_engine(url))
        with use_session_factory(sessions):
            _one_unit_of_work()
    assert not databases.is_allowed(url)


def test_the_innermost_guard_says_what_to_do(dev_database: Path) -> None:
    with database_guard("Use the inner way."), pytest.raises(Refused) as inner:
        _one_unit_of_work()
    with pytest.raises(Refused) as outer:
        _one_unit_of_work()
    assert str(inner.value).endswith("databases. Use the inner way.")
    assert "`transactional_db`" in str(outer.value)


@pytest.mark.parametrize(
    ("scheme", "cargs", "cparams", "expected"),
    [
        ("sqlite", ["var/app.db"], {}, ("var/app.db", None, None, None, {})),
        ("sqlite", [":memory:"], {}, (":memory:", None, None, None, {})),
        (
            "sqlite",
            ["file:x.db?mode=ro"],
            {"uri": True},
            ("x.db", None, None, None, {"mode": "ro"}),
        ),
        (
            "postgresql+psycopg",
            [],
            {"dbname": "app", "host": "db", "port": "5433", "user": "me", "password": "pw"},
            ("app", "db", 5433, "me", {}),
        ),
    ],
)
def test_the_url_is_rebuilt_from_what_the_driver_is_given(
    scheme: str, cargs: list[str], cparams: dict[str, object], expected: tuple[object, ...]
) -> None:
    url = connect_url(make_url(f"{scheme}://").get_dialect()(), cargs, cparams)
    assert (url.database, url.host, url.port, url.username, dict(url.query)) == expected
    assert url.password is None


# --------------------------------------------------------------------------
# In a run
# --------------------------------------------------------------------------


def test_a_run_fails_the_test_that_reaches_the_development_database(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, elsewhere: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere / 'dev.db'}")
    pytester.makepyfile(
        test_generated=textwrap.dedent(
            """
            from core.database import session_scope
            from core.models import User

            def test_writes_through_the_applications_own_unit_of_work(db):
                with session_scope() as session:
                    session.add(User(email="leaked@example.com"))

            def test_uses_its_fixture(db):
                db.add(User(email="kept@example.com"))
                db.flush()
            """
        )
    )
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-pno:randomly",
        "-pno:xdist",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*Failed: Database access refused: sqlite:///*dev.db is not one of this test run's*"]
    )
    assert not (elsewhere / "dev.db").exists()
