"""Scratch databases on the database servers the benchmarks use: created, used, dropped.

The benchmarks never write to an existing database: every database they use
is created and dropped through `tests.databases.created_database` (which
refuses a name that exists), named `bench_<pid>_<label>_<n>`. Each server
backend is one `ServerKind`; one that does not answer is skipped, with one
line saying why.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import URL, make_url

from tests.databases import DatabaseServerError, check_server_answers, created_database


@dataclass(frozen=True)
class ServerKind:
    """A kind of server the benchmarks measure, and where to find one."""

    name: str  # the backend's name in the results: "postgresql", "mariadb"
    title: str  # for messages
    setting: str  # the environment variable naming the server
    default_url: str  # its database is never used: only its server


POSTGRESQL = ServerKind(
    "postgresql",
    "PostgreSQL",
    "BENCH_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
)
MARIADB = ServerKind(
    "mariadb", "MariaDB", "BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
SERVER_KINDS = (POSTGRESQL, MARIADB)


@dataclass
class BenchServer:
    """A server that answered; `url` names it (its database is never used)."""

    kind: ServerKind
    url: URL
    _names: Iterator[int] = field(default_factory=itertools.count)

    @contextmanager
    def scratch_database(self, label: str, *, template: URL | None = None) -> Iterator[URL]:
        """A new database (a copy of `template` if given), dropped on exit."""
        name = f"bench_{os.getpid()}_{label}_{next(self._names)}"
        with created_database(self.url.set(database=name), template=template) as url:
            yield url


def connect_server(kind: ServerKind, url: str | None = None) -> tuple[BenchServer | None, str]:
    """The server at `url` (default: the kind's setting, or the local one), or
    None and the reason it cannot be used."""
    url = url or os.environ.get(kind.setting) or kind.default_url
    try:
        check_server_answers(url, setting=kind.setting)
    except DatabaseServerError as error:
        return None, str(error)
    return BenchServer(kind, make_url(url)), ""
