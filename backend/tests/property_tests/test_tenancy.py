"""`core.tenancy.scoped_to_workspace`: one workspace never sees another's rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from core.models import (
    AgentExecution,
    AgentRegistry,
    User,
    Workspace,
)
from core.schema import Base
from core.tenancy import is_tenant_owned, scoped_to_workspace
from tests.factories import AgentExecutionFactory, AgentFactory, WorkspaceFactory
from tests.harness import db_examples
from tests.profiles import examples_per_case
from tests.property_tests.strategies import all_models
from tests.property_tests.test_values import create

TENANT_MODELS = [model for model in all_models() if is_tenant_owned(model)]
WORKSPACES = 3


def test_the_tenant_owned_models_are_found() -> None:
    names = {model.__name__ for model in TENANT_MODELS}
    assert {"AgentRegistry", "Episode", "Team", "WorkflowExecution"} <= names
    assert "User" not in names


def test_a_class_that_is_not_mapped_is_not_tenant_owned() -> None:
    class Plain:
        workspace_id = "w"

    assert is_tenant_owned(Plain) is False


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda model: model.__name__)
@db_examples(max_examples=examples_per_case())
@given(data=st.data())
def test_rows_of_one_workspace_are_never_returned_for_another(
    db: Session, model: type[Base], data: st.DataObject
) -> None:
    nullable = model.__table__.c.workspace_id.nullable
    owners = st.integers(0, WORKSPACES - 1) | (st.none() if nullable else st.nothing())
    placement = data.draw(st.lists(owners, max_size=6), label="workspace of each row")
    workspaces = [WorkspaceFactory() for _ in range(WORKSPACES)]
    rows = [create(model, workspace_id=None if n is None else workspaces[n].id) for n in placement]
    for workspace in workspaces:
        found = db.scalars(scoped_to_workspace(model, workspace.id)).all()
        expected = {id(row) for row in rows if row.workspace_id == workspace.id}
        assert {id(row) for row in found} == expected


def _two_agents_run_in_my_workspace() -> tuple[Workspace, Workspace, AgentRegistry, AgentRegistry]:
    """My workspace and theirs, an agent in each, and an execution by each
    agent recorded in mine: (mine, theirs, my agent, their agent)."""
    mine, theirs = WorkspaceFactory(), WorkspaceFactory()
    my_agent = AgentFactory(workspace=mine)
    their_agent = AgentFactory(workspace=theirs)
    AgentExecutionFactory(agent=my_agent, workspace_id=mine.id)
    # Recorded in my workspace, but by an agent of theirs.
    AgentExecutionFactory(agent=their_agent, workspace_id=mine.id)
    return mine, theirs, my_agent, their_agent


def test_joined_tenant_models_are_scoped_too(db: Session) -> None:
    mine, theirs, my_agent, their_agent = _two_agents_run_in_my_workspace()

    query = select(AgentExecution).join(AgentExecution.agent)
    rows = db.scalars(scoped_to_workspace(query, mine.id)).all()
    assert [row.agent_id for row in rows] == [my_agent.id]

    names = db.scalars(scoped_to_workspace(select(AgentRegistry.name), theirs.id)).all()
    assert names == [their_agent.name]


def test_an_aliased_tenant_model_is_scoped_too(db: Session) -> None:
    mine, _, my_agent, _ = _two_agents_run_in_my_workspace()

    agent = aliased(AgentRegistry)
    query = select(AgentExecution).join(agent, AgentExecution.agent)
    rows = db.scalars(scoped_to_workspace(query, mine.id)).all()
    assert [row.agent_id for row in rows] == [my_agent.id]


def test_a_selected_aliased_tenant_model_is_scoped(db: Session) -> None:
    mine, theirs = WorkspaceFactory(), WorkspaceFactory()
    my_agent = AgentFactory(workspace=mine)
    AgentFactory(workspace=theirs)

    agent = aliased(AgentRegistry)
    rows = db.scalars(scoped_to_workspace(select(agent), mine.id)).all()

    assert [row.id for row in rows] == [my_agent.id]


def test_a_core_select_of_a_table_is_refused_as_selecting_no_model() -> None:
    with pytest.raises(TypeError) as refused:
        scoped_to_workspace(select(AgentRegistry.__table__), "any-workspace")
    assert str(refused.value) == (
        "scoped_to_workspace: the query selects no model with a workspace_id; selected: []"
    )


def test_a_query_of_no_tenant_owned_model_is_refused() -> None:
    with pytest.raises(TypeError) as refused:
        scoped_to_workspace(select(User), "any-workspace")
    assert str(refused.value) == (
        "scoped_to_workspace: the query selects no model with a workspace_id; selected: ['User']"
    )


def test_the_refusal_names_each_selected_entity_aliases_included() -> None:
    with pytest.raises(TypeError) as refused:
        scoped_to_workspace(select(aliased(User), User.email), "any-workspace")
    assert str(refused.value) == (
        "scoped_to_workspace: the query selects no model with a workspace_id; "
        "selected: ['aliased(User)', 'User']"
    )
