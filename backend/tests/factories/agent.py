"""Agents and their executions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory

from core.models import AgentExecution, AgentRegistry, AgentStatus, ExecutionStatus
from tests.factories.base import BaseFactory, parent
from tests.factories.user import UserFactory
from tests.factories.workspace import WorkspaceFactory


def _maturity(status: AgentStatus, confidence: float) -> factory.Trait:
    return factory.Trait(status=status, confidence_score=confidence)


class AgentFactory(BaseFactory[AgentRegistry]):
    """An agent with no owner and no workspace unless given (or a trait)."""

    class Meta:
        model = AgentRegistry

    name = factory.Sequence(lambda n: f"Agent {n}")
    category = "operations"
    module_path = "agents.operations"
    class_name = factory.Sequence(lambda n: f"OperationsAgent{n}")

    class Params:
        student = _maturity(AgentStatus.STUDENT, 0.3)
        intern = _maturity(AgentStatus.INTERN, 0.6)
        supervised = _maturity(AgentStatus.SUPERVISED, 0.8)
        autonomous = _maturity(AgentStatus.AUTONOMOUS, 0.95)
        paused = factory.Trait(status=AgentStatus.PAUSED)
        deprecated = factory.Trait(status=AgentStatus.DEPRECATED)
        with_owner = factory.Trait(owner=factory.SubFactory(UserFactory))
        with_workspace = factory.Trait(workspace=factory.SubFactory(WorkspaceFactory))


class AgentExecutionFactory(BaseFactory[AgentExecution]):
    class Meta:
        model = AgentExecution

    agent = parent("agent_id", AgentFactory)
    input_summary = factory.Faker("sentence")

    class Params:
        completed = factory.Trait(
            status=ExecutionStatus.COMPLETED,
            completed_at=factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(seconds=2)),
            duration_seconds=2.0,
            output_summary="done",
        )
        failed = factory.Trait(
            status=ExecutionStatus.FAILED,
            completed_at=factory.LazyFunction(lambda: datetime.now(UTC)),
            error_message="agent raised an error",
        )
