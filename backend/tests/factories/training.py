"""The maturity guard's records: blocked triggers and agent proposals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import factory

from core.models import (
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    BlockedTriggerContext,
    ProposalStatus,
    ProposalType,
    RoutingDecision,
    TriggerSource,
)
from tests.factories.agent import AgentFactory
from tests.factories.base import BaseFactory, copied_from, parent
from tests.factories.user import UserFactory


def _from_agent(attribute: str, missing: Any) -> Any:
    return copied_from("agent", "agent_id", AgentRegistry, attribute, missing=missing)


class BlockedTriggerContextFactory(BaseFactory[BlockedTriggerContext]):
    class Meta:
        model = BlockedTriggerContext

    agent = parent("agent_id", AgentFactory)
    agent_name = _from_agent("name", missing="missing agent")
    agent_maturity_at_block = _from_agent("status", missing=AgentStatus.STUDENT)
    confidence_score_at_block = _from_agent("confidence_score", missing=0.0)
    trigger_source = TriggerSource.DATA_SYNC
    trigger_type = factory.Sequence(lambda n: f"crm.record_updated.{n}")
    routing_decision = RoutingDecision.TRAINING
    block_reason = "agent maturity below the level this trigger requires"

    class Params:
        resolved_trigger = factory.Trait(
            resolved=True,
            resolved_at=factory.LazyFunction(lambda: datetime.now(UTC)),
            resolution_outcome="handled after training",
        )


class AgentProposalFactory(BaseFactory[AgentProposal]):
    class Meta:
        model = AgentProposal

    agent = parent("agent_id", AgentFactory)
    agent_name = _from_agent("name", missing="missing agent")
    proposal_type = ProposalType.TRAINING
    title = factory.Sequence(lambda n: f"Training proposal {n}")
    description = factory.Faker("paragraph")
    proposed_by = "maturity-guard"
    learning_objectives = factory.LazyFunction(lambda: ["follow the escalation policy"])
    estimated_duration_hours = 4.0

    class Params:
        approved = factory.Trait(
            status=ProposalStatus.APPROVED,
            approver=factory.SubFactory(UserFactory),
            approved_at=factory.LazyFunction(lambda: datetime.now(UTC)),
        )
        rejected = factory.Trait(status=ProposalStatus.REJECTED)
