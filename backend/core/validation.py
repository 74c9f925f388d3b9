"""Column rules checked twice: in Python on assignment, and in the database.

A model declares a rule once, on the column (an enum type, a string length,
`info=bounds(...)`); `apply_column_rules` turns each rule into an attribute
validator with a clear message and, where the database cannot infer it, a
named CHECK constraint. Only values that are given are validated: a missing
NOT NULL column is left to the database, which raises `IntegrityError` at
flush as callers expect.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import CheckConstraint, Column, Enum, Float, String, Table, event


class ValidationError(ValueError):
    """A value a column does not accept; `field` names it as `Model.column`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Bounds:
    """A numeric interval; any side may be open, closed or absent."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: float) -> bool:
        # Written so that NaN, which compares false with everything, fails.
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def _terms(self) -> list[tuple[str, float]]:
        pairs = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return [(op, bound) for op, bound in pairs if bound is not None]

    def describe(self) -> str:
        return " and ".join(f"{op} {_number(bound)}" for op, bound in self._terms())

    def sql(self, column: str) -> str:
        return " AND ".join(f"{column} {op} {_number(bound)}" for op, bound in self._terms())


def bounds(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> dict[str, Bounds]:
    """Column `info` declaring a numeric range: `mapped_column(info=bounds(ge=0, le=1))`."""
    return {"bounds": Bounds(ge=ge, gt=gt, le=le, lt=lt)}


def column_bounds(column: Column[Any]) -> Bounds | None:
    found = column.info.get("bounds")
    return found if isinstance(found, Bounds) else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def allowed_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


# --------------------------------------------------------------------------
# Turning rules into validators and constraints
# --------------------------------------------------------------------------

Check = Callable[[str, Any], Any]


def _enum_check(enum_class: type[enum.Enum]) -> Check:
    by_value = {member.value: member for member in enum_class}
    allowed = ", ".join(allowed_values(enum_class))

    def check(field: str, value: Any) -> Any:
        if isinstance(value, enum_class):
            return value
        if isinstance(value, str) and value in by_value:
            return by_value[value]
        raise ValidationError(
            field, f"{value!r} is not a valid {enum_class.__name__}; allowed values: {allowed}"
        )

    return check


def _length_check(length: int) -> Check:
    def check(field: str, value: Any) -> Any:
        if isinstance(value, str) and len(value) > length:
            raise ValidationError(field, f"at most {length} characters allowed, got {len(value)}")
        return value

    return check


def _bounds_check(rule: Bounds) -> Check:
    def check(field: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(field, f"expected a number {rule.describe()}, got {value!r}")
        if not rule.admits(value) or (isinstance(value, float) and math.isnan(value)):
            raise ValidationError(field, f"must be {rule.describe()}, got {value!r}")
        return value

    return check


class CoercesOnAssignment(Protocol):
    """A column type that normalises values as soon as they are assigned."""

    def coerce_assigned(self, value: Any) -> Any: ...


def _type_check(column_type: CoercesOnAssignment) -> Check:
    def check(field: str, value: Any) -> Any:
        try:
            return column_type.coerce_assigned(value)
        except (TypeError, ValueError) as error:
            raise ValidationError(field, str(error)) from error

    return check


def _checks_for(column: Column[Any]) -> list[Check]:
    checks: list[Check] = []
    if hasattr(column.type, "coerce_assigned"):
        checks.append(_type_check(column.type))
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        checks.append(_enum_check(column.type.enum_class))
    elif isinstance(column.type, String) and column.type.length:
        checks.append(_length_check(column.type.length))
    rule = column_bounds(column)
    if rule is not None:
        checks.append(_bounds_check(rule))
    return checks


def add_range_constraints(table: Table) -> None:
    """Mirror every `bounds` rule of `table` as a named CHECK constraint."""
    for column in table.columns:
        rule = column_bounds(column)
        if rule is not None:
            sql = rule.sql(column.name)
            if isinstance(column.type, Float) and rule.le is None and rule.lt is None:
                # PostgreSQL orders NaN above every number, so a lower bound
                # alone admits it. SQLite compares a number with the text
                # 'NaN' as unequal (and stores NaN as NULL anyway).
                sql += f" AND {column.name} <> 'NaN'"
            table.append_constraint(CheckConstraint(sql, name=f"{column.name}_range"))


def install_validators(model: type[Any], table: Table) -> None:
    """Validate each column's rules whenever a value is assigned to `model`.

    Runs while the class is being mapped, before its relationships can be
    resolved, so it reads the table rather than the (unconfigured) mapper;
    declarative names each column's attribute after its `key`.
    """
    for column in table.columns:
        checks = _checks_for(column)
        if checks:
            field = f"{model.__name__}.{column.key}"
            event.listen(getattr(model, column.key), "set", _validator(field, checks), retval=True)


def _validator(field: str, checks: list[Check]) -> Callable[..., Any]:
    def validate(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
        if value is None:
            return value
        for check in checks:
            value = check(field, value)
        return value

    return validate
