"""factory_boy factories for every model, bound to the current test's session.

`XFactory(_session=db, **fields)` creates and flushes into `db`; without
`_session`, the session the `db` fixture bound for the current test is used.
No factory commits. Async tests: `await async_create(XFactory, **fields)`
writes to `async_db` (or `_session=`).
"""

from typing import Any

from core.schema import Base
from tests.factories.agent import AgentExecutionFactory, AgentFactory
from tests.factories.base import (
    BaseFactory,
    async_create,
    async_create_batch,
    bind_async_session,
    bind_session,
    current_async_session,
    current_session,
)
from tests.factories.canvas import CanvasAuditFactory
from tests.factories.episode import (
    EpisodeAccessLogFactory,
    EpisodeFactory,
    EpisodeSegmentFactory,
)
from tests.factories.feedback import AgentFeedbackFactory
from tests.factories.training import AgentProposalFactory, BlockedTriggerContextFactory
from tests.factories.user import UserFactory
from tests.factories.workflow import WorkflowExecutionFactory, WorkflowStepExecutionFactory
from tests.factories.workspace import TeamFactory, TeamMessageFactory, WorkspaceFactory

ALL_FACTORIES = (
    UserFactory,
    WorkspaceFactory,
    TeamFactory,
    TeamMessageFactory,
    AgentFactory,
    AgentExecutionFactory,
    AgentFeedbackFactory,
    WorkflowExecutionFactory,
    WorkflowStepExecutionFactory,
    EpisodeFactory,
    EpisodeSegmentFactory,
    EpisodeAccessLogFactory,
    CanvasAuditFactory,
    BlockedTriggerContextFactory,
    AgentProposalFactory,
)

# Each model's factory (one factory per model).
FACTORY_FOR: dict[type[Base], type[BaseFactory[Any]]] = {
    factory_class._meta.model: factory_class for factory_class in ALL_FACTORIES
}

__all__ = [
    "ALL_FACTORIES",
    "FACTORY_FOR",
    "AgentExecutionFactory",
    "AgentFactory",
    "AgentFeedbackFactory",
    "AgentProposalFactory",
    "BaseFactory",
    "BlockedTriggerContextFactory",
    "CanvasAuditFactory",
    "EpisodeAccessLogFactory",
    "EpisodeFactory",
    "EpisodeSegmentFactory",
    "TeamFactory",
    "TeamMessageFactory",
    "UserFactory",
    "WorkflowExecutionFactory",
    "WorkflowStepExecutionFactory",
    "WorkspaceFactory",
    "async_create",
    "async_create_batch",
    "bind_async_session",
    "bind_session",
    "current_async_session",
    "current_session",
]
