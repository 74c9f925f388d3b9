"""`core.tools.demo`: the audit trail the scenario prints, word for word, and
the rows each of its steps leaves, read back with fresh SELECTs.

The command line around it (`python -m core demo`, twice, on a file) is in
test_demo_cli.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.database import make_engine
from core.governance import GovernanceError
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentRegistry,
    BlockedTriggerContext,
    Episode,
    EpisodeAccessLog,
    Team,
    User,
    Workspace,
)
from core.schema import Base
from core.tools.demo import TEAM_NAME, WORKSPACE_NAME, _expected, _refuse, play_round, run_demo
from tests.unit.readback import table_of

LEAD = "dana.lead@northwind.example"
MEMBER = "sam.agent@northwind.example"

TRAIL = [
    "== demo run 1",
    "tenant    workspace 'Northwind Support' (created), team 'Support desk', "
    f"members {LEAD} and {MEMBER}",
    "agent     Triage scout #1: student, confidence 0.35",
    "agent     Reply drafter #1: intern, confidence 0.65",
    "agent     Refund checker #1: supervised, confidence 0.80",
    "agent     Status notifier #1: autonomous, confidence 0.95",
    "agent     Legacy importer #1: paused, confidence 0.60",
    "route     data_sync crm.ticket_created -> Triage scout #1 (student): blocked, training; "
    "training proposal 'Train Triage scout #1 on crm.ticket_created' is proposed",
    "route     ai_coordinator ticket.reply_needed -> Reply drafter #1 (intern): blocked, "
    "proposal; action proposal 'Reply drafter #1: act on ticket.reply_needed' is proposed",
    "route     workflow_engine refund.requested -> Refund checker #1 (supervised): "
    "run <run> started, triggered_by='supervision:workflow_engine'",
    "route     manual ticket.status_changed.1 -> Status notifier #1 (autonomous): "
    "run <run> started, triggered_by='execution:manual'",
    "route     manual ticket.status_changed.2 -> Status notifier #1 (autonomous): "
    "run <run> started, triggered_by='execution:manual'",
    "route     manual ticket.status_changed.3 -> Status notifier #1 (autonomous): "
    "run <run> started, triggered_by='execution:manual'",
    "refuse    route data_sync crm.import_finished -> Legacy importer #1: agent "
    "'Legacy importer #1' (<id>) is paused: cannot take the data_sync trigger "
    "'crm.import_finished'; only student, intern, supervised, autonomous agents can",
    "approve   'Reply drafter #1: act on ticket.reply_needed' by dana.lead@northwind.example "
    "at <time> UTC (version 2)",
    "execute   'Reply drafter #1: act on ticket.reply_needed': run <run>, "
    "blocked triggers resolved: 1",
    "refuse    approve again: cannot move proposal <id> from 'executed' to 'approved' "
    "(allowed from 'executed': none, it is final)",
    "reject    'Train Triage scout #1 on crm.ticket_created' by dana.lead@northwind.example: "
    "its blocked trigger is closed",
    "complete  4 runs of the supervised and autonomous agents",
    "feedback  sam.agent@northwind.example rated Reply drafter #1's run 5/5: "
    "confidence 0.65 -> 0.72, graduated intern -> supervised",
    "episode   'Status notifier #1: ticket updates': 3 ordered segments; "
    "read by dana.lead@northwind.example (access log written, 1 read so far)",
]


def _anonymous(line: str) -> str:
    """The line with its ids and time, which change every run, as placeholders."""
    line = re.sub(r"\b[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", "<id>", line)
    line = re.sub(r"\brun [0-9a-f]{8}\b", "run <run>", line)
    return re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b", "<time>", line)


def _rows(db: Session, model: type[Base], *columns: str, **where: Any) -> list[tuple[Any, ...]]:
    """Fresh SELECT of `columns` from `model`'s table, in the order of the first."""
    table = table_of(model)
    statement = select(*(table.c[name] for name in columns)).order_by(table.c[columns[0]])
    for name, value in where.items():
        statement = statement.where(table.c[name] == value)
    return [tuple(row) for row in db.execute(statement)]


def _id_of(db: Session, model: type[Base], **where: Any) -> Any:
    (row,) = _rows(db, model, "id", **where)
    return row[0]


def test_the_demo_prints_this_audit_trail(db: Session) -> None:
    lines: list[str] = []

    assert run_demo(db, out=lines.append) == 1

    assert [_anonymous(line) for line in lines] == TRAIL


def test_the_demo_creates_its_tenant_and_people(db: Session) -> None:
    run_demo(db, out=lambda line: None)

    workspace = _id_of(db, Workspace, name=WORKSPACE_NAME)
    assert _rows(db, Workspace, "name", "industry", "plan_tier", "metadata_json") == [
        (WORKSPACE_NAME, "retail", "team", {"demo_runs": 1})
    ]
    assert _rows(db, Team, "name", "workspace_id") == [(TEAM_NAME, workspace)]
    assert _rows(db, User, "email", "first_name", "role", "email_verified") == [
        (LEAD, "Dana", "team_lead", True),
        (MEMBER, "Sam", "member", True),
    ]


def test_the_demo_registers_its_agents_owned_by_the_lead(db: Session) -> None:
    run_demo(db, out=lambda line: None)

    lead = _id_of(db, User, email=LEAD)
    assert _rows(db, AgentRegistry, "name", "category", "module_path", "class_name", "user_id") == [
        ("Legacy importer #1", "support", "agents.support", "LegacyImporterAgent", lead),
        ("Refund checker #1", "support", "agents.support", "RefundCheckerAgent", lead),
        ("Reply drafter #1", "support", "agents.support", "ReplyDrafterAgent", lead),
        ("Status notifier #1", "support", "agents.support", "StatusNotifierAgent", lead),
        ("Triage scout #1", "support", "agents.support", "TriageScoutAgent", lead),
    ]  # fmt: skip


def test_the_demo_records_what_each_step_did(db: Session) -> None:
    run_demo(db, out=lambda line: None)

    assert _rows(db, AgentExecution, "input_summary", "output_summary", "triggered_by") == [
        ('refund.requested {"ticket": 4711}', "done", "supervision:workflow_engine"),
        ('ticket.status_changed.1 {"ticket": 4711}', "done", "execution:manual"),
        ('ticket.status_changed.2 {"ticket": 4711}', "done", "execution:manual"),
        ('ticket.status_changed.3 {"ticket": 4711}', "done", "execution:manual"),
        (
            '{"payload": {"ticket": 4711}, "source": "ai_coordinator", '
            '"trigger_type": "ticket.reply_needed"}',
            "reply sent to the customer",
            "proposal",
        ),
    ]  # fmt: skip
    columns = ("trigger_type", "trigger_context", "resolution_outcome")
    assert _rows(db, BlockedTriggerContext, *columns) == [
        ("crm.ticket_created", {"ticket": 4711},
         f"rejected by {LEAD}: the scout shadows a person this week instead"),
        ("ticket.reply_needed", {"ticket": 4711}, "executed: reply sent to the customer"),
    ]  # fmt: skip
    (outcome,) = _rows(db, AgentProposal, "execution_result", proposal_type="action")
    assert outcome[0]["outcome"] == "reply sent to the customer"

    lead = _id_of(db, User, email=LEAD)
    assert _rows(db, Episode, "title", "user_id") == [("Status notifier #1: ticket updates", lead)]
    assert _rows(db, EpisodeAccessLog, "accessed_by", "retrieval_query", "results_count") == [
        (lead, "ticket updates", 3)
    ]


def test_a_workspace_found_keeps_its_metadata_and_gets_its_own_support_desk(
    db: Session,
) -> None:
    """The team is looked up in the demo's workspace, by name: not another
    workspace's support desk, nor another team of this workspace."""
    elsewhere = Workspace(name="Elsewhere")
    demo = Workspace(name=WORKSPACE_NAME, metadata_json={"owner": "ops"})
    db.add_all([Team(name=TEAM_NAME, workspace=elsewhere), Team(name="Billing", workspace=demo)])
    db.flush()
    lines: list[str] = []

    run_demo(db, out=lines.append)

    assert lines[1].startswith(
        "tenant    workspace 'Northwind Support' (found), team 'Support desk'"
    )
    assert _rows(db, Team, "name", "workspace_id", workspace_id=demo.id) == [
        ("Billing", demo.id),
        (TEAM_NAME, demo.id),
    ]
    assert _rows(db, Workspace, "metadata_json", name=WORKSPACE_NAME) == [
        ({"owner": "ops", "demo_runs": 1},)
    ]


def test_a_round_prints_through_the_given_out_and_commits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        Base.metadata.create_all(engine)
        lines: list[str] = []

        assert play_round(engine, out=lines.append) == 1
        assert play_round(engine, out=lines.append) == 2

        assert capsys.readouterr().out == ""
        assert [line for line in lines if line.startswith("==")] == [
            "== demo run 1",
            "== demo run 2",
        ]
    finally:
        engine.dispose()


def test_a_step_that_produced_nothing_stops_the_scenario() -> None:
    assert _expected("something") == "something"
    with pytest.raises(RuntimeError) as stopped:
        _expected(None)
    assert str(stopped.value) == ("the governance layer did not produce what the scenario expects")


def test_a_move_the_rules_allow_where_a_refusal_was_expected_stops_the_scenario() -> None:
    lines: list[str] = []

    def refused() -> None:
        raise GovernanceError("not now")

    _refuse(lines.append, "try", refused)
    assert lines == ["refuse    try: not now"]
    with pytest.raises(AssertionError) as allowed:
        _refuse(lines.append, "approve twice", lambda: None)
    assert str(allowed.value) == "approve twice should have been refused"
