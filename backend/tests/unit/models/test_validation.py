"""`core.validation`: one rule per column, checked on assignment and by the database."""

from __future__ import annotations

import enum
import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Engine,
    Enum,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    bindparam,
    column,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import CompileError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.schema import CreateTable

from core.models import (
    AgentExecution,
    AgentFeedback,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    Episode,
    ExecutionStatus,
    User,
    UserRole,
    Workspace,
    normalize_email,
)
from core.schema import Base, UTCDateTime
from core.validation import (
    _MODEL_RULES,
    INTEGER_RANGES,
    Bounds,
    FloatRange,
    ValidationError,
    add_range_constraints,
    allowed_values,
    bounds,
    check_orm_statement,
    column_bounds,
    column_normalizer,
    column_validator,
    integer_range,
    integer_sql,
    normalized_by,
    rules_for,
)
from tests.factories import AgentFactory, EpisodeFactory, UserFactory
from tests.harness import QueryCounter, tables_with_rows
from tests.unit.orm_executions import orm_executions
from tests.unit.readback import table_of


@pytest.mark.parametrize(
    ("rule", "inside", "outside"),
    [
        (Bounds(ge=0, le=1), [0, 0.5, 1], [-0.01, 1.01, math.nan]),
        (Bounds(gt=0), [0.001, 1e9], [0, -1, math.nan]),
        (Bounds(gt=0, le=24), [24, 0.5], [0, 24.5]),
        (Bounds(lt=10), [9.99, -5], [10, 11]),
    ],
)
def test_bounds_admit_their_interval(
    rule: Bounds, inside: list[float], outside: list[float]
) -> None:
    assert all(rule.admits(value) for value in inside)
    assert not any(rule.admits(value) for value in outside)


def test_bounds_describe_themselves_and_their_sql() -> None:
    rule = Bounds(ge=0, gt=-1, le=1.5, lt=2)
    assert rule.describe() == ">= 0 and > -1 and <= 1.5 and < 2"
    assert rule.sql("score") == "score >= 0 AND score > -1 AND score <= 1.5 AND score < 2"


def test_bounds_info_and_its_lookup() -> None:
    assert bounds(ge=1, le=5) == {"bounds": Bounds(ge=1, le=5)}
    assert column_bounds(Column("rating", Integer, info=bounds(ge=1, le=5))) == Bounds(ge=1, le=5)
    assert column_bounds(Column("plain", Integer)) is None
    assert column_bounds(Column("odd", Integer, info={"bounds": "not a rule"})) is None


def test_range_constraints_are_named_after_their_column() -> None:
    table = Table(
        "scores",
        MetaData(),
        Column("score", Float, info=bounds(ge=0, le=1)),
        Column("free", Float),
    )
    add_range_constraints(table)
    checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
    assert [(c.name, str(c.sqltext)) for c in checks] == [
        ("score_range", "score >= 0 AND score <= 1")
    ]


def test_models_carry_their_range_constraints() -> None:
    checks = {
        str(c.name): str(c.sqltext)
        for c in Base.metadata.tables["agent_registry"].constraints
        if isinstance(c, CheckConstraint)
    }
    assert checks["ck_agent_registry_confidence_score_range"] == (
        "confidence_score >= 0 AND confidence_score <= 1"
    )


def test_bounds_given_open_sides_keep_them() -> None:
    assert bounds(gt=0, lt=1) == {"bounds": Bounds(gt=0, lt=1)}
    assert bounds(lt=10)["bounds"].describe() == "< 10"


def test_whole_number_bounds_are_written_without_a_decimal_point() -> None:
    # A float bound that is a whole number reads as one: `>= 0`, not `>= 0.0`.
    rule = Bounds(ge=0.0, le=24.0, gt=-0.5)
    assert rule.describe() == ">= 0 and > -0.5 and <= 24"
    assert rule.sql("hours") == "hours >= 0 AND hours > -0.5 AND hours <= 24"


def test_only_a_callable_is_a_normaliser() -> None:
    column = Column("code", String(3), info={"normalize": "not a function"})
    assert column_normalizer(column) is None
    assert column_normalizer(Column("plain", String(3))) is None


def test_a_float_bounded_from_below_only_refuses_nan_where_the_backend_stores_it() -> None:
    # PostgreSQL orders NaN above every number, so `>= 0` alone admits it.
    table = Table(
        "gauges",
        MetaData(),
        Column("level", Float, info=bounds(ge=0)),
        Column("ratio", Float, info=bounds(gt=0, lt=1)),
        Column("ceiling", Float, info=bounds(le=10)),
        Column("whole", Integer, info=bounds(ge=0)),
    )
    add_range_constraints(table)
    level_on_postgresql = "CONSTRAINT level_range CHECK (level >= 0 AND level <> 'NaN')"
    level_on_mariadb = "CONSTRAINT level_range CHECK (level >= 0)"
    others = [
        "CONSTRAINT ratio_range CHECK (ratio > 0 AND ratio < 1)",
        "CONSTRAINT ceiling_range CHECK (ceiling <= 10)",
        "CONSTRAINT whole_integer CHECK"
        " (whole = ROUND(whole) AND whole BETWEEN -2147483648 AND 2147483647)",
        "CONSTRAINT whole_range CHECK (whole >= 0)",
    ]
    assert constraints_in_ddl(table, "postgresql+psycopg://") == [level_on_postgresql, *others]
    assert constraints_in_ddl(table, "sqlite://") == [level_on_postgresql, *others]
    assert constraints_in_ddl(table, "mysql+pymysql://") == [level_on_mariadb, *others]


def constraints_in_ddl(table: Table, url: str) -> list[str]:
    """The CONSTRAINT lines of `table`'s CREATE TABLE for the database `url` names."""
    ddl = str(CreateTable(table).compile(dialect=make_url(url).get_dialect()()))
    return [
        line.strip().rstrip(",")
        for line in ddl.splitlines()
        if line.strip().startswith("CONSTRAINT")
    ]


def test_the_nan_guard_stays_whole_inside_another_expression() -> None:
    guarded = FloatRange("level >= 0", "level")
    assert guarded.self_group() is guarded
    assert str(not_(guarded).compile()) == "NOT (level >= 0 AND level <> 'NaN')"
    assert str(or_(guarded, column("spare")).compile()) == (
        "(level >= 0 AND level <> 'NaN') OR spare"
    )


def test_validation_error_names_its_field() -> None:
    error = ValidationError("User.email", "not an email")
    assert isinstance(error, ValueError)
    assert error.field == "User.email"
    assert str(error) == "User.email: not an email"


# --------------------------------------------------------------------------
# On assignment
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "AgentRegistry.confidence_score: must be >= 0 and <= 1, got 1.5"),
        (math.nan, "AgentRegistry.confidence_score: must be >= 0 and <= 1, got nan"),
        ("0.5", "AgentRegistry.confidence_score: expected a number >= 0 and <= 1, got '0.5'"),
        (True, "AgentRegistry.confidence_score: expected a number >= 0 and <= 1, got True"),
    ],
)
def test_out_of_range_numbers_are_refused_with_the_field(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AgentRegistry(confidence_score=value)
    assert str(refused.value) == message
    assert refused.value.field == "AgentRegistry.confidence_score"


def test_in_range_numbers_are_accepted() -> None:
    assert AgentRegistry(confidence_score=1).confidence_score == 1
    assert AgentProposal(hours_per_day_limit=24).hours_per_day_limit == 24
    with pytest.raises(ValidationError, match=r"must be > 0 and <= 24, got 0"):
        AgentProposal(hours_per_day_limit=0)


def test_enums_accept_members_and_their_values() -> None:
    assert AgentRegistry(status="intern").status is AgentStatus.INTERN
    assert AgentRegistry(status=AgentStatus.AUTONOMOUS).status is AgentStatus.AUTONOMOUS
    assert allowed_values(UserRole)[0] == "super_admin"


def test_unknown_enum_values_list_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as refused:
        User(role="root")
    assert str(refused.value) == (
        "User.role: 'root' is not a valid UserRole; allowed values: "
        + ", ".join(member.value for member in UserRole)
    )


def test_over_long_strings_are_refused() -> None:
    assert Workspace(name="x" * 255).name == "x" * 255
    with pytest.raises(
        ValidationError, match=r"Workspace\.name: at most 255 characters allowed, got 256"
    ):
        Workspace(name="x" * 256)


def test_none_is_left_to_the_database(db: Session) -> None:
    agent = AgentRegistry(name=None, confidence_score=None, status=None)
    assert agent.confidence_score is None
    db.add(agent)
    with pytest.raises(IntegrityError, match=r"(?i)not.null|cannot be null"):  # MariaDB: the latter
        db.flush()


def test_the_database_enforces_the_same_range(db: Session) -> None:
    db.add(AgentRegistry(name="a", category="c", module_path="m", class_name="C"))
    db.flush()
    with pytest.raises(IntegrityError, match="confidence_score_range"):
        db.connection().exec_driver_sql("UPDATE agent_registry SET confidence_score = 2")


def test_abstract_bases_get_no_rules() -> None:
    class Abstract(Base):
        __abstract__ = True

    assert "__table__" not in Abstract.__dict__


@contextmanager
def model_of_base(*columns: Column[Any]) -> Iterator[type[Any]]:
    """`Gauge`, a model of `Base` defined while the block runs, on a table
    `gauges` of its own MetaData (`id` and `columns`): `Base` installs its
    rules as it does every model's. Forgotten afterwards, so that no other
    test finds it among the models."""
    table = Table("gauges", MetaData(), Column("id", Integer, primary_key=True), *columns)

    class Gauge(Base):
        __table__ = table

    try:
        yield Gauge
    finally:
        _MODEL_RULES.pop(Gauge, None)
        Base.registry._dispose_cls(Gauge)
        Base.registry._managers.pop(inspect(Gauge).class_manager, None)


def hooks_of_a_session() -> int:
    return sum(fn is check_orm_statement for fn in Session().dispatch.do_orm_execute)


def test_a_new_model_checks_assigned_values_and_its_table_has_the_checks() -> None:
    with model_of_base(
        Column("level", Float, info=bounds(ge=0)),
        Column("count", Integer),
        Column("taken_at", UTCDateTime()),
        Column("note", Text),
    ) as Gauge:
        checks = sorted(
            str(c.name) for c in Gauge.__table__.constraints if isinstance(c, CheckConstraint)
        )
        gauge = Gauge(level=0.5, count=Stars.THREE, taken_at=datetime(2026, 1, 2), note="n")
        with pytest.raises(ValidationError) as refused:
            gauge.level = -1

    assert checks == ["count_integer", "id_integer", "level_range"]
    assert str(refused.value) == "Gauge.level: must be >= 0, got -1"
    assert (gauge.level, gauge.count, gauge.taken_at, gauge.note) == (
        0.5,
        3,
        datetime(2026, 1, 2, tzinfo=UTC),
        "n",
    )
    assert type(gauge.count) is int
    assert hooks_of_a_session() == 1


def test_a_new_model_leaves_none_and_sql_expressions_to_the_database() -> None:
    with model_of_base(Column("count", Integer)) as Gauge:
        gauge = Gauge(count=None)
        assert gauge.count is None
        for expression in (Gauge.count, Gauge.count + 1):  # SET count = count (+ 1)
            gauge.count = expression
            assert gauge.count is expression


def test_a_new_models_bulk_rows_are_checked_and_filled() -> None:
    with model_of_base(
        Column("level", Float, info=bounds(ge=0)),
        Column("tags", JSON, info={"constructor_default": list}),
    ) as Gauge:
        rules = rules_for(inspect(Gauge))
        assert rules is not None
        checked = rules.check_rows([{"level": 1}, {"level": 2, "tags": ["b"]}], inserting=True)
        updated = rules.check_rows([{"id": 1, "level": 3}], inserting=False)
        with pytest.raises(ValidationError) as refused:
            rules.check_rows([{"level": 1}, {"level": -1}], inserting=True)
        with pytest.raises(ValidationError) as unknown:
            rules.check_rows([{"levle": 1}], inserting=True)

    assert checked.rows == [{"level": 1, "tags": []}, {"level": 2, "tags": ["b"]}]
    assert updated.rows == [{"id": 1, "level": 3}]
    assert str(refused.value) == "row 1: Gauge.level: must be >= 0, got -1"
    assert str(unknown.value) == "row 0: Gauge.levle: Gauge has no such column"


def test_a_none_goes_to_core_only_where_no_default_would_replace_it() -> None:
    # Given None, the ORM's bulk INSERT leaves out a column that a default (the
    # ORM's, the server's, the primary key's own) fills: Core would write NULL.
    with model_of_base(
        Column("level", Float, default=0.0, info=bounds(ge=0)),
        Column("kind", String(10), server_default="plain"),
        Column("note", Text),
        Column("data", JSON, default=dict),  # JSON's null is a value: written as given
    ) as Gauge:
        rules = rules_for(inspect(Gauge))
        assert rules is not None
        core_ready = {
            key: rules.check_rows([{key: None}], inserting=True).core_ready
            for key in ("id", "level", "kind", "note", "data")
        }
    assert core_ready == {"id": False, "level": False, "kind": False, "note": True, "data": True}


def test_a_plan_that_admits_a_bindparam_is_kept_for_its_statement_only() -> None:
    with model_of_base(Column("level", Float, info=bounds(ge=0))) as Gauge:
        rules = rules_for(inspect(Gauge))
        assert rules is not None
        by_level = update(Gauge).where(Gauge.level == bindparam("old"))
        row = {"id": 1, "old": 2}
        assert rules.check_rows([row], inserting=False, statement=by_level).rows == [row]
        with pytest.raises(ValidationError) as unknown:
            rules.check_rows([row], inserting=False)
    assert str(unknown.value) == "row 0: Gauge.old: Gauge has no such column"


def test_the_first_model_installed_registers_the_session_hook() -> None:
    # In a fresh process the first model registers it; every later one finds it there.
    event.remove(Session, "do_orm_execute", check_orm_statement)
    try:
        with model_of_base(Column("level", Float, info=bounds(ge=0))):
            assert hooks_of_a_session() == 1
    finally:
        if not event.contains(Session, "do_orm_execute", check_orm_statement):
            event.listen(Session, "do_orm_execute", check_orm_statement)
    assert hooks_of_a_session() == 1


def test_a_bulk_row_error_names_its_row() -> None:
    error = ValidationError("AgentRegistry.name", "too long").in_row(3)
    assert isinstance(error, ValidationError)
    assert (error.field, error.message, error.row) == ("AgentRegistry.name", "too long", 3)
    assert str(error) == "row 3: AgentRegistry.name: too long"
    assert ValidationError("User.email", "bad").row is None


# --------------------------------------------------------------------------
# The integer rule
# --------------------------------------------------------------------------


class Stars(enum.IntEnum):
    THREE = 3


class IndexLike:
    """A whole number that is not an int, as numpy's integers are."""

    def __index__(self) -> int:
        return 2


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (3.5, "float 3.5"),
        (3.0, "float 3.0"),
        (True, "bool True"),
        ("3", "str '3'"),
        (Decimal("3"), "Decimal Decimal('3')"),
    ],
)
def test_integer_columns_refuse_what_is_not_a_whole_number(value: object, got: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AgentFeedback(rating=value)
    assert (
        str(refused.value) == f"AgentFeedback.rating: expected a whole number (an int), got {got}"
    )
    assert refused.value.field == "AgentFeedback.rating"


def test_integer_columns_hold_what_their_type_holds() -> None:
    assert Episode(access_count=2**31 - 1).access_count == 2**31 - 1
    assert Episode(access_count=-(2**31)).access_count == -(2**31)
    with pytest.raises(ValidationError) as refused:
        Episode(access_count=2**31)
    assert str(refused.value) == (
        "Episode.access_count: must be a whole number from -2147483648 to 2147483647,"
        " got 2147483648"
    )


def test_whole_numbers_of_other_types_are_stored_as_plain_ints() -> None:
    feedback = AgentFeedback(rating=Stars.THREE)
    assert feedback.rating == 3
    assert type(feedback.rating) is int
    episode = Episode(access_count=IndexLike())
    assert episode.access_count == 2
    assert type(episode.access_count) is int


def test_the_integer_rule_comes_before_the_range() -> None:
    with pytest.raises(
        ValidationError, match=r"expected a whole number \(an int\), got float 7\.5"
    ):
        AgentFeedback(rating=7.5)
    with pytest.raises(
        ValidationError, match=r"AgentFeedback\.rating: must be >= 1 and <= 5, got 7"
    ):
        AgentFeedback(rating=7)


def integer_fields() -> list[tuple[type[Base], str, str]]:
    """(model, attribute, table) of every integer column of every model."""
    return [
        (mapper.class_, prop.key, mapper.persist_selectable.description or "")
        for mapper in Base.registry.mappers
        for prop in mapper.column_attrs
        if isinstance(prop.columns[0].type, Integer)
    ]


def test_every_integer_column_has_the_rule_on_assignment_and_in_the_database() -> None:
    found = integer_fields()
    assert len(found) >= 15  # every integer column of the domain, not a sample
    for model, key, table in found:
        with pytest.raises(ValidationError, match="expected a whole number") as refused:
            setattr(model(), key, 0.5)
        assert refused.value.field == f"{model.__name__}.{key}"
        checks = {
            str(c.name): str(c.sqltext)
            for c in Base.metadata.tables[table].constraints
            if isinstance(c, CheckConstraint)
        }
        assert checks[f"ck_{table}_{key}_integer"] == (
            f"{key} = ROUND({key}) AND {key} BETWEEN -2147483648 AND 2147483647"
        )


def test_integer_ranges_follow_the_column_type() -> None:
    assert integer_range(Column("a", SmallInteger)) == (-32768, 32767)
    assert integer_range(Column("b", Integer)) == (-(2**31), 2**31 - 1)
    assert integer_range(Column("c", BigInteger)) == (-(2**63), 2**63 - 1)
    assert integer_range(Column("d", Float)) is None
    assert integer_range(Column("e", Boolean)) is None


def test_integer_columns_get_a_constraint_named_after_them() -> None:
    table = Table("counts", MetaData(), Column("small", SmallInteger, info=bounds(ge=0)))
    add_range_constraints(table)
    checks = sorted(
        (str(c.name), str(c.sqltext)) for c in table.constraints if isinstance(c, CheckConstraint)
    )
    assert checks == [
        ("small_integer", "small = ROUND(small) AND small BETWEEN -32768 AND 32767"),
        ("small_range", "small >= 0"),
    ]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(3, True), ("3", True), (3.0, True), (3.5, False), ("abc", False), (2**31, False)],
)
def test_the_integer_check_is_plain_sql_sqlite_obeys(value: object, accepted: bool) -> None:
    # The CHECK on its own, in a bare SQLite table: what it lets in.
    with sqlite3.connect(":memory:") as connection:
        check = integer_sql("n", INTEGER_RANGES[Integer])
        connection.execute(f"CREATE TABLE t (n INTEGER CHECK ({check}))")
        try:
            connection.execute("INSERT INTO t VALUES (?)", (value,))
        except sqlite3.IntegrityError:
            stored = False
        else:
            stored = True
    assert stored is accepted


# --------------------------------------------------------------------------
# Each rule, built from a fresh column while the test runs
# --------------------------------------------------------------------------
# The models' validators are built once, when `core.models` is imported; these
# tests build their own, so that how a rule is built is tested too.


class Ratio(float):
    """A float that is not exactly a `float`, as numpy's float64 is."""


class Light(enum.Enum):
    RED = "red"
    GREEN = "green"


def rule_of(column: Column[Any]) -> Callable[[Any], Any]:
    validate = column_validator(f"Gauge.{column.name}", column)
    assert validate is not None
    return validate


def refusal(validate: Callable[[Any], Any], value: object) -> str:
    """What `validate` says of `value`, without the field it names."""
    with pytest.raises(ValidationError) as refused:
        validate(value)
    assert str(refused.value) == f"{refused.value.field}: {refused.value.message}"
    return str(refused.value)


ACCEPTED = object()

BOUNDED: list[tuple[dict[str, Bounds], object, object]] = [
    (bounds(ge=0),       0,           ACCEPTED),
    (bounds(ge=0),       1e300,       ACCEPTED),
    (bounds(ge=0),       -0.5,        "must be >= 0, got -0.5"),
    (bounds(ge=0),       math.nan,    "must be >= 0, got nan"),
    (bounds(le=1),       1,           ACCEPTED),
    (bounds(le=1),       -1e300,      ACCEPTED),
    (bounds(le=1),       1.5,         "must be <= 1, got 1.5"),
    (bounds(gt=0),       0.001,       ACCEPTED),
    (bounds(gt=0),       0,           "must be > 0, got 0"),
    (bounds(lt=10),      9.5,         ACCEPTED),
    (bounds(lt=10),      10,          "must be < 10, got 10"),
    (bounds(gt=0, lt=1), 0.5,         ACCEPTED),
    (bounds(gt=0, lt=1), 1,           "must be > 0 and < 1, got 1"),
    (bounds(ge=0, le=1), Ratio(0.5),  ACCEPTED),
    (bounds(ge=1, le=5), Stars.THREE, ACCEPTED),
    (bounds(ge=0, le=1), Ratio(2),    "must be >= 0 and <= 1, got 2.0"),
    (bounds(ge=0, le=1), "0.5",       "expected a number >= 0 and <= 1, got '0.5'"),
    (bounds(ge=0, le=1), True,        "expected a number >= 0 and <= 1, got True"),
    (bounds(ge=0, le=1), None,        "expected a number >= 0 and <= 1, got None"),
]  # fmt: skip


@pytest.mark.parametrize(("info", "value", "outcome"), BOUNDED)
def test_a_bounds_rule_admits_its_interval_and_says_what_it_refuses(
    info: dict[str, Bounds], value: object, outcome: object
) -> None:
    validate = rule_of(Column("level", Float, info=info))
    if outcome is ACCEPTED:
        assert validate(value) is value
    else:
        assert refusal(validate, value) == f"Gauge.level: {outcome}"


INTEGERS: list[tuple[object, object]] = [
    (-32768,      -32768),
    (32767,       32767),
    (Stars.THREE, 3),
    (IndexLike(), 2),
    (-32769,      "must be a whole number from -32768 to 32767, got -32769"),
    (32768,       "must be a whole number from -32768 to 32767, got 32768"),
    (3.0,         "expected a whole number (an int), got float 3.0"),
    (True,        "expected a whole number (an int), got bool True"),
    ("3",         "expected a whole number (an int), got str '3'"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "outcome"), INTEGERS)
def test_an_integer_rule_admits_whole_numbers_its_type_holds(
    value: object, outcome: object
) -> None:
    validate = rule_of(Column("count", SmallInteger))
    if isinstance(outcome, int):
        stored = validate(value)
        assert stored == outcome
        assert type(stored) is int
    else:
        assert refusal(validate, value) == f"Gauge.count: {outcome}"


def test_an_enum_rule_admits_members_and_their_values_only() -> None:
    validate = rule_of(
        Column("light", Enum(Light, values_callable=lambda ms: [m.value for m in ms]))
    )
    assert validate(Light.RED) is Light.RED
    assert validate("green") is Light.GREEN
    for given in ("GREEN", 3):
        assert refusal(validate, given) == (
            f"Gauge.light: {given!r} is not a valid Light; allowed values: red, green"
        )


def test_a_column_type_that_coerces_assigned_values_is_a_rule() -> None:
    validate = rule_of(Column("taken_at", UTCDateTime()))
    assert validate(datetime(2026, 1, 2, 3, 4)) == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert refusal(validate, "2026-01-02") == (
        "Gauge.taken_at: expected a datetime, got str: '2026-01-02'"
    )


def test_the_rules_of_one_column_run_in_turn() -> None:
    validate = rule_of(Column("count", SmallInteger, info=bounds(ge=0)))
    assert validate(Stars.THREE) == 3
    assert refusal(validate, -1) == "Gauge.count: must be >= 0, got -1"
    assert refusal(validate, 0.5) == "Gauge.count: expected a whole number (an int), got float 0.5"


# --------------------------------------------------------------------------
# Normalisers declared on the column
# --------------------------------------------------------------------------


def _code_is_short(value: str) -> str:
    if " " in value:
        raise ValueError("no spaces allowed")
    if value == "taken":
        raise ValidationError("Other.field", "that one is taken")
    return value.upper()


def test_a_normaliser_runs_before_the_columns_other_rules() -> None:
    column = Column("code", String(3), info=normalized_by(_code_is_short))
    assert column_normalizer(column) is _code_is_short
    validate = column_validator("Item.code", column)
    assert validate is not None
    assert validate("abc") == "ABC"
    with pytest.raises(ValidationError, match=r"^Item\.code: no spaces allowed$"):
        validate("a b")
    with pytest.raises(ValidationError, match=r"^Item\.code: that one is taken$"):
        validate("taken")
    with pytest.raises(ValidationError, match=r"^Item\.code: at most 3 characters allowed"):
        validate("abcd")
    assert column_validator("Item.free", Column("free", Text)) is None


def test_the_email_rule_is_the_columns_own() -> None:
    assert column_normalizer(Base.metadata.tables["users"].c.email) is normalize_email
    assert User(email="  Upper@Example.COM ").email == "upper@example.com"


# --------------------------------------------------------------------------
# ORM statements: bulk rows, single rows and .values(...)
# --------------------------------------------------------------------------


def agent_row(**values: object) -> dict[str, Any]:
    return {"category": "c", "module_path": "m", "class_name": "C", **values}


def insert_strategies(executed: list[ORMExecuteState]) -> list[object]:
    """The `dml_strategy` the hook left each ORM INSERT among `executed` with:
    "raw" when its rows go to Core's executemany, None when the ORM writes them."""
    return [
        state.local_execution_options.get("dml_strategy") for state in executed if state.is_insert
    ]


def test_a_bad_bulk_row_names_its_row_and_nothing_is_written(db: Session) -> None:
    rows = [agent_row(name="first"), agent_row(name="x" * 300), agent_row(name="third")]
    with pytest.raises(ValidationError) as refused:
        db.execute(insert(AgentRegistry), rows)

    assert (
        str(refused.value) == "row 1: AgentRegistry.name: at most 255 characters allowed, got 300"
    )
    assert (refused.value.row, refused.value.field) == (1, "AgentRegistry.name")
    assert tables_with_rows(db.connection()) == {}


def stored_executions(db: Session, *skip: str) -> list[dict[str, object]]:
    """Every AgentExecution row as the database holds it, but the `skip`
    columns, in the order of their `input_summary`."""
    table = AgentExecution.__table__
    assert isinstance(table, Table)
    columns = [c for c in table.columns if c.name not in skip]
    rows = db.execute(select(*columns).order_by(table.c.input_summary)).mappings()
    return [dict(row) for row in rows]


def test_bulk_rows_are_normalised_as_the_constructor_normalises_them(db: Session) -> None:
    agent = AgentFactory()
    naive = datetime(2026, 1, 2, 3, 4, 5)
    rows = [
        {"agent_id": agent.id, "status": "completed", "started_at": naive, "input_summary": "a"},
        {
            "agent_id": agent.id,
            "status": ExecutionStatus.FAILED,
            "started_at": naive.replace(tzinfo=timezone(timedelta(hours=2))),
            "input_summary": "b",
        },
    ]
    given = deepcopy(rows)
    db.execute(insert(AgentExecution), rows)
    by_bulk = stored_executions(db, "id")
    db.execute(delete(AgentExecution))
    db.add_all([AgentExecution(**row) for row in rows])
    db.flush()

    assert stored_executions(db, "id") == by_bulk
    assert by_bulk[0]["started_at"] == naive.replace(tzinfo=UTC)
    assert by_bulk[1]["started_at"] == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert rows == given, "the caller's dicts were changed"


def test_bulk_rows_get_the_constructors_defaults(db: Session) -> None:
    db.execute(
        insert(User),
        [
            {"email": " One@Example.com"},
            {"email": "two@example.com", "id": None},
            {"email": "three@example.com", "preferences": None},
        ],
    )
    users = {user.email: user for user in db.scalars(select(User))}

    assert set(users) == {"one@example.com", "two@example.com", "three@example.com"}
    assert all(len(user.id) == 36 for user in users.values())
    assert users["one@example.com"].preferences == {}
    assert users["two@example.com"].preferences == {}
    assert users["three@example.com"].preferences is None  # None stays SQL NULL


def test_each_bulk_row_gets_a_fresh_default_container() -> None:
    rules = rules_for(inspect(User))
    assert rules is not None
    first, second = rules.check_rows(
        [{"email": "a@b.co"}, {"email": "c@d.co"}], inserting=True
    ).rows
    assert first["preferences"] == second["preferences"] == {}
    assert first["preferences"] is not second["preferences"]


def test_a_bulk_row_giving_none_gets_the_column_default(db: Session) -> None:
    db.execute(insert(AgentRegistry), [agent_row(name="n", status=None, confidence_score=None)])
    agent = db.scalars(select(AgentRegistry)).one()
    assert (agent.status, agent.confidence_score) == (AgentStatus.STUDENT, 0.5)


def test_a_column_without_a_rule_is_written_as_given(db: Session) -> None:
    db.execute(insert(Workspace), [{"name": "w", "is_startup": True, "description": "d"}])
    stored = db.execute(select(Workspace.is_startup, Workspace.description)).one()
    assert tuple(stored) == (True, "d")


def test_a_bulk_row_with_an_unknown_key_is_refused(db: Session) -> None:
    # The ORM itself would drop the key silently, and store NULL or a default.
    with pytest.raises(ValidationError) as refused:
        db.execute(insert(AgentRegistry), [agent_row(name="a"), agent_row(nmae="b")])
    assert str(refused.value) == "row 1: AgentRegistry.nmae: AgentRegistry has no such column"
    assert tables_with_rows(db.connection()) == {}


def test_a_single_dict_of_parameters_is_checked_without_a_row_number(db: Session) -> None:
    db.execute(insert(User), {"email": "Single@Example.com"})
    assert db.scalars(select(User.email)).all() == ["single@example.com"]
    with pytest.raises(ValidationError) as refused:
        db.execute(insert(User), {"email": "single"})
    assert str(refused.value).startswith("User.email: 'single' is not a valid email address")
    assert refused.value.row is None


def test_bulk_update_by_primary_key_is_checked_and_normalised(db: Session) -> None:
    first, second = UserFactory(email="first@example.com"), UserFactory(email="second@example.com")
    db.flush()
    with pytest.raises(ValidationError, match=r"^row 1: User\.role: 'root' is not a valid"):
        db.execute(
            update(User),
            [{"id": first.id, "email": "changed@example.com"}, {"id": second.id, "role": "root"}],
        )
    db.expire_all()
    assert {user.email for user in db.scalars(select(User))} == {
        "first@example.com",
        "second@example.com",
    }

    db.execute(update(User), [{"id": first.id, "email": " New@Example.com "}])
    db.expire_all()
    assert first.email == "new@example.com"


def test_a_bulk_row_key_may_name_a_bindparam_of_the_statement(db: Session) -> None:
    user = UserFactory(email="kept@example.com")
    db.flush()
    only_active = (
        update(User)
        .where(User.status == bindparam("wanted"))
        .execution_options(synchronize_session=None)
    )
    db.execute(only_active, [{"id": user.id, "email": " Moved@Example.com", "wanted": "active"}])
    db.expire_all()
    assert user.email == "moved@example.com"

    with pytest.raises(ValidationError, match=r"^row 0: User\.wantd: User has no such column"):
        db.execute(only_active, [{"id": user.id, "wantd": "active"}])


def test_values_of_single_row_statements_are_checked_and_normalised(db: Session) -> None:
    with pytest.raises(ValidationError, match=r"^AgentRegistry\.name: at most 255 characters"):
        db.execute(insert(AgentRegistry).values(agent_row(name="x" * 256)))
    user = UserFactory()
    db.execute(update(User).where(User.id == user.id).values(email=" Values@Example.com "))
    with pytest.raises(ValidationError, match=r"^Episode\.access_count: expected a whole number"):
        db.execute(update(Episode).values(access_count=1.5))
    # An SQL expression is not a value Python can check: the database's CHECKs do.
    episode = EpisodeFactory(access_count=1)
    db.execute(update(Episode).values(access_count=Episode.access_count + 1))

    db.expire_all()
    assert (user.email, episode.access_count) == ("values@example.com", 2)


def test_values_after_one_without_a_rule_are_still_checked(db: Session) -> None:
    values = {"description": "no rule", **agent_row(name="x" * 256)}
    with pytest.raises(ValidationError, match=r"^AgentRegistry\.name: at most 255 characters"):
        db.execute(insert(AgentRegistry).values(values))


def test_ordered_values_are_checked_and_written_in_their_order(db: Session) -> None:
    episode = EpisodeFactory(access_count=1)
    in_order = update(Episode).where(Episode.id == episode.id)
    with pytest.raises(ValidationError, match=r"^Episode\.access_count: expected a whole number"):
        db.execute(in_order.ordered_values((Episode.access_count, 1.5)))
    db.execute(in_order.ordered_values((Episode.access_count, 5)))
    db.expire_all()
    assert episode.access_count == 5


def test_ordered_values_are_normalised_and_kept_in_their_order(
    db: Session, count_queries: QueryCounter
) -> None:
    user = UserFactory(email="old@example.com", first_name="Ada")
    statement = (
        update(User)
        .where(User.id == user.id)
        .ordered_values((User.first_name, "Grace"), (User.email, " New@Example.com "))
    )

    with count_queries(1) as log:
        db.execute(statement)

    assert log.statements[0].startswith("UPDATE users SET first_name=")
    assert log.statements[0].index("first_name=") < log.statements[0].index("email=")
    db.expire_all()
    assert (user.first_name, user.email) == ("Grace", "new@example.com")


def test_a_misspelt_key_in_values_is_left_to_sqlalchemy_which_names_it(db: Session) -> None:
    with pytest.raises(CompileError, match=r"^Unconsumed column names: emial$"):
        db.execute(insert(User).values(email="a@b.co", emial="a@b.co"))


def test_values_given_by_column_name_are_checked_and_normalised() -> None:
    # A statement on the table names its columns by string.
    rules = rules_for(inspect(User))
    assert rules is not None
    checked = rules.check_values(insert(table_of(User)).values(email=" Core@Example.com "))
    assert checked.compile().params["email"] == "core@example.com"


def test_one_row_is_checked_and_filled_as_a_bulk_row_is() -> None:
    rules = rules_for(inspect(User))
    assert rules is not None
    assert rules.check_row({"email": " One@Example.com"}, inserting=True) == {
        "email": "one@example.com",
        "preferences": {},
    }
    assert rules.check_row({"email": "one@example.com"}, inserting=False) == {
        "email": "one@example.com"
    }
    only_active = update(User).where(User.status == bindparam("wanted"))
    row = {"id": "u1", "wanted": "active"}
    assert rules.check_row(row, inserting=False, statement=only_active) == row


def test_plain_bulk_rows_go_to_core_and_are_stored_as_the_orm_stores_them(db: Session) -> None:
    agent = AgentFactory()
    rows = [
        {
            "agent_id": agent.id,
            "status": "completed",
            "input_summary": f"run {n}",
            "error_message": None,
        }
        for n in range(3)
    ]
    with orm_executions(db) as executed:
        db.execute(insert(AgentExecution), rows)
        fast = stored_executions(db, "id", "started_at")
        db.execute(delete(AgentExecution))
        db.execute(insert(AgentExecution).execution_options(dml_strategy="bulk"), rows)

    assert insert_strategies(executed) == ["raw", None]
    assert stored_executions(db, "id", "started_at") == fast
    assert [row["status"] for row in fast] == [ExecutionStatus.COMPLETED] * 3


def insert_left_to_the_orm(db: Session, statement: Any, rows: list[dict[str, Any]]) -> Any:
    """Run an ORM insert; assert that the ORM, not Core, wrote its rows."""
    with orm_executions(db) as executed:
        result = db.execute(statement, rows)
    assert insert_strategies(executed) == [None]
    return result


def test_a_none_that_a_default_replaces_is_left_to_the_orm(db: Session) -> None:
    rows = [agent_row(name="a"), agent_row(name="b", status=None)]
    insert_left_to_the_orm(db, insert(AgentRegistry), rows)
    assert db.scalars(select(AgentRegistry.status)).all() == [AgentStatus.STUDENT] * 2


def test_rows_of_two_key_sets_are_left_to_the_orm(db: Session) -> None:
    rows = [agent_row(name="a"), agent_row(name="b", description="only here")]
    insert_left_to_the_orm(db, insert(AgentRegistry), rows)
    stored = db.execute(select(AgentRegistry.name, AgentRegistry.description))
    assert sorted(tuple(row) for row in stored) == [("a", None), ("b", "only here")]


def test_returning_is_left_to_the_orm(db: Session) -> None:
    statement = insert(AgentRegistry).returning(AgentRegistry.name)
    result = insert_left_to_the_orm(db, statement, [agent_row(name="a"), agent_row(name="b")])
    assert sorted(result.scalars()) == ["a", "b"]


def test_a_version_counter_is_left_to_the_orm(db: Session) -> None:
    agent = AgentFactory()
    row: dict[str, Any] = {
        "agent_id": agent.id,
        "agent_name": "a",
        "proposal_type": "action",
        "description": "d",
        "proposed_by": "p",
    }
    rows = [{**row, "title": "one"}, {**row, "title": "two", "version": 7}]
    insert_left_to_the_orm(db, insert(AgentProposal), rows)
    # The ORM starts every counter at 1, whatever the row says.
    assert db.scalars(select(AgentProposal.version)).all() == [1, 1]


UNCHECKED_WRITES: dict[str, Callable[[Session, dict[str, Any]], object]] = {
    "Core insert on the table": lambda db, row: db.execute(
        insert(Base.metadata.tables["agent_registry"]), [row]
    ),
    "multi-row .values([...])": lambda db, row: db.execute(insert(AgentRegistry).values([row])),
    "ORM insert on a Connection": lambda db, row: db.connection().execute(
        insert(AgentRegistry), [row]
    ),
    "legacy bulk_insert_mappings": lambda db, row: db.bulk_insert_mappings(AgentRegistry, [row]),
}


@pytest.mark.parametrize("write", UNCHECKED_WRITES.values(), ids=UNCHECKED_WRITES.keys())
def test_the_unchecked_paths_are_left_to_the_database(
    db: Session, write: Callable[[Session, dict[str, Any]], object]
) -> None:
    # No ValidationError: the database's CHECK refuses the row instead.
    row = agent_row(id="a" * 36, name="n", confidence_score=1.5)
    with pytest.raises(IntegrityError, match="confidence_score_range"), db.begin_nested():
        write(db, row)


class OtherBase(DeclarativeBase):
    """Another application's models, in the same process."""


class Note(OtherBase):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(5))


def test_models_of_another_declarative_base_are_left_alone() -> None:
    engine = create_engine("sqlite://")
    OtherBase.metadata.create_all(engine)
    with Session(engine) as session:
        session.execute(insert(Note), [{"text": "longer than five"}])
        assert session.scalars(select(Note.text)).all() == ["longer than five"]
    engine.dispose()


def test_the_hook_is_registered_once_for_every_session(engine: Engine) -> None:
    # Every model's install_validators asked for it; it listens once.
    with Session(engine) as session:
        listeners = [fn for fn in session.dispatch.do_orm_execute if fn is check_orm_statement]
    assert len(listeners) == 1

    class OwnSession(Session):
        pass

    with (
        OwnSession(engine) as session,
        pytest.raises(ValidationError, match=r"^row 0: Workspace\.name: "),
    ):
        session.execute(insert(Workspace), [{"name": "x" * 256}])


def test_a_sql_expression_assigned_to_a_column_is_left_to_the_database(db: Session) -> None:
    # The rules judge Python values; an expression is computed at flush, and
    # the database's CHECKs judge what it computes.
    episode = EpisodeFactory(access_count=2)

    episode.access_count = Episode.access_count + 1
    db.flush()
    db.refresh(episode)

    assert episode.access_count == 3
