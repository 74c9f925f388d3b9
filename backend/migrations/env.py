"""Alembic's environment: which database, which metadata, how to compare.

The database is the application's own (`DATABASE_URL`, by default the
embedded SQLite file), or an `Engine` or `Connection` handed in through
`config.attributes["connection"]` by `core.migrate`, the tests, or tools
such as pytest-alembic. Every option comes from
`core.migrate.migration_options`, shared with the tests.

A run holds the start-up lock (`core.database.exclusive_transaction`), so
two processes migrating one database at once migrate it once. From the
`alembic` command, a failure a person can fix (a bad `DATABASE_URL`, a
server that does not answer, rows that break a new constraint) is one line
and a non-zero exit; `CORE_TRACEBACK=1` shows the trace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.operations.ops import MigrationScript
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

import core.models  # noqa: F401  (fills Base.metadata: autogenerate compares against it)
from core.database import (
    checked_url,
    database_url,
    exclusive_transaction,
    make_engine,
)
from core.migrate import (
    REVISIONS_ATTRIBUTE,
    check_foreign_keys,
    constraint_violation,
    drop_version_table,
    migration_options,
    sqlite_foreign_keys_off,
)
from core.tools.problems import ExitCode, Problem, explain, report

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def skip_empty_revision(_context: Any, _revision: Any, directives: list[MigrationScript]) -> None:
    """`make revision` with no model change writes no empty revision file."""
    if not getattr(config.cmd_opts, "autogenerate", False):
        return  # `alembic check` reads the empty script to say all is well
    script = directives[0]
    if script.upgrade_ops is not None and script.upgrade_ops.is_empty():
        directives[:] = []
        print("The models match the migrations: no revision written.")


def run_migrations(connection: Connection) -> None:
    """Run the requested migrations in one transaction, committed here.

    A connection handed in inside a transaction of its caller's stays in it:
    the caller commits, and owns the locking.
    """
    transaction: AbstractContextManager[Any] = (
        nullcontext() if connection.in_transaction() else exclusive_transaction(connection)
    )
    try:
        with sqlite_foreign_keys_off(connection), transaction:
            context.configure(
                connection=connection,
                process_revision_directives=skip_empty_revision,
                **migration_options(connection.dialect),
            )
            with context.begin_transaction():
                migration = context.get_context()
                # Read under the lock: what this run found is what it changed.
                before = ", ".join(migration.get_current_heads()) or None
                context.run_migrations()
                check_foreign_keys(connection)
                after = ", ".join(migration.get_current_heads()) or None
                if after is None:
                    drop_version_table(connection)
                config.attributes[REVISIONS_ATTRIBUTE] = (before, after)
    except IntegrityError as error:
        raise constraint_violation(error, connection) from error


def run_migrations_online() -> None:
    handed_in = config.attributes.get("connection")
    if isinstance(handed_in, Engine):
        with handed_in.connect() as connection:
            run_migrations(connection)
    elif isinstance(handed_in, Connection):
        run_migrations(handed_in)
    elif handed_in is None:
        on_database_url(migrate_database_at)
    else:
        raise TypeError(
            'config.attributes["connection"] must be a SQLAlchemy Engine or Connection, '
            f"not {type(handed_in).__name__}"
        )


def migrate_database_at(url: URL) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


def write_sql_for(url: URL) -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        raise Problem(
            ExitCode.USAGE,
            "alembic --sql cannot write SQLite migrations: batch mode rebuilds each table it "
            "alters from the live table's reflected schema. Run `alembic upgrade` on a copy of "
            "the database instead, or use --sql with a postgresql DATABASE_URL.",
        )
    context.configure(
        url=engine.url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migration_options(engine.dialect),
    )
    with context.begin_transaction():
        context.run_migrations()


def on_database_url(run: Callable[[URL], None]) -> None:
    """Run `run(url)` on `DATABASE_URL`, as the `alembic` command does: a
    failure a person can fix ends the process with one line, not a trace."""
    url = None
    try:
        url = checked_url(database_url())
        run(url)
    except Exception as error:
        problem = explain(error, url)
        if problem is None:
            raise
        sys.exit(report(problem))


if context.is_offline_mode():
    on_database_url(write_sql_for)
else:
    run_migrations_online()
