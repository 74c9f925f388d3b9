"""Episodes, their segments and access logs."""

from __future__ import annotations

from datetime import UTC, datetime

import factory

from core.models import (
    AccessType,
    AgentRegistry,
    AgentStatus,
    Episode,
    EpisodeAccessLog,
    EpisodeSegment,
    EpisodeStatus,
)
from tests.factories.agent import AgentFactory
from tests.factories.base import BaseFactory, copied_from, parent
from tests.factories.workspace import WorkspaceFactory


class EpisodeFactory(BaseFactory[Episode]):
    class Meta:
        model = Episode

    title = factory.Faker("sentence", nb_words=4)
    agent = parent("agent_id", AgentFactory)
    workspace = parent("workspace_id", WorkspaceFactory)
    maturity_at_time = copied_from(
        "agent", "agent_id", AgentRegistry, "status", missing=AgentStatus.STUDENT
    )

    class Params:
        completed = factory.Trait(
            status=EpisodeStatus.COMPLETED,
            ended_at=factory.LazyFunction(lambda: datetime.now(UTC)),
            segments=factory.RelatedFactoryList(
                "tests.factories.episode.EpisodeSegmentFactory", "episode", size=3
            ),
        )


class EpisodeSegmentFactory(BaseFactory[EpisodeSegment]):
    class Meta:
        model = EpisodeSegment

    episode = parent("episode_id", EpisodeFactory)
    segment_type = "conversation"
    # Increasing across calls, hence increasing within each episode.
    sequence_order = factory.Sequence(lambda n: n)
    content = factory.Faker("paragraph")


class EpisodeAccessLogFactory(BaseFactory[EpisodeAccessLog]):
    class Meta:
        model = EpisodeAccessLog

    episode = parent("episode_id", EpisodeFactory)
    access_type = AccessType.RETRIEVAL
