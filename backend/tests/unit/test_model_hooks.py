"""The session hooks of `core.models`: constructor defaults, a step's
workflow_id, ON DELETE SET NULL mirrored onto loaded objects, email rules."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.models import (
    AgentRegistry,
    CanvasAudit,
    User,
    ValidationError,
    WorkflowStepExecution,
    normalize_email,
)
from tests.factories import (
    AgentFactory,
    CanvasAuditFactory,
    UserFactory,
    WorkflowExecutionFactory,
    WorkflowStepExecutionFactory,
)


def test_constructor_defaults_fill_only_what_was_not_given() -> None:
    assert len(AgentRegistry().id) == 36
    assert len(AgentRegistry(id=None).id) == 36
    assert AgentRegistry(id="chosen").id == "chosen"
    assert AgentRegistry().configuration == {}
    assert AgentRegistry(configuration=None).configuration is None
    first, second = AgentRegistry(), AgentRegistry()
    assert first.configuration is not second.configuration


def test_a_step_keeps_a_workflow_id_it_was_given(db: Session) -> None:
    run = WorkflowExecutionFactory(workflow_id="from-the-run")
    step = WorkflowStepExecutionFactory(execution=run, workflow_id="given")
    db.expire(step)
    assert step.workflow_id == "given"


def test_a_step_added_by_key_copies_its_runs_workflow_id(db: Session) -> None:
    run = WorkflowExecutionFactory(workflow_id="by-key")
    db.add(
        step := WorkflowStepExecution(
            execution_id=run.execution_id,
            step_id="s",
            step_name="S",
            step_type="action",
            sequence_order=0,
        )
    )
    db.flush()
    assert step.workflow_id == "by-key"


def test_deleting_a_user_nulls_the_loaded_references_to_it(db: Session) -> None:
    # Twice, for two models' worth of SET NULL keys: the second delete of a
    # User reads the references from the hook's cache.
    for _ in range(2):
        owner = UserFactory()
        agent = AgentFactory(owner=owner)
        unrelated = AgentFactory(with_owner=True)
        db.delete(owner)
        db.flush()
        # Not expired, not refreshed: the hook set them.
        assert "user_id" in agent.__dict__
        assert agent.user_id is None
        assert agent.owner is None
        assert unrelated.user_id is not None


def test_a_reference_never_loaded_is_left_for_the_database(db: Session) -> None:
    audit = CanvasAuditFactory()
    agent = AgentFactory()
    audit.agent_id = agent.id
    db.flush()
    db.expire(audit, ["agent"])
    db.delete(agent)
    db.flush()
    assert audit.agent_id is None
    db.expire(audit)
    assert db.get(CanvasAudit, audit.id) is audit
    assert audit.agent_id is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [("Ada@Example.COM", "ada@example.com"), ("  bob@example.org ", "bob@example.org")],
)
def test_emails_are_normalised(given: str, stored: str) -> None:
    assert normalize_email(given) == stored
    assert User(email=given).email == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("not-an-email", "'not-an-email' is not a valid email address"),
        ("a b@example.com", "is not a valid email address (expected name@domain.tld)"),
        (42, "expected a string, got 42"),
    ],
)
def test_malformed_emails_are_refused(given: object, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        User(email=given)
    assert refused.value.field == "User.email"
    assert message in str(refused.value)
