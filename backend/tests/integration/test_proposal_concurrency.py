"""Two sessions deciding the same proposal at once: exactly one wins.

Real connections, not the rolled-back `db` fixture: each test gets a database
of its own (a temporary SQLite file, or a scratch PostgreSQL database created
and dropped here), because the race needs two transactions that both commit.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from core import governance
from core.database import Base, make_engine
from core.governance import ProposalConflict
from core.models import AgentProposal, ProposalStatus, User
from tests import databases, harness
from tests.factories import AgentFactory, AgentProposalFactory, UserFactory

Decision = Callable[[Session, AgentProposal, User], object]


def _scratch_postgres(stack: ExitStack) -> URL:
    """A database of this module's own on the suite's PostgreSQL server (or
    the local one), created here and dropped afterwards."""
    server = harness.postgres_server_or_skip()
    scratch = databases.sibling_database_url(server, f"race_{uuid.uuid4().hex[:12]}")
    return stack.enter_context(databases.created_database(scratch))


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql"])
def engines(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Engine]]:
    """Two engines (two pools, two connections) on one fresh database; each
    test seeds a proposal of its own in it."""
    with ExitStack() as stack:
        if request.param == "sqlite-file":
            url: str | URL = f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}"
        else:
            url = _scratch_postgres(stack)
        first, second = make_engine(url), make_engine(url)
        stack.callback(second.dispose)
        stack.callback(first.dispose)
        Base.metadata.create_all(first)
        yield first, second


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
    """Each decider loads the proposal in its own transaction, waits until the
    other has loaded it too, then decides and commits at the same moment."""
    both_loaded = threading.Barrier(len(deciders))

    def decide(engine: Engine, user_id: str, decision: Decision) -> str | ProposalConflict:
        with Session(engine) as session:
            proposal = session.get_one(AgentProposal, proposal_id)
            user = session.get_one(User, user_id)
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

    winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, ProposalConflict)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert f"proposal {proposal_id} was changed by another session" in str(losers[0])
    final = _reload(engines[1], proposal_id)
    assert final.version == 2  # one decision written, not two
    if winners == [alice] or second is approve:
        assert final.status == ProposalStatus.APPROVED
        assert final.approved_by == winners[0]
    else:
        assert final.status == ProposalStatus.REJECTED
        assert final.approved_by is None


def test_a_decision_on_a_proposal_loaded_before_anothers_commit_is_refused(
    engines: tuple[Engine, Engine],
) -> None:
    proposal_id, alice, bob = _seed(engines[0])
    with Session(engines[0]) as first, Session(engines[1]) as second:
        mine = first.get_one(AgentProposal, proposal_id)
        theirs = second.get_one(AgentProposal, proposal_id)

        governance.approve_proposal(first, mine, first.get_one(User, alice))
        first.commit()
        with pytest.raises(ProposalConflict) as conflict:
            governance.reject_proposal(second, theirs, second.get_one(User, bob), "too late")
        second.rollback()

    assert conflict.value.requested == ProposalStatus.REJECTED
    final = _reload(engines[1], proposal_id)
    assert (final.status, final.approved_by, final.version) == ("approved", alice, 2)
