"""A factory lint, like FactoryBot's: every factory and every trait, all at once.

`lint(session, factories)` builds, creates and reloads each factory with no
arguments and then with each of its traits, every attempt in a savepoint of
its own, and returns every failure rather than stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import factory
from sqlalchemy import inspect
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class LintFailure:
    """One factory (with one trait, or none) that failed at one stage."""

    factory: str
    trait: str | None
    stage: str  # "build", "create" or "reload"
    error: str

    def __str__(self) -> str:
        variant = f"{self.factory}({self.trait}=True)" if self.trait else f"{self.factory}()"
        return f"{variant} failed to {self.stage}: {self.error}"


def traits(factory_class: Any) -> list[str]:
    """The names of a factory's traits, inherited ones included."""
    parameters = factory_class._meta.parameters
    return sorted(name for name, value in parameters.items() if isinstance(value, factory.Trait))


def lint(session: Session, factories: tuple[Any, ...] | list[Any]) -> list[LintFailure]:
    failures = []
    for factory_class in factories:
        for trait in [None, *traits(factory_class)]:
            failure = _lint_one(session, factory_class, trait)
            if failure is not None:
                failures.append(failure)
    return failures


def report(failures: list[LintFailure]) -> str:
    return f"{len(failures)} factory lint failure(s):\n" + "\n".join(f"  - {f}" for f in failures)


class _Undo(Exception):
    """Raised at the end of every attempt, so its savepoint is rolled back."""


def _lint_one(session: Session, factory_class: Any, trait: str | None) -> LintFailure | None:
    kwargs = {trait: True} if trait else {}
    stage = "build"
    outcome = None
    try:
        with session.begin_nested():
            factory_class.build(**kwargs)
            stage = "create"
            obj = factory_class.create(_session=session, **kwargs)
            stage = "reload"
            mismatches = _reload_mismatches(session, obj)
            if mismatches:
                outcome = LintFailure(factory_class.__name__, trait, stage, "; ".join(mismatches))
            raise _Undo
    except _Undo:
        return outcome
    except Exception as error:  # a lint reports every failure, whatever it is
        message = (str(error).splitlines() or [""])[0]
        return LintFailure(
            factory_class.__name__, trait, stage, f"{type(error).__name__}: {message}"
        )


def _reload_mismatches(session: Session, obj: Any) -> list[str]:
    """Columns whose value read back from the database differs from the object's."""
    session.flush()
    keys = [attribute.key for attribute in inspect(obj).mapper.column_attrs]
    created = {key: getattr(obj, key) for key in keys}
    session.expire(obj)
    session.refresh(obj)
    return [
        f"{key}: created {created[key]!r}, reloaded {getattr(obj, key)!r}"
        for key in keys
        if getattr(obj, key) != created[key]
    ]
