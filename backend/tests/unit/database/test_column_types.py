"""`core.schema`'s column types and small helpers: `UTCDateTime` (naive taken as
UTC, aware converted, aware UTC read back, anything else refused), `as_utc`,
the JSON type (JSONB on PostgreSQL only; Python None bound as SQL NULL),
`utc_now` and `new_uuid`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Dialect, create_mock_engine

from core.models import (
    User,
    ValidationError,
)
from core.schema import UTCDateTime, as_utc, json_type, new_uuid, utc_now

PLUS_TWO = timezone(timedelta(hours=2))


def _dialect(url: str) -> Dialect:
    # The dialect of a URL, with no connection and no server needed.
    return create_mock_engine(url, executor=print).dialect


@pytest.mark.parametrize(
    ("given", "stored_on_sqlite", "stored_on_postgresql"),
    [
        (
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        (
            datetime(2025, 1, 2, 5, 4, 5, tzinfo=PLUS_TWO),
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
    ],
)
def test_utc_datetime_binds_naive_as_utc_and_converts_aware(
    given: datetime, stored_on_sqlite: datetime, stored_on_postgresql: datetime
) -> None:
    column_type = UTCDateTime()
    on_sqlite = column_type.process_bind_param(given, _dialect("sqlite://"))
    on_postgresql = column_type.process_bind_param(given, _dialect("postgresql+psycopg://"))
    assert on_sqlite == stored_on_sqlite
    assert on_sqlite is not None
    assert on_sqlite.tzinfo is None
    assert on_postgresql == stored_on_postgresql
    assert on_postgresql is not None
    assert on_postgresql.tzinfo is UTC


def test_utc_datetime_reads_back_aware_utc() -> None:
    column_type = UTCDateTime()
    read = column_type.process_result_value(datetime(2025, 1, 2, 3, 4, 5), _dialect("sqlite://"))
    assert read == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert read is not None
    assert read.tzinfo is UTC
    assert column_type.process_result_value(None, _dialect("sqlite://")) is None
    assert column_type.process_bind_param(None, _dialect("sqlite://")) is None


@pytest.mark.parametrize("value", ["2025-01-02T03:04:05", 1735787045, datetime.now(UTC).date()])
def test_utc_datetime_rejects_non_datetimes(value: object) -> None:
    with pytest.raises(TypeError, match="expected a datetime, got"):
        UTCDateTime().process_bind_param(value, _dialect("sqlite://"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"User\.last_login_at: expected a datetime"):
        User(last_login_at=value)


def test_as_utc() -> None:
    assert as_utc(datetime(2025, 1, 1)) == datetime(2025, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2025, 1, 1, 2, tzinfo=PLUS_TWO)).hour == 0
    assert as_utc(datetime(2025, 1, 1, 2, tzinfo=PLUS_TWO)).tzinfo is UTC


def test_json_type_is_jsonb_on_postgresql_only() -> None:
    column_type = json_type()
    assert column_type.dialect_impl(_dialect("postgresql+psycopg://")).__visit_name__ == "JSONB"
    assert column_type.dialect_impl(_dialect("sqlite://")).__visit_name__ == "JSON"
    assert json_type() is not column_type


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://"])
def test_json_type_binds_python_none_as_sql_null(url: str) -> None:
    # Not JSON 'null': `WHERE configuration IS NULL` finds the row.
    dialect = _dialect(url)
    column_type = json_type().dialect_impl(dialect)
    bind = column_type.bind_processor(dialect)
    assert bind is not None
    assert bind(None) is None
    assert column_type.should_evaluate_none is False


def test_small_helpers() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    first, second = new_uuid(), new_uuid()
    assert first != second
    assert len(first) == 36
