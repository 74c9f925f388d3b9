"""Rows for every table, written with Core at any revision by the data tests.

Plain dictionaries, no model classes: they must stay insertable into the
schema of every past revision. A new table needs rows here; a new NOT NULL
column without a server default needs a value here. Columns a revision does
not have yet are left out when that revision is populated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Engine, MetaData, Table, func, insert, select

from core.migrate import VERSION_TABLE

WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
USER, OTHER_USER = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
WORKSPACE = "00000000-0000-4000-8000-000000000010"
TEAM = "00000000-0000-4000-8000-000000000020"
AGENT = "00000000-0000-4000-8000-000000000030"
EXECUTION = "00000000-0000-4000-8000-000000000040"
WORKFLOW_RUN = "00000000-0000-4000-8000-000000000050"
PROPOSAL = "00000000-0000-4000-8000-000000000060"
EPISODE = "00000000-0000-4000-8000-000000000070"


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


SAMPLE_ROWS: dict[str, list[dict[str, Any]]] = {
    "users": [
        {"id": USER, "email": "ada@example.com", "role": "team_lead", "preferences": {"tz": "UTC"}},
        {"id": OTHER_USER, "email": "grace@example.com", "last_login_at": WHEN},
    ],
    "workspaces": [
        {"id": WORKSPACE, "name": "Acme", "status": "trial", "metadata_json": {"region": "eu"}}
    ],
    "user_workspaces": [
        {"user_id": USER, "workspace_id": WORKSPACE, "role": "admin"},
        {"user_id": OTHER_USER, "workspace_id": WORKSPACE},
    ],
    "teams": [{"id": TEAM, "name": "Platform", "workspace_id": WORKSPACE}],
    "team_members": [{"user_id": USER, "team_id": TEAM}],
    "team_messages": [
        {"id": _id(101), "team_id": TEAM, "user_id": USER, "content": "Deploy at noon."}
    ],
    "agent_registry": [
        {
            "id": AGENT,
            "name": "Invoice triage",
            "category": "finance",
            "module_path": "agents.finance",
            "class_name": "InvoiceTriage",
            "user_id": USER,
            "workspace_id": WORKSPACE,
            "status": "intern",
            "confidence_score": 0.6,
            "configuration": {"threshold": 3, "labels": ["urgent"]},
        }
    ],
    "agent_executions": [
        {
            "id": EXECUTION,
            "agent_id": AGENT,
            "workspace_id": WORKSPACE,
            "status": "completed",
            "started_at": WHEN,
            "duration_seconds": 1.5,
        }
    ],
    "agent_feedback": [
        {
            "id": _id(201),
            "agent_id": AGENT,
            "agent_execution_id": EXECUTION,
            "user_id": USER,
            "original_output": "Pay invoice 17.",
            "user_correction": "Hold invoice 17.",
            "rating": 2,
        }
    ],
    "workflow_executions": [
        {"execution_id": WORKFLOW_RUN, "workflow_id": "month-end", "user_id": USER, "version": 2}
    ],
    "workflow_step_executions": [
        {
            "id": _id(300 + order),
            "execution_id": WORKFLOW_RUN,
            "workflow_id": "month-end",
            "step_id": f"step-{order}",
            "step_name": f"Step {order}",
            "step_type": "action",
            "sequence_order": order,
            "status": "COMPLETED",
        }
        for order in range(2)
    ],
    "agent_proposals": [
        {
            "id": PROPOSAL,
            "agent_id": AGENT,
            "agent_name": "Invoice triage",
            "proposal_type": "action",
            "title": "Hold invoice 17",
            "description": "The amount is twice the usual.",
            "proposed_by": "Invoice triage",
            "approved_by": USER,
            "status": "approved",
            "hours_per_day_limit": 4.0,
        }
    ],
    "blocked_triggers": [
        {
            "id": _id(401),
            "agent_id": AGENT,
            "agent_name": "Invoice triage",
            "agent_maturity_at_block": "intern",
            "confidence_score_at_block": 0.6,
            "trigger_source": "data_sync",
            "trigger_type": "invoice.created",
            "trigger_context": {"invoice": 17},
            "routing_decision": "proposal",
            "block_reason": "Interns need approval.",
            "proposal_id": PROPOSAL,
        }
    ],
    "episodes": [
        {
            "id": EPISODE,
            "title": "Month-end close",
            "agent_id": AGENT,
            "workspace_id": WORKSPACE,
            "maturity_at_time": "intern",
            "proposal_id": PROPOSAL,
            "execution_ids": [EXECUTION],
            "topics": ["invoices", "ünïcode"],
        }
    ],
    "episode_segments": [
        {
            "id": _id(500 + order),
            "episode_id": EPISODE,
            "segment_type": "action",
            "sequence_order": order,
            "content": f"Segment {order}",
        }
        for order in range(2)
    ],
    "episode_access_logs": [
        {"id": _id(601), "episode_id": EPISODE, "accessed_by": USER, "access_type": "semantic"}
    ],
    "canvas_audit": [
        {
            "id": _id(701),
            "user_id": USER,
            "agent_id": AGENT,
            "agent_execution_id": EXECUTION,
            "episode_id": EPISODE,
            "component_type": "form",
            "action": "submit",
        }
    ],
}


def populate_every_table(engine: Engine) -> dict[str, set[tuple[object, ...]]]:
    """Insert SAMPLE_ROWS into every table the database has now, through its
    reflected schema; return each table's primary keys."""
    schema = MetaData()
    schema.reflect(engine)
    tables = [table for table in schema.sorted_tables if table.name != VERSION_TABLE]
    missing = [table.name for table in tables if not SAMPLE_ROWS.get(table.name)]
    assert not missing, f"add rows for {missing} to tests/migrations/sample_rows.py"
    with engine.begin() as connection:
        for table in tables:
            for row in SAMPLE_ROWS[table.name]:
                # One statement per row: rows may leave different columns out.
                connection.execute(
                    insert(table).values(
                        {key: _as_stored(table, key, row[key]) for key in row if key in table.c}
                    )
                )
    return primary_keys(engine, [table.name for table in tables])


def _as_stored(table: Table, key: str, value: Any) -> Any:
    """A JSON value goes into a column reflected as text (MariaDB's JSON is a
    LONGTEXT with a json_valid() CHECK) as its JSON text."""
    if isinstance(value, dict | list) and not isinstance(table.c[key].type, JSON):
        return json.dumps(value)
    return value


def primary_keys(engine: Engine, table_names: list[str]) -> dict[str, set[tuple[object, ...]]]:
    schema = MetaData()
    schema.reflect(engine, only=table_names)
    with engine.connect() as connection:
        keys = {}
        for name in table_names:
            table = schema.tables[name]
            keys[name] = {tuple(row) for row in connection.execute(select(*table.primary_key))}
            count = connection.scalar(select(func.count()).select_from(table))
            assert count == len(keys[name]) > 0
        return keys
