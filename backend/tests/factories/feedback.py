"""Feedback on agent runs."""

from __future__ import annotations

import factory

from core.models import AgentFeedback
from tests.factories.agent import AgentFactory
from tests.factories.base import BaseFactory, parent
from tests.factories.user import UserFactory


class AgentFeedbackFactory(BaseFactory[AgentFeedback]):
    class Meta:
        model = AgentFeedback

    agent = parent("agent_id", AgentFactory)
    user = parent("user_id", UserFactory)
    original_output = factory.Faker("sentence")
    user_correction = factory.Faker("sentence")
    feedback_type = "correction"
    rating = 4
