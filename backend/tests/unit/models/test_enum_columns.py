"""Enum columns: a member or its value is accepted, and an unknown value is
refused on assignment, before any SQL, naming the field and every allowed
value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from core.models import (
    AccessType,
    AgentProposal,
    AgentStatus,
    BlockedTriggerContext,
    EpisodeAccessLog,
    FeedbackStatus,
    ProposalType,
    TriggerSource,
    User,
    UserRole,
    UserStatus,
    ValidationError,
    Workspace,
    WorkspaceStatus,
)
from core.schema import Base
from tests.factories import AgentFeedbackFactory
from tests.harness import QueryCounter
from tests.unit.readback import Reload, new_agent


@dataclass(frozen=True)
class EnumCase:
    build: Callable[[], Base]
    field: str
    allowed: list[str]


ENUM_CASES = [
    EnumCase(new_agent, "status", [m.value for m in AgentStatus]),
    EnumCase(new_agent, "required_role_for_autonomy", [m.value for m in UserRole]),
    EnumCase(lambda: User(), "status", [m.value for m in UserStatus]),
    EnumCase(lambda: Workspace(), "status", [m.value for m in WorkspaceStatus]),
    EnumCase(lambda: EpisodeAccessLog(), "access_type", [m.value for m in AccessType]),
    EnumCase(lambda: BlockedTriggerContext(), "trigger_source", [m.value for m in TriggerSource]),
    EnumCase(lambda: AgentProposal(), "proposal_type", [m.value for m in ProposalType]),
]


@pytest.mark.parametrize("case", ENUM_CASES, ids=lambda c: f"{type(c.build()).__name__}.{c.field}")
def test_unknown_enum_value_is_rejected_before_any_sql(
    count_queries: QueryCounter, case: EnumCase
) -> None:
    obj = case.build()
    with count_queries(0), pytest.raises(ValidationError) as error:
        setattr(obj, case.field, "genius")

    message = str(error.value)
    assert error.value.field == f"{type(obj).__name__}.{case.field}"
    assert message.startswith(error.value.field)
    assert "'genius'" in message
    for value in case.allowed:
        assert value in message


def test_adjudication_status_accepts_member_or_value(
    db: Session, commit_and_expire: Reload
) -> None:
    accepted = AgentFeedbackFactory(status=FeedbackStatus.ACCEPTED)
    rejected = AgentFeedbackFactory(status="rejected")
    commit_and_expire()

    assert (accepted.status, rejected.status) == ("accepted", "rejected")
