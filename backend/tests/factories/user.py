"""Users."""

from __future__ import annotations

import factory

from core.models import User, UserRole, UserStatus
from tests.factories.base import BaseFactory


class UserFactory(BaseFactory[User]):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password_hash = "hash"

    class Params:
        admin = factory.Trait(role=UserRole.WORKSPACE_ADMIN)
        team_lead = factory.Trait(role=UserRole.TEAM_LEAD)
        suspended = factory.Trait(status=UserStatus.SUSPENDED)
        sso = factory.Trait(password_hash=None)
