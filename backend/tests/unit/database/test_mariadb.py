"""MariaDB as the third backend: what `core` does differently there, and why.

The first half needs no server: how the schema, the server defaults, the
driver's errors and the lost races are read on MariaDB; it runs in every
suite. The second half runs in `make test-mariadb` only
(`@pytest.mark.server("mysql")`), on a scratch database on the suite's own
server: the session settings `make_engine` makes, the tables' collation, the
constraint errors, and the start-up lock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.schema import CreateTable

from core import governance, migrate
from core.database import (
    DatabaseURLError,
    checked_url,
    exclusive_transaction,
    make_engine,
    mysql_startup_lock_name,
)
from core.models import (
    AgentExecution,
    Base,
    User,
)
from core.schema import UTCDateTime
from tests import databases, harness
from tests.migrations.refusals import LEGACY_TABLE, refusal_on_sqlite


def _dialect(url: str, **options: bool) -> Dialect:
    return make_url(url).get_dialect()(**options)


SQLITE, POSTGRESQL = _dialect("sqlite://"), _dialect("postgresql+psycopg://")
MARIADB, MYSQL_8 = _dialect("mysql+pymysql://", is_mariadb=True), _dialect("mysql+pymysql://")

# --------------------------------------------------------------------------
# The schema, compiled for each backend
# --------------------------------------------------------------------------


def _created(table: Table, dialect: Dialect) -> str:
    return str(CreateTable(table).compile(dialect=dialect))


def test_a_lower_bounded_float_refuses_nan_where_the_backend_can_store_it() -> None:
    table = AgentExecution.__table__
    assert isinstance(table, Table)
    check = "duration_seconds >= 0 AND duration_seconds <> 'NaN'"
    assert check in _created(table, SQLITE)
    assert check in _created(table, POSTGRESQL)
    # MariaDB's DOUBLE cannot hold NaN, and its strict mode refuses the comparison.
    on_mariadb = _created(table, MARIADB)
    assert "CHECK (duration_seconds >= 0)" in on_mariadb
    assert "NaN" not in on_mariadb


def test_every_table_is_utf8mb4_binary_no_pad_on_mariadb() -> None:
    for table in Base.metadata.sorted_tables:
        created = _created(table, MARIADB).rstrip()
        assert created.endswith(") DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"), table
    # MySQL 8 spells its binary NO PAD collation another way.
    users = User.__table__
    assert isinstance(users, Table)
    assert _created(users, MYSQL_8).rstrip().endswith("COLLATE=utf8mb4_0900_bin")


def test_a_table_naming_its_own_character_set_keeps_it() -> None:
    table = Table("legacy", MetaData(), Column("id", Integer), mysql_charset="latin1")

    created = _created(table, MARIADB)

    assert "CHARSET=latin1" in created
    assert "utf8mb4" not in created


def test_timestamps_are_microsecond_datetimes_on_mariadb() -> None:
    column_type = UTCDateTime()

    assert column_type.dialect_impl(MARIADB).compile(dialect=MARIADB) == "DATETIME(6)"
    assert column_type.dialect_impl(POSTGRESQL).compile(dialect=POSTGRESQL) == (
        "TIMESTAMP WITH TIME ZONE"
    )


def test_revisions_render_timestamps_with_their_mariadb_variant() -> None:
    imports: set[str] = set()

    class Context:
        pass

    context = Context()
    context.imports = imports  # type: ignore[attr-defined]
    rendered = migrate.render_item("type", UTCDateTime(), context)  # type: ignore[arg-type]

    assert rendered == 'sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")'
    assert imports == {"from sqlalchemy.dialects import mysql"}


# --------------------------------------------------------------------------
# Server defaults as MariaDB reports them (alembic check sees no drift)
# --------------------------------------------------------------------------


class _Context:
    def __init__(self, dialect: object) -> None:
        self.dialect = dialect


@pytest.mark.parametrize(
    ("reported", "model", "differs"),
    [
        ("current_timestamp(6)", "now()", False),
        ("current_timestamp()", "CURRENT_TIMESTAMP", False),
        ("0", "false", False),
        ("1", "true", False),
        ("0", "(0.0)", False),
        ("0.5", "0.5", False),
        ("'member'", "'member'", False),
        ("0.5", "0.25", True),
        ("1", "false", True),
        ("'member'", "'guest'", True),
        ("current_timestamp(6)", "'2020-01-01 00:00:00'", True),
        ("current_timestamp(6)", "((current_timestamp))", False),
        ("0.5", "'0.5'", False),  # server_default="0.5": SQLAlchemy quotes it
        ("X'01'", "'01'", True),  # a byte is not the string of its digits
    ],
)
def test_mariadb_defaults_are_compared_as_mariadb_spells_them(
    reported: str, model: str, differs: bool
) -> None:
    context = _Context(MARIADB)

    found = migrate.compare_server_default(context, None, None, reported, None, model)  # type: ignore[arg-type]

    assert found is differs


@pytest.mark.parametrize(("reported", "model"), [(None, "0"), ("0", None), (None, None)])
def test_a_missing_default_on_either_side_is_left_to_alembic(
    reported: str | None, model: str | None
) -> None:
    context = _Context(MARIADB)

    assert migrate.compare_server_default(context, None, None, reported, None, model) is None  # type: ignore[arg-type]


def test_other_backends_defaults_are_left_to_alembic() -> None:
    context = _Context(POSTGRESQL)

    assert migrate.compare_server_default(context, None, None, "0", None, "false") is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# What PyMySQL reports
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "message", "reason"),
    [
        (1213, "Deadlock found when trying to get lock", "to break a deadlock with another (1213)"),
        (1205, "Lock wait timeout exceeded", "past MariaDB's lock wait timeout (1205)"),
        (1062, "Duplicate entry 'x' for key 'uq_users_email'", None),
        (4025, "CONSTRAINT `ck_users_email_format` failed", None),
    ],
)
def test_mariadb_lost_races_are_told_apart_by_error_number(
    number: int, message: str, reason: str | None
) -> None:
    # 1213 carries SQLSTATE 40001, which PostgreSQL uses for another failure.
    error = pymysql.err.OperationalError(number, message, sqlstate="40001")

    found = governance.lost_race(DBAPIError("UPDATE agent_registry", None, error))

    assert found == reason if reason is None else reason in str(found)


LEGACY_ROWS = "INSERT INTO legacy (code, owner) VALUES ('x', NULL), ('x', 'a'), ('y', NULL)"


@pytest.mark.parametrize(
    ("statement", "number", "message", "expected"),
    [
        (
            "ALTER TABLE legacy ADD CONSTRAINT ck_legacy_code CHECK (code <> 'x')",
            4025,
            "CONSTRAINT `ck_legacy_code` failed for `app`.`legacy`",
            "rows of table legacy break CHECK constraint ck_legacy_code;",
        ),
        (
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_code UNIQUE (code)",
            1062,
            "Duplicate entry 'x' for key 'uq_legacy_code'",
            "2 rows of table legacy share values of (code), which UNIQUE constraint "
            "uq_legacy_code forbids",
        ),
        (
            "ALTER TABLE legacy MODIFY owner TEXT NOT NULL",
            1265,
            "Data truncated for column 'owner' at row 1",
            "2 rows of table legacy have no value in column owner, which the migration makes",
        ),
    ],
    ids=["check", "unique", "not-null"],
)
def test_what_mariadb_reports_is_named_and_counted(
    statement: str, number: int, message: str, expected: str
) -> None:
    error = IntegrityError(statement, {}, pymysql.err.IntegrityError(number, message))

    refused = refusal_on_sqlite(error, LEGACY_TABLE, LEGACY_ROWS)

    assert expected in refused
    assert len(refused.splitlines()) == 2


@pytest.mark.parametrize(
    ("statement", "number", "message", "words"),
    [
        (
            # MySQL 8's number and wording: no table in the message, the statement names it.
            "ALTER TABLE legacy ADD CONSTRAINT ck_legacy_code CHECK (code <> 'x')",
            3819,
            "Check constraint 'ck_legacy_code' is violated.",
            "rows of table legacy break CHECK constraint the migration adds",
        ),
        (
            # The value as MariaDB quotes it, line break included.
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_code UNIQUE (code)",
            1062,
            "Duplicate entry 'x\ny' for key 'uq_legacy_code'",
            "4 rows of table legacy share values of (code), "
            "which UNIQUE constraint uq_legacy_code forbids",
        ),
        (
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_code_owner UNIQUE (`code`, `owner`)",
            1062,
            "Duplicate entry 'x-a' for key 'uq_legacy_code_owner'",
            "0 rows of table legacy share values of (code, owner), "
            "which UNIQUE constraint uq_legacy_code_owner forbids",
        ),
        (
            # A legacy column in capitals keeps its X. This table lacks it: no count (a bare
            # "TAX" that names no column would be a string to SQLite, and counted).
            "ALTER TABLE legacy ADD CONSTRAINT uq_legacy_tax UNIQUE (`TAX`)",
            1062,
            "Duplicate entry '1' for key 'uq_legacy_tax'",
            "rows of table legacy share values of (TAX), which UNIQUE constraint uq_legacy_tax "
            "forbids",
        ),
        (
            # No columns in the statement: the models' constraint gives them.
            "INSERT INTO users (id, email) VALUES ('u2', 'a@example.com')",
            1062,
            "Duplicate entry 'a@example.com' for key 'uq_users_email'",
            "rows of table users share values of (email), which UNIQUE constraint "
            "uq_users_email forbids",
        ),
        (
            # Neither the statement nor the models know the columns: no count.
            "INSERT INTO legacy (code) VALUES ('x')",
            1062,
            "Duplicate entry 'x' for key 'uq_legacy_code'",
            "rows of table legacy break UNIQUE constraint uq_legacy_code",
        ),
        (
            "REPLACE INTO legacy (code, owner) VALUES ('z', NULL)",
            1048,
            "Column 'owner' cannot be null",
            "rows of table (not reported) have no value in column owner, "
            "which the migration makes NOT NULL",
        ),
    ],
    ids=[
        "mysql-check",
        "multi-line-value",
        "backquoted-columns-no-row-breaks-now",
        "capital-column",
        "key-of-the-models",
        "unknown-key",
        "statement-naming-no-table",
    ],
)
def test_what_mariadb_reports_is_told_word_for_word(
    statement: str, number: int, message: str, words: str
) -> None:
    orig = pymysql.err.IntegrityError(number, message)
    # Two more rows share a code that spans two lines.
    two_line_codes = "INSERT INTO legacy (code, owner) VALUES ('x' || char(10) || 'y', 'b'), "
    two_line_codes += "('x' || char(10) || 'y', 'c')"

    refused = refusal_on_sqlite(
        IntegrityError(statement, {}, orig), LEGACY_TABLE, LEGACY_ROWS, two_line_codes
    )

    assert refused == (
        f"Cannot migrate: {words}; the migration was rolled back ({orig}).\n"
        "Correct or delete those rows, then run the migration again."
    )


class _Connected(Exception):
    """Stops a connection attempt once its arguments are known."""


def test_the_driver_gets_the_character_set_and_the_callers_connect_arguments() -> None:
    # What `python -m core` passes for a server: a connect timeout.
    engine = make_engine("mysql+pymysql://root@db:3306/app", connect_args={"connect_timeout": 7})
    given: dict[str, object] = {}

    @event.listens_for(engine, "do_connect")
    def _capture(
        _dialect: Dialect, _record: object, _args: object, kwargs: dict[str, object]
    ) -> None:
        given.update(kwargs)
        raise _Connected

    # No server is reached: the connection stops before the driver is called.
    with databases.allowed_database(engine.url), pytest.raises(_Connected):
        engine.connect()
    engine.dispose()
    assert (given["charset"], given["connect_timeout"]) == ("utf8mb4", 7)


def test_a_mariadb_url_is_accepted_and_sqlalchemys_mariadb_dialect_is_pointed_there() -> None:
    assert checked_url("mysql+pymysql://root@db:3306/app").drivername == "mysql+pymysql"
    with pytest.raises(
        DatabaseURLError,
        match=r"one of sqlite, postgresql, mysql \(for MariaDB, write mysql\+pymysql://\)\.$",
    ):
        checked_url("mariadb+pymysql://root@db:3306/app")


def test_a_mariadb_database_name_is_checked_against_its_limit_before_connecting() -> None:
    # Port 1: nothing listens there. The name is checked first.
    url = f"mysql+pymysql://root@127.0.0.1:1/{'x' * 65}"
    with (
        pytest.raises(ValueError, match="is over MariaDB's 64 bytes"),
        databases.created_database(url),
    ):
        pass


# --------------------------------------------------------------------------
# On a MariaDB server
# --------------------------------------------------------------------------


on_mariadb = pytest.mark.server("mysql")


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[URL]:
    with harness.scratch_mariadb("unit") as url:
        harness.create_schema(url)
        yield url


@pytest.fixture
def mariadb(mariadb_url: URL) -> Iterator[Engine]:
    engine = make_engine(mariadb_url)
    yield engine
    engine.dispose()


@on_mariadb
def test_every_connection_is_strict_utc_utf8mb4_binary_and_read_committed(
    mariadb: Engine,
) -> None:
    with mariadb.connect() as connection:
        mode, zone, collation, isolation = connection.execute(
            text("SELECT @@sql_mode, @@time_zone, @@collation_connection, @@tx_isolation")
        ).one()

    assert {"STRICT_ALL_TABLES", "NO_ZERO_DATE", "PIPES_AS_CONCAT"} <= set(mode.split(","))
    assert (zone, collation, isolation) == ("+00:00", "utf8mb4_nopad_bin", "READ-COMMITTED")


@on_mariadb
def test_the_tables_compare_strings_byte_for_byte(mariadb: Engine) -> None:
    with mariadb.connect() as connection:
        collations = connection.execute(
            text(
                "SELECT DISTINCT table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE()"
            )
        ).all()

    assert collations == [("utf8mb4_nopad_bin",)]


@on_mariadb
def test_a_broken_check_is_an_integrity_error_and_other_errors_keep_their_class(
    mariadb: Engine,
) -> None:
    with mariadb.connect() as connection:
        with pytest.raises(IntegrityError, match="ck_users_email_format"):
            connection.execute(text("INSERT INTO users (id, email) VALUES ('1', 'Not An Email')"))
        connection.rollback()
        with pytest.raises(OperationalError, match="Unknown column"):
            connection.execute(text("SELECT no_such_column FROM users"))
        with pytest.raises(ProgrammingError, match="syntax"):
            connection.execute(text("SELECT FROM WHERE"))


def _held_elsewhere(engine: Engine) -> bool:
    """Whether the start-up lock is held, asked from another connection."""
    with engine.connect() as other:
        holder = other.scalar(select(func.is_used_lock(mysql_startup_lock_name(other))))
        other.rollback()
    return holder is not None


class _Failed(Exception):
    pass


def _write_then_fail(connection: Connection) -> None:
    with exclusive_transaction(connection):
        connection.execute(text("INSERT INTO workspaces (id, name) VALUES ('w', 'kept?')"))
        raise _Failed


@on_mariadb
def test_the_start_up_lock_is_released_on_commit_rollback_and_error(mariadb: Engine) -> None:
    with mariadb.connect() as connection:
        with exclusive_transaction(connection):
            assert _held_elsewhere(mariadb)
        assert not _held_elsewhere(mariadb)

        with exclusive_transaction(connection) as locked:
            locked.get_transaction().rollback()  # type: ignore[union-attr]
        assert not _held_elsewhere(mariadb)

        with pytest.raises(_Failed):
            _write_then_fail(connection)
        assert not _held_elsewhere(mariadb)
        assert connection.scalar(text("SELECT count(*) FROM workspaces WHERE id = 'w'")) == 0


def _lose_the_connection_inside_the_lock(engine: Engine, connection: Connection) -> None:
    with exclusive_transaction(connection):
        own = connection.execute(select(func.connection_id())).scalar_one()
        with engine.connect() as other:
            other.execute(text(f"KILL CONNECTION {int(own)}"))


@on_mariadb
def test_a_connection_lost_while_holding_the_start_up_lock_leaves_it_free(
    mariadb: Engine,
) -> None:
    # Neither the commit nor RELEASE_LOCK can reach the server any more: the
    # commit's error is the one raised, and the server freed the lock.
    with mariadb.connect() as connection, pytest.raises(OperationalError, match="Lost connection"):
        _lose_the_connection_inside_the_lock(mariadb, connection)

    assert not _held_elsewhere(mariadb)


@on_mariadb
def test_the_start_up_lock_belongs_to_one_database(mariadb: Engine) -> None:
    with harness.scratch_mariadb("lock") as other_url:
        other = make_engine(other_url)
        try:
            with mariadb.connect() as connection, exclusive_transaction(connection):
                assert _held_elsewhere(mariadb)
                assert not _held_elsewhere(other)
        finally:
            other.dispose()


@on_mariadb
def test_dropping_a_scratch_database_ends_the_connections_left_in_it() -> None:
    server = harness.run_server("mysql")
    with databases.created_database(databases.sibling_database_url(server, "left_open")) as url:
        engine = make_engine(url)
        left = engine.connect()
        left.execute(text("CREATE TABLE t (x INTEGER)"))
        left.execute(text("INSERT INTO t VALUES (1)"))  # a transaction left open
    try:
        assert not databases.database_exists(url)
    finally:
        left.invalidate()
        engine.dispose()
