"""A scenario through the governance layer, printed as an audit trail.

`python -m core demo` runs it on `DATABASE_URL`. The tenant (workspace, team,
people) is found or created, so running the demo again reuses it; every run
adds its own numbered set of agents and their history. Two demos started at
once take turns (`play_round`): rounds 1 and 2, on one tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import governance
from core.database import exclusive_transaction
from core.models import (
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    Team,
    TriggerSource,
    User,
    UserRole,
    Workspace,
)

WORKSPACE_NAME = "Northwind Support"
TEAM_NAME = "Support desk"

Print = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Tenant:
    workspace: Workspace
    team: Team
    lead: User
    member: User


def play_round(engine: Engine, out: Print = print) -> int:
    """Play one round in a transaction of its own, committed; return its number.

    The round's number and the tenant are read and written under the
    start-up lock: a second process waits, then finds round 1 and the tenant
    the first one committed, instead of both playing round 1 (or both
    creating a tenant) on what each read before the other wrote.
    """
    # The session takes over the locked transaction ("control_fully"): its
    # commit commits the round as one, and is the commit that runs the
    # governance layer's on_commit announcements (a session that merely
    # joined the transaction would commit nothing, and could not run them).
    with (
        engine.connect() as connection,
        exclusive_transaction(connection),
        Session(bind=connection, join_transaction_mode="control_fully") as session,
    ):
        run = run_demo(session, out)
        session.commit()
    return run


def run_demo(session: Session, out: Print = print) -> int:
    """Play the scenario in `session` (not committed here); return the run number."""
    tenant, found = _tenant(session)
    run = int((tenant.workspace.metadata_json or {}).get("demo_runs", 0)) + 1
    # Reassigned, not mutated, so the change is seen whatever the column type.
    tenant.workspace.metadata_json = {**(tenant.workspace.metadata_json or {}), "demo_runs": run}
    out(f"== demo run {run}")
    out(
        f"tenant    workspace {tenant.workspace.name!r} ({'found' if found else 'created'}), "
        f"team {tenant.team.name!r}, members {tenant.lead.email} and {tenant.member.email}"
    )

    scout, drafter, checker, notifier, legacy = (
        _agent(session, tenant, out, f"{name} #{run}", status, confidence)
        for name, status, confidence in (
            ("Triage scout", AgentStatus.STUDENT, 0.35),
            ("Reply drafter", AgentStatus.INTERN, 0.65),
            ("Refund checker", AgentStatus.SUPERVISED, 0.80),
            ("Status notifier", AgentStatus.AUTONOMOUS, 0.95),
            ("Legacy importer", AgentStatus.PAUSED, 0.60),
        )
    )

    training = _route(session, out, scout, TriggerSource.DATA_SYNC, "crm.ticket_created")
    action = _route(session, out, drafter, TriggerSource.AI_COORDINATOR, "ticket.reply_needed")
    supervised = _route(session, out, checker, TriggerSource.WORKFLOW_ENGINE, "refund.requested")
    notifications = [
        _route(session, out, notifier, TriggerSource.MANUAL, f"ticket.status_changed.{step}")
        for step in (1, 2, 3)
    ]
    _refuse(
        out,
        f"route {TriggerSource.DATA_SYNC} crm.import_finished -> {legacy.name}",
        lambda: governance.route_trigger(
            session, legacy, TriggerSource.DATA_SYNC, "crm.import_finished", {}
        ),
    )

    proposal = governance.approve_proposal(session, _expected(action.proposal), tenant.lead)
    out(
        f"approve   {proposal.title!r} by {tenant.lead.email} "
        f"at {proposal.approved_at:%Y-%m-%d %H:%M:%S} UTC (version {proposal.version})"
    )
    reply = _expected(governance.execute_proposal(session, proposal, "reply sent to the customer"))
    resolved = sum(trigger.resolved for trigger in proposal.blocked_triggers)
    out(f"execute   {proposal.title!r}: run {reply.id[:8]}, blocked triggers resolved: {resolved}")
    _refuse(
        out, "approve again", lambda: governance.approve_proposal(session, proposal, tenant.lead)
    )

    lesson = governance.reject_proposal(
        session,
        _expected(training.proposal),
        tenant.lead,
        "the scout shadows a person this week instead",
    )
    out(f"reject    {lesson.title!r} by {tenant.lead.email}: its blocked trigger is closed")

    for routed in (supervised, *notifications):
        governance.complete_execution(session, _expected(routed.execution), "done")
    out(f"complete  {1 + len(notifications)} runs of the supervised and autonomous agents")

    rated = governance.record_feedback(session, reply, tenant.member, rating=5)
    out(
        f"feedback  {tenant.member.email} rated {drafter.name}'s run 5/5: confidence "
        f"{rated.confidence_before:.2f} -> {rated.confidence_after:.2f}, "
        + (
            f"graduated {rated.maturity_before} -> {rated.maturity_after}"
            if rated.graduated
            else f"still {rated.maturity_after}"
        )
    )

    runs = [_expected(routed.execution) for routed in notifications]
    episode = governance.record_episode(
        session, notifier, runs, title=f"{notifier.name}: ticket updates", user=tenant.lead
    )
    segments = governance.read_episode(session, episode, user=tenant.lead, query="ticket updates")
    out(
        f"episode   {episode.title!r}: {len(segments)} ordered segments; read by "
        f"{tenant.lead.email} (access log written, {episode.access_count} read so far)"
    )
    return run


def _tenant(session: Session) -> tuple[Tenant, bool]:
    """The demo's workspace, team and people, found or created; and whether found."""
    workspace = session.scalars(select(Workspace).where(Workspace.name == WORKSPACE_NAME)).first()
    found = workspace is not None
    if workspace is None:
        workspace = Workspace(name=WORKSPACE_NAME, industry="retail", plan_tier="team")
        session.add(workspace)
    team = session.scalars(
        select(Team).where(Team.workspace_id == workspace.id, Team.name == TEAM_NAME)
    ).first()
    if team is None:
        team = Team(name=TEAM_NAME, workspace=workspace)
        session.add(team)
    lead = _user(session, "dana.lead@northwind.example", "Dana", UserRole.TEAM_LEAD)
    member = _user(session, "sam.agent@northwind.example", "Sam", UserRole.MEMBER)
    for user in (lead, member):
        if user not in workspace.users:
            workspace.users.append(user)
        if user not in team.members:
            team.members.append(user)
    session.flush()
    return Tenant(workspace, team, lead, member), found


def _user(session: Session, email: str, first_name: str, role: UserRole) -> User:
    user = session.scalars(select(User).where(User.email == email)).first()
    if user is None:
        user = User(email=email, first_name=first_name, role=role, email_verified=True)
        session.add(user)
    return user


def _agent(
    session: Session,
    tenant: Tenant,
    out: Print,
    name: str,
    status: AgentStatus,
    confidence: float,
) -> AgentRegistry:
    agent = AgentRegistry(
        name=name,
        category="support",
        module_path="agents.support",
        class_name=name.split(" #")[0].title().replace(" ", "") + "Agent",
        status=status,
        confidence_score=confidence,
        owner=tenant.lead,
        workspace=tenant.workspace,
    )
    session.add(agent)
    session.flush()
    out(f"agent     {name}: {status}, confidence {confidence:.2f}")
    return agent


def _route(
    session: Session,
    out: Print,
    agent: AgentRegistry,
    source: TriggerSource,
    trigger_type: str,
) -> governance.RoutedTrigger:
    routed = governance.route_trigger(session, agent, source, trigger_type, {"ticket": 4711})
    out(f"route     {source} {trigger_type} -> {agent.name} ({agent.status}): {_routed(routed)}")
    return routed


def _routed(routed: governance.RoutedTrigger) -> str:
    if routed.proposal is not None:
        return f"blocked, {routed.decision}; {_proposal(routed.proposal)}"
    execution = _expected(routed.execution)
    return f"run {execution.id[:8]} started, triggered_by={execution.triggered_by!r}"


def _proposal(proposal: AgentProposal) -> str:
    return f"{proposal.proposal_type} proposal {proposal.title!r} is {proposal.status}"


def _expected(value: T | None) -> T:
    """What the scenario's own steps guarantee, checked rather than assumed."""
    if value is None:
        raise RuntimeError("the governance layer did not produce what the scenario expects")
    return value


def _refuse(out: Print, attempt: str, move: Callable[[], object]) -> None:
    try:
        move()
    except governance.GovernanceError as error:
        out(f"refuse    {attempt}: {error}")
    else:  # pragma: no cover - the scenario only asks for moves the rules refuse
        raise AssertionError(f"{attempt} should have been refused")
