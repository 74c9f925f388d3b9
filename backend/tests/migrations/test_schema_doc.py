"""docs/schema.md is generated from the models and must be kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from core.models import Base
from core.tools import schema_doc
from core.tools.schema_doc import COMMAND, SCHEMA_DOC, render_schema_doc, write_schema_doc


def test_the_committed_schema_doc_is_current() -> None:
    committed = SCHEMA_DOC.read_text() if SCHEMA_DOC.exists() else ""

    assert committed == render_schema_doc(Base.metadata), (
        f"{SCHEMA_DOC.name} is stale: the models changed. Run `{COMMAND}` and commit the result."
    )


def test_the_diagram_shows_keys_rules_and_cardinality() -> None:
    metadata = MetaData()
    Table("parents", metadata, Column("id", Integer, primary_key=True))
    Table(
        "children",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("parents.id", ondelete="CASCADE"), nullable=False),
        Column("guardian_id", ForeignKey("parents.id", ondelete="SET NULL")),
        Column("code", String(12), nullable=False),
        UniqueConstraint("code"),
    )

    page = render_schema_doc(metadata)

    assert "        integer id PK\n" in page
    assert '        integer parent_id FK "not null"\n' in page
    assert '        string(12) code UK "not null"\n' in page
    assert 'children }o--|| parents : "parent_id (CASCADE)"' in page
    assert 'children }o--o| parents : "guardian_id (SET NULL)"' in page


def test_a_composite_key_is_labelled_with_its_columns_and_no_rule_as_restrict() -> None:
    metadata = MetaData()
    Table(
        "rooms",
        metadata,
        Column("building", Integer, primary_key=True),
        Column("number", Integer, primary_key=True),
    )
    Table(
        "bookings",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("building", Integer, nullable=False),
        Column("number", Integer, nullable=False),
        ForeignKeyConstraint(["building", "number"], ["rooms.building", "rooms.number"]),
    )

    page = render_schema_doc(metadata)

    assert '    bookings }o--|| rooms : "building, number (RESTRICT)"\n' in page


def test_writing_the_doc_reports_whether_it_changed(tmp_path: Path) -> None:
    page = tmp_path / "project" / "docs" / "schema.md"  # neither folder exists yet

    assert write_schema_doc(page) is True
    assert page.read_text() == render_schema_doc(Base.metadata)
    assert write_schema_doc(page) is False


def test_the_command_writes_the_page_then_finds_it_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "schema.md"
    monkeypatch.setattr(schema_doc, "SCHEMA_DOC", page)

    assert schema_doc.main() == 0
    assert schema_doc.main() == 0

    assert capsys.readouterr().out == f"{page}: updated\n{page}: already current\n"
    assert page.read_text() == render_schema_doc(Base.metadata)


def test_the_command_names_a_page_inside_the_project_by_its_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(schema_doc, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(schema_doc, "SCHEMA_DOC", tmp_path / "docs" / "schema.md")

    assert schema_doc.main() == 0

    assert capsys.readouterr().out == "docs/schema.md: updated\n"
