"""Out-of-domain values are refused twice: by the model, and by the database.

The model raises `ValidationError` naming the field before any SQL runs; the
same value written with raw SQL (bypassing the ORM and its column types) is
refused by the database's CHECK constraint.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import CheckConstraint, Float, String, Table, inspect, text
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from core.schema import Base
from core.validation import ValidationError, column_bounds, column_normalizer
from tests.harness import db_examples
from tests.profiles import examples_per_case
from tests.property_tests.strategies import (
    CUSTOM,
    Field,
    Violation,
    all_value_fields,
    all_violations,
)
from tests.property_tests.test_values import create


def check_constraints_on(table: Table, column_name: str) -> list[str]:
    """Names of the CHECK constraints of `table` that mention the column."""
    mentions = re.compile(rf"\b{re.escape(column_name)}\b")
    return [
        str(constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and mentions.search(str(constraint.sqltext))
    ]


def test_every_custom_validator_has_strategies() -> None:
    # A column's own normaliser (`info=normalized_by(...)`) or an ORM `@validates`.
    validated = {
        (mapper.class_, key)
        for mapper in Base.registry.mappers
        for key in mapper.validators
        if key in mapper.columns
    } | {(f.model, f.key) for f in all_value_fields() if column_normalizer(f.column)}
    covered = {(f.model, f.key) for f in all_value_fields() if f.column in CUSTOM}
    assert validated == covered


@pytest.mark.parametrize("violation", all_violations(), ids=str)
@settings(max_examples=examples_per_case())
@given(data=st.data(), in_constructor=st.booleans())
def test_the_model_rejects_the_value_naming_the_field(
    violation: Violation, data: st.DataObject, in_constructor: bool
) -> None:
    value = data.draw(violation.values, label="value")
    field = violation.field

    def assign() -> None:
        if in_constructor:
            field.model(**{field.key: value})
        else:
            setattr(field.model(), field.key, value)

    with pytest.raises(ValidationError) as raised:
        assign()
    assert raised.value.field == field.name
    assert str(raised.value).startswith(f"{field.name}: ")


@pytest.fixture
def saved(db: Session, violation: Violation) -> Base:
    """A valid row of the violation's model, written before the examples run."""
    obj: Base = create(violation.field.model)
    return obj


# What a server cuts off an over-long string without a word, when the excess
# is only these (MariaDB: ' ', tab, line feed, vertical tab, form feed, CR).
SILENTLY_CUT = {"postgresql": " ", "mysql": " \t\n\x0b\x0c\r"}


@pytest.mark.parametrize("violation", all_violations(), ids=str)
@db_examples(max_examples=examples_per_case())
@given(data=st.data())
def test_the_database_rejects_the_value_written_with_raw_sql(
    db: Session, violation: Violation, saved: Base, data: st.DataObject
) -> None:
    value = data.draw(violation.values, label="value")
    table = violation.field.model.__table__
    assert isinstance(table, Table)
    column = violation.field.column
    (key_column,) = table.primary_key.columns
    # Plain text with plain parameters: no ORM validator, no column type.
    update = text(f"UPDATE {table.name} SET {column.name} = :value WHERE {key_column.name} = :key")
    params: dict[str, Any] = {"value": value, "key": inspect(saved).identity[0]}  # type: ignore[index]
    dialect = db.get_bind().dialect.name
    select_value = text(f"SELECT {column.name} FROM {table.name} WHERE {key_column.name} = :key")
    length = column.type.length if isinstance(column.type, String) else None
    if violation.kind == "length" and dialect == "sqlite":
        # SQLite ignores VARCHAR lengths and the schema adds no length
        # CHECK: there the model's validator is the only guard, and the
        # over-long value is stored as given.
        db.execute(update, params)
        assert db.scalar(select_value, {"key": params["key"]}) == value
    elif violation.kind == "length" and not value[length:].strip(SILENTLY_CUT[dialect]):
        # The SQL standard's one exception, which PostgreSQL follows:
        # excess characters that are all spaces are cut off, silently.
        # MariaDB cuts any ASCII white space so (tab, line breaks too).
        db.execute(update, params)
        assert db.scalar(select_value, {"key": params["key"]}) == value[:length]
    elif violation.kind == "length":
        # PostgreSQL's and MariaDB's VARCHAR(n) refuse it: a DataError, not a CHECK.
        with pytest.raises(DataError, match="too long"), db.begin_nested():
            db.execute(update, params)
    elif violation.kind == "integer" and dialect in ("postgresql", "mysql"):
        # PostgreSQL and MariaDB round a float into an INTEGER column (half
        # to even, as Python's round) before any CHECK can see it: there the
        # model's validator is the only guard.
        db.execute(update, params)
        assert db.scalar(select_value, {"key": params["key"]}) == round(value)
    else:
        names = check_constraints_on(table, column.name)
        assert names, f"no CHECK constraint mentions {table.name}.{column.name}"
        with pytest.raises(IntegrityError) as raised, db.begin_nested():
            db.execute(update, params)
        message = str(raised.value.orig)
        assert any(name in message for name in names), message


@pytest.mark.parametrize(
    "field",
    [f for f in all_value_fields() if isinstance(f.column.type, Float) and column_bounds(f.column)],
    ids=str,
)
def test_nan_is_in_no_range(db: Session, field: Field) -> None:
    with pytest.raises(ValidationError, match="must be"):
        setattr(field.model(), field.key, math.nan)

    saved = create(field.model)
    table = field.model.__table__
    assert isinstance(table, Table)
    (key_column,) = table.primary_key.columns
    key = inspect(saved).identity[0]
    update = text(
        f"UPDATE {table.name} SET {field.column.name} = :value WHERE {key_column.name} = :key"
    )
    if db.get_bind().dialect.name == "sqlite" and not field.column.nullable:
        # SQLite stores NaN as NULL: the number is never kept either way.
        with pytest.raises(IntegrityError, match="NOT NULL"), db.begin_nested():
            db.execute(update, {"value": math.nan, "key": key})
    elif db.get_bind().dialect.name == "sqlite":
        db.execute(update, {"value": math.nan, "key": key})
        stored = db.scalar(
            text(f"SELECT {field.column.name} FROM {table.name} WHERE {key_column.name} = :key"),
            {"key": key},
        )
        assert stored is None
    elif db.get_bind().dialect.name == "mysql":
        # MariaDB's DOUBLE cannot hold NaN: PyMySQL refuses to send one, and
        # the server (in strict mode) refuses the text 'NaN'.
        with pytest.raises(ProgrammingError, match="nan can not be used"), db.begin_nested():
            db.execute(update, {"value": math.nan, "key": key})
        with pytest.raises(DataError, match="Incorrect double value"), db.begin_nested():
            db.execute(update, {"value": "NaN", "key": key})
    else:
        # PostgreSQL orders NaN above every number: the CHECK must say no.
        with pytest.raises(IntegrityError, match=f"{field.column.name}_range"), db.begin_nested():
            db.execute(update, {"value": math.nan, "key": key})
