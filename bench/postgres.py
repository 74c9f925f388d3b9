"""Scratch PostgreSQL databases for the benchmarks: created, used, dropped.

The benchmarks never write to an existing database: every database they use
is created and dropped through `tests.databases.created_database` (which
refuses a name that exists), named `bench_<pid>_<label>_<n>`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import URL, make_url

from tests.databases import DatabaseServerError, check_server_answers, created_database

POSTGRES_URL_ENV = "BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class PostgresServer:
    """A server that answered; `url` names it (its database is never used)."""

    url: URL
    _names: Iterator[int] = field(default_factory=itertools.count)

    @contextmanager
    def scratch_database(self, label: str, *, template: URL | None = None) -> Iterator[URL]:
        """A new database (a copy of `template` if given), dropped on exit."""
        name = f"bench_{os.getpid()}_{label}_{next(self._names)}"
        with created_database(self.url.set(database=name), template=template) as url:
            yield url


def connect_postgres(url: str | None = None) -> tuple[PostgresServer | None, str]:
    """The server at `url` (default `BENCH_POSTGRES_URL` or the local one), or
    None and the reason it cannot be used."""
    url = url or os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    try:
        check_server_answers(url, setting=POSTGRES_URL_ENV)
    except DatabaseServerError as error:
        return None, str(error)
    return PostgresServer(make_url(url)), ""
