"""Alembic's environment: which database, which metadata, how to compare.

The database is the application's own (`DATABASE_URL`, by default the
embedded SQLite file), or a connection handed in through
`config.attributes["connection"]` by `core.migrate` and the tests. Every
option comes from `core.migrate.migration_options`, shared with the tests.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.operations.ops import MigrationScript
from sqlalchemy import Connection

import core.models  # noqa: F401  (fills Base.metadata: autogenerate compares against it)
from core.database import database_url, make_engine
from core.migrate import (
    check_foreign_keys,
    drop_version_table,
    migration_options,
    sqlite_foreign_keys_off,
)

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
    """Run the requested migrations in one transaction, committed here."""
    context.configure(
        connection=connection,
        process_revision_directives=skip_empty_revision,
        **migration_options(connection.dialect),
    )
    with sqlite_foreign_keys_off(connection), context.begin_transaction():
        context.run_migrations()
        check_foreign_keys(connection)
        if not context.get_context().get_current_heads():
            drop_version_table(connection)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    engine = make_engine(database_url())
    context.configure(
        url=engine.url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migration_options(engine.dialect),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
