"""`core.validation`: one rule per column, checked on assignment and by the database."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import CheckConstraint, Column, Float, Integer, MetaData, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.database import Base
from core.models import AgentProposal, AgentRegistry, AgentStatus, User, UserRole, Workspace
from core.validation import (
    Bounds,
    ValidationError,
    add_range_constraints,
    allowed_values,
    bounds,
    column_bounds,
)


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
    with pytest.raises(IntegrityError, match=r"(?i)not.null"):
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
