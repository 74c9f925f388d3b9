"""The maturity guard's records: blocked triggers and agent proposals."""

from __future__ import annotations

from datetime import UTC, datetime

import factory

from core.models import (
    AgentProposal,
    AgentRegistry,
    BlockedTriggerContext,
    ProposalStatus,
    ProposalType,
    RoutingDecision,
    TriggerSource,
)
from tests.factories.agent import AgentFactory
from tests.factories.base import BaseFactory, given, parent
from tests.factories.user import UserFactory


def _agent(resolver: object) -> AgentRegistry:
    agent: AgentRegistry = given(resolver, "agent", "agent_id", AgentRegistry)
    return agent


class BlockedTriggerContextFactory(BaseFactory[BlockedTriggerContext]):
    class Meta:
        model = BlockedTriggerContext

    agent = parent("agent_id", AgentFactory)
    agent_name = factory.LazyAttribute(lambda o: _agent(o).name)
    agent_maturity_at_block = factory.LazyAttribute(lambda o: _agent(o).status)
    confidence_score_at_block = factory.LazyAttribute(lambda o: _agent(o).confidence_score)
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
    agent_name = factory.LazyAttribute(lambda o: _agent(o).name)
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
