"""Databases a test run or a benchmark makes for itself, and drops: never any other.

The one place that knows how to create, probe, find and drop a database on
each backend, shared by the harness (the run's own database), the migration
tests (scratch databases), the race tests and `bench/`. Its promise: **a
database is dropped only by the context that created it.** `created_database`
fails, leaving everything as it was, when the database already exists, and
its drop is reachable only from its own `finally`.

- SQLite: a file, created exclusively (refused when the file, or a journal
  or log of one, exists); dropped with its `-wal`, `-shm` and `-journal`
  files. In memory, nothing to create or drop: every process, each
  xdist worker included, has its own.
- Servers (PostgreSQL, MariaDB): `CREATE DATABASE` and `DROP DATABASE` from
  the server's maintenance database (none on MariaDB), in AUTOCOMMIT. A
  server backend is one entry of `SERVER_BACKENDS`: what differs between
  servers is there and nowhere else.

Also here: naming a database beside another one (`sibling_database_url`) and
telling whether two URLs name the same database (`same_database`, which the
harness's development-database guard relies on).
And the list of databases the tests may connect to while they exist
(`allowed_database`, `is_allowed`), which `tests.guard` enforces: every
database `created_database` makes is on it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Dialect, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

# In memory: lives as long as its connection and belongs to one process.
from core.database import is_memory_sqlite

# What a MariaDB database is created with: the character set and the case-
# and space-sensitive collation the application's tables declare for
# themselves (core.database), so that anything a test creates with raw SQL
# compares as they do. Written here, not imported: this module serves any
# project (tests/project.py wires in this one).
MARIADB_CHARSET = "utf8mb4"
MARIADB_DATABASE_COLLATION = "utf8mb4_nopad_bin"

CONNECT_TIMEOUT_SECONDS = 3
# What SQLite may leave beside a database file: its write-ahead log, the
# log's shared-memory index, and a rollback journal.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class ServerBackend:
    """What creating and dropping databases takes on one kind of database server.

    Names are quoted by the backend's own SQLAlchemy dialect (double quotes
    on PostgreSQL, backticks on MariaDB), so they need no entry here.
    """

    title: str  # for messages
    scheme: str  # the URL scheme whose driver `make install` installs
    default_port: int
    # The database to connect to for CREATE/DROP DATABASE (None: none at all).
    maintenance_database: str | None
    max_name_bytes: int
    create: str  # with {name}
    template: str | None  # appended to `create`, with {template}; None: no copies
    drop: str  # with {name}
    exists: str  # SQL with a :name parameter, one row when the database exists
    # SQL with a :name parameter listing the other connections to the database,
    # each ended (`KILL CONNECTION`) before the drop; None: `drop` ends them.
    connections: str | None = None


SERVER_BACKENDS = {
    "postgresql": ServerBackend(
        title="PostgreSQL",
        scheme="postgresql+psycopg",
        default_port=5432,
        # Every PostgreSQL server has it.
        maintenance_database="postgres",
        # Longer names are silently truncated, so two could meet.
        max_name_bytes=63,
        create="CREATE DATABASE {name}",
        template=" TEMPLATE {template}",
        # FORCE: a connection a test forgot to close must not keep the
        # database alive after its run.
        drop="DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        exists="SELECT 1 FROM pg_database WHERE datname = :name",
    ),
    "mysql": ServerBackend(
        title="MariaDB",
        scheme="mysql+pymysql",
        default_port=3306,
        # A MariaDB connection needs no database at all.
        maintenance_database=None,
        # Longer names are refused by the server; say so before trying.
        max_name_bytes=64,
        # The tables carry their own character set and collation (see
        # core.database); the database's defaults agree with them, for
        # anything a test creates with raw SQL.
        create="CREATE DATABASE {name} "
        f"CHARACTER SET {MARIADB_CHARSET} COLLATE {MARIADB_DATABASE_COLLATION}",
        # No CREATE DATABASE ... TEMPLATE: every database is built anew.
        template=None,
        drop="DROP DATABASE IF EXISTS {name}",
        exists="SELECT 1 FROM information_schema.schemata WHERE schema_name = :name",
        # DROP DATABASE waits for every open transaction on its tables (for
        # a day, by default): a connection a test left open is ended first,
        # as PostgreSQL's WITH (FORCE) does.
        connections="SELECT id FROM information_schema.processlist "
        "WHERE db = :name AND id <> CONNECTION_ID()",
    ),
}
SUPPORTED_BACKENDS = ("sqlite", *SERVER_BACKENDS)


class DatabaseServerError(RuntimeError):
    """The database a URL names cannot be used: its server does not answer,
    its driver is not installed, or its backend is not supported here."""


class UnsupportedBackendError(DatabaseServerError):
    """Raised for a URL whose backend this module cannot create databases on."""


def _server_backend(url: URL) -> ServerBackend:
    backend = SERVER_BACKENDS.get(url.get_backend_name())
    if backend is None:
        raise UnsupportedBackendError(
            f"test databases are created on {', '.join(SUPPORTED_BACKENDS[:-1])} and "
            f"{SUPPORTED_BACKENDS[-1]} only, "
            f"not on {url.get_backend_name()} ({url.render_as_string()})"
        )
    return backend


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def sibling_database_url(url: str | URL, label: str) -> URL:
    """A database beside `url`'s, its name suffixed with `_label`.

    `postgresql://host/test` becomes `postgresql://host/test_<label>`,
    `sqlite:///var/t.db` becomes `sqlite:///var/t_<label>.db`; in memory,
    "beside" is simply another in-memory database.
    """
    url = make_url(url)
    if is_memory_sqlite(url):
        return url
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        return url.set(database=str(path.with_name(f"{path.stem}_{label}{path.suffix}")))
    return url.set(database=f"{url.database}_{label}")


# Spellings of one server: the guard must not be fooled by a written default
# port or by another name for the loopback interface.
_LOOPBACK = {None, "", "localhost", "127.0.0.1", "::1"}


def same_database(first: str | URL, second: str | URL) -> bool:
    """True when two URLs point at the same database, whatever their driver.

    SQLite file paths are compared after resolving them; two in-memory
    databases are never the same. On a server, default ports and loopback
    names are normalised.
    """
    a, b = make_url(first), make_url(second)
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        if is_memory_sqlite(a) or is_memory_sqlite(b):
            return False
        return Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return _server_and_database(a) == _server_and_database(b)


def _server_and_database(url: URL) -> tuple[str | None, int | None, str | None]:
    host = "localhost" if url.host in _LOOPBACK else url.host
    backend = SERVER_BACKENDS.get(url.get_backend_name())
    port = url.port or (backend.default_port if backend else None)
    return host, port, url.database


# --------------------------------------------------------------------------
# Servers: probing, finding
# --------------------------------------------------------------------------


def _maintenance_engine(url: URL) -> Engine:
    backend = _server_backend(url)
    # `_replace`, not `set`: `set(database=None)` keeps the database.
    engine = create_engine(
        url._replace(database=backend.maintenance_database),
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE refuse to run in a transaction
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    _own_dialects.add(engine.dialect)
    return engine


def check_server_answers(url: str | URL, *, setting: str) -> None:
    """Fail fast, and readably, when the server of `url` does not answer.

    `setting` names where the URL came from (an environment variable), for
    the message. SQLite has no server: nothing to check.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return
    backend = _server_backend(url)
    where = f"{url.host or 'localhost'}:{url.port or backend.default_port}"
    try:
        engine = _maintenance_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except ModuleNotFoundError as error:
        raise DatabaseServerError(
            f"{setting} asks for {url.drivername}, whose driver ({error.name}) is not "
            f"installed. `make install` installs the driver of {backend.scheme}://: use that."
        ) from error
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseServerError(
            f"No {backend.title} server answers at {where} (tried for "
            f"{CONNECT_TIMEOUT_SECONDS}s as user {url.username!r}): {reason}. Start it, "
            f"or point {setting} at one that runs."
        ) from error


def database_exists(url: str | URL) -> bool:
    """Whether the database `url` names exists (in-memory SQLite always does)."""
    url = make_url(url)
    if is_memory_sqlite(url):
        return True
    if url.get_backend_name() == "sqlite":
        return Path(url.database or "").exists()
    backend = _server_backend(url)
    maintenance = _maintenance_engine(url)
    try:
        with maintenance.connect() as connection:
            found = connection.scalar(text(backend.exists), {"name": url.database})
    finally:
        maintenance.dispose()
    return found is not None


# --------------------------------------------------------------------------
# Creating, and dropping what was created
# --------------------------------------------------------------------------


@contextmanager
def created_database(url: str | URL, *, template: str | URL | None = None) -> Iterator[URL]:
    """Create the database `url` names (empty, or a copy of `template`), yield
    its URL, and drop it when the block ends.

    Creation fails if the database already exists (`FileExistsError` on
    SQLite, the server's own error otherwise) and then touches nothing: a
    database the caller did not create is never written to, let alone
    dropped. In-memory SQLite needs neither step. While it exists, the
    database is one the tests may connect to (`allowed_database`).
    """
    url = make_url(url)
    source = None if template is None else make_url(template)
    if is_memory_sqlite(url):
        if source is not None:
            raise ValueError(f"an in-memory SQLite database cannot be a copy of {source}")
        yield url
    elif url.get_backend_name() == "sqlite":
        with _created_sqlite_file(Path(url.database or ""), source), allowed_database(url):
            yield url
    else:
        with _created_server_database(url, source), allowed_database(url):
            yield url


# --------------------------------------------------------------------------
# The databases tests may connect to (what `tests.guard` enforces)
# --------------------------------------------------------------------------

_allowed: list[URL | Path] = []
_allowed_lock = threading.Lock()
# The dialects of the engines this module makes for itself (maintenance
# connections to a server's `postgres` database, to create and drop).
_own_dialects: weakref.WeakSet[Dialect] = weakref.WeakSet()


@contextmanager
def allowed_database(where: str | URL | Path) -> Iterator[None]:
    """Inside the block, tests may connect to `where`: a database URL, or a
    folder (a Path) in which every SQLite file is allowed (pytest's temporary
    directory). `created_database` allows each database it creates."""
    entry: URL | Path = where if isinstance(where, Path) else make_url(where)
    with _allowed_lock:
        _allowed.append(entry)
    try:
        yield
    finally:
        with _allowed_lock:
            _allowed.remove(entry)


def is_allowed(url: str | URL) -> bool:
    """Whether tests may connect to `url`: an in-memory SQLite database (each
    is private to its process), or a database or folder `allowed_database`
    allows now."""
    url = make_url(url)
    if is_memory_sqlite(url):
        return True
    file = _sqlite_path(url)
    with _allowed_lock:
        allowed = list(_allowed)
    for entry in allowed:
        if isinstance(entry, Path):
            if file is not None and file.is_relative_to(entry.resolve()):
                return True
        elif same_database(url, entry):
            return True
    return False


def _sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    return Path(url.database or "").resolve()


def is_own_dialect(dialect: Dialect) -> bool:
    """Whether `dialect` belongs to an engine this module made for itself."""
    return dialect in _own_dialects


@contextmanager
def _created_sqlite_file(path: Path, template: URL | None) -> Iterator[None]:
    # A journal or log left beside the name belongs to some database: SQLite
    # would read it into the new one, and the drop would delete it.
    for companion in _sqlite_files(path)[1:]:
        if companion.exists():
            raise FileExistsError(f"{companion} exists: not creating a database at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Exclusive creation: an existing file raises FileExistsError untouched.
    path.touch(exist_ok=False)
    try:
        if template is not None:
            # The backup API copies a consistent database, WAL contents included.
            with (
                closing(sqlite3.connect(template.database or "")) as original,
                closing(sqlite3.connect(path)) as copy,
            ):
                original.backup(copy)
        yield
    finally:
        remove_sqlite_files(path)


def _sqlite_files(path: str | Path) -> list[Path]:
    """A SQLite database file, then the companions SQLite may keep beside it."""
    return [Path(f"{path}{suffix}") for suffix in ("", *SQLITE_COMPANIONS)]


def remove_sqlite_files(path: str | Path) -> None:
    """Delete a SQLite database file and whatever SQLite kept beside it."""
    for file in _sqlite_files(path):
        file.unlink(missing_ok=True)


@contextmanager
def _created_server_database(url: URL, template: URL | None) -> Iterator[None]:
    backend = _server_backend(url)
    name = url.database or ""
    if len(name.encode()) > backend.max_name_bytes:
        raise ValueError(
            f"database name {name!r} is over {backend.title}'s {backend.max_name_bytes} bytes"
        )
    maintenance = _maintenance_engine(url)
    quote = maintenance.dialect.identifier_preparer.quote
    create = backend.create.format(name=quote(name))
    if template is not None:
        if backend.template is None:
            raise ValueError(f"{backend.title} databases cannot be created as copies")
        create += backend.template.format(template=quote(template.database or ""))
    try:
        with maintenance.connect() as connection:
            connection.exec_driver_sql(create)
        try:
            yield
        finally:
            with maintenance.connect() as connection:
                if backend.connections is not None:
                    for (other,) in connection.execute(text(backend.connections), {"name": name}):
                        connection.exec_driver_sql(f"KILL CONNECTION {int(other)}")
                connection.exec_driver_sql(backend.drop.format(name=quote(name)))
    finally:
        maintenance.dispose()


__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "SERVER_BACKENDS",
    "SQLITE_COMPANIONS",
    "SUPPORTED_BACKENDS",
    "DatabaseServerError",
    "ServerBackend",
    "UnsupportedBackendError",
    "allowed_database",
    "check_server_answers",
    "created_database",
    "database_exists",
    "is_allowed",
    "is_memory_sqlite",
    "is_own_dialect",
    "remove_sqlite_files",
    "same_database",
    "sibling_database_url",
]
