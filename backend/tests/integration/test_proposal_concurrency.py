"""Two sessions deciding the same proposal at once: exactly one wins.

Real connections, not the rolled-back `db` fixture: `race_url` (see
conftest.py: the run's own database, on the run's backend only, emptied
after each test), because the race needs two transactions that both commit.

Both deciders load the proposal in a transaction that ends before either
decides, as a person decides on a proposal shown earlier. (In one open
transaction each, the second could not even load it on a SQLite file: it
begins IMMEDIATE, so the second waits for the first to finish, then sees its
decision; `test_races.py` races that way too.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from core import governance
from core.database import make_engine
from core.governance import ProposalConflict
from core.models import (
    AgentProposal,
    ProposalStatus,
    User,
)
from tests.factories import AgentFactory, AgentProposalFactory, UserFactory
from tests.integration.races import check_one_decision_won

Decision = Callable[[Session, AgentProposal, User], object]


@pytest.fixture
def engines(race_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """Two engines (two pools, two connections) on the race database; each
    test seeds a proposal of its own in it."""
    first, second = make_engine(race_url), make_engine(race_url)
    yield first, second
    second.dispose()
    first.dispose()


def _seed(engine: Engine) -> tuple[str, str, str]:
    """A proposal awaiting a decision and two people who may decide it."""
    with Session(engine) as session:
        proposal = AgentProposalFactory(_session=session, agent=AgentFactory(_session=session))
        alice, bob = UserFactory(_session=session), UserFactory(_session=session)
        session.commit()
        return proposal.id, alice.id, bob.id


def approve(session: Session, proposal: AgentProposal, user: User) -> object:
    return governance.approve_proposal(session, proposal, user)


def reject(session: Session, proposal: AgentProposal, user: User) -> object:
    return governance.reject_proposal(session, proposal, user, "not now")


def _decide_in_threads(
    engines: tuple[Engine, Engine], proposal_id: str, deciders: list[tuple[str, Decision]]
) -> list[str | ProposalConflict]:
    """Each decider loads the proposal in its own transaction, which ends, waits
    until the other has loaded it too, then decides and commits at the same moment."""
    both_loaded = threading.Barrier(len(deciders))

    def decide(engine: Engine, user_id: str, decision: Decision) -> str | ProposalConflict:
        with Session(engine, expire_on_commit=False) as session:
            proposal = session.get_one(AgentProposal, proposal_id)
            user = session.get_one(User, user_id)
            session.commit()  # the read transaction ends; the objects keep what they read
            both_loaded.wait(timeout=30)
            try:
                decision(session, proposal, user)
                session.commit()
            except ProposalConflict as conflict:
                session.rollback()
                return conflict
            return user_id

    with ThreadPoolExecutor(max_workers=len(deciders)) as pool:
        futures = [
            pool.submit(decide, engine, user_id, decision)
            for engine, (user_id, decision) in zip(engines, deciders, strict=True)
        ]
        return [future.result(timeout=60) for future in futures]


def _reload(engine: Engine, proposal_id: str) -> AgentProposal:
    with Session(engine, expire_on_commit=False) as session:
        return session.get_one(AgentProposal, proposal_id)


@pytest.mark.parametrize("second", [approve, reject], ids=["approve", "reject"])
def test_of_two_concurrent_decisions_exactly_one_wins(
    engines: tuple[Engine, Engine], second: Decision
) -> None:
    proposal_id, alice, bob = _seed(engines[0])

    outcomes = _decide_in_threads(engines, proposal_id, [(alice, approve), (bob, second)])

    final = _reload(engines[1], proposal_id)
    check_one_decision_won(outcomes, final, first=alice, second_approves=second is approve)


def test_a_decision_on_a_proposal_loaded_before_anothers_commit_is_refused(
    engines: tuple[Engine, Engine],
) -> None:
    proposal_id, alice, bob = _seed(engines[0])
    with Session(engines[0]) as first, Session(engines[1], expire_on_commit=False) as second:
        theirs = second.get_one(AgentProposal, proposal_id)
        reviewer = second.get_one(User, bob)
        second.commit()  # ends the read transaction, which would hold up `first` on SQLite
        mine = first.get_one(AgentProposal, proposal_id)

        governance.approve_proposal(first, mine, first.get_one(User, alice))
        first.commit()
        with pytest.raises(ProposalConflict) as conflict:
            governance.reject_proposal(second, theirs, reviewer, "too late")
        second.rollback()

    assert conflict.value.requested == ProposalStatus.REJECTED
    final = _reload(engines[1], proposal_id)
    assert (final.status, final.approved_by, final.version) == ("approved", alice, 2)
