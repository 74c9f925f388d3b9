"""`updated_at`, on every model that has one: NULL when the row is inserted,
set (aware UTC) by every UPDATE, even over a value written behind the ORM's
back. (`created_at` and the UTC conversions: `TestLifecycleHooks` in
`test_models_orm.py`.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.schema import Base
from tests.factories import (
    AgentFactory,
    AgentProposalFactory,
    EpisodeFactory,
    TeamFactory,
    UserFactory,
    WorkflowExecutionFactory,
    WorkspaceFactory,
)
from tests.unit.readback import Reload, is_utc, primary_key, stored, table_of


@dataclass(frozen=True)
class UpdatedAtCase:
    factory: Callable[..., Base]
    field: str
    value: Any


UPDATED_AT_CASES = [
    UpdatedAtCase(WorkspaceFactory, "description", "renamed"),
    UpdatedAtCase(TeamFactory, "description", "renamed"),
    UpdatedAtCase(UserFactory, "first_name", "Renamed"),
    UpdatedAtCase(AgentFactory, "description", "renamed"),
    UpdatedAtCase(WorkflowExecutionFactory, "error", "renamed"),
    UpdatedAtCase(EpisodeFactory, "summary", "renamed"),
    UpdatedAtCase(AgentProposalFactory, "reasoning", "renamed"),
]


LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("case", UPDATED_AT_CASES, ids=lambda c: c.factory.__name__)
def test_updated_at_is_null_on_insert_and_set_on_every_update(
    db: Session, commit_and_expire: Reload, case: UpdatedAtCase
) -> None:
    obj = case.factory()
    model = type(obj)
    key = primary_key(obj)
    commit_and_expire()
    assert obj.updated_at is None  # type: ignore[attr-defined]
    assert stored(db, model, "updated_at", key) is None

    setattr(obj, case.field, case.value)
    db.flush()
    first = obj.updated_at  # type: ignore[attr-defined]
    assert is_utc(first)
    assert stored(db, model, "updated_at", key) == first

    # Backdate it behind the ORM's back: the next UPDATE must overwrite it.
    (pk_column,) = table_of(model).primary_key.columns
    db.execute(update(table_of(model)).where(pk_column == key).values(updated_at=LONG_AGO))
    commit_and_expire()
    assert obj.updated_at == LONG_AGO  # type: ignore[attr-defined]

    setattr(obj, case.field, case.value + " again")
    db.flush()
    second = obj.updated_at  # type: ignore[attr-defined]
    assert second is not None
    assert second > LONG_AGO
    assert stored(db, model, "updated_at", key) == second
