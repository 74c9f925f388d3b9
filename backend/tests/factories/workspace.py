"""Workspaces, teams and team messages."""

from __future__ import annotations

import factory

from core.models import Team, TeamMessage, Workspace, WorkspaceStatus
from tests.factories.base import BaseFactory, parent
from tests.factories.user import UserFactory


class WorkspaceFactory(BaseFactory[Workspace]):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")

    class Params:
        trial = factory.Trait(status=WorkspaceStatus.TRIAL)
        startup = factory.Trait(is_startup=True, company_size="1-10")


class TeamFactory(BaseFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    workspace = parent("workspace_id", WorkspaceFactory)


class TeamMessageFactory(BaseFactory[TeamMessage]):
    class Meta:
        model = TeamMessage

    team = parent("team_id", TeamFactory)
    sender = parent("user_id", UserFactory)
    content = factory.Faker("sentence")
