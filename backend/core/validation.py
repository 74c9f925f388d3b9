"""Column rules, declared once per column and checked on every write path.

A model declares a rule on the column: an enum type, a string length, an
integer type, `info=bounds(...)`, `info=normalized_by(...)`, or a column type
with `coerce_assigned`. `install_validators` turns each column's rules into
one validator with a clear message, run:

- on assignment (the constructor included), as an attribute event;
- on the rows and `.values(...)` of ORM INSERT and UPDATE statements run by a
  `Session` (`session.execute(insert(Model), rows)` and the like), through one
  `do_orm_execute` hook (`check_orm_statement`); a bad row raises before any
  SQL is sent, naming its index in the list, so no row of the batch is written;
- by the database, as named CHECK constraints (`add_range_constraints`) where
  the column type does not already enforce the rule.

Only values that are given are validated: a missing NOT NULL column is left to
the database, which raises `IntegrityError` at flush as callers expect.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CheckConstraint,
    Column,
    Enum,
    Float,
    Insert,
    Integer,
    SmallInteger,
    String,
    Table,
    Update,
    event,
    insert,
    inspect,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapper, ORMExecuteState, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Grouping
from sqlalchemy.sql.expression import ClauseElement


class ValidationError(ValueError):
    """A value a column does not accept; `field` names it as `Model.column`.

    `row` is the value's row in a bulk statement: its index in the list of
    dicts given to `session.execute` (None for a single object or row).
    """

    def __init__(self, field: str, message: str, *, row: int | None = None) -> None:
        where = "" if row is None else f"row {row}: "
        super().__init__(f"{where}{field}: {message}")
        self.field = field
        self.message = message
        self.row = row

    def in_row(self, row: int) -> ValidationError:
        """The same error, located in row `row` of a bulk statement."""
        return ValidationError(self.field, self.message, row=row)


# --------------------------------------------------------------------------
# The rules a column can declare
# --------------------------------------------------------------------------


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


Normalizer = Callable[[Any], Any]


def normalized_by(function: Normalizer) -> dict[str, Normalizer]:
    """Column `info` naming the function that checks and normalises its values:
    `mapped_column(info=normalized_by(normalize_email))`. The function returns
    the value to store, or raises `ValueError` (`ValidationError` included) or
    `TypeError` saying what is wrong."""
    return {"normalize": function}


def column_normalizer(column: Column[Any]) -> Normalizer | None:
    found = column.info.get("normalize")
    return found if callable(found) else None


def allowed_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


# The whole numbers each SQL integer type holds. PostgreSQL refuses a value
# outside them; SQLite would store it (any size up to 64 bits).
INTEGER_RANGES: dict[type[Integer], tuple[int, int]] = {
    SmallInteger: (-(2**15), 2**15 - 1),
    Integer: (-(2**31), 2**31 - 1),
    BigInteger: (-(2**63), 2**63 - 1),
}


def integer_range(column: Column[Any]) -> tuple[int, int] | None:
    """The (lowest, highest) whole number an integer column holds; None for
    a column of any other type."""
    column_type = column.type
    if not isinstance(column_type, Integer):
        return None
    for kind in (SmallInteger, BigInteger):
        if isinstance(column_type, kind):
            return INTEGER_RANGES[kind]
    return INTEGER_RANGES[Integer]


def integer_sql(column: str, span: tuple[int, int]) -> str:
    """The integer rule as portable SQL (SQLite, PostgreSQL, MariaDB).

    SQLite stores 3.5, 'abc' or 1e300 in an INTEGER column as given; none of
    them equals its ROUND() or lies in the range. PostgreSQL rounds or refuses
    such values before a CHECK sees them, so there the CHECK never fires.
    """
    low, high = span
    return f"{column} = ROUND({column}) AND {column} BETWEEN {low} AND {high}"


# --------------------------------------------------------------------------
# Turning rules into validators and constraints
# --------------------------------------------------------------------------

# A column's rule, bound to its field name: returns the value to store
# (normalised) or raises ValidationError. Never called with None.
Validate = Callable[[Any], Any]


class CoercesOnAssignment(Protocol):
    """A column type that normalises values as soon as they are assigned."""

    def coerce_assigned(self, value: Any) -> Any: ...


def _coerce_check(field: str, coerce: Normalizer) -> Validate:
    def check(value: Any) -> Any:
        try:
            return coerce(value)
        except ValidationError as error:  # already worded; named after this field
            raise ValidationError(field, error.message) from error
        except (TypeError, ValueError) as error:
            raise ValidationError(field, str(error)) from error

    return check


def _enum_check(field: str, enum_class: type[enum.Enum]) -> Validate:
    by_value = {member.value: member for member in enum_class}
    allowed = ", ".join(allowed_values(enum_class))

    def check(value: Any) -> Any:
        if isinstance(value, enum_class):
            return value
        if isinstance(value, str) and value in by_value:
            return by_value[value]
        raise ValidationError(
            field, f"{value!r} is not a valid {enum_class.__name__}; allowed values: {allowed}"
        )

    return check


def _length_check(field: str, length: int) -> Validate:
    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > length:
            raise ValidationError(field, f"at most {length} characters allowed, got {len(value)}")
        return value

    return check


def _integer_check(field: str, span: tuple[int, int]) -> Validate:
    """Whole numbers only: an `int`, or anything with `__index__` (numpy
    integers, IntEnum members), stored as a plain `int`. A bool, a float (3.0
    too), a Decimal and a numeric string are refused, not converted: a float
    in an integer column is a computation that the next time may give 3.5."""
    low, high = span
    allowed = f"a whole number from {low} to {high}"

    def check(value: Any) -> Any:
        if type(value) is not int:
            if isinstance(value, bool) or not hasattr(type(value), "__index__"):
                raise ValidationError(
                    field,
                    f"expected a whole number (an int), got {type(value).__name__} {value!r}",
                )
            value = operator.index(value)
        if not low <= value <= high:
            raise ValidationError(field, f"must be {allowed}, got {value}")
        return value

    return check


def _bounds_check(field: str, rule: Bounds) -> Validate:
    # `rule.admits`, unrolled: the bulk paths run this once per row. NaN
    # compares false with everything, so `ge <= value <= le` refuses it.
    ge = -math.inf if rule.ge is None else rule.ge
    le = math.inf if rule.le is None else rule.le
    gt, lt = rule.gt, rule.lt

    def check(value: Any) -> Any:
        kind = type(value)  # the usual float or int costs two identity tests
        if (kind is not float and kind is not int) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValidationError(field, f"expected a number {rule.describe()}, got {value!r}")
        if (
            not ge <= value <= le
            or (gt is not None and not value > gt)
            or (lt is not None and not value < lt)
        ):
            raise ValidationError(field, f"must be {rule.describe()}, got {value!r}")
        return value

    return check


def _checks_for(field: str, column: Column[Any]) -> list[Validate]:
    checks: list[Validate] = []
    if hasattr(column.type, "coerce_assigned"):
        checks.append(_coerce_check(field, column.type.coerce_assigned))
    normalize = column_normalizer(column)
    if normalize is not None:
        checks.append(_coerce_check(field, normalize))
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        checks.append(_enum_check(field, column.type.enum_class))
    elif isinstance(column.type, String) and column.type.length:
        checks.append(_length_check(field, column.type.length))
    span = integer_range(column)
    if span is not None:
        checks.append(_integer_check(field, span))
    rule = column_bounds(column)
    if rule is not None:
        checks.append(_bounds_check(field, rule))
    return checks


def column_validator(field: str, column: Column[Any]) -> Validate | None:
    """Every rule of `column` as one function; None when it declares none."""
    checks = _checks_for(field, column)
    if len(checks) <= 1:
        # One rule (the usual case) is called directly: the bulk paths run
        # it once per row.
        return checks[0] if checks else None

    def validate(value: Any) -> Any:
        for check in checks:
            value = check(value)
        return value

    return validate


def add_range_constraints(table: Table) -> None:
    """Mirror the numeric rules of `table` as named CHECK constraints:
    `<column>_range` for a `bounds` rule, `<column>_integer` for the integer
    rule of every integer column."""
    for column in table.columns:
        span = integer_range(column)
        if span is not None:
            table.append_constraint(
                CheckConstraint(integer_sql(column.name, span), name=f"{column.name}_integer")
            )
        rule = column_bounds(column)
        if rule is not None:
            sql: str | FloatRange = rule.sql(column.name)
            if isinstance(column.type, Float) and rule.le is None and rule.lt is None:
                sql = FloatRange(str(sql), column.name)
            table.append_constraint(CheckConstraint(sql, name=f"{column.name}_range"))


class FloatRange(ColumnElement[bool]):
    """The CHECK of a float column bounded from below only: `rule`, and not NaN
    where the backend can store NaN. Compiled per dialect, so `create_all`
    writes each backend's own spelling (the migrations write the same).

    PostgreSQL orders NaN above every number, so a lower bound alone admits
    it: `<column> <> 'NaN'` refuses it. SQLite compares a number with the text
    'NaN' as unequal (and stores NaN as NULL anyway). MariaDB's DOUBLE cannot
    hold NaN at all, and in strict mode refuses to compare a number with the
    text 'NaN' ("Truncated incorrect DOUBLE value"): there the rule stands alone.
    """

    inherit_cache = False  # compiled to text once per CHECK, never cached

    def __init__(self, rule: str, column: str) -> None:
        self.rule = rule
        self.column = column

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        # Inside NOT (...) or another expression, the AND must stay together.
        return self if against is None else Grouping(self)


@compiles(FloatRange)
def _float_range_sql(element: FloatRange, _compiler: SQLCompiler, **_kw: Any) -> str:
    return f"{element.rule} AND {element.column} <> 'NaN'"


@compiles(FloatRange, "mysql")
def _float_range_sql_on_mysql(element: FloatRange, _compiler: SQLCompiler, **_kw: Any) -> str:
    return element.rule


def install_validators(model: type[Any], table: Table) -> None:
    """Check each column's rules whenever a value is assigned to `model`, and
    in every ORM INSERT or UPDATE of `model` run by a Session.

    Runs while the class is being mapped, before its relationships can be
    resolved, so it reads the table rather than the (unconfigured) mapper;
    declarative names each column's attribute after its `key`.
    """
    rules = ModelRules(model, table)
    _MODEL_RULES[model] = rules
    for key, validate in rules.validators.items():
        event.listen(getattr(model, key), "set", _on_assignment(validate), retval=True)
    if not event.contains(Session, "do_orm_execute", check_orm_statement):
        event.listen(Session, "do_orm_execute", check_orm_statement)


def _on_assignment(validate: Validate) -> Callable[..., Any]:
    def on_set(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
        # A SQL expression (`episode.access_count = Episode.access_count + 1`)
        # is computed by the database at flush: its CHECKs judge the result.
        if (
            value is None
            or isinstance(value, ClauseElement)
            or hasattr(value, "__clause_element__")
        ):
            return value
        return validate(value)

    return on_set


# --------------------------------------------------------------------------
# Rows of ORM bulk statements
# --------------------------------------------------------------------------

Row = Mapping[str, Any]
# One column a row sets: its key, its validator (None: no rule), and whether
# the ORM leaves the column out of the INSERT when the row gives None, so that
# the column's default applies.
Step = tuple[str, Validate | None, bool]
# A constructor-only default a row lacks: its key and what makes a fresh value.
Fill = tuple[str, Callable[[], Any]]


@dataclass(frozen=True)
class CheckedRows:
    """Rows checked and normalised, and whether a plain Core executemany
    writes them exactly as the ORM's bulk INSERT would."""

    rows: list[Row]
    core_ready: bool


class ModelRules:
    """Every column rule of one model, arranged for checking rows quickly.

    Per set of keys a statement's rows use, the work is planned once (which
    columns have a rule, which defaults to fill), so that a row costs one
    call per column that has a rule, and nothing for the others.
    """

    def __init__(self, model: type[Any], table: Table) -> None:
        self.model = model
        self.columns: dict[str, Column[Any]] = {column.key: column for column in table.columns}
        self.validators: dict[str, Validate] = {}
        for key, column in self.columns.items():
            validate = column_validator(f"{model.__name__}.{key}", column)
            if validate is not None:
                self.validators[key] = validate
        # Filled in by the constructor (models.py), not by the column: a
        # fresh `{}` or `[]` per row. A uuid key has a column default too,
        # which the ORM applies to a row that lacks it or gives None.
        self.fills: tuple[Fill, ...] = tuple(
            (key, column.info["constructor_default"])
            for key, column in self.columns.items()
            if "constructor_default" in column.info
        )
        self._plans: dict[tuple[frozenset[str], bool], tuple[tuple[Step, ...], tuple[Fill, ...]]]
        self._plans = {}

    def _omitted_when_none(self, column: Column[Any]) -> bool:
        # What the ORM's bulk INSERT does with None (unless render_nulls):
        # it leaves the column out, so a default applies instead of NULL.
        defaulted = column.default is not None or column.server_default is not None
        return (defaulted or column.primary_key) and not column.type.should_evaluate_none

    def _plan(
        self, keys: frozenset[str], inserting: bool, statement: Insert | Update | None
    ) -> tuple[tuple[Step, ...], tuple[Fill, ...]]:
        found = self._plans.get((keys, inserting))
        if found is not None:
            return found
        others = keys - self.columns.keys()
        if others and statement is not None:
            # A key may name a bindparam() of the statement (in a WHERE, say).
            others -= {bind.key for bind in statement._get_embedded_bindparams()}
        if others:
            # The ORM would silently drop it: most likely a misspelt column.
            name = self.model.__name__
            raise ValidationError(f"{name}.{min(others)}", f"{name} has no such column")
        columns = keys & self.columns.keys()
        steps = tuple(
            (key, self.validators.get(key), self._omitted_when_none(self.columns[key]))
            for key in columns
            if key in self.validators or self._omitted_when_none(self.columns[key])
        )
        fills = tuple(fill for fill in self.fills if fill[0] not in keys) if inserting else ()
        found = (steps, fills)
        if columns == keys:  # a plan that admits bindparam names is the statement's own
            self._plans[(keys, inserting)] = found
        return found

    def check_row(
        self, row: Row, *, inserting: bool, statement: Insert | Update | None = None
    ) -> Row:
        """One row (a dict given to `session.execute`), checked and normalised."""
        try:
            return self.check_rows([row], inserting=inserting, statement=statement).rows[0]
        except ValidationError as error:  # one row: no row number to give
            raise ValidationError(error.field, error.message) from None

    def check_rows(
        self, rows: Sequence[Row], *, inserting: bool, statement: Insert | Update | None = None
    ) -> CheckedRows:
        """Rows checked and normalised as the constructor would; the given
        dicts are never changed (a row that needs a change is copied).
        `statement` is the one the rows are for: a key may name its bindparams.

        Raises the first `ValidationError`, located in its row.
        """
        checked: list[Row] = []
        keys: Any = None
        core_ready = True
        steps: tuple[Step, ...] = ()
        fills: tuple[Fill, ...] = ()
        try:
            for row in rows:
                if row.keys() != keys:
                    core_ready = keys is None and core_ready
                    keys = row.keys()
                    steps, fills = self._plan(frozenset(keys), inserting, statement)
                copy: dict[str, Any] | None = None
                for key, validate, omitted_when_none in steps:
                    value = row[key]
                    if value is None:
                        core_ready = core_ready and not omitted_when_none
                    elif validate is not None:
                        normalized = validate(value)
                        if normalized is not value:
                            if copy is None:
                                copy = dict(row)
                            copy[key] = normalized
                if fills:
                    copy = dict(row) if copy is None else copy
                    for key, make in fills:
                        copy[key] = make()
                checked.append(row if copy is None else copy)
        except ValidationError as error:
            raise error.in_row(len(checked)) from None
        return CheckedRows(checked, core_ready)

    def check_values(self, statement: Insert | Update) -> Insert | Update:
        """The statement's `.values(...)`, checked; normalised values replace
        the given ones. SQL expressions are left to the database."""
        given: Mapping[Any, Any] = statement._values or {}  # no public accessor
        changed: dict[Any, Any] = {}
        for column, value in given.items():
            key = column if isinstance(column, str) else column.key
            validate = self.validators.get(key)
            if validate is None or not isinstance(value, BindParameter) or value.value is None:
                continue
            normalized = validate(value.value)
            if normalized is not value.value:
                changed[column] = normalized
        if not changed:
            return statement
        if isinstance(statement, Update) and statement._maintain_values_ordering:
            # `.ordered_values()` may be given once only: give it again, whole.
            rebuilt = statement._clone()
            rebuilt._values, rebuilt._maintain_values_ordering = None, False
            return rebuilt.ordered_values(
                *((column, changed.get(column, value)) for column, value in given.items())
            )
        return statement.values(changed)

    @cached_property
    def plain_insert(self) -> Insert:
        return insert(self.model)

    @cached_property
    def core_equivalent(self) -> bool:
        """True when, for rows of one key set with no None where a default
        applies, a plain Core executemany inserts what the ORM's bulk INSERT
        would: one table, no version counter or polymorphic identity for the
        ORM to add, attribute keys equal to column keys."""
        mapper: Mapper[Any] = inspect(self.model)
        return (
            mapper.inherits is None
            and mapper.version_id_col is None
            and mapper.polymorphic_on is None
            and all(mapper.get_property_by_column(c).key == c.key for c in mapper.local_table.c)
        )


_MODEL_RULES: dict[type[Any], ModelRules] = {}


def rules_for(mapper: Mapper[Any]) -> ModelRules | None:
    """The rules of `mapper`'s model (or of the model it inherits them from)."""
    for candidate in mapper.iterate_to_root():
        found = _MODEL_RULES.get(candidate.class_)
        if found is not None:
            return found
    return None


# ORM insert options that change how rows are written: with them, the ORM
# writes the rows its own way.
_ORM_INSERT_OPTIONS = ("dml_strategy", "render_nulls")


def check_orm_statement(state: ORMExecuteState) -> None:
    """The Session's `do_orm_execute` hook: check and normalise what an ORM
    INSERT or UPDATE of a model writes, before any SQL is sent.

    Covers `session.execute(insert(Model), rows)` (the ORM bulk insert),
    `session.execute(update(Model), rows)` (bulk UPDATE by primary key), a
    single dict of parameters, and `.values(...)`. A Core statement on a
    `Table` (`insert(Model.__table__)`) is not an ORM statement: it is the
    deliberately unchecked path, left to the database's CHECKs.

    Rows the ORM's bulk INSERT would write column for column (one key set,
    no None where a default applies) are handed to Core's executemany
    directly (`dml_strategy="raw"`): the same rows, without the ORM's
    per-row bookkeeping, which would cost more than the checks.
    """
    statement = state.statement
    if not isinstance(statement, Insert | Update) or not state.is_orm_statement:
        return
    mapper = state.bind_mapper
    rules = None if mapper is None else rules_for(mapper)
    if rules is None:
        return
    inserting = isinstance(statement, Insert)
    if statement._values:
        state.statement = rules.check_values(statement)
    params = state.parameters
    if isinstance(params, Mapping):
        state.parameters = dict(rules.check_row(params, inserting=inserting, statement=statement))
    elif isinstance(params, list) and params:
        checked = rules.check_rows(params, inserting=inserting, statement=statement)
        state.parameters = checked.rows
        if (
            inserting
            and checked.core_ready
            and rules.core_equivalent
            and not any(option in state.execution_options for option in _ORM_INSERT_OPTIONS)
            and statement.compare(rules.plain_insert)
        ):
            state.update_execution_options(dml_strategy="raw")
