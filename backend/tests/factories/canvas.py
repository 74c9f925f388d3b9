"""Canvas audit records."""

from __future__ import annotations

import factory

from core.models import CanvasAudit
from tests.factories.base import BaseFactory, parent
from tests.factories.user import UserFactory


class CanvasAuditFactory(BaseFactory[CanvasAudit]):
    class Meta:
        model = CanvasAudit

    user = parent("user_id", UserFactory)
    canvas_id = factory.Faker("uuid4")
    component_type = "chart"
    component_name = factory.Sequence(lambda n: f"component-{n}")
    action = "present"
