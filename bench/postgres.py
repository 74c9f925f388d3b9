"""Scratch PostgreSQL databases for the benchmarks: created, used, dropped.

The benchmarks never write to an existing database: they connect to the
server's maintenance database only to CREATE and DROP databases of their own,
all named `bench_<pid>_...`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

POSTGRES_URL_ENV = "BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class PostgresServer:
    """A reachable server and an AUTOCOMMIT connection pool to create databases."""

    admin: Engine
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> URL:
        return self.admin.url.set(database=database)

    def new_name(self, label: str) -> str:
        return f"bench_{os.getpid()}_{label}_{next(self._names)}"

    @contextmanager
    def scratch_database(self, label: str, *, template: str | None = None) -> Iterator[str]:
        """A new database (a copy of `template` if given), dropped on exit."""
        name = self.new_name(label)
        quote = self.admin.dialect.identifier_preparer.quote
        create = f"CREATE DATABASE {quote(name)}"
        if template is not None:
            create += f" TEMPLATE {quote(template)}"
        with self.admin.connect() as connection:
            connection.execute(text(create))
        try:
            yield name
        finally:
            with self.admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)"))

    def dispose(self) -> None:
        self.admin.dispose()


def connect_postgres(url: str | None = None) -> tuple[PostgresServer | None, str]:
    """The server at `url` (default `BENCH_POSTGRES_URL` or the local one), or
    None and the reason it cannot be used."""
    url = url or os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    shown = make_url(url).render_as_string()
    try:
        admin = create_engine(
            url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
    except ModuleNotFoundError as error:
        return None, f"the PostgreSQL driver for {shown} is not installed ({error.name})"
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        admin.dispose()
        reason = str(error.orig or error).strip().splitlines()[0]
        return None, f"no PostgreSQL server answers at {shown}: {reason}"
    return PostgresServer(admin), ""
