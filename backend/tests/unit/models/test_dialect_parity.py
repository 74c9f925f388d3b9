"""The same input gets the same answer on SQLite, PostgreSQL and MariaDB.

Runs on whichever backend the suite runs on (`make test`, `make test-postgres`,
`make test-mariadb`); each table of differences has a column per backend.
A rule checked in Python raises `ValidationError` before any SQL is sent, for
an object and for the rows of an ORM bulk insert alike; a rule the database
enforces raises `IntegrityError` at flush; a rejected write leaves every table
as it was. The known differences, over-long strings and non-integers sent
with raw SQL, are pinned down by the tests at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Table, delete, insert, inspect, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentExecution,
    AgentFeedback,
    AgentRegistry,
    Base,
    Episode,
    User,
    ValidationError,
    WorkflowStepExecution,
    Workspace,
)
from core.schema import new_uuid
from tests import harness
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentFeedbackFactory,
    EpisodeFactory,
    UserFactory,
    WorkflowStepExecutionFactory,
)

Arranged = Any  # whatever a case's `arrange` set up for its `act`


def _nothing(_db: Session) -> Arranged:
    return None


def _raw_insert(table: str, **values: Any) -> Callable[[Session, Arranged], object]:
    """An INSERT in plain SQL: no ORM validator runs, only the database's rules."""
    names = ["id", *values]
    statement = text(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    )
    return lambda db, _: db.execute(statement, {"id": new_uuid(), **values})


def _agent_row(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Raw agent",
        "category": "operations",
        "module_path": "agents.raw",
        "class_name": "RawAgent",
        **overrides,
    }


def _bulk_insert(
    model: type[Base], rows: Callable[[Arranged], list[dict[str, Any]]]
) -> Callable[[Session, Arranged], object]:
    """The ORM bulk insert, `session.execute(insert(Model), rows)`, of the
    rows made from what the case arranged."""
    return lambda db, arranged: db.execute(insert(model), rows(arranged))


def _agent_rows(bad: dict[str, Any]) -> Callable[[Arranged], list[dict[str, Any]]]:
    """Three agents, the last one with `bad` values: the good rows come first."""
    return lambda _: [_agent_row(name="Bulk 0"), _agent_row(name="Bulk 1"), _agent_row(**bad)]


def _feedback_rows(bad: dict[str, Any]) -> Callable[[Arranged], list[dict[str, Any]]]:
    """Three ratings of an arranged agent by an arranged user, the second with `bad`."""

    def rows(parents: tuple[AgentRegistry, User]) -> list[dict[str, Any]]:
        agent, user = parents
        row = {
            "agent_id": agent.id,
            "user_id": user.id,
            "original_output": "out",
            "user_correction": "fix",
            "rating": 4,
        }
        return [row, {**row, **bad}, row]

    return rows


def _agent_and_user(_db: Session) -> tuple[AgentRegistry, User]:
    return AgentFactory(), UserFactory()


def _user_rows(*emails: str) -> Callable[[Arranged], list[dict[str, Any]]]:
    return lambda _: [{"email": email} for email in emails]


def _core_delete(table: str, key: str) -> Callable[[Session, Arranged], object]:
    """A DELETE the database executes on its own: its ON DELETE rule decides."""
    target = Base.metadata.tables[table]
    return lambda db, parent: db.execute(
        delete(target).where(target.c[key] == getattr(parent, key))
    )


def _still_stored(db: Session, step: WorkflowStepExecution) -> bool:
    return db.scalar(select(WorkflowStepExecution.id).filter_by(id=step.id)) is not None


@dataclass(frozen=True)
class Case:
    """One input, and what every backend must do with it."""

    id: str
    act: Callable[[Session, Arranged], object]
    # The exception both backends raise; None when the input is accepted.
    rejected_with: type[Exception] | None
    # What the error message must mention (a regex, case-insensitive): the
    # input must be rejected by the intended rule, not by another one.
    because: str = ""
    arrange: Callable[[Session], Arranged] = _nothing
    # For an accepted input: what the database holds afterwards.
    then: Callable[[Session, Arranged], bool] | None = None


CASES = [
    # -- rules checked in Python, on assignment, before any SQL -------------
    Case(
        "unknown enum value",
        lambda db, _: db.add(AgentRegistry(name="a", status="genius")),
        ValidationError,
        because="AgentRegistry.status",
    ),
    Case(
        "out-of-range number",
        lambda db, _: db.add(AgentRegistry(name="a", confidence_score=1.5)),
        ValidationError,
        because="AgentRegistry.confidence_score",
    ),
    Case(
        "over-long string",
        lambda db, _: db.add(Workspace(name="x" * 256)),
        ValidationError,
        because="Workspace.name",
    ),
    Case(
        "malformed email",
        lambda db, _: db.add(User(email="not-an-email")),
        ValidationError,
        because="User.email",
    ),
    Case(
        "non-integer number",
        lambda db, _: db.add(AgentFeedback(rating=3.5)),
        ValidationError,
        because="AgentFeedback.rating: expected a whole number",
    ),
    # -- the same rules on the rows of an ORM bulk insert, bad row not first -
    Case(
        "over-long string, ORM bulk insert",
        _bulk_insert(AgentRegistry, _agent_rows({"name": "x" * 300})),
        ValidationError,
        because="row 2: AgentRegistry.name: at most 255 characters allowed, got 300",
    ),
    Case(
        "unknown enum value, ORM bulk insert",
        _bulk_insert(AgentRegistry, _agent_rows({"status": "genius"})),
        ValidationError,
        because="row 2: AgentRegistry.status: 'genius' is not a valid AgentStatus",
    ),
    Case(
        "out-of-range number, ORM bulk insert",
        _bulk_insert(AgentRegistry, _agent_rows({"confidence_score": 1.5})),
        ValidationError,
        because=r"row 2: AgentRegistry.confidence_score: must be >= 0 and <= 1, got 1\.5",
    ),
    Case(
        "non-integer number, ORM bulk insert",
        _bulk_insert(AgentFeedback, _feedback_rows({"rating": 3.5})),
        ValidationError,
        because=r"row 1: AgentFeedback.rating: expected a whole number \(an int\), got float 3\.5",
        arrange=_agent_and_user,
    ),
    Case(
        "malformed email, ORM bulk insert",
        _bulk_insert(User, _user_rows("a@example.com", "b@example.com", "not-an-email")),
        ValidationError,
        because="row 2: User.email: 'not-an-email' is not a valid email address",
    ),
    Case(
        "email normalised, ORM bulk insert",
        _bulk_insert(User, _user_rows("first@example.com", "  Upper@Example.COM ")),
        None,
        then=lambda db, _: (
            db.scalars(select(User.email).order_by(User.email)).all()
            == ["first@example.com", "upper@example.com"]
        ),
    ),
    # -- the same rules, when raw SQL goes around Python: CHECK constraints --
    Case(
        "unknown enum value, raw SQL",
        _raw_insert("agent_registry", **_agent_row(status="genius")),
        IntegrityError,
        because="ck_agent_registry_agentstatus",
    ),
    Case(
        "out-of-range number, raw SQL",
        _raw_insert("agent_registry", **_agent_row(confidence_score=1.5)),
        IntegrityError,
        because="ck_agent_registry_confidence_score_range",
    ),
    Case(
        "malformed email, raw SQL",
        _raw_insert("users", email="Not An Email"),
        IntegrityError,
        because="ck_users_email_format",
    ),
    # -- rules only the database can check -----------------------------------
    Case(
        "missing NOT NULL",
        lambda db, _: db.add(User(password_hash="hash")),
        IntegrityError,
        because="not.null|cannot be null",  # SQLite and PostgreSQL | MariaDB
    ),
    Case(
        "dangling foreign key",
        lambda db, _: db.add(AgentExecution(agent_id=new_uuid())),
        IntegrityError,
        because="foreign key",
    ),
    Case(
        "duplicate unique key",
        lambda db, _: db.add(User(email="taken@example.com")),
        IntegrityError,
        because="unique|duplicate entry",  # SQLite and PostgreSQL | MariaDB
        arrange=lambda _db: UserFactory(email="taken@example.com"),
    ),
    # -- delete policies, executed by the database itself --------------------
    Case(
        "ON DELETE RESTRICT: an agent with executions",
        _core_delete("agent_registry", "id"),
        IntegrityError,
        because="foreign key",
        arrange=lambda _db: AgentExecutionFactory().agent,
    ),
    Case(
        "ON DELETE CASCADE: a workflow run takes its steps",
        lambda db, step: _core_delete("workflow_executions", "execution_id")(db, step.execution),
        None,
        arrange=lambda _db: WorkflowStepExecutionFactory(),
        then=lambda db, step: not _still_stored(db, step),
    ),
    Case(
        "ON DELETE SET NULL: an agent outlives its owner",
        lambda db, agent: _core_delete("users", "id")(db, agent.owner),
        None,
        arrange=lambda _db: AgentFactory(with_owner=True),
        then=lambda db, agent: (
            db.scalar(select(AgentRegistry.user_id).filter_by(id=agent.id)) is None
        ),
    ),
]


def _attempt(db: Session, case: Case, arranged: Arranged) -> None:
    """The case's write and its flush, in a savepoint undone if they fail."""
    with db.begin_nested():
        case.act(db, arranged)
        db.flush()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_backend_answers_alike(db: Session, case: Case) -> None:
    arranged = case.arrange(db)
    db.flush()
    before = harness.tables_with_rows(db.connection())

    if case.rejected_with is None:
        _attempt(db, case, arranged)
        assert case.then is not None
        assert case.then(db, arranged)
        return

    with pytest.raises(case.rejected_with, match=f"(?i){case.because}"):
        _attempt(db, case, arranged)
    assert harness.tables_with_rows(db.connection()) == before, "a rejected write left rows"


def test_the_delete_policies_are_all_in_the_table() -> None:
    policies = {fk.ondelete for table in Base.metadata.tables.values() for fk in table.foreign_keys}
    covered = {case.id.split(":")[0].removeprefix("ON DELETE ") for case in CASES}
    assert policies <= covered


# --------------------------------------------------------------------------
# Column types, as the database itself reports them
# --------------------------------------------------------------------------

# MariaDB's JSON is a LONGTEXT (binary collation) with a json_valid() CHECK.
JSON_TYPE_IN_DATABASE = {
    "postgresql": "JSONB",
    "sqlite": "JSON",
    "mysql": "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
}


def test_json_columns_are_jsonb_on_postgresql_and_json_on_sqlite(db: Session) -> None:
    dialect = db.get_bind().dialect
    reflected = inspect(db.connection())
    json_columns = [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, JSON)
    ]
    assert len(json_columns) >= 20  # every JSON column of the domain, not a sample

    found = {
        (table, column["name"]): column["type"].compile(dialect=dialect)
        for table in {table for table, _ in json_columns}
        for column in reflected.get_columns(table)
    }
    expected = JSON_TYPE_IN_DATABASE[dialect.name]
    assert {key: found[key] for key in json_columns} == dict.fromkeys(json_columns, expected)


def test_json_round_trips_nested_values(db: Session) -> None:
    config = {"limits": {"per_day": 3, "ratio": 0.25}, "tags": ["a", "b"], "on": True}
    agent = AgentFactory(configuration=config)
    db.commit()
    db.expire_all()

    assert db.get_one(AgentRegistry, agent.id).configuration == config


# --------------------------------------------------------------------------
# Timestamps: timezone-aware UTC when read back, whoever wrote them
# --------------------------------------------------------------------------

UTC_MINUS_7 = timezone(timedelta(hours=-7))


def _read_back_in_a_foreign_time_zone(db: Session) -> None:
    # PostgreSQL hands timestamptz values back in the session's time zone:
    # make that zone not UTC, so a missing conversion would show.
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
    db.expire_all()


def test_timestamps_read_back_as_aware_utc(db: Session) -> None:
    naive_utc = datetime(2026, 1, 2, 3, 4, 5)  # what callers of datetime.utcnow() write
    aware_elsewhere = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC_MINUS_7)
    first = AgentExecutionFactory(started_at=naive_utc)
    second = AgentExecutionFactory(started_at=aware_elsewhere)
    db.flush()
    _read_back_in_a_foreign_time_zone(db)

    assert first.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.started_at == datetime(2026, 1, 2, 10, 4, 5, tzinfo=UTC)
    assert first.started_at.tzinfo is UTC
    assert second.started_at.tzinfo is UTC


def test_timestamps_the_database_writes_read_back_as_aware_utc(db: Session) -> None:
    # created_at from the server default (the database's clock), not Python.
    _raw_insert("workspaces", name="Raw workspace")(db, None)
    _read_back_in_a_foreign_time_zone(db)

    created_at = db.scalar(select(Workspace.created_at).filter_by(name="Raw workspace"))
    assert created_at is not None
    assert created_at.tzinfo is UTC
    # Same machine, same clock: a time zone slip would be hours off.
    assert abs(created_at - datetime.now(UTC)) < timedelta(minutes=30)


# --------------------------------------------------------------------------
# The one difference: string lengths in raw SQL (SQLite)
# --------------------------------------------------------------------------

# PostgreSQL's VARCHAR(n) refuses a longer value (DataError, SQLSTATE 22001),
# and so does MariaDB in strict mode (DataError, "Data too long", 1406; out
# of strict mode it would cut the value short with a warning); SQLite ignores
# declared lengths and stores it. That is why the length rule is also
# enforced in Python on assignment, where every backend agrees (the
# "over-long string" case above).
RAW_OVER_LONG_STRING = {"postgresql": DataError, "sqlite": None, "mysql": DataError}


def test_raw_sql_over_long_string_differs_by_backend_as_documented(db: Session) -> None:
    expected = RAW_OVER_LONG_STRING[db.get_bind().dialect.name]
    insert = _raw_insert("workspaces", name="x" * 256)

    if expected is None:
        insert(db, None)
        stored = db.scalar(select(Workspace.name).where(Workspace.name.startswith("xxx")))
        assert stored is not None
        assert len(stored) == 256
        return

    with pytest.raises(expected), db.begin_nested():
        insert(db, None)
    assert harness.tables_with_rows(db.connection()) == {}


# The SQL standard's one exception, which PostgreSQL and MariaDB (even in
# strict mode) follow: excess characters that are all spaces are cut off
# without an error. SQLite keeps them. The Python rule refuses both on
# assignment.
RAW_SPACE_PADDED_LENGTH = {"postgresql": 255, "sqlite": 258, "mysql": 255}


def test_raw_sql_spaces_past_the_length_differ_by_backend_as_documented(db: Session) -> None:
    _raw_insert("workspaces", name="x" * 255 + "   ")(db, None)

    stored = db.scalar(select(Workspace.name).where(Workspace.name.startswith("xxx")))
    assert stored is not None
    assert stored.rstrip(" ") == "x" * 255
    assert len(stored) == RAW_SPACE_PADDED_LENGTH[db.get_bind().dialect.name]


# --------------------------------------------------------------------------
# The other difference: non-integers in raw SQL
# --------------------------------------------------------------------------

# PostgreSQL converts what raw SQL gives an INTEGER column before any CHECK
# can see it: a float is rounded (psycopg sends it as double precision, which
# rounds half to even: 2.5 -> 2), text that is not an integer is refused
# (DataError), as is a number beyond INTEGER's range. MariaDB, in the strict
# mode make_engine sets, does the same (PyMySQL sends 2.5 as the double
# 2.5e0, rounded half to even too). SQLite stores what it is given, so there
# the `<column>_integer` CHECK refuses it (IntegrityError). The integer rule
# in Python refuses all of them, on every backend.
RAW_NON_INTEGER: list[tuple[type[Base], str, object, dict[str, object]]] = [
    (AgentFeedback, "rating", 3.5, {"postgresql": 4, "sqlite": IntegrityError, "mysql": 4}),
    (AgentFeedback, "rating", 2.5, {"postgresql": 2, "sqlite": IntegrityError, "mysql": 2}),
    (
        Episode,
        "access_count",
        "many",
        {"postgresql": DataError, "sqlite": IntegrityError, "mysql": DataError},
    ),
    (
        Episode,
        "access_count",
        2**31,
        {"postgresql": DataError, "sqlite": IntegrityError, "mysql": DataError},
    ),
]
FACTORIES: dict[type[Base], Callable[[], Any]] = {
    AgentFeedback: AgentFeedbackFactory,
    Episode: EpisodeFactory,
}


@pytest.mark.parametrize(
    ("model", "column", "value", "expected"),
    RAW_NON_INTEGER,
    ids=[f"{model.__name__}.{column}={value!r}" for model, column, value, _ in RAW_NON_INTEGER],
)
def test_raw_sql_non_integers_differ_by_backend_as_documented(
    db: Session, model: type[Base], column: str, value: object, expected: dict[str, object]
) -> None:
    row = FACTORIES[model]()
    table = model.__table__
    assert isinstance(table, Table)
    update = text(f"UPDATE {table.name} SET {column} = :value WHERE id = :id")
    outcome = expected[db.get_bind().dialect.name]

    if isinstance(outcome, type):
        with pytest.raises(outcome) as refused, db.begin_nested():
            db.execute(update, {"value": value, "id": row.id})
        if outcome is IntegrityError:
            assert f"ck_{table.name}_{column}_integer" in str(refused.value)
        return

    db.execute(update, {"value": value, "id": row.id})
    stored = db.scalar(text(f"SELECT {column} FROM {table.name} WHERE id = :id"), {"id": row.id})
    assert stored == outcome


# --------------------------------------------------------------------------
# Invalid JSON text in raw SQL
# --------------------------------------------------------------------------

# SQLite's JSON column takes any text; PostgreSQL's JSONB parses it
# (DataError); MariaDB's JSON is a LONGTEXT whose json_valid() CHECK refuses
# it (IntegrityError). Through the models, a JSON column only ever gets what
# the driver serialised.
RAW_INVALID_JSON = {"sqlite": None, "postgresql": DataError, "mysql": IntegrityError}


def test_raw_sql_invalid_json_differs_by_backend_as_documented(db: Session) -> None:
    expected = RAW_INVALID_JSON[db.get_bind().dialect.name]
    insert = _raw_insert("workspaces", name="Raw JSON", metadata_json="{not json")

    if expected is None:
        insert(db, None)
        stored = db.scalar(text("SELECT metadata_json FROM workspaces WHERE name = 'Raw JSON'"))
        assert stored == "{not json"
        return

    with pytest.raises(expected), db.begin_nested():
        insert(db, None)
    assert harness.tables_with_rows(db.connection()) == {}
