"""The database-access guard: in a test run, only the run's own databases answer.

pytest-django's blocker stops a test from reaching a database it was not
given. Here a test may connect to the databases `tests.databases` lets it
(`is_allowed`): the run's own, every scratch database `created_database`
made and has not dropped yet, in-memory SQLite, and SQLite files in pytest's
temporary folder (`tmp_path`, pytester's projects). Any other connection, in
particular application code that builds its own engine from `DATABASE_URL`
(`make_engine()`, `session_scope()` without a factory), fails before the
driver opens anything, naming the URL and where a test gets a database.

How: a `do_connect` listener registered on the `Engine` class, so every
engine of the process has it, whoever made it and whenever. SQLAlchemy calls
it just before the driver connects, with the arguments it will connect with,
from which the guard rebuilds the URL (database, host, port; no password).
The failure is `pytest.fail`'s, which `except Exception` does not swallow.

Covered: every connection this process opens through SQLAlchemy, in any
thread, from tests, fixtures and the application alike. Not covered: a
subprocess (another interpreter; the command-line tests give theirs a
`DATABASE_URL` of a temporary SQLite file), and a driver used without
SQLAlchemy (`sqlite3.connect`). `make_engine` on a SQLite file creates the
file's folder when the engine is made, before any connection: the guard
stops the connection, not that folder.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import Dialect, Engine, event
from sqlalchemy.engine import URL

from tests.databases import is_allowed, is_own_dialect

# What the failure tells a test to do instead; the harness's wiring sets it.
DEFAULT_HINT = (
    "A test gets a database from the `db` fixture (rolled back after the test), or from "
    "`transactional_db` for code that really commits (emptied after the test); a scratch "
    "database of its own from tests.databases.created_database(url), or a SQLite file under "
    "tmp_path."
)

_lock = threading.Lock()
_hints: list[str] = []  # one per guard in force (a pytester run nests one)


def connect_url(dialect: Dialect, cargs: Sequence[Any], cparams: Mapping[str, Any]) -> URL:
    """The database a driver is about to connect to, from SQLAlchemy's
    `create_connect_args` output (as `do_connect` sees it), without password."""
    if dialect.name == "sqlite":
        filename = str(cargs[0]) if cargs else str(cparams.get("database", ""))
        if not cparams.get("uri"):
            return URL.create("sqlite", database=filename)
        # `file:<path>?mode=memory`: the path, and the options as the query.
        parts = urlsplit(filename)
        return URL.create("sqlite", database=parts.path, query=dict(parse_qsl(parts.query)))
    port = cparams.get("port")
    return URL.create(
        f"{dialect.name}+{dialect.driver}",
        username=cparams.get("user"),
        host=cparams.get("host"),
        port=int(port) if port else None,
        # psycopg says dbname, mysqlclient db, most others database.
        database=cparams.get("dbname") or cparams.get("database") or cparams.get("db"),
    )


def _check(
    dialect: Dialect, _record: Any, cargs: Sequence[Any], cparams: Mapping[str, Any]
) -> None:
    with _lock:
        hint = _hints[-1] if _hints else None
    if hint is None or is_own_dialect(dialect):
        return
    url = connect_url(dialect, cargs, cparams)
    if is_allowed(url):
        return
    pytest.fail(
        f"Database access refused: {url.render_as_string(hide_password=True)} is not one of "
        f"this test run's databases. {hint}",
        pytrace=True,
    )


@contextmanager
def database_guard(hint: str = DEFAULT_HINT) -> Iterator[None]:
    """Inside the block, connecting to a database `tests.databases.is_allowed`
    refuses fails the caller at once; `hint` ends the message (how to get a
    test database). Blocks nest: the innermost hint is the one shown."""
    with _lock:
        if not _hints:
            event.listen(Engine, "do_connect", _check)
        _hints.append(hint)
    try:
        yield
    finally:
        with _lock:
            _hints.remove(hint)
            if not _hints:
                event.remove(Engine, "do_connect", _check)
