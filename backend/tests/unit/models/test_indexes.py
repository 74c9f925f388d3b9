"""Indexes as the database reports them: every foreign key column leads
exactly one index, the named ones exist and are not unique (a retried step
repeats its position), and none is duplicated or shadowed by a composite
index that leads with its column."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.models import (
    WorkflowExecutionStatus,
    WorkflowStepExecution,
)
from core.schema import Base
from tests.factories import WorkflowExecutionFactory, WorkflowStepExecutionFactory
from tests.unit.readback import Reload, count_rows, reflected, table_of


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("agent_executions", ["agent_id", "started_at"]),
        ("blocked_triggers", ["agent_id", "resolved"]),
        ("agent_proposals", ["status", "created_at"]),
        ("workflow_step_executions", ["execution_id", "sequence_order"]),
        ("episode_segments", ["episode_id", "sequence_order"]),
        ("workflow_executions", ["workflow_id"]),
    ],
)
def test_named_non_unique_indexes_exist(db: Session, table: str, columns: list[str]) -> None:
    indexes = {ix["name"]: ix for ix in reflected(db).get_indexes(table)}
    name = f"ix_{table}_{'_'.join(columns)}"

    assert name in indexes, sorted(indexes)
    assert indexes[name]["column_names"] == columns
    assert not indexes[name]["unique"]


def test_no_index_is_duplicated_or_shadowed_by_a_composite(db: Session) -> None:
    inspector = reflected(db)
    for table in Base.metadata.sorted_tables:
        indexes = [
            tuple(ix["column_names"])
            for ix in inspector.get_indexes(table.name)
            if not ix.get("duplicates_constraint")
        ]
        covered = [
            *indexes,
            *(
                tuple(uq["column_names"])
                for uq in inspector.get_unique_constraints(table.name)
                if not uq.get("duplicates_index")  # MariaDB: the unique index above
            ),
            tuple(inspector.get_pk_constraint(table.name)["constrained_columns"]),
        ]
        assert len(set(covered)) == len(covered), f"{table.name}: {covered}"
        for columns in indexes:
            if len(columns) == 1:
                longer = [other for other in covered if len(other) > 1]
                assert all(other[0] != columns[0] for other in longer), table.name


def leading_columns(db: Session, table: str) -> list[str]:
    """The first column of every index, unique constraint and primary key."""
    inspector = reflected(db)
    indexes = [
        ix["column_names"]
        for ix in inspector.get_indexes(table)
        if not ix.get("duplicates_constraint")  # PostgreSQL lists UNIQUE's index too
    ]
    uniques = [
        uq["column_names"]
        for uq in inspector.get_unique_constraints(table)
        if not uq.get("duplicates_index")  # MariaDB's UNIQUE is its unique index, listed above
    ]
    primary = [inspector.get_pk_constraint(table)["constrained_columns"]]
    return [columns[0] for columns in indexes + uniques + primary if columns]


def test_every_foreign_key_column_leads_exactly_one_index(db: Session) -> None:
    inspector = reflected(db)
    checked = 0
    for table in Base.metadata.sorted_tables:
        leading = leading_columns(db, table.name)
        for foreign_key in inspector.get_foreign_keys(table.name):
            column = foreign_key["constrained_columns"][0]
            assert leading.count(column) == 1, f"{table.name}.{column}: {leading}"
            checked += 1
    assert checked == sum(len(table.foreign_keys) for table in Base.metadata.sorted_tables)


def test_a_retried_step_repeats_its_sequence_order(db: Session, commit_and_expire: Reload) -> None:
    run = WorkflowExecutionFactory()
    first = WorkflowStepExecutionFactory(
        execution=run, sequence_order=0, status=WorkflowExecutionStatus.FAILED
    )
    retry = WorkflowStepExecutionFactory(
        execution=run, sequence_order=0, step_id=first.step_id, retry_count=1
    )
    commit_and_expire()

    assert [step.id for step in run.step_executions] in (
        [first.id, retry.id],
        [retry.id, first.id],
    )
    assert {step.retry_count for step in run.step_executions} == {0, 1}
    steps = table_of(WorkflowStepExecution)
    assert count_rows(db, steps, steps.c.sequence_order == 0) == 2
