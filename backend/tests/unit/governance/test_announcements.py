"""Decisions are announced to subscribers once committed, and never otherwise.

The governance layer announces through `core.transactions.on_commit`: a
proposal proposed, approved, rejected, cancelled or executed, an agent
graduated. In `db` nothing really commits, so `capture_on_commit` delivers
what a commit would; with `transactional_db` the commits are real, on the
run's database (SQLite or PostgreSQL, whichever the suite runs on).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.orm import Session

from core import governance
from core.governance import Announced, Announcement, InvalidTransition, ProposalConflict
from core.models import (
    AgentProposal,
    AgentStatus,
    ProposalStatus,
    TriggerSource,
    User,
)
from core.transactions import Callback
from tests.factories import AgentExecutionFactory, AgentFactory, AgentProposalFactory, UserFactory
from tests.harness import CommittingDatabase

Capture = Callable[..., AbstractContextManager[list[Callback]]]


def _kinds(heard: list[Announcement]) -> list[Announced]:
    return [announcement.kind for announcement in heard]


# --------------------------------------------------------------------------
# Each decision, once committed (db: delivered by capture_on_commit)
# --------------------------------------------------------------------------


def test_a_proposal_is_announced_at_each_step_of_its_life(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    agent = AgentFactory(intern=True)
    lead = UserFactory(email="lead@example.com")
    with capture_on_commit(execute=True):
        routed = governance.route_trigger(db, agent, TriggerSource.MANUAL, "ticket.reply", {})
        proposal = routed.proposal
        assert proposal is not None
        governance.approve_proposal(db, proposal, lead)
        governance.execute_proposal(db, proposal, "reply sent")
        assert heard == []  # nothing before the (captured) commit

    assert _kinds(heard) == [Announced.PROPOSED, Announced.APPROVED, Announced.EXECUTED]
    assert {(a.agent_id, a.proposal_id) for a in heard} == {(agent.id, proposal.id)}
    title = proposal.title
    assert heard[0].summary == (
        f"action proposal {title!r} proposed by the maturity guard (intern agents may not act "
        "on triggers (confidence 0.60); routed to proposal)"
    )
    assert heard[1].summary == f"action proposal {title!r} approved by lead@example.com"
    assert heard[2].summary == f"action proposal {title!r} executed (reply sent)"


@pytest.mark.parametrize("decision", ["reject", "cancel"])
def test_a_rejection_or_a_cancellation_is_announced_with_its_reason(
    db: Session, capture_on_commit: Capture, heard: list[Announcement], decision: str
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True))
    reviewer = UserFactory(email="reviewer@example.com")
    with capture_on_commit(execute=True):
        if decision == "reject":
            governance.reject_proposal(db, proposal, reviewer, "too risky")
        else:
            governance.cancel_proposal(db, proposal, "moot")
    expected = {
        "reject": (Announced.REJECTED, "rejected by reviewer@example.com: too risky"),
        "cancel": (Announced.CANCELLED, "cancelled (moot)"),
    }[decision]
    assert [(a.kind, a.summary.split("' ", 1)[1]) for a in heard] == [expected]


def test_a_graduation_is_announced_and_a_rating_that_graduates_nobody_is_not(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    agent = AgentFactory(status=AgentStatus.INTERN, confidence_score=0.69, name="Scout")
    runs = [AgentExecutionFactory(agent=agent, completed=True) for _ in range(2)]
    rater = UserFactory()
    with capture_on_commit(execute=True):
        governance.record_feedback(db, runs[0], rater, rating=5)  # 0.69 -> 0.752: supervised
        governance.record_feedback(db, runs[1], rater, rating=5)  # still supervised
    assert [(a.kind, a.agent_id, a.proposal_id) for a in heard] == [
        (Announced.GRADUATED, agent.id, None)
    ]
    assert heard[0].summary == "agent 'Scout' graduated intern -> supervised (confidence 0.75)"


def test_a_training_proposal_is_announced_with_the_reason_for_the_block(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    agent = AgentFactory(student=True, name="Scout")
    with capture_on_commit(execute=True):
        routed = governance.route_trigger(db, agent, "manual", "ping", {})
    assert routed.proposal is not None
    assert heard == [
        Announcement(
            Announced.PROPOSED,
            agent.id,
            routed.proposal.id,
            "training proposal 'Train Scout on ping' proposed by the maturity guard "
            "(student agents may not act on triggers (confidence 0.30); routed to training)",
        )
    ]


def test_subscribers_are_told_the_kind_of_decision_by_a_stable_name() -> None:
    """What a subscriber matches on: renaming one breaks every subscriber."""
    assert [str(kind) for kind in Announced] == [
        "proposal.proposed",
        "proposal.approved",
        "proposal.rejected",
        "proposal.cancelled",
        "proposal.executed",
        "agent.graduated",
    ]


def test_a_routed_run_announces_nothing(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    with capture_on_commit(execute=True) as callbacks:
        governance.route_trigger(db, AgentFactory(autonomous=True), "manual", "ping", {})
    assert (callbacks, heard) == ([], [])


# --------------------------------------------------------------------------
# Rolled back, refused, lost: nothing is announced
# --------------------------------------------------------------------------


def test_a_rolled_back_decision_announces_nothing(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True))
    approver = UserFactory()
    with capture_on_commit(execute=True) as callbacks:
        decision = db.begin_nested()
        governance.approve_proposal(db, proposal, approver)
        decision.rollback()
    assert (callbacks, heard) == ([], [])
    db.refresh(proposal)
    assert proposal.status == ProposalStatus.PROPOSED


def test_a_refused_move_announces_nothing(
    db: Session, capture_on_commit: Capture, heard: list[Announcement]
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True), status="rejected")
    with capture_on_commit(execute=True), pytest.raises(InvalidTransition):
        governance.approve_proposal(db, proposal, UserFactory())
    assert heard == []


def _seed(database: CommittingDatabase) -> tuple[str, str]:
    with database.sessions() as session:
        proposal = AgentProposalFactory(_session=session, agent=AgentFactory(_session=session))
        approver = UserFactory(_session=session)
        session.commit()
        return proposal.id, approver.id


def test_a_committed_decision_is_announced_after_the_commit(
    transactional_db: CommittingDatabase, heard: list[Announcement]
) -> None:
    proposal_id, approver_id = _seed(transactional_db)
    status_when_heard: list[str] = []

    def look_from_elsewhere(_: Announcement) -> None:
        with transactional_db.sessions() as elsewhere:
            status_when_heard.append(elsewhere.get_one(AgentProposal, proposal_id).status)

    with governance.subscribed(look_from_elsewhere), transactional_db.sessions() as session:
        proposal = session.get_one(AgentProposal, proposal_id)
        governance.approve_proposal(session, proposal, session.get_one(User, approver_id))
        session.flush()
        assert heard == []
        session.commit()

    assert _kinds(heard) == [Announced.APPROVED]
    assert status_when_heard == [ProposalStatus.APPROVED]  # already visible to others


def test_a_decision_rolled_back_for_real_announces_nothing(
    transactional_db: CommittingDatabase, heard: list[Announcement]
) -> None:
    proposal_id, approver_id = _seed(transactional_db)
    with transactional_db.sessions() as session:
        proposal = session.get_one(AgentProposal, proposal_id)
        governance.approve_proposal(session, proposal, session.get_one(User, approver_id))
        session.rollback()
        session.commit()
    assert heard == []


def test_the_decision_that_loses_a_race_announces_nothing(
    transactional_db: CommittingDatabase, heard: list[Announcement]
) -> None:
    proposal_id, approver_id = _seed(transactional_db)
    with (
        transactional_db.sessions() as first,
        transactional_db.sessions(expire_on_commit=False) as second,
    ):
        late = second.get_one(AgentProposal, proposal_id)
        late_user = second.get_one(User, approver_id)
        second.commit()  # its read transaction ends; it decides on what it loaded
        governance.approve_proposal(
            first, first.get_one(AgentProposal, proposal_id), first.get_one(User, approver_id)
        )
        first.commit()
        with pytest.raises(ProposalConflict):
            governance.reject_proposal(second, late, late_user, "too late")
        second.rollback()
    assert _kinds(heard) == [Announced.APPROVED]


def test_a_failing_subscriber_stops_neither_the_decision_nor_the_others(
    transactional_db: CommittingDatabase, heard: list[Announcement]
) -> None:
    proposal_id, approver_id = _seed(transactional_db)

    def broken(_: Announcement) -> None:
        raise RuntimeError("subscriber down")

    later: list[Announcement] = []
    with governance.subscribed(broken), governance.subscribed(later.append):
        with transactional_db.sessions() as session:
            proposal = session.get_one(AgentProposal, proposal_id)
            governance.approve_proposal(session, proposal, session.get_one(User, approver_id))
            with pytest.raises(RuntimeError, match="subscriber down"):
                session.commit()
        with transactional_db.sessions() as session:
            assert session.get_one(AgentProposal, proposal_id).status == ProposalStatus.APPROVED
    assert _kinds(heard) == _kinds(later) == [Announced.APPROVED]


def test_a_subscriber_hears_nothing_after_its_block(
    db: Session, capture_on_commit: Capture
) -> None:
    heard: list[Announcement] = []
    with governance.subscribed(heard.append):
        pass
    with capture_on_commit(execute=True):
        governance.route_trigger(db, AgentFactory(student=True), "manual", "ping", {})
    assert heard == []
