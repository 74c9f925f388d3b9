"""How `make_engine` begins SQLite transactions: IMMEDIATE on a file, plain in memory.

Each test makes its own SQLite file under `tmp_path` (or an in-memory
database); a second engine on the same file plays the other session, with a
short busy timeout so that a writer kept waiting is refused at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.database import make_engine


def _begins(engine: Engine) -> list[str]:
    """The BEGIN statements `engine` sends, recorded as they go."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            sent.append(statement)

    return sent


def _impatient(engine: Engine) -> Engine:
    """Another engine on `engine`'s file that waits 50 ms for a lock, not 5 s."""
    other = make_engine(engine.url)

    @event.listens_for(other, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    return other


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (body TEXT)")
    engine.dispose()
    return url


def _writes(engine: Engine) -> str:
    """Whether `engine` can write a row now: "written", or SQLite's error name."""
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO notes VALUES ('x')")
    except OperationalError as error:
        return str(getattr(error.orig, "sqlite_errorname", error))
    return "written"


def test_a_file_database_begins_immediate_and_holds_the_write_lock_from_its_first_read(
    file_url: str,
) -> None:
    engine = make_engine(file_url)
    other = _impatient(engine)
    sent = _begins(engine)
    try:
        with Session(engine) as reader:
            reader.execute(text("SELECT count(*) FROM notes"))
            # The writer waits for the reader, instead of spoiling what it read.
            assert _writes(other) == "SQLITE_BUSY"
        assert _writes(other) == "written"
    finally:
        other.dispose()
        engine.dispose()
    assert sent == ["BEGIN IMMEDIATE"]


@pytest.mark.parametrize("how", ["make_engine", "execution_options"])
def test_a_file_database_can_begin_deferred_for_reading_beside_a_writer(
    file_url: str, how: str
) -> None:
    engine = make_engine(file_url, sqlite_begin="deferred" if how == "make_engine" else None)
    reading = engine if how == "make_engine" else engine.execution_options(sqlite_begin="deferred")
    other = _impatient(engine)
    sent = _begins(engine)
    try:
        with Session(reading) as reader:
            reader.execute(text("SELECT count(*) FROM notes"))
            assert _writes(other) == "written"  # a deferred reader takes no lock
    finally:
        other.dispose()
        engine.dispose()
    assert sent == ["BEGIN"]


def test_a_read_only_connection_begins_immediate_without_taking_the_lock(
    file_url: str, tmp_path: Path
) -> None:
    read_only = make_engine(f"sqlite:///file:{tmp_path / 'app.db'}?mode=ro&uri=true")
    other = _impatient(make_engine(file_url))
    try:
        with Session(read_only) as reader:
            assert reader.scalar(text("SELECT count(*) FROM notes")) == 0
            assert _writes(other) == "written"
    finally:
        other.dispose()
        read_only.dispose()
    assert not (tmp_path / "file:").exists()  # the URI's path was made, not the URI


def test_an_in_memory_database_begins_plain() -> None:
    engine = make_engine("sqlite://")
    sent = _begins(engine)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    assert sent == ["BEGIN"]


def test_an_unknown_begin_mode_is_refused_naming_the_setting() -> None:
    allowed = "sqlite_begin must be one of 'immediate', 'deferred', got "
    with pytest.raises(ValueError, match=f"^{allowed}'exclusive'$"):
        make_engine("sqlite://", sqlite_begin="exclusive")
    engine = make_engine("sqlite://").execution_options(sqlite_begin="eventually")
    with pytest.raises(ValueError, match=f"^{allowed}'eventually'$"), engine.begin():
        pass


def test_other_backends_ignore_the_begin_mode() -> None:
    # Built, never connected: no server is needed.
    engine = make_engine("postgresql+psycopg://user@db.invalid/app", sqlite_begin="deferred")
    try:
        assert engine.dialect.name == "postgresql"
    finally:
        engine.dispose()
