"""The session hooks of `core.models`: constructor defaults and ON DELETE SET
NULL mirrored onto loaded objects. (A step's workflow_id copied from its run:
`TestWorkflowStepExecutionModel`; the email rule: `test_email.py`.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from core.models import (
    AccessType,
    AgentExecution,
    AgentRegistry,
    AgentStatus,
    Base,
    CanvasAudit,
    Episode,
    EpisodeAccessLog,
    User,
    WorkflowExecution,
)
from tests.factories import (
    AgentFactory,
    CanvasAuditFactory,
    UserFactory,
    WorkspaceFactory,
)


def test_constructor_defaults_fill_only_what_was_not_given() -> None:
    assert len(AgentRegistry().id) == 36
    assert len(AgentRegistry(id=None).id) == 36
    assert AgentRegistry(id="chosen").id == "chosen"
    assert AgentRegistry().configuration == {}
    assert AgentRegistry(configuration=None).configuration is None
    first, second = AgentRegistry(), AgentRegistry()
    assert first.configuration is not second.configuration


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


def test_only_the_relationship_through_the_nulled_key_is_cleared(db: Session) -> None:
    owner, workspace = UserFactory(), WorkspaceFactory()
    # Both many-to-ones loaded; only `owner` goes through the deleted key.
    agent = AgentFactory(owner=owner, workspace=workspace)
    assert agent.__dict__["workspace"] is workspace

    db.delete(owner)
    db.flush()

    assert agent.__dict__["owner"] is None
    assert agent.__dict__["workspace"] is workspace


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


def test_a_failed_flush_leaves_nothing_stale_for_the_next_one(db: Session) -> None:
    # The hook indexes the loaded objects once per flush. A flush that fails
    # after the hook ran must not hand its index on to the next flush.
    owner = UserFactory()
    agent = AgentFactory(owner=owner)
    db.commit()

    def fail(*_: Any) -> None:
        raise RuntimeError("the flush fails after the hook ran")

    event.listen(User, "after_delete", fail)
    try:
        db.delete(owner)
        with pytest.raises(RuntimeError, match="after the hook ran"):
            db.flush()
    finally:
        event.remove(User, "after_delete", fail)
    db.rollback()
    assert agent.user_id == owner.id  # reloaded: the delete never happened

    db.delete(owner)
    db.flush()
    assert "user_id" in agent.__dict__
    assert agent.user_id is None


# --------------------------------------------------------------------------
# At scale: hundreds of deletes among thousands of loaded objects
# --------------------------------------------------------------------------

# 3,301 objects loaded (with the workspace); one flush deletes 200 users and
# 50 of the 100 episodes that the other episodes consolidate into.
USERS, AGENTS, RUNS, EPISODES, EXECUTIONS, ACCESS_LOGS = 300, 600, 600, 600, 900, 300
DELETED_USERS, CONSOLIDATED, DELETED_EPISODES = 200, 100, 50


def _set_null_keys_of(model: type[Base]) -> dict[str, str]:
    """Attribute -> table it points at, for each ON DELETE SET NULL key of `model`."""
    mapper = inspect(model)
    return {
        mapper.get_property_by_column(column).key: foreign_key.column.table.name
        for column in mapper.local_table.columns
        for foreign_key in column.foreign_keys
        if foreign_key.ondelete == "SET NULL"
    }


def _columns(obj: Base) -> dict[str, Any]:
    return {attr.key: obj.__dict__[attr.key] for attr in inspect(type(obj)).column_attrs}


def _seed_scale(db: Session) -> list[Base]:
    """Rows of six models written with bulk inserts, then all loaded."""
    workspace = WorkspaceFactory().id
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    agents = [str(uuid.uuid4()) for _ in range(AGENTS)]
    episodes = [str(uuid.uuid4()) for _ in range(EPISODES)]
    rows: dict[type[Base], list[dict[str, Any]]] = {
        User: [{"id": user, "email": f"scale{n}@example.com"} for n, user in enumerate(users)],
        AgentRegistry: [
            {
                "id": agent,
                "name": f"agent {n}",
                "category": "scale",
                "module_path": "tests.scale",
                "class_name": "Agent",
                "user_id": users[n % USERS],
                "workspace_id": workspace,
            }
            for n, agent in enumerate(agents)
        ],
        WorkflowExecution: [
            {"workflow_id": f"workflow {n}", "user_id": users[n % USERS]} for n in range(RUNS)
        ],
        Episode: [
            {
                "id": episode,
                "title": f"episode {n}",
                "agent_id": agents[n],
                "workspace_id": workspace,
                "maturity_at_time": AgentStatus.STUDENT,
                "user_id": users[n % USERS],
                "supervisor_id": users[(n + 7) % USERS],
                # A self-reference: the first ones are what the others consolidate into.
                "consolidated_into": episodes[n % CONSOLIDATED] if n >= CONSOLIDATED else None,
            }
            for n, episode in enumerate(episodes)
        ],
        AgentExecution: [
            {"agent_id": agents[n % AGENTS], "workspace_id": workspace} for n in range(EXECUTIONS)
        ],
        EpisodeAccessLog: [
            {
                "episode_id": episodes[CONSOLIDATED + n],
                "accessed_by": users[n],
                "accessed_by_agent": agents[n],
                "access_type": AccessType.RETRIEVAL,
            }
            for n in range(ACCESS_LOGS)
        ],
    }
    loaded: list[Base] = []
    for model, model_rows in rows.items():
        db.execute(insert(model), model_rows)
        # In the order written (which rows are deleted depends on it): MariaDB
        # returns an unordered SELECT in primary key order, uuids shuffled.
        written = {row["id"]: n for n, row in enumerate(model_rows) if "id" in row}
        found = db.scalars(select(model)).all()
        loaded += sorted(found, key=lambda obj: written.get(_identity(obj)[1], 0))
    return loaded


def _identity(obj: Base) -> tuple[str, Any]:
    """(table, primary key) of a loaded object."""
    state = inspect(obj)
    assert state.identity is not None
    return str(type(obj).__tablename__), state.identity[0]


def test_set_null_at_scale_nulls_every_reference_and_touches_nothing_else(db: Session) -> None:
    loaded = _seed_scale(db)
    users = [obj for obj in loaded if isinstance(obj, User)]
    episodes = [obj for obj in loaded if isinstance(obj, Episode)]
    deleted = users[USERS - DELETED_USERS :] + episodes[:DELETED_EPISODES]
    gone = {_identity(obj) for obj in deleted}
    kept = [obj for obj in loaded if _identity(obj) not in gone]
    # Every other agent's `owner` and run's `user` is loaded (from the identity map).
    related = {
        (obj, name): getattr(obj, name)
        for name, model in (("owner", AgentRegistry), ("user", WorkflowExecution))
        for obj in [obj for obj in kept if isinstance(obj, model)][::2]
    }
    expected = {}
    for obj in kept:
        columns = _columns(obj)
        for attribute, table in _set_null_keys_of(type(obj)).items():
            if (table, columns[attribute]) in gone:
                columns[attribute] = None
        expected[obj] = columns
    assert sum(_columns(obj) != columns for obj, columns in expected.items()) > 1000

    for obj in deleted:
        db.delete(obj)
    db.flush()

    assert {obj: _columns(obj) for obj in kept} == expected
    assert {(obj, name): obj.__dict__[name] for obj, name in related} == {
        key: None if _identity(user) in gone else user for key, user in related.items()
    }
    assert not db.dirty, "the hook's writes must not be flushed again"
    # The database agrees with every loaded object, key for key.
    for model in {type(obj) for obj in kept}:
        keys = [getattr(model, key) for key in _set_null_keys_of(model)]
        rows = db.execute(select(*inspect(model).primary_key, *keys))
        stored = {row[0]: tuple(row[1:]) for row in rows}
        held = {
            _identity(obj)[1]: tuple(obj.__dict__[key.key] for key in keys)
            for obj in kept
            if type(obj) is model
        }
        assert held == stored, model.__name__
