"""Every constraint and index name is unique and fits PostgreSQL's 63 characters."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Constraint, Index, Integer, MetaData, String, Table, UniqueConstraint

from core.schema import (
    NAMING_CONVENTION,
    Base,
)

POSTGRESQL_MAX_IDENTIFIER = 63


def schema_names(metadata: MetaData) -> list[str]:
    """The name of every constraint and index, as the DDL will spell it."""
    names = []
    for table in metadata.sorted_tables:
        items: list[Constraint | Index] = [*table.constraints, *table.indexes]
        for item in items:
            names.append(str(item.name) if item.name is not None else f"<unnamed on {table.name}>")
    return names


def naming_problems(metadata: MetaData) -> list[str]:
    names = schema_names(metadata)
    problems = [f"unnamed: {name}" for name in names if name.startswith("<unnamed")]
    problems += [
        f"longer than {POSTGRESQL_MAX_IDENTIFIER}: {name} ({len(name)})"
        for name in names
        if len(name) > POSTGRESQL_MAX_IDENTIFIER
    ]
    problems += [f"used {n} times: {name}" for name, n in Counter(names).items() if n > 1]
    return problems


def test_every_constraint_and_index_name_is_unique_and_short_enough() -> None:
    assert naming_problems(Base.metadata) == []
    # Sanity: the schema really has names to check (tables, FKs, CHECKs, indexes).
    assert len(schema_names(Base.metadata)) > 100


IDENTIFIERS = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=40)


@given(table=IDENTIFIERS, columns=st.lists(IDENTIFIERS, min_size=1, max_size=3, unique=True))
def test_the_check_finds_long_and_duplicate_names(table: str, columns: list[str]) -> None:
    # The control: the same convention on made-up tables, twice indexed alike.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    made_up = Table(
        table,
        metadata,
        Column("id", Integer, primary_key=True),
        *(Column(f"c_{c}", String(10)) for c in columns),
    )
    indexed = [made_up.c[f"c_{c}"] for c in columns]
    Index(None, *indexed)
    Index(None, *indexed)
    made_up.append_constraint(UniqueConstraint(*indexed))

    problems = naming_problems(metadata)
    index_name = "_".join(["ix", table, *(f"c_{c}" for c in columns)])
    assert f"used 2 times: {index_name}" in problems
    for name in schema_names(metadata):
        too_long = len(name) > POSTGRESQL_MAX_IDENTIFIER
        assert too_long == any(p.startswith(f"longer than 63: {name} ") for p in problems)
