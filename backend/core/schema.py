"""The declarative base and the column vocabulary every model is written in.

`Base` carries one naming convention for every constraint and the type map
(timezone-aware UTC timestamps, enums stored as their value strings); its
subclasses get their column rules installed (`core.validation`). Below it,
the column types shared by every model and the named aliases the models
declare their columns with (`UUIDPrimaryKey`, `CreatedAt`, `Str255`,
`JSONDict`, `defaulted(...)`, `fk(...)`), so that `core/models.py` reads as
the domain and nothing else.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    MetaData,
    String,
    Table,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.mysql import DATETIME as MYSQL_DATETIME
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, MappedColumn, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.validation import add_range_constraints, install_validators

T = TypeVar("T")

# One convention for every constraint, so that alembic can diff and
# batch-migrate them, and no migration ever creates a constraint named None.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# --------------------------------------------------------------------------
# Column types shared by every model, and the base that maps them
# --------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC when read back.

    A naive value written by a caller is taken as UTC (existing callers write
    `datetime.utcnow()`); an aware one is converted. SQLite stores naive UTC
    text, PostgreSQL a `timestamptz`, MariaDB a naive UTC `DATETIME(6)`:
    its plain DATETIME would drop the microseconds, and its TIMESTAMP ends
    in 2038.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql_timestamp())
        return dialect.type_descriptor(self.impl)

    def coerce_assigned(self, value: Any) -> datetime:
        """Applied on attribute assignment, so loaded and unsaved objects
        hold the same kind of value (and compare without TypeError)."""
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        return as_utc(value)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = self.coerce_assigned(value)
        # SQLite and MariaDB store no zone: the UTC wall time is the value.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def mysql_timestamp() -> TypeEngine[datetime]:
    """What a timestamp is on MariaDB and MySQL: DATETIME with microseconds.

    A revision spells it `sa.DateTime(timezone=True).with_variant(
    mysql.DATETIME(fsp=6), "mysql")` (`core.migrate.render_item` writes that).
    """
    return MYSQL_DATETIME(fsp=6)


def as_utc(value: datetime) -> datetime:
    """Naive means UTC; aware is converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL.

    A function, not a shared instance: `MutableDict.as_mutable` and
    `MutableList.as_mutable` each need a type object of their own.
    """
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of every model: one metadata, one naming convention.

    `AsyncAttrs` gives every model `awaitable_attrs`: async code loads a
    relationship or an expired column with `await agent.awaitable_attrs.executions`.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        # Enums are stored as their value strings in a VARCHAR guarded by a
        # CHECK constraint: portable, and a new value needs no ALTER TYPE.
        enum.Enum: Enum(
            enum.Enum,
            native_enum=False,
            create_constraint=True,
            validate_strings=True,
            values_callable=lambda members: [member.value for member in members],
            length=32,
        ),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each column rule (enum, length, numeric bounds) is declared once on
        # the column and enforced twice: on assignment and by the database.
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table):
            add_range_constraints(table)
            install_validators(cls, table)


# --------------------------------------------------------------------------
# The column vocabulary: the models' columns are named from this set
# --------------------------------------------------------------------------

UUIDPrimaryKey = Annotated[
    str, mapped_column(String(36), primary_key=True, default=new_uuid, info={"uuid": True})
]
CreatedAt = Annotated[datetime, mapped_column(default=utc_now, server_default=func.now())]
UpdatedAt = Annotated[datetime | None, mapped_column(onupdate=utc_now)]
# "now" for columns other than created_at (started_at, joined_at).
Now = Annotated[datetime, mapped_column(default=utc_now, server_default=func.now())]

Str20 = Annotated[str, mapped_column(String(20))]
Str36 = Annotated[str, mapped_column(String(36))]
Str50 = Annotated[str, mapped_column(String(50))]
Str100 = Annotated[str, mapped_column(String(100))]
Str255 = Annotated[str, mapped_column(String(255))]
Str500 = Annotated[str, mapped_column(String(500))]

# Mutable wrappers track in-place changes (`agent.configuration["k"] = v`);
# each needs a type object of its own.
JSONDict = Annotated[dict[str, Any], mapped_column(MutableDict.as_mutable(json_type()))]
JSONList = Annotated[list[Any], mapped_column(MutableList.as_mutable(json_type()))]


def _server_literal(value: Any) -> Any:
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, str):
        return text("'" + value.replace("'", "''") + "'")
    return text(repr(value))


def defaulted(value: T, **kwargs: Any) -> MappedColumn[T]:
    """A column default set both by the ORM and by the database.

    The ORM value makes the attribute readable right after `flush()`; the
    server default keeps raw SQL and migrations honest.

    A `{}` or `[]` default is different: it is filled in by the constructor,
    fresh for every object (so `agent.configuration["k"] = v` works before
    the first flush), and has no column default at all, because the ORM
    would apply a column default in place of an explicit `None`, which must
    be stored as SQL NULL.
    """
    if isinstance(value, dict | list):
        return mapped_column(info={"constructor_default": type(value)}, **kwargs)
    return mapped_column(default=value, server_default=_server_literal(value), **kwargs)


def fk(
    target: str, *, ondelete: str = "RESTRICT", index: bool = True, **kwargs: Any
) -> MappedColumn[str]:
    """A foreign key column. RESTRICT unless a rule is given; indexed unless a
    composite index or constraint already starts with it."""
    return mapped_column(ForeignKey(target, ondelete=ondelete), index=index, **kwargs)
