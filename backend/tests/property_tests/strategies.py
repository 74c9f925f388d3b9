"""Hypothesis strategies read off the models' own metadata.

Nothing here repeats the schema: a column's type, length, nullability, enum
class and `bounds` decide what is valid and what is not, so when a column
changes, its strategies follow. A column type this module does not know
raises, rather than being silently left out.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache, partial
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Boolean, Column, Enum, Float, Integer, String, inspect
from sqlalchemy.types import JSON

from core.models import (
    User,
    normalize_email,
)
from core.schema import (
    Base,
    UTCDateTime,
    as_utc,
)
from core.validation import Bounds, column_bounds, integer_range

# Every code point but two. Lone surrogates (which UTF-8 cannot encode) are
# text in no database. NUL is left out because PostgreSQL text and JSONB
# cannot hold it; the models do not refuse it themselves (SQLite stores it,
# PostgreSQL raises DataError): a known gap, not one this suite hides.
TEXT_ALPHABET = st.characters(codec="utf-8", exclude_characters="\x00")


# --------------------------------------------------------------------------
# Which columns there are
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One mapped column of one model, named as `ValidationError.field` names it."""

    model: type[Base]
    column: Column[Any]

    @property
    def key(self) -> str:
        return inspect(self.model).get_property_by_column(self.column).key

    @property
    def name(self) -> str:
        return f"{self.model.__name__}.{self.key}"

    @property
    def required(self) -> bool:
        """NOT NULL with no default of any kind: the caller must give it."""
        column = self.column
        return not (
            column.nullable
            or column.default is not None
            or column.server_default is not None
            or "constructor_default" in column.info
        )

    def __str__(self) -> str:  # readable pytest ids
        return self.name


def all_models() -> list[type[Base]]:
    return sorted((mapper.class_ for mapper in Base.registry.mappers), key=lambda m: m.__name__)


def value_fields(model: type[Base]) -> list[Field]:
    """Columns that hold the model's own data: not keys, which factories
    supply, nor an optimistic-lock counter, which the ORM owns."""
    mapper = inspect(model)
    return [
        Field(model, column)
        for column in mapper.columns
        if isinstance(column, Column)
        and not column.primary_key
        and not column.foreign_keys
        and column is not mapper.version_id_col
    ]


def all_value_fields() -> list[Field]:
    return [field for model in all_models() for field in value_fields(model)]


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


def texts(max_size: int | None) -> st.SearchStrategy[str]:
    """Unicode text up to `max_size` characters, often exactly at the limit."""
    if max_size is None:
        return st.text(TEXT_ALPHABET, max_size=200)
    return st.text(TEXT_ALPHABET, max_size=min(max_size, 40)) | repeated_to(max_size)


def repeated_to(length: int) -> st.SearchStrategy[str]:
    """Unicode text of exactly `length` characters (cheap to generate when long)."""
    return st.text(TEXT_ALPHABET, min_size=1, max_size=12).map(
        lambda piece: (piece * (length // len(piece) + 1))[:length]
    )


def over_long(length: int) -> st.SearchStrategy[str]:
    return st.tuples(repeated_to(length), st.text(TEXT_ALPHABET, min_size=1, max_size=8)).map(
        "".join
    )


# Naive (taken as UTC) or aware with any whole-minute offset.
UTC_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def timestamps() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.one_of(st.none(), UTC_OFFSETS),
    )


# JSONB stores numbers as decimals: a float that Python writes in exponent
# form (>= 1e16) comes back as an int of a slightly different value, so
# documents keep floats below that; smaller ones round-trip exactly.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
    | st.text(TEXT_ALPHABET, max_size=20)
)
JSON_KEYS = st.text(TEXT_ALPHABET, max_size=10)


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: hypothesis reads a multi-line lambda's source badly
    # and then warns that it never uses `children`.
    return st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=4)


JSON_VALUES = st.recursive(JSON_SCALARS, _json_containers, max_leaves=8)


def json_documents(shape: type[Any]) -> st.SearchStrategy[Any]:
    """A nested JSON object (`dict`) or array (`list`), as the column declares."""
    if shape is dict:
        return st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=5)
    return st.lists(JSON_VALUES, max_size=5)


@cache
def _type_hints(model: type[Base]) -> dict[str, Any]:
    return typing.get_type_hints(model, include_extras=True)


def json_shape(field: Field) -> type[Any]:
    """`dict` or `list`, read from the column's `Mapped[...]` annotation."""
    hint = _type_hints(field.model)[field.key]  # Mapped[X] or Mapped[X | None]
    (declared,) = typing.get_args(hint)
    if typing.get_origin(declared) is not typing.Annotated:
        (declared,) = (arg for arg in typing.get_args(declared) if arg is not type(None))
    python_type = typing.get_args(declared)[0]  # Annotated[dict[str, Any], ...]
    origin = typing.get_origin(python_type) or python_type
    if origin not in (dict, list):
        raise NotImplementedError(f"{field}: JSON column mapped as {python_type}")
    return typing.cast(type[Any], origin)


# --------------------------------------------------------------------------
# Emails: the one column with a validator of its own
# --------------------------------------------------------------------------


def _upper_if_reversible(char: str) -> str:
    # The contract lower-cases, it does not casefold: the micro sign upper-
    # cases to GREEK CAPITAL MU, whose lower case is GREEK SMALL MU, another
    # letter. Only letters that lower-casing brings back are case variants.
    upper = char.upper()
    return upper if upper.lower() == char else char


def case_variants(text: str) -> st.SearchStrategy[str]:
    """`text` with any letters upper-cased and a little surrounding whitespace."""
    return st.tuples(
        st.lists(st.booleans(), min_size=len(text), max_size=len(text)),
        st.sampled_from(["", " ", "  "]),
        st.sampled_from(["", " ", "\t"]),
    ).map(
        lambda t: (
            t[1]
            + "".join(
                _upper_if_reversible(c) if up else c for c, up in zip(text, t[0], strict=True)
            )
            + t[2]
        )
    )


def emails() -> st.SearchStrategy[str]:
    """Valid addresses as callers write them: any case, maybe padded."""
    unicode_local = st.text(st.characters(categories=("Ll", "Lu", "Nd")), min_size=1, max_size=20)
    plain = st.emails().filter(lambda address: len(address) <= 240)
    international = st.builds(lambda local: f"{local}@example.org", unicode_local)
    return (plain | international).flatmap(case_variants)


def malformed_emails() -> st.SearchStrategy[str]:
    """Addresses that break the name@domain.tld shape the model and CHECK share.

    Whitespace other than the space character (a tab inside the address) is
    rejected by the model only: portable SQL cannot test for it.
    """
    address = st.emails().filter(lambda a: len(a) <= 200).map(str.lower)

    def local(a: str) -> str:
        return a.rsplit("@", 1)[0]

    def domain(a: str) -> str:
        return a.rsplit("@", 1)[1]

    return st.one_of(
        address.map(lambda a: a.replace("@", "")),  # no @
        address.map(lambda a: f"{local(a)}@{a}"),  # two @
        address.map(lambda a: f"@{domain(a)}"),  # no name
        address.map(lambda a: f"{local(a)}@"),  # no domain
        address.map(lambda a: f"{local(a)}@{domain(a).replace('.', '')}"),  # no dot in domain
        address.map(lambda a: f"{local(a)} x@{domain(a)}"),  # a space inside
    )


# A column whose model validates it beyond its type gets its strategies here;
# `test_every_custom_validator_has_strategies` keeps this table complete.
CUSTOM: dict[Column[Any], tuple[Callable[[], st.SearchStrategy[Any]], Callable[[Any], Any]]] = {
    typing.cast(Column[Any], User.__table__.c.email): (emails, normalize_email),
}
CUSTOM_INVALID: dict[Column[Any], Callable[[], st.SearchStrategy[Any]]] = {
    typing.cast(Column[Any], User.__table__.c.email): malformed_emails,
}


# --------------------------------------------------------------------------
# Valid and invalid values of one column
# --------------------------------------------------------------------------


def whole_numbers_allowed(column: Column[Any], rule: Bounds | None) -> tuple[int, int]:
    """The lowest and highest value of an integer column: its type's range
    (PostgreSQL's INTEGER: 32 bits), narrowed by its `bounds`."""
    span = integer_range(column)
    assert span is not None, f"{column} is not an integer column"
    rule = rule or Bounds()
    low = span[0] if rule.ge is None else math.ceil(rule.ge)
    low = low if rule.gt is None else math.floor(rule.gt) + 1
    high = span[1] if rule.le is None else math.floor(rule.le)
    high = high if rule.lt is None else math.ceil(rule.lt) - 1
    return low, high


def numbers(column: Column[Any], rule: Bounds | None) -> st.SearchStrategy[Any]:
    if isinstance(column.type, Integer):
        return st.integers(*whole_numbers_allowed(column, rule))
    rule = rule or Bounds()
    return finite_floats(
        min_value=rule.gt if rule.ge is None else rule.ge,
        max_value=rule.lt if rule.le is None else rule.le,
        exclude_min=rule.gt is not None,
        exclude_max=rule.lt is not None,
    )


def valid_values(field: Field) -> st.SearchStrategy[Any]:
    """Values the column accepts, never None."""
    column, column_type = field.column, field.column.type
    if column in CUSTOM:
        return CUSTOM[column][0]()
    if isinstance(column_type, Enum) and column_type.enum_class is not None:
        members = list(column_type.enum_class)
        # By member or by its value string: callers write both.
        return st.sampled_from(members) | st.sampled_from([m.value for m in members])
    if isinstance(column_type, String):
        return texts(column_type.length)
    if isinstance(column_type, Boolean):
        return st.booleans()
    if isinstance(column_type, Integer | Float):
        return numbers(column, column_bounds(column))
    if isinstance(column_type, UTCDateTime):
        return timestamps()
    if isinstance(column_type, JSON):
        return json_documents(json_shape(field))
    raise NotImplementedError(f"{field}: no strategy for column type {column_type!r}")


finite_floats = partial(st.floats, allow_nan=False, allow_infinity=False)


def out_of_range(column: Column[Any], rule: Bounds) -> st.SearchStrategy[Any]:
    """Finite numbers just outside `rule`, of the column's own type."""
    options: list[st.SearchStrategy[Any]] = []
    span = integer_range(column)
    if span is not None:
        low, high = whole_numbers_allowed(column, rule)
        if rule.ge is not None or rule.gt is not None:
            options.append(st.integers(span[0], low - 1))
        if rule.le is not None or rule.lt is not None:
            options.append(st.integers(high + 1, span[1]))
    else:
        if rule.ge is not None:
            options.append(finite_floats(max_value=rule.ge, exclude_max=True))
        if rule.gt is not None:
            options.append(finite_floats(max_value=rule.gt))
        if rule.le is not None:
            options.append(finite_floats(min_value=rule.le, exclude_min=True))
        if rule.lt is not None:
            options.append(finite_floats(min_value=rule.lt))
    return st.one_of(options)


@dataclass(frozen=True)
class Violation:
    """A kind of out-of-domain value for one field, and its values."""

    field: Field
    kind: str  # "enum", "range", "integer", "length" or "custom"
    values: st.SearchStrategy[Any]

    def __str__(self) -> str:
        return f"{self.field}:{self.kind}"


def violations(field: Field) -> list[Violation]:
    """Every rule the column declares, as values that break it."""
    column, column_type = field.column, field.column.type
    found = []
    if column in CUSTOM_INVALID:
        found.append(Violation(field, "custom", CUSTOM_INVALID[column]()))
    if isinstance(column_type, Enum) and column_type.enum_class is not None:
        allowed = {str(member.value) for member in column_type.enum_class}
        # Within the column's length, so that the CHECK, not VARCHAR, rejects it.
        unknown = st.text(TEXT_ALPHABET, max_size=column_type.length or 32)
        found.append(Violation(field, "enum", unknown.filter(lambda v: v not in allowed)))
    elif isinstance(column_type, String) and column_type.length and column in CUSTOM:
        # Over-long but otherwise valid, so that only the length is wrong.
        valid, normalize = CUSTOM[column]
        padding = "x" * column_type.length
        long_values = valid().map(lambda v: padding + normalize(v))
        found.append(Violation(field, "length", long_values))
    elif isinstance(column_type, String) and column_type.length:
        found.append(Violation(field, "length", over_long(column_type.length)))
    rule = column_bounds(column)
    if integer_range(column) is not None:
        # Fractions within the column's range, so that only the integer rule
        # is broken (and PostgreSQL's rounding cannot leave the range).
        low, high = whole_numbers_allowed(column, rule)
        fractions = finite_floats(low, high).filter(lambda value: not value.is_integer())
        found.append(Violation(field, "integer", fractions))
    if rule is not None:
        found.append(Violation(field, "range", out_of_range(column, rule)))
    return found


def all_violations() -> list[Violation]:
    return [v for field in all_value_fields() for v in violations(field)]


# --------------------------------------------------------------------------
# Whole rows
# --------------------------------------------------------------------------


def row_values(model: type[Base]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for `model`: every required column, any others.

    A nullable column may be given as None; an omitted one takes its default.
    """
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in value_fields(model):
        values = valid_values(field)
        if field.column.nullable:
            values = st.none() | values
        (required if field.required else optional)[field.key] = values
    return st.fixed_dictionaries(required, optional=optional)


def expected_after_reload(field: Field, value: Any) -> Any:
    """What a value given for `field` reads back as."""
    if value is None:
        return None
    if field.column in CUSTOM:
        return CUSTOM[field.column][1](value)
    if isinstance(field.column.type, UTCDateTime):
        return as_utc(value)
    return value


def is_aware_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


__all__ = [
    "Field",
    "Violation",
    "all_models",
    "all_value_fields",
    "all_violations",
    "case_variants",
    "emails",
    "expected_after_reload",
    "is_aware_utc",
    "json_documents",
    "json_shape",
    "malformed_emails",
    "row_values",
    "timestamps",
    "valid_values",
    "value_fields",
    "violations",
]
