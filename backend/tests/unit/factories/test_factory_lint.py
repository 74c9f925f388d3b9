"""The factory lint over every factory and trait, and the traits' promises."""

from __future__ import annotations

import factory
import pytest
from sqlalchemy.orm import Session

from core.governance import maturity_for_confidence
from core.models import (
    AgentRegistry,
    AgentStatus,
    EpisodeStatus,
    ExecutionStatus,
    ProposalStatus,
)
from tests.factories import (
    ALL_FACTORIES,
    AgentExecutionFactory,
    AgentFactory,
    AgentProposalFactory,
    BlockedTriggerContextFactory,
    EpisodeFactory,
)
from tests.factories.base import BaseFactory
from tests.factories.lint import lint, report


def test_every_factory_and_trait_builds_creates_and_reloads(db: Session) -> None:
    failures = lint(db, ALL_FACTORIES)
    assert not failures, report(failures)


class BrokenAgentFactory(BaseFactory[AgentRegistry]):
    """Broken on purpose, to show that the lint reports every failure."""

    class Meta:
        model = AgentRegistry

    name = factory.Sequence(lambda n: f"Broken agent {n}")
    module_path = "agents.broken"
    class_name = "BrokenAgent"
    # `category` is NOT NULL and not given: a plain create fails.

    class Params:
        categorised = factory.Trait(category="operations")  # the one that works
        sleeping = factory.Trait(status="sleeping")  # not an AgentStatus: build fails
        # Creates, but JSON has no tuples: the document reads back different.
        tuple_in_json = factory.Trait(
            category="operations", configuration=factory.LazyFunction(lambda: {"pair": (1, 2)})
        )


def test_the_lint_reports_every_failure_not_just_the_first(db: Session) -> None:
    failures = lint(db, [BrokenAgentFactory, AgentFactory])
    reported = {(failure.factory, failure.trait, failure.stage) for failure in failures}
    assert reported == {
        ("BrokenAgentFactory", None, "create"),
        ("BrokenAgentFactory", "sleeping", "build"),
        ("BrokenAgentFactory", "tuple_in_json", "reload"),
    }
    text = report(failures)
    assert text.startswith("3 factory lint failure(s):")
    assert "BrokenAgentFactory() failed to create: IntegrityError" in text
    assert "BrokenAgentFactory(sleeping=True) failed to build: ValidationError" in text
    assert "configuration: created {'pair': (1, 2)}, reloaded {'pair': [1, 2]}" in text
    # Each attempt ran in its own savepoint: the failures left nothing behind.
    assert db.query(AgentRegistry).count() == 0


def reload(db: Session, obj: object) -> None:
    db.flush()
    db.expire(obj)
    db.refresh(obj)


@pytest.mark.parametrize(
    "status",
    [AgentStatus.STUDENT, AgentStatus.INTERN, AgentStatus.SUPERVISED, AgentStatus.AUTONOMOUS],
)
def test_an_agent_per_maturity_level(db: Session, status: AgentStatus) -> None:
    agent = AgentFactory(**{status.value: True})
    reload(db, agent)
    assert agent.status == status
    assert maturity_for_confidence(agent.confidence_score) == status


def test_completed_and_failed_executions(db: Session) -> None:
    completed = AgentExecutionFactory(completed=True)
    failed = AgentExecutionFactory(failed=True)
    reload(db, completed)
    reload(db, failed)
    assert completed.status == ExecutionStatus.COMPLETED
    assert completed.completed_at is not None
    assert completed.completed_at >= completed.started_at
    assert completed.error_message is None
    assert failed.status == ExecutionStatus.FAILED
    assert failed.completed_at is not None
    assert failed.error_message


def test_approved_and_rejected_proposals(db: Session) -> None:
    approved = AgentProposalFactory(approved=True)
    rejected = AgentProposalFactory(rejected=True)
    reload(db, approved)
    reload(db, rejected)
    assert approved.status == ProposalStatus.APPROVED
    assert approved.approver is not None
    assert approved.approved_by == approved.approver.id
    assert approved.approved_at is not None
    assert rejected.status == ProposalStatus.REJECTED
    assert rejected.approved_by is None


def test_a_resolved_blocked_trigger(db: Session) -> None:
    trigger = BlockedTriggerContextFactory(resolved_trigger=True)
    open_trigger = BlockedTriggerContextFactory()
    reload(db, trigger)
    reload(db, open_trigger)
    assert trigger.resolved is True
    assert trigger.resolved_at is not None
    assert trigger.resolution_outcome
    assert open_trigger.resolved is False
    assert open_trigger.resolved_at is None


def test_a_completed_episode_with_segments(db: Session) -> None:
    episode = EpisodeFactory(completed=True)
    db.flush()
    db.expire_all()
    assert episode.status == EpisodeStatus.COMPLETED
    assert episode.ended_at is not None
    orders = [segment.sequence_order for segment in episode.segments]
    assert len(orders) == 3
    assert orders == sorted(orders)
    assert len(set(orders)) == 3
    assert {segment.episode_id for segment in episode.segments} == {episode.id}
