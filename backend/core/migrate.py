"""Alembic from code: the project's config, upgrades, and the settings every
migration run shares.

`backend/migrations/env.py`, `python -m core upgrade` and the migration tests
all configure alembic through `migration_options`, so what the tests compare
is exactly what `alembic revision --autogenerate` and `alembic check` see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Dialect, Engine, MetaData, Table, inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.functions import now

from core.database import PROJECT_ROOT, Base, UTCDateTime

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """The project's `alembic.ini`, for use from code.

    With `connection`, env.py migrates that connection (outside any
    transaction) instead of opening `DATABASE_URL`. Unlike the `alembic`
    command, code that calls this keeps its own logging setup.
    """
    config = Config(ALEMBIC_INI)
    config.attributes["configure_logging"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind `engine` to `revision` (env.py commits)."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database behind `engine` down to `revision` (env.py commits)."""
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def drop_version_table(connection: Connection) -> None:
    """At base nothing is versioned: leave no alembic table behind either."""
    Table(VERSION_TABLE, MetaData()).drop(connection, checkfirst=True)


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Migrate SQLite with foreign keys off; `check_foreign_keys` then proves
    that none is broken before the migration commits.

    Batch mode rebuilds a table by copy, drop and rename; with foreign keys on,
    that DROP deletes the children of every row (ON DELETE CASCADE) or fails.
    SQLite only honours the pragma between transactions, so the block must
    begin and commit its own. Other backends are left untouched.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        raise RuntimeError(
            "migrate SQLite on a connection outside a transaction: "
            "PRAGMA foreign_keys is ignored inside one"
        )
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver_connection.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """Raise if any row references a missing parent (SQLite only), so that a
    migration run with foreign keys off cannot commit broken references."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        rows = ", ".join(f"{table} rowid {rowid} -> {parent}" for table, rowid, parent, _ in broken)
        raise RuntimeError(f"the migration left rows with dangling foreign keys: {rows}")


def unversioned_tables(engine: Engine) -> list[str]:
    """Model tables in a database that alembic does not manage: one built
    with `create_all`, which `upgrade` would fail on half-way."""
    names = set(inspect(engine).get_table_names())
    if VERSION_TABLE in names:
        return []
    return sorted(names & set(Base.metadata.tables))


def migration_options(dialect: Dialect) -> dict[str, Any]:
    """`context.configure` options for every migration run and comparison."""
    sqlite = dialect.name == "sqlite"
    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "compare_server_default": True,
        # SQLite cannot ALTER most things: batch mode copies the table.
        "render_as_batch": sqlite,
        # make_engine's BEGIN workaround makes SQLite DDL transactional, so a
        # failed upgrade leaves nothing half-done there either.
        "transactional_ddl": True,
        "render_item": render_item,
    }


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render project types and defaults as portable SQLAlchemy code.

    A revision must not import `core` (it would change under it) and must
    create the same schema on every backend, whichever one it was
    autogenerated against. Returns False to let alembic render the rest.
    """
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, JSONB):
        # Alembic's own rendering names an `astext_type=Text()` it never imports.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return f"postgresql.JSONB(none_as_null={obj.none_as_null})"
    if kind == "server_default" and isinstance(obj, DefaultClause):
        # Compiled by alembic, these would freeze one dialect's spelling
        # (SQLite's 0 for false is an integer to PostgreSQL).
        if isinstance(obj.arg, now):
            return "sa.func.now()"
        if isinstance(obj.arg, True_):
            return "sa.true()"
        if isinstance(obj.arg, False_):
            return "sa.false()"
    return False
