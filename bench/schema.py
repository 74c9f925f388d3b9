"""The schemas the isolation strategies run on: the real one, and the real one
plus generated tables, so that per-test schema work (create_all, DELETE,
TRUNCATE, cloning) has more to do while the test body stays the same."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    text,
)

from core import models  # noqa: F401  (registers every table on Base.metadata)
from core.schema import (
    NAMING_CONVENTION,
    Base,
    UTCDateTime,
    json_type,
)


@dataclass(frozen=True)
class Schema:
    """One or more MetaData objects created and emptied together."""

    label: str
    metadatas: tuple[MetaData, ...]

    @property
    def tables(self) -> list[Table]:
        """Every table, parents before children."""
        return [table for metadata in self.metadatas for table in metadata.sorted_tables]

    def create_all(self, bind: Engine | Connection) -> None:
        for metadata in self.metadatas:
            metadata.create_all(bind)


def real_schema() -> Schema:
    return Schema(f"real ({len(Base.metadata.tables)} tables)", (Base.metadata,))


def grown_schema(total_tables: int) -> Schema:
    """The real schema plus generated tables, `total_tables` in all."""
    extra = generated_metadata(max(total_tables - len(Base.metadata.tables), 0))
    total = len(Base.metadata.tables) + len(extra.tables)
    return Schema(f"grown ({total} tables)", (Base.metadata, extra))


def generated_metadata(count: int) -> MetaData:
    """`count` tables shaped like the real ones: a key, a foreign key with an
    index, a CHECK, a JSON column and a server-side timestamp."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for n in range(count):
        columns: list[Column[object]] = [
            Column("id", Integer, primary_key=True),
            Column("name", String(100), nullable=False),
            Column("status", String(20), nullable=False, server_default=text("'new'")),
            Column("payload", json_type()),
            Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
        ]
        if n:
            # A shallow tree of foreign keys, so the tables have a real order.
            parent = f"generated_{n // 2:03d}.id"
            columns.append(Column("parent_id", ForeignKey(parent, ondelete="CASCADE"), index=True))
        Table(
            f"generated_{n:03d}",
            metadata,
            *columns,
            CheckConstraint("status IN ('new', 'done')", name="status"),
            Index(None, "name"),
        )
    return metadata
