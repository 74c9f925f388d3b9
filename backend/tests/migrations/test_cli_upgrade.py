"""`python -m core upgrade` (`make run`): the embedded database goes to head
through alembic, never through create_all."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic.operations import BatchOperations, Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from core import migrate
from core.models import Base
from core.tools import cli
from core.tools.problems import ExitCode
from tests.migrations.refusals import LEGACY_TABLE, refusal_on_sqlite
from tests.migrations.sample_rows import populate_every_table, primary_keys


def _as_database_url(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


@pytest.fixture
def application_database(empty_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    return _as_database_url(empty_engine, monkeypatch)


@pytest.fixture
def migrated_application_database(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Engine:
    """A database at head (a copy of the run's migrated template)."""
    return _as_database_url(migrated_engine, monkeypatch)


def test_upgrade_migrates_to_head_and_prints_every_table(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.script_directory().get_current_head()

    assert cli.main(["upgrade"]) == 0

    output = capsys.readouterr().out
    assert migrate.current_revision(application_database) == head
    assert f"revision: {head} (head, upgraded from empty)" in output
    for table in Base.metadata.tables:
        assert f"\n{table} " in output


def test_upgrade_twice_changes_nothing(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["upgrade"]) == 0
    first = capsys.readouterr().out

    assert cli.main(["upgrade"]) == 0

    second = capsys.readouterr().out
    assert "(head, already at head)" in second
    assert second.replace("already at head", "upgraded from empty") == first


def test_upgrade_refuses_a_database_built_without_migrations(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    Base.metadata.create_all(application_database)

    assert cli.main(["upgrade"]) == ExitCode.REFUSED

    assert capsys.readouterr().err == (
        f"{application_database.url} has tables that no migration created "
        f"({', '.join(sorted(Base.metadata.tables))}).\n"
        "If its schema is current, run `alembic stamp head` once; otherwise move the file "
        "away and run again.\n"
    )
    assert migrate.current_revision(application_database) is None


def test_stats_prints_row_counts_without_changing_the_schema(
    migrated_application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.script_directory().get_current_head()
    assert migrate.current_revision(migrated_application_database) == head

    assert cli.main(["stats"]) == 0

    assert "users" in capsys.readouterr().out


# --------------------------------------------------------------------------
# Databases `upgrade` refuses, each in one or two lines
# --------------------------------------------------------------------------

# The revision before d5e08e6c2b32, which refuses a second "@" in an email.
BEFORE_EMAIL_CHECK = "471e0a1e9e28"


@pytest.mark.parametrize(
    "heads",
    # Newer code may leave two heads (two branches, not yet merged).
    [["deadbeef0000"], ["c0ffee000000", "deadbeef0000"]],
    ids=["one-head", "two-heads"],
)
def test_upgrade_refuses_a_revision_this_code_does_not_have(
    heads: list[str],
    migrated_application_database: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    application_database = migrated_application_database
    with application_database.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        for head in heads:
            connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head}
            )

    assert cli.main(["upgrade"]) == ExitCode.REFUSED

    assert capsys.readouterr().err == (
        f"{application_database.url} is at revision {', '.join(heads)}, which this code's "
        "migrations (backend/migrations/versions) do not have: newer code migrated it, or a "
        "revision file was deleted.\n"
        "Run the code that migrated it, or restore the file; if the schema is the models', "
        "`alembic stamp --purge head` adopts it.\n"
    )
    assert migrate.unknown_revisions(application_database) == heads


def test_upgrade_names_the_table_constraint_and_rows_a_new_check_refuses(
    engine_at: Callable[[str], Engine],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    application_database = _as_database_url(engine_at(BEFORE_EMAIL_CHECK), monkeypatch)
    written = populate_every_table(application_database)
    with application_database.begin() as connection:
        # Legal before the revision, refused by its CHECK: one per user row.
        connection.execute(text("UPDATE users SET email = id || '@old@example.com'"))

    assert cli.main(["upgrade"]) == ExitCode.REFUSED

    error = capsys.readouterr().err
    assert (
        f"Cannot migrate: {len(written['users'])} rows of table users break CHECK constraint "
        f"ck_users_email_format; {migrate.failed_migration_outcome(application_database.dialect)}"
    ) in error
    assert "Correct or delete those rows" in error
    assert len(error.strip().splitlines()) == 2
    assert migrate.current_revision(application_database) == BEFORE_EMAIL_CHECK
    assert primary_keys(application_database, list(written)) == written


LEGACY = sa.table("legacy", sa.column("id"), sa.column("code"), sa.column("owner"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda batch: batch.create_unique_constraint("uq_legacy_code", ["code"]),
            "4 rows of table legacy share values of (code), which UNIQUE",
        ),
        (
            lambda batch: batch.create_unique_constraint("uq_legacy_code_owner", ["code", "owner"]),
            "2 rows of table legacy share values of (code, owner), which UNIQUE",
        ),
        (
            lambda batch: batch.alter_column("owner", existing_type=sa.Text(), nullable=False),
            "2 rows of table legacy have no value in column owner, which the migration makes",
        ),
        (
            # Named by the naming convention, like the models' CHECKs: ck_legacy_code.
            lambda batch: batch.create_check_constraint("code", "code <> 'x'"),
            "rows of table legacy break CHECK constraint ck_legacy_code",
        ),
    ],
    ids=["unique", "two-column-unique", "not-null", "check-the-models-do-not-have"],
)
def test_a_constraint_existing_rows_break_is_named_with_its_table(
    empty_engine: Engine, change: Callable[[BatchOperations], None], expected: str
) -> None:
    with empty_engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE legacy (id INTEGER PRIMARY KEY, code TEXT, owner TEXT)")
        )
        connection.execute(
            sa.insert(LEGACY),
            [
                {"id": n, "code": code, "owner": owner}
                for n, (code, owner) in enumerate(
                    [
                        ("x", None),
                        ("x", "a"),
                        ("x", None),
                        ("x", "a"),
                        ("y", "b"),
                        (None, "c"),
                        (None, "d"),
                    ]
                )
            ],
        )

    with empty_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=migrate.migration_options(connection.dialect)
        )
        with (
            pytest.raises(IntegrityError) as failed,
            context.begin_transaction(),
            Operations(context).batch_alter_table("legacy") as batch,
        ):
            change(batch)
        refused = migrate.constraint_violation(failed.value, connection)

    assert expected in str(refused)
    # The driver's own words close the first line.
    reason = str(failed.value.orig).strip().splitlines()[0]
    assert f"{migrate.failed_migration_outcome(connection.dialect)} ({reason}).\n" in str(refused)


class _PostgresError(Exception):
    """Shaped like psycopg's errors: a SQLSTATE and the server's diagnostics."""

    def __init__(self, message: str, sqlstate: str, **diagnostics: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        fields = ("table_name", "constraint_name", "column_name", "message_detail")
        self.diag = SimpleNamespace(
            sqlstate=sqlstate, **{name: diagnostics.get(name) for name in fields}
        )


@pytest.mark.parametrize(
    ("statement", "orig", "expected"),
    [
        (
            'INSERT INTO "_alembic_tmp_users" SELECT * FROM users',
            sqlite3.IntegrityError("UNIQUE constraint failed: _alembic_tmp_users.email"),
            "2 rows of table users share values of (email), which UNIQUE constraint "
            "uq_users_email forbids",
        ),
        (
            "ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE (email)",
            _PostgresError(
                'could not create unique index "uq_users_email"',
                "23505",
                table_name="users",
                constraint_name="uq_users_email",
                message_detail="Key (email)=(a@example.com) is duplicated.",
            ),
            "2 rows of table users share values of (email), which UNIQUE constraint "
            "uq_users_email forbids",
        ),
        (
            # The models' rule reads a column this old table lacks: no count.
            'INSERT INTO "_alembic_tmp_users" SELECT * FROM users',
            sqlite3.IntegrityError("CHECK constraint failed: ck_users_userrole"),
            "rows of table users break CHECK constraint ck_users_userrole;",
        ),
        (
            "INSERT INTO teams SELECT * FROM old_teams",
            sqlite3.IntegrityError("FOREIGN KEY constraint failed"),
            "rows of table (not reported) break the constraint the migration adds;",
        ),
        (
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
            _PostgresError(
                'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
                "23505",
                table_name="pg_type",
                constraint_name="pg_type_typname_nsp_index",
                message_detail="Key (typname, typnamespace)=(alembic_version, 2200) exists.",
            ),
            "another process changed the schema at the same time",
        ),
    ],
    ids=["sqlite-unique", "postgres-unique", "uncountable-check", "unnamed", "catalogue"],
)
def test_what_each_driver_reports_is_named_and_counted_where_it_can_be(
    statement: str, orig: Exception, expected: str
) -> None:
    refused = refusal_on_sqlite(
        IntegrityError(statement, {}, orig),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)",
        "INSERT INTO users (email) VALUES ('a@example.com'), ('a@example.com'), "
        "('b@example.com'), (NULL), (NULL)",
    )

    assert expected in refused
    assert len(refused.splitlines()) == 2


def _refusal(words: str, reason: str) -> str:
    return (
        f"Cannot migrate: {words}; the migration was rolled back ({reason}).\n"
        "Correct or delete those rows, then run the migration again."
    )


# (code, owner): (x, a) twice, (x, NULL), (y, b), (NULL, c).
LEGACY_ROWS = (
    "INSERT INTO legacy (code, owner) VALUES "
    "('x', 'a'), ('x', 'a'), ('x', NULL), ('y', 'b'), (NULL, 'c')"
)


def _refused_on_legacy_rows(error: IntegrityError, *, in_a_transaction: bool = False) -> str:
    return refusal_on_sqlite(error, LEGACY_TABLE, LEGACY_ROWS, in_a_transaction=in_a_transaction)


@pytest.mark.parametrize(
    ("statement", "orig", "words"),
    [
        (
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_code_owner UNIQUE (code, owner)",
            _PostgresError(
                'could not create unique index "uq_legacy_code_owner"\n'
                "DETAIL:  Key (code, owner)=(x, a) is duplicated.",
                "23505",
                table_name="legacy",
                constraint_name="uq_legacy_code_owner",
                message_detail="Key (code, owner)=(x, a) is duplicated.",
            ),
            "2 rows of table legacy share values of (code, owner), "
            "which UNIQUE constraint uq_legacy_code_owner forbids",
        ),
        (
            # The migration's own UPDATE made the duplicates; the rows left
            # once it is rolled back break nothing.
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_id UNIQUE (id)",
            _PostgresError(
                'could not create unique index "uq_legacy_id"\n'
                "DETAIL:  Key (id)=(1) is duplicated.",
                "23505",
                table_name="legacy",
                constraint_name="uq_legacy_id",
                message_detail="Key (id)=(1) is duplicated.",
            ),
            "0 rows of table legacy share values of (id), which UNIQUE constraint uq_legacy_id "
            "forbids",
        ),
        (
            # PostgreSQL gives no detail here, only the column.
            "ALTER TABLE legacy ALTER COLUMN owner SET NOT NULL",
            _PostgresError(
                'column "owner" of relation "legacy" contains null values',
                "23502",
                table_name="legacy",
                column_name="owner",
            ),
            "1 row of table legacy has no value in column owner, "
            "which the migration makes NOT NULL",
        ),
        (
            "ALTER TABLE legacy ADD CONSTRAINT ck_legacy_code CHECK (code <> 'x')",
            _PostgresError(
                'check constraint "ck_legacy_code" of relation "legacy" is violated by some row',
                "23514",
                table_name="legacy",
                constraint_name="ck_legacy_code",
            ),
            "rows of table legacy break CHECK constraint ck_legacy_code",
        ),
        (
            'INSERT INTO "_alembic_tmp_legacy" (id, code, owner) '
            "SELECT legacy.id, legacy.code, legacy.owner FROM legacy",
            sqlite3.IntegrityError(
                "UNIQUE constraint failed: _alembic_tmp_legacy.code, _alembic_tmp_legacy.owner"
            ),
            "2 rows of table legacy share values of (code, owner), "
            "which UNIQUE constraint the migration adds forbids",
        ),
        (
            # Outside a batch copy, SQLite names the CHECK but not its table.
            "UPDATE legacy SET code = 'x'",
            sqlite3.IntegrityError("CHECK constraint failed: ck_legacy_code"),
            "rows of table (not reported) break CHECK constraint ck_legacy_code",
        ),
        (
            "CREATE UNIQUE INDEX ix_legacy_lower_code ON legacy (lower(code))",
            sqlite3.IntegrityError("UNIQUE constraint failed: index 'ix_legacy_lower_code'"),
            "rows of table (not reported) break UNIQUE constraint ix_legacy_lower_code",
        ),
    ],
    ids=[
        "postgres-two-column-unique",
        "postgres-unique-no-row-breaks-now",
        "postgres-not-null-without-detail",
        "postgres-check",
        "sqlite-two-column-unique",
        "sqlite-check-outside-a-copy",
        "sqlite-unique-expression-index",
    ],
)
def test_a_refusal_tells_what_the_driver_reported_word_for_word(
    statement: str, orig: Exception, words: str
) -> None:
    refused = _refused_on_legacy_rows(IntegrityError(statement, {}, orig))

    assert refused == _refusal(words, str(orig).splitlines()[0])


def test_a_driver_error_without_a_message_is_still_told() -> None:
    refused = _refused_on_legacy_rows(
        IntegrityError("UPDATE legacy SET code = 'x'", {}, Exception())
    )

    assert refused == _refusal(
        "rows of table (not reported) break the constraint the migration adds",
        "the driver gave no message",
    )


def test_rows_are_not_counted_inside_a_callers_transaction_which_stays_open() -> None:
    orig = _PostgresError(
        'column "owner" of relation "legacy" contains null values',
        "23502",
        table_name="legacy",
        column_name="owner",
    )
    statement = "ALTER TABLE legacy ALTER COLUMN owner SET NOT NULL"

    refused = _refused_on_legacy_rows(IntegrityError(statement, {}, orig), in_a_transaction=True)

    assert refused == _refusal(
        "rows of table legacy have no value in column owner, which the migration makes NOT NULL",
        str(orig),
    )


def test_a_clash_in_postgresqls_catalogue_is_told_as_a_concurrent_migration() -> None:
    orig = _PostgresError(
        'duplicate key value violates unique constraint "pg_type_typname_nsp_index"\n'
        "DETAIL:  Key (typname, typnamespace)=(alembic_version, 2200) already exists.",
        "23505",
        table_name="pg_type",
        constraint_name="pg_type_typname_nsp_index",
        message_detail="Key (typname, typnamespace)=(alembic_version, 2200) already exists.",
    )
    statement = "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"

    refused = _refused_on_legacy_rows(IntegrityError(statement, {}, orig))

    assert refused == (
        "Cannot migrate: another process changed the schema at the same time (duplicate key "
        'value violates unique constraint "pg_type_typname_nsp_index"); this migration was '
        "rolled back.\nRun it again once the other one has finished."
    )
