"""The harness drops into another project unchanged.

A pytester run builds a project of its own, with nothing from `core`: a
declarative Base, two models, an engine maker, settings of its own names
(`NOTES_DATABASE_URL`, `NOTES_TEST_DATABASE_URL`) and one factory; its
`Project` is the only wiring. Loaded with `-p tests.conftest` and the ini
option `harness_project`, the same conftest and harness give it isolation
(commit, IntegrityError and delete leave nothing behind, checked by
--check-isolation), the database-access guard and the query budget, on the
backend the suite itself runs on.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest

from tests import harness

NOTES_APP = '''
"""A small application: authors and their notes."""

import os

from sqlalchemy import ForeignKey, String, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    notes: Mapped[list["Note"]] = relationship(back_populates="author")


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="notes")


def database_url():
    return os.environ.get("NOTES_DATABASE_URL", "sqlite:///notes.db")


def make_engine(url=None):
    url = make_url(url or database_url())
    if url.get_backend_name() != "sqlite":
        return create_engine(url)
    options = {}
    if url.database in (None, "", ":memory:"):
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")

    return engine


def add_note(author_name, text):
    """Application code with a unit of work of its own, on its own database."""
    with sessionmaker(make_engine())() as session:
        author = Author(name=author_name)
        session.add(Note(text=text, author=author))
        session.commit()
'''

NOTES_TESTS = '''
"""The notes application's wiring of the harness, and its one factory."""

from contextlib import contextmanager
from contextvars import ContextVar

import factory
from factory.alchemy import SQLAlchemyModelFactory

from notes_app import Author, Base, database_url, make_engine
from tests.harness import Project

_session = ContextVar("notes_session")


@contextmanager
def bind(session):
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


class AuthorFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Author
        sqlalchemy_session_factory = lambda: _session.get()
        sqlalchemy_session_persistence = "flush"

    name = factory.Sequence(lambda n: f"author {n}")


PROJECT = Project(
    metadata=Base.metadata,
    make_engine=make_engine,
    app_database_url=database_url,
    app_url_setting="NOTES_DATABASE_URL",
    test_url_setting="NOTES_TEST_DATABASE_URL",
    bind_session=bind,
)
'''

NOTES_SUITE = """
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

import notes_app
from notes_app import Author, Note
from notes_tests import AuthorFactory


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_commit(db):
    AuthorFactory(name="ada")
    db.commit()
    assert _count(db, Author) == 1


def test_integrity_error_then_rollback(db):
    AuthorFactory(name="bob")
    db.add(Author(name="bob"))
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()
    assert _count(db, Author) == 0


def test_delete(db):
    db.add(Note(text="hello", author=AuthorFactory()))
    db.commit()
    db.execute(delete(Note))
    assert _count(db, Note) == 0


def test_the_same_unique_name_again_and_an_empty_database(db):
    assert _count(db, Author) == _count(db, Note) == 0
    AuthorFactory(name="ada")


def test_the_applications_own_unit_of_work_is_refused():
    with pytest.raises(pytest.fail.Exception, match="Database access refused: sqlite:///"):
        notes_app.add_note("eve", "to the development database")


def test_it_runs_in_transactional_db(transactional_db):
    # This project has no session seam: its code is handed the engine.
    with transactional_db.sessions() as session:
        session.add(Note(text="committed", author=Author(name="carol")))
        session.commit()
        assert _count(session, Note) == 1


def test_a_query_budget(db, count_queries):
    AuthorFactory.create_batch(3)
    with count_queries(max=2):
        authors = db.scalars(select(Author)).all()
    assert len(authors) == 3
    with pytest.raises(AssertionError, match="expected at most 1 query, ran 2"):
        with count_queries(max=1):
            db.scalars(select(Author)).all()
            db.scalars(select(Note)).all()
"""


def test_another_project_runs_on_the_harness_unchanged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(notes_app=NOTES_APP, notes_tests=NOTES_TESTS)
    pytester.makepyfile(test_notes=textwrap.dedent(NOTES_SUITE))
    pytester.makeini("[pytest]\nharness_project = notes_tests:PROJECT\n")
    pytester.syspathinsert()
    # The suite's own backend; the notes application's database is elsewhere.
    monkeypatch.setenv("NOTES_TEST_DATABASE_URL", harness.test_database_url())
    with tempfile.TemporaryDirectory() as elsewhere:
        app_database = Path(elsewhere) / "notes.db"
        monkeypatch.setenv("NOTES_DATABASE_URL", f"sqlite:///{app_database}")

        result = pytester.runpytest(
            *harness.INNER_RUN,
            "-pno:randomly",
            "-pno:xdist",
            "--check-isolation",
            "-v",
        )

        assert not app_database.exists()
    result.assert_outcomes(passed=7)


def test_the_project_is_refused_its_own_application_database(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(notes_app=NOTES_APP, notes_tests=NOTES_TESTS)
    pytester.makepyfile(test_notes="def test_never_runs():\n    pass\n")
    pytester.makeini("[pytest]\nharness_project = notes_tests:PROJECT\n")
    pytester.syspathinsert()
    monkeypatch.setenv("NOTES_DATABASE_URL", f"sqlite:///{pytester.path / 'notes.db'}")
    monkeypatch.setenv("NOTES_TEST_DATABASE_URL", "sqlite:///notes.db")
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-pno:randomly",
        "-pno:xdist",
    )
    assert result.ret == 4
    result.stdout.fnmatch_lines(
        [
            "*NOTES_TEST_DATABASE_URL (sqlite:///notes.db) is the application database "
            "(NOTES_DATABASE_URL=*"
        ]
    )


def test_a_harness_project_that_is_no_project_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(notes_tests="PROJECT = object()\n")
    pytester.makeini("[pytest]\nharness_project = notes_tests:PROJECT\n")
    pytester.syspathinsert()
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-pno:randomly",
        "-pno:xdist",
    )
    result.stderr.fnmatch_lines(
        ["*harness_project names <object object at *>, not a tests.harness.Project*"]
    )
