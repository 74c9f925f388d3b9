"""`docs/schema.md`: the schema as a Mermaid ER diagram, generated from
`Base.metadata` so that it cannot drift from the models.

    python -m core.tools.schema_doc     # or: make schema-doc
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import Column, Enum, ForeignKeyConstraint, MetaData, Table, UniqueConstraint
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.database import PROJECT_ROOT
from core.models import Base
from core.validation import column_bounds

SCHEMA_DOC = PROJECT_ROOT / "docs" / "schema.md"
COMMAND = "make schema-doc"


def render_schema_doc(metadata: MetaData) -> str:
    """The whole Markdown page for `metadata`."""
    lines = [
        "# Database schema",
        "",
        f"Generated from `Base.metadata` by `{COMMAND}`; do not edit by hand.",
        "A test fails when this page no longer matches the models.",
        "",
        "Relationship labels name the foreign key column and its ON DELETE rule.",
        "",
        "```mermaid",
        "erDiagram",
    ]
    tables = sorted(metadata.tables.values(), key=lambda table: table.name)
    for table in tables:
        lines += _entity(table)
    for table in tables:
        lines += _relationships(table)
    lines += ["```", ""]
    return "\n".join(lines)


def _entity(table: Table) -> list[str]:
    lines = [f"    {table.name} {{"]
    for column in table.columns:
        keys = _keys(table, column)
        note = _note(column)
        parts = [_type_name(column.type), column.name]
        if keys:
            parts.append(", ".join(keys))
        if note:
            parts.append(f'"{note}"')
        lines.append("        " + " ".join(parts))
    lines.append("    }")
    return lines


def _keys(table: Table, column: Column[object]) -> list[str]:
    keys = []
    if column.primary_key:
        keys.append("PK")
    if column.foreign_keys:
        keys.append("FK")
    unique = column.unique or any(
        isinstance(constraint, UniqueConstraint) and list(constraint.columns) == [column]
        for constraint in table.constraints
    )
    if unique:
        keys.append("UK")
    return keys


def _note(column: Column[object]) -> str:
    notes = []
    if not column.nullable and not column.primary_key:
        notes.append("not null")
    if isinstance(column.type, Enum):
        notes.append(" | ".join(column.type.enums))
    rule = column_bounds(column)
    if rule is not None:
        notes.append(rule.describe())
    return "; ".join(notes)


def _type_name(type_: TypeEngine[object]) -> str:
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, Enum):
        return "enum"
    name = type(type_).__name__.lower()
    length = getattr(type_, "length", None)
    return f"{name}({length})" if length else name


def _relationships(table: Table) -> list[str]:
    lines = []
    constraints = sorted(
        (c for c in table.constraints if isinstance(c, ForeignKeyConstraint)),
        key=lambda constraint: list(constraint.column_keys),
    )
    for constraint in constraints:
        optional = all(column.nullable for column in constraint.columns)
        # Crow's foot: many rows here point at zero-or-one / exactly one there.
        cardinality = "}o--o|" if optional else "}o--||"
        label = f"{', '.join(constraint.column_keys)} ({constraint.ondelete or 'RESTRICT'})"
        lines.append(f'    {table.name} {cardinality} {constraint.referred_table.name} : "{label}"')
    return lines


def write_schema_doc(path: Path | None = None) -> bool:
    """Regenerate the page (default `docs/schema.md`); True when it changed."""
    path = path or SCHEMA_DOC
    content = render_schema_doc(Base.metadata)
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return True


def main() -> int:
    changed = write_schema_doc()
    shown = (
        SCHEMA_DOC.relative_to(PROJECT_ROOT)
        if SCHEMA_DOC.is_relative_to(PROJECT_ROOT)
        else SCHEMA_DOC
    )
    print(f"{shown}: {'updated' if changed else 'already current'}")
    return 0


if __name__ == "__main__":  # pragma: no cover - `make schema-doc`
    sys.exit(main())
