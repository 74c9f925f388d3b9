"""JSON columns: a fresh document per row, changes made in place are saved,
and Python's None is SQL NULL, not JSON null."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.models import (
    AgentRegistry,
    WorkflowExecution,
)
from tests.factories import (
    AgentFactory,
    CanvasAuditFactory,
    EpisodeFactory,
    WorkflowExecutionFactory,
)
from tests.unit.readback import Reload, new_agent, stored


def test_configuration_mutated_in_place_is_persisted(
    db: Session, commit_and_expire: Reload
) -> None:
    agent = AgentFactory()
    commit_and_expire()

    assert agent.configuration is not None
    assert agent.schedule_config is not None
    agent.configuration["model"] = "small"
    agent.schedule_config["cron"] = "0 * * * *"
    commit_and_expire()

    assert agent.configuration == {"model": "small"}
    assert agent.schedule_config == {"cron": "0 * * * *"}


def test_json_defaults_are_fresh_per_row(db: Session) -> None:
    first, second = AgentFactory(), AgentFactory()
    assert first.configuration is not None
    first.configuration["shared"] = True
    db.flush()

    assert first.configuration is not second.configuration
    assert second.configuration == {}
    assert stored(db, AgentRegistry, "configuration", second.id) == {}


def test_outputs_mutated_in_place_are_persisted(db: Session, commit_and_expire: Reload) -> None:
    run = WorkflowExecutionFactory(outputs={"rows": 1})
    commit_and_expire()

    assert run.outputs is not None
    run.outputs["rows"] = 2
    commit_and_expire()

    assert run.outputs == {"rows": 2}


def test_list_columns_are_fresh_per_row_and_track_appends(
    db: Session, commit_and_expire: Reload
) -> None:
    first, second = EpisodeFactory(), EpisodeFactory()
    canvas_id = str(uuid.uuid4())
    commit_and_expire()

    assert first.canvas_ids is not None
    assert first.topics is not None
    first.canvas_ids.append(canvas_id)
    first.topics.extend(["billing", "refunds"])
    commit_and_expire()

    assert first.canvas_ids == [canvas_id]
    assert isinstance(first.canvas_ids[0], str)
    assert first.topics == ["billing", "refunds"]
    assert second.canvas_ids == []
    assert second.topics == []


def test_python_none_is_sql_null_not_json_null(db: Session) -> None:
    run = WorkflowExecution(workflow_id="w", input_data=None, outputs=None)
    agent = new_agent(configuration=None)
    db.add_all([run, agent])
    db.flush()
    audit = CanvasAuditFactory(audit_metadata=None)  # a factory's None too

    assert db.scalar(text("SELECT input_data IS NULL AND outputs IS NULL FROM workflow_executions"))
    assert db.scalar(text("SELECT configuration IS NULL FROM agent_registry"))
    assert agent.configuration is None
    is_null = db.scalar(
        text("SELECT audit_metadata IS NULL FROM canvas_audit WHERE id = :id"),
        {"id": audit.id},
    )
    assert bool(is_null) is True
