"""Tenant scoping: restrict a query to the rows of one workspace.

A model is tenant-owned when it maps a `workspace_id` column. Scoping fails
closed: a query that selects no tenant-owned model is an error, never a
silently unscoped query.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from sqlalchemy import Select, inspect, select
from sqlalchemy.orm import DeclarativeBase, with_loader_criteria

ModelT = TypeVar("ModelT", bound=DeclarativeBase)
# Any SELECT, of one entity or several (Select is generic over its row's types).
AnySelect = Select[*tuple[Any, ...]]
SelectT = TypeVar("SelectT", bound=AnySelect)


def is_tenant_owned(model: type[Any]) -> bool:
    """True when rows of `model` (a mapped class, or an alias of one) belong to
    a workspace: it maps `workspace_id`."""
    # An alias inspects as an AliasedInsp, whose `mapper` is its class's.
    mapper = getattr(inspect(model, raiseerr=False), "mapper", None)
    return mapper is not None and "workspace_id" in mapper.columns


@overload
def scoped_to_workspace(query: type[ModelT], workspace_id: str) -> Select[ModelT]: ...
@overload
def scoped_to_workspace(query: SelectT, workspace_id: str) -> SelectT: ...
def scoped_to_workspace(query: type[Any] | AnySelect, workspace_id: str) -> AnySelect:
    """`select(Model)`, or the given ORM SELECT, limited to `workspace_id`'s rows.

    Every tenant-owned model is filtered wherever it appears in the
    statement: selected, joined, aliased, or loaded through a relationship.
    Rows with no workspace belong to no tenant and are never returned.
    """
    statement = select(query) if isinstance(query, type) else query
    # A Core SELECT of a table describes no entity: it is refused below.
    selected = [d["entity"] for d in statement.column_descriptions if d.get("entity") is not None]
    if not any(is_tenant_owned(entity) for entity in selected):
        raise TypeError(
            "scoped_to_workspace: the query selects no model with a workspace_id; "
            # Each entity is a mapped class or an alias, `aliased(Name)`.
            f"selected: {[entity.__name__ for entity in selected]}"
        )
    registry = inspect(selected[0]).mapper.registry
    for mapper in registry.mappers:
        model = mapper.class_
        if is_tenant_owned(model):
            statement = statement.options(
                with_loader_criteria(
                    model, model.workspace_id == workspace_id, include_aliases=True
                )
            )
    return statement
