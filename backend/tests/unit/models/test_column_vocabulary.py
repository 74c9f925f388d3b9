"""`core.schema`'s column vocabulary, as a table built from it here shows it:
`defaulted(...)` (the ORM's default, and the server default written for a
bool, a string with a quote, a number; a fresh `{}` or `[]` from the
constructor instead) and `fk(...)` (RESTRICT and indexed unless told
otherwise). The models are built from the same words when `core.models` is
imported; these tests build their own table, so that the words are tested
themselves."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

from core.schema import JSONDict, JSONList, Str20, Str36, defaulted, fk


def items_table() -> Table:
    """`items`, declared in the vocabulary, on a declarative base of its own."""

    class Vocabulary(DeclarativeBase):
        pass

    class Shelf(Vocabulary):
        __tablename__ = "shelves"
        id: Mapped[Str36] = mapped_column(primary_key=True)

    class Item(Vocabulary):
        __tablename__ = "items"
        id: Mapped[Str36] = mapped_column(primary_key=True)
        visible: Mapped[bool] = defaulted(True)
        archived: Mapped[bool] = defaulted(False)
        label: Mapped[Str20] = defaulted("it's 'quoted'")
        ratio: Mapped[float] = defaulted(0.25)
        count: Mapped[int] = defaulted(3, index=True)
        settings: Mapped[JSONDict | None] = defaulted({}, nullable=False)
        tags: Mapped[JSONList | None] = defaulted([])
        shelf_id: Mapped[Str36] = fk("shelves.id")
        spare_shelf_id: Mapped[Str36] = fk(
            "shelves.id", ondelete="CASCADE", index=False, nullable=True
        )

    table = Item.__table__
    assert isinstance(table, Table)
    return table


def created(url: str) -> tuple[list[str], list[str]]:
    """The lines of `items`' CREATE TABLE and its CREATE INDEX statements,
    for the database `url` names."""
    table = items_table()
    dialect = make_url(url).get_dialect()()
    create = str(CreateTable(table).compile(dialect=dialect))
    lines = [line.strip().rstrip(",") for line in create.splitlines()[2:-2] if line.strip()]
    indexes = sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
    return lines, indexes


@pytest.mark.parametrize(
    ("url", "true", "false", "ratio", "json"),
    [
        ("sqlite://", "1", "0", "DOUBLE DEFAULT (0.25)", "JSON"),
        ("postgresql+psycopg://", "true", "false", "DOUBLE PRECISION DEFAULT 0.25", "JSONB"),
    ],
)  # fmt: skip
def test_the_vocabulary_writes_its_defaults_and_keys_into_the_table(
    url: str, true: str, false: str, ratio: str, json: str
) -> None:
    lines, indexes = created(url)
    assert lines == [
        "id VARCHAR(36) NOT NULL",
        f"visible BOOLEAN DEFAULT {true} NOT NULL",
        f"archived BOOLEAN DEFAULT {false} NOT NULL",
        "label VARCHAR(20) DEFAULT 'it''s ''quoted''' NOT NULL",
        f"ratio {ratio} NOT NULL",
        "count INTEGER DEFAULT 3 NOT NULL",
        f"settings {json} NOT NULL",
        f"tags {json}",
        "shelf_id VARCHAR(36) NOT NULL",
        "spare_shelf_id VARCHAR(36)",
        "PRIMARY KEY (id)",
        "FOREIGN KEY(shelf_id) REFERENCES shelves (id) ON DELETE RESTRICT",
        "FOREIGN KEY(spare_shelf_id) REFERENCES shelves (id) ON DELETE CASCADE",
    ]
    assert indexes == [
        "CREATE INDEX ix_items_count ON items (count)",
        "CREATE INDEX ix_items_shelf_id ON items (shelf_id)",
    ]


def test_defaulted_gives_the_orm_the_same_default() -> None:
    columns = items_table().c
    defaults: dict[str, Any] = {
        name: getattr(columns[name].default, "arg", None)
        for name in ("visible", "archived", "label", "ratio", "count", "settings", "tags")
    }
    assert defaults == {
        "visible": True,
        "archived": False,
        "label": "it's 'quoted'",
        "ratio": 0.25,
        "count": 3,
        "settings": None,
        "tags": None,
    }


def test_a_container_default_is_made_fresh_by_the_constructor() -> None:
    # No column default at all: the ORM would put it in place of an explicit None.
    columns = items_table().c
    for name, made_by in (("settings", dict), ("tags", list)):
        assert columns[name].info == {"constructor_default": made_by}
        assert (columns[name].default, columns[name].server_default) == (None, None)
