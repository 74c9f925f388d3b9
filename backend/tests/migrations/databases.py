"""Throwaway databases for the migration tests, and what their schema looks like.

`ScratchDatabases` makes empty or template-copied databases on the backend the
test run uses: SQLite files in a temporary folder, or PostgreSQL or MariaDB
databases (MariaDB makes no copies: `can_copy`) named after the harness's own
test database, which carries this run's tag (`harness.run_tag`), so no other
run or xdist worker can meet them. Each is
created and dropped through `tests.databases.created_database`: creating
one that exists fails, and only a database created here can be dropped.
`schema_snapshot` describes a schema through the inspector, so a migrated
database and a `create_all` one can be compared field by field.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, inspect, text
from sqlalchemy.engine import make_url

from core.migrate import VERSION_TABLE
from tests.databases import SERVER_BACKENDS, created_database, sibling_database_url


class ScratchDatabases:
    """Creates databases for one test run and drops every one of them at the end."""

    def __init__(self, harness_url: URL, folder: Path) -> None:
        self.harness_url = harness_url
        self.folder = folder
        self.sqlite = harness_url.get_backend_name() == "sqlite"
        # SQLite copies a file, PostgreSQL a template database; MariaDB has no
        # CREATE DATABASE ... TEMPLATE: there every database is built anew.
        self.can_copy = self.sqlite or (
            SERVER_BACKENDS[harness_url.get_backend_name()].template is not None
        )
        # Each database's drop, in the context that created it; nothing else drops.
        self._created: dict[URL, ExitStack] = {}

    def create(self, name: str, *, template: URL | None = None) -> URL:
        """A new database called `name`: empty, or a copy of `template`."""
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"scratch database names are [a-z0-9_]+, got {name!r}")
        if self.sqlite:
            wanted = make_url(f"sqlite:///{self.folder / name}.db")
        else:
            wanted = sibling_database_url(self.harness_url, name)
        with ExitStack() as stack:
            url = stack.enter_context(created_database(wanted, template=template))
            self._created[url] = stack.pop_all()
        return url

    def drop(self, url: URL) -> None:
        """Drop a database this object created; any other URL is refused."""
        if url not in self._created:
            raise ValueError(f"{url} was not created by these scratch databases: not dropping it")
        self._created.pop(url).close()

    def drop_all(self) -> None:
        # Newest first: copies go before the template they were made from.
        for url in reversed(list(self._created)):
            self.drop(url)


# --------------------------------------------------------------------------
# Schema snapshots
# --------------------------------------------------------------------------

Snapshot = dict[str, dict[str, Any]]


def schema_snapshot(engine: Engine) -> Snapshot:
    """Every table but alembic's: columns (type, nullability, server default),
    primary key, indexes, unique constraints, foreign keys with their ON
    DELETE rule, CHECK constraints, and on MariaDB the table's character set
    and collation, in a form that compares with ==. MariaDB reports each
    UNIQUE constraint as a unique index too, and JSON as LONGTEXT with a
    json_valid() CHECK: the same on both sides, so compared as they are."""
    inspector = inspect(engine)
    snapshot: Snapshot = {}
    for table in sorted(set(inspector.get_table_names()) - {VERSION_TABLE}):
        pk = inspector.get_pk_constraint(table)
        snapshot[table] = {
            # By name: a column added by a migration lands last, create_all
            # puts it where the model declares it, and neither order matters.
            "columns": {
                column["name"]: (
                    column["type"].compile(dialect=engine.dialect),
                    column["nullable"],
                    _squash(column.get("default")),
                )
                for column in inspector.get_columns(table)
            },
            "primary key": (pk.get("name"), tuple(pk["constrained_columns"])),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            ),
            "unique constraints": sorted(
                (unique["name"], tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "check constraints": sorted(
                (check["name"], _squash(check["sqltext"]))
                for check in inspector.get_check_constraints(table)
            ),
        }
        if engine.dialect.name == "mysql":
            # On MariaDB a table's collation decides how its strings compare
            # (and its unique keys and CHECKs with them).
            options = inspector.get_table_options(table)
            snapshot[table]["collation"] = (
                options.get("mysql_default charset"),
                options.get("mysql_collate"),
            )
    return snapshot


def _squash(sql: str | None) -> str | None:
    return None if sql is None else " ".join(sql.split())


def snapshot_differences(actual: Snapshot, expected: Snapshot) -> list[str]:
    """One line per table or aspect that differs, naming both sides."""
    lines = []
    for table in sorted(actual.keys() | expected.keys()):
        if table not in expected:
            lines.append(f"{table}: unexpected table")
        elif table not in actual:
            lines.append(f"{table}: missing table")
        else:
            for aspect, wanted in expected[table].items():
                lines += _aspect_differences(f"{table} {aspect}", actual[table][aspect], wanted)
    return lines


def _aspect_differences(where: str, got: Any, wanted: Any) -> list[str]:
    if got == wanted:
        return []
    if isinstance(got, dict) and isinstance(wanted, dict):
        return [
            f"{where} {key}: got {got.get(key, '(none)')}, expected {wanted.get(key, '(none)')}"
            for key in sorted(got.keys() | wanted.keys())
            if got.get(key) != wanted.get(key)
        ]
    if isinstance(got, list) and isinstance(wanted, list):
        return [f"{where}: missing {item}" for item in wanted if item not in got] + [
            f"{where}: unexpected {item}" for item in got if item not in wanted
        ]
    return [f"{where}: got {got}, expected {wanted}"]


def leftovers(engine: Engine) -> list[str]:
    """Whatever a database still holds of any schema: tables, views, indexes,
    sequences, types. Empty means the database is as new."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
            )
        elif engine.dialect.name == "mysql":
            # Indexes and CHECKs live in their tables; sequences are tables too.
            rows = connection.execute(
                text(
                    "SELECT table_type, table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() UNION ALL "
                    "SELECT routine_type, routine_name FROM information_schema.routines "
                    "WHERE routine_schema = DATABASE()"
                )
            )
        else:
            rows = connection.execute(
                text(
                    "SELECT c.relkind, c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "UNION ALL SELECT 'type', t.typname FROM pg_type t "
                    "JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') "
                    "AND t.typrelid = 0"
                )
            )
        return sorted(f"{kind} {name}" for kind, name in rows)
