"""The factory lint (`tests.factories.lint`): every factory and every trait
builds, creates and reloads, and every failure is reported at once. (What
each trait promises: `test_factories.py`.)"""

from __future__ import annotations

import factory
from sqlalchemy.orm import Session

from core.models import AgentRegistry
from tests.factories import (
    ALL_FACTORIES,
    AgentFactory,
)
from tests.factories.base import BaseFactory
from tests.factories.lint import lint, report


def test_every_factory_and_trait_builds_creates_and_reloads(db: Session) -> None:
    failures = lint(db, ALL_FACTORIES)
    assert not failures, report(failures)


class BrokenAgentFactory(BaseFactory[AgentRegistry]):
    """Broken on purpose, to show that the lint reports every failure."""

    class Meta:
        model = AgentRegistry

    name = factory.Sequence(lambda n: f"Broken agent {n}")
    module_path = "agents.broken"
    class_name = "BrokenAgent"
    # `category` is NOT NULL and not given: a plain create fails.

    class Params:
        categorised = factory.Trait(category="operations")  # the one that works
        sleeping = factory.Trait(status="sleeping")  # not an AgentStatus: build fails
        # Creates, but JSON has no tuples: the document reads back different.
        tuple_in_json = factory.Trait(
            category="operations", configuration=factory.LazyFunction(lambda: {"pair": (1, 2)})
        )


def test_the_lint_reports_every_failure_not_just_the_first(db: Session) -> None:
    failures = lint(db, [BrokenAgentFactory, AgentFactory])
    reported = {(failure.factory, failure.trait, failure.stage) for failure in failures}
    assert reported == {
        ("BrokenAgentFactory", None, "create"),
        ("BrokenAgentFactory", "sleeping", "build"),
        ("BrokenAgentFactory", "tuple_in_json", "reload"),
    }
    text = report(failures)
    assert text.startswith("3 factory lint failure(s):")
    assert "BrokenAgentFactory() failed to create: IntegrityError" in text
    assert "BrokenAgentFactory(sleeping=True) failed to build: ValidationError" in text
    assert "configuration: created {'pair': (1, 2)}, reloaded {'pair': [1, 2]}" in text
    # Each attempt ran in its own savepoint: the failures left nothing behind.
    assert db.query(AgentRegistry).count() == 0
