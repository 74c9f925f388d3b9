"""Alembic from code: the project's config, upgrades, and the settings every
migration run shares.

`backend/migrations/env.py`, `python -m core upgrade` and the migration tests
all configure alembic through `migration_options`, so what the tests compare
is exactly what `alembic revision --autogenerate` and `alembic check` see.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CheckConstraint,
    Connection,
    Dialect,
    Engine,
    Index,
    MetaData,
    Table,
    UniqueConstraint,
    column,
    func,
    inspect,
    literal_column,
    not_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import ColumnClause, False_, TextClause, True_
from sqlalchemy.sql.functions import now

from core.database import PROJECT_ROOT
from core.schema import (
    Base,
    UTCDateTime,
)

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
VERSION_TABLE = "alembic_version"
# env.py writes the revisions it found and left here, read inside its lock.
REVISIONS_ATTRIBUTE = "revisions"


class Moved(NamedTuple):
    """The revision a database was at before a migration run, and after it."""

    before: str | None
    after: str | None


class MigrationRefused(RuntimeError):
    """The rows in the database stop a migration; it was rolled back."""


def alembic_config(connection: Connection | None = None) -> Config:
    """The project's `alembic.ini`, for use from code.

    With `connection`, env.py migrates that connection (outside any
    transaction) instead of opening `DATABASE_URL`. Unlike the `alembic`
    command, code that calls this keeps its own logging setup.
    """
    # Alembic's default stdout is the sys.stdout of when alembic was imported;
    # its messages go to the one in force now (captured, redirected, or not).
    config = Config(ALEMBIC_INI, stdout=sys.stdout)
    config.attributes["configure_logging"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def upgrade(engine: Engine, revision: str = "head") -> Moved:
    """Bring the database behind `engine` to `revision` (env.py commits).

    What it moved from and to is read under env.py's start-up lock: of two
    processes upgrading at once, one reports the upgrade and the other finds
    the database already there.
    """
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    before, after = config.attributes[REVISIONS_ATTRIBUTE]
    return Moved(before, after)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database behind `engine` down to `revision` (env.py commits)."""
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def unknown_revisions(engine: Engine) -> list[str]:
    """Revisions the database is stamped with that this migration tree lacks:
    newer code migrated it, or a revision file was deleted."""
    with engine.connect() as connection:
        stamped = MigrationContext.configure(connection).get_current_heads()
    known = {script.revision for script in script_directory().walk_revisions()}
    return sorted(set(stamped) - known)


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
        rows = ", ".join(f"{child} rowid {rowid} -> {parent}" for child, rowid, parent, _ in broken)
        raise MigrationRefused(
            f"the migration left rows with dangling foreign keys: {rows}; it was rolled back.\n"
            "Delete those rows or restore their parents, then upgrade again."
        )


def unversioned_tables(engine: Engine) -> list[str]:
    """Model tables in a database that alembic does not manage: one built
    with `create_all`, which `upgrade` would fail on half-way."""
    names = set(inspect(engine).get_table_names())
    if VERSION_TABLE in names:
        return []
    return sorted(names & set(Base.metadata.tables))


# --------------------------------------------------------------------------
# Existing rows that break a constraint a migration adds
# --------------------------------------------------------------------------

# SQLite batch mode copies a table into "_alembic_tmp_<name>" to rebuild it:
# a constraint the copy enforces is reported against that name.
_BATCH_COPY_PREFIX = "_alembic_tmp_"
_SQLITE_VIOLATION = re.compile(r"(CHECK|UNIQUE|NOT NULL) constraint failed: (.+)")
# A unique index on expressions is named alone: "UNIQUE constraint failed: index 'ix'".
_SQLITE_EXPRESSION_INDEX = re.compile(r"index '(.+)'")
# PostgreSQL's SQLSTATE for each kind of violation, and the columns of a
# unique one ("Key (workspace_id, name)=(1, a) is duplicated.").
_SQLSTATE_KIND = {"23514": "CHECK", "23505": "UNIQUE", "23502": "NOT NULL"}
_POSTGRES_KEY = re.compile(r"Key \((.+?)\)=")


@dataclass
class Violation:
    """A constraint that existing rows break, as far as it could be found out."""

    kind: str | None  # CHECK, UNIQUE, NOT NULL, or None when the driver does not say
    table: str | None
    constraint: str | None
    columns: list[str]
    rows: int | None = None

    def describe(self) -> str:
        rows = "rows" if self.rows is None else f"{self.rows} row{'' if self.rows == 1 else 's'}"
        where = f"{rows} of table {self.table or '(not reported)'}"
        constraint = f"{self.kind or 'the'} constraint" + (
            f" {self.constraint}" if self.constraint else " the migration adds"
        )
        columns = ", ".join(self.columns)
        one = self.rows == 1  # "1 row ... has", "2 rows ... have"
        if self.kind == "NOT NULL":
            has = "has" if one else "have"
            return f"{where} {has} no value in column {columns}, which the migration makes NOT NULL"
        if self.kind == "UNIQUE" and columns:
            return f"{where} share values of ({columns}), which {constraint} forbids"
        return f"{where} {'breaks' if one else 'break'} {constraint}"


def constraint_violation(error: IntegrityError, connection: Connection) -> MigrationRefused:
    """What an IntegrityError during a migration means, in words: the table,
    the constraint, and how many existing rows break it.

    The driver names the constraint (PostgreSQL's diagnostics; SQLite's
    message). Rows are counted with the models' definition of it, on
    `connection` once the failed migration is rolled back; when either is
    not at hand the count is left out.
    """
    violation = _violation(error)
    said = str(error.orig).strip().splitlines()
    reason = said[0] if said else "the driver gave no message"
    if (violation.table or "").startswith("pg_"):
        # PostgreSQL's own catalogue: another process created the same
        # objects at the same moment, without the start-up lock.
        return MigrationRefused(
            f"Cannot migrate: another process changed the schema at the same time ({reason}); "
            "this migration was rolled back.\nRun it again once the other one has finished."
        )
    model = _model_constraint(violation)
    if model is not None and model.table is not None:
        violation.table, violation.constraint = model.table.name, str(model.name)
        violation.columns = violation.columns or [c.name for c in model.columns]
    violation.rows = _count_breaking_rows(connection, violation, model)
    return MigrationRefused(
        f"Cannot migrate: {violation.describe()}; {failed_migration_outcome(connection.dialect)} "
        f"({reason}).\nCorrect or delete those rows, then run the migration again."
    )


def failed_migration_outcome(dialect: Dialect) -> str:
    """What a migration that failed half-way left behind, in words."""
    if dialect.name == "mysql":
        # Each DDL statement commits itself: there is no undoing the ones
        # that ran. The revisions keep each change to one table in one
        # ALTER, so a refused one leaves that table as it was.
        return (
            "that statement changed nothing, but MariaDB commits each schema change as it "
            "runs: earlier statements of the same revision stay applied"
        )
    return "the migration was rolled back"


def _violation(error: IntegrityError) -> Violation:
    """The violation as the driver reports it."""
    diagnostics = getattr(error.driver_exception, "diag", None)
    if diagnostics is not None:  # psycopg
        key = _POSTGRES_KEY.search(diagnostics.message_detail or "")
        columns = key.group(1).split(", ") if key else [diagnostics.column_name]
        return Violation(
            _SQLSTATE_KIND.get(diagnostics.sqlstate),
            diagnostics.table_name,
            diagnostics.constraint_name,
            [name for name in columns if name],
        )
    mariadb = _mariadb_violation(error)
    if mariadb is not None:
        return mariadb
    match = _SQLITE_VIOLATION.search(str(error.orig))
    if match is None:
        return Violation(None, None, None, [])
    kind, detail = match.groups()
    if kind == "CHECK":
        # SQLite names no table: batch mode's copy statement does.
        copy = re.search(rf'INSERT INTO "?{_BATCH_COPY_PREFIX}(\w+)', error.statement or "")
        return Violation(kind, copy.group(1) if copy else None, detail.strip(), [])
    index = _SQLITE_EXPRESSION_INDEX.fullmatch(detail.strip())
    if index is not None:
        return Violation(kind, None, index.group(1), [])
    # "UNIQUE constraint failed: _alembic_tmp_users.email, _alembic_tmp_users.x"
    qualified = [name.strip().split(".") for name in detail.split(",")]
    table_name = qualified[0][0].removeprefix(_BATCH_COPY_PREFIX)
    return Violation(kind, table_name, None, [parts[-1] for parts in qualified])


# MariaDB's error numbers for each kind of violation: 1265 ("Data truncated")
# is what ALTER TABLE says when rows hold NULL in a column it makes NOT NULL.
_MARIADB_KIND = {4025: "CHECK", 3819: "CHECK", 1062: "UNIQUE", 1048: "NOT NULL", 1265: "NOT NULL"}
_MARIADB_CHECK = re.compile(r"CONSTRAINT `([^`]+)` failed for `[^`]*`\.`([^`]+)`")
# The duplicated value is quoted as it is, line breaks included.
_MARIADB_KEY = re.compile(r"Duplicate entry .* for key '([^']+)'", re.S)
_MARIADB_COLUMN = re.compile(r"[Cc]olumn '([^']+)'")
# Where MariaDB's message names no table, the statement does.
_STATEMENT_TABLE = re.compile(
    r"^\s*(?:ALTER TABLE|INSERT INTO|UPDATE|CREATE UNIQUE INDEX \S+ ON)\s+`?(\w+)", re.I
)
_STATEMENT_UNIQUE = re.compile(r"UNIQUE(?: INDEX \S+ ON \S+)?\s*\(([^)]*)\)", re.I)


def _mariadb_violation(error: DBAPIError) -> Violation | None:
    """The violation as MariaDB (through PyMySQL) reports it; None for another driver."""
    # PyMySQL's are (error number, message); the other drivers' (message,).
    args = error.driver_exception.args
    kind = _MARIADB_KIND.get(args[0]) if args else None
    if kind is None:
        return None
    message, statement = str(args[1]), error.statement or ""
    stated = _STATEMENT_TABLE.search(statement)
    table_name = stated.group(1) if stated else None
    if kind == "CHECK":
        check = _MARIADB_CHECK.search(message)
        if check is not None:
            return Violation(kind, check.group(2), check.group(1), [])
        return Violation(kind, table_name, None, [])
    if kind == "UNIQUE":
        key = _MARIADB_KEY.search(message)
        unique = _STATEMENT_UNIQUE.search(statement)
        columns = [name.strip(" `") for name in unique.group(1).split(",")] if unique else []
        return Violation(kind, table_name, key.group(1) if key else None, columns)
    column = _MARIADB_COLUMN.search(message)
    return Violation(kind, table_name, None, [column.group(1)] if column else [])


ModelConstraint = CheckConstraint | UniqueConstraint | Index


def _model_constraint(violation: Violation) -> ModelConstraint | None:
    """The models' CHECK, UNIQUE constraint or unique index the driver means."""
    for model in Base.metadata.tables.values():
        if violation.table not in (None, model.name):
            continue
        for item in _constraints_of_kind(model, violation.kind):
            if violation.constraint is not None and item.name == violation.constraint:
                return item
            if violation.columns and [c.name for c in item.columns] == violation.columns:
                return item
    return None


def _constraints_of_kind(model: Table, kind: str | None) -> list[ModelConstraint]:
    if kind == "CHECK":
        return [item for item in model.constraints if isinstance(item, CheckConstraint)]
    if kind == "UNIQUE":
        unique: list[ModelConstraint] = [
            item for item in model.constraints if isinstance(item, UniqueConstraint)
        ]
        return unique + [index for index in model.indexes if index.unique]
    return []


def _count_breaking_rows(
    connection: Connection, violation: Violation, model: ModelConstraint | None
) -> int | None:
    if violation.table is None or connection.in_transaction():
        # Inside a caller's transaction: a failed one on PostgreSQL, and not
        # ours to end on SQLite.
        return None
    keys: list[ColumnClause[Any]] = [column(name) for name in violation.columns]
    target = table(violation.table, *keys)
    if isinstance(model, CheckConstraint) and model.table is not None:
        rule = model.sqltext
        if isinstance(rule, TextClause):  # written as SQL: NOT needs it as one term
            rule = literal_column(f"({rule.text})")
        # FROM the model's table: the rule's columns are bound to it.
        query = select(func.count()).select_from(model.table).where(not_(rule))
    elif violation.kind == "NOT NULL" and keys:
        query = select(func.count()).select_from(target).where(keys[0].is_(None))
    elif violation.kind == "UNIQUE" and keys:
        shared = (
            select(func.count().label("n"))
            .select_from(target)
            .where(*(key.is_not(None) for key in keys))
            .group_by(*keys)
            .having(func.count() > 1)
            .subquery()
        )
        query = select(func.coalesce(func.sum(shared.c.n), 0))
    else:
        return None
    try:
        return int(connection.execute(query).scalar_one())
    except SQLAlchemyError:
        return None
    finally:
        connection.rollback()


def migration_options(dialect: Dialect) -> dict[str, Any]:
    """`context.configure` options for every migration run and comparison."""
    sqlite = dialect.name == "sqlite"
    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "compare_server_default": compare_server_default,
        # SQLite cannot ALTER most things: batch mode copies the table.
        "render_as_batch": sqlite,
        # make_engine's BEGIN workaround makes SQLite DDL transactional, so a
        # failed upgrade leaves nothing half-done there either. MariaDB
        # commits each DDL statement on its own: said, not pretended.
        "transactional_ddl": dialect.name != "mysql",
        "render_item": render_item,
    }


# --------------------------------------------------------------------------
# Server defaults as MariaDB reports them
# --------------------------------------------------------------------------

# MariaDB reports `now()` on a DATETIME(6) as current_timestamp(6), a boolean
# default as 0 or 1, and 0.0 as 0: the same defaults, spelled its own way.
_MYSQL_NOW = re.compile(r"\(?\s*(now|current_timestamp)\s*(\(\s*\d*\s*\))?\s*\)?", re.I)
_MYSQL_BOOLEANS = {"true": "1", "false": "0"}


def compare_server_default(
    context: MigrationContext,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Whether a column's server default differs from the model's: on MariaDB,
    after reading both the same way; elsewhere (None) alembic's own comparison.
    A default that really changed still differs: 0.5 against 0.25, now()
    against a fixed date, 'member' against 'guest'."""
    if (
        context.dialect.name != "mysql"
        or inspected_default is None
        or rendered_metadata_default is None
    ):
        return None
    return _mysql_default(inspected_default) != _mysql_default(rendered_metadata_default)


def _mysql_default(sql: str) -> str:
    if _MYSQL_NOW.fullmatch(sql.strip()):
        return "current_timestamp"
    bare = sql.strip().strip("()").strip()
    bare = _MYSQL_BOOLEANS.get(bare.lower(), bare)
    try:
        return repr(float(bare.strip("'")))
    except ValueError:
        return bare


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render project types and defaults as portable SQLAlchemy code.

    A revision must not import `core` (it would change under it) and must
    create the same schema on every backend, whichever one it was
    autogenerated against. Returns False to let alembic render the rest.
    """
    if kind == "type" and isinstance(obj, UTCDateTime):
        # On MariaDB a DATETIME with microseconds, as UTCDateTime makes it there.
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")'
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
