"""Every read-modify-write of the governance layer, raced: no update is lost.

THREADS sessions make the same kind of move at once (see `races.py` for the
two patterns), on the run's backend (conftest.py: a SQLite file under `make
test`, PostgreSQL and MariaDB under their own suites), and the exact final state
is asserted: the agent's confidence equals the ratings applied one after
another, every read of an episode is counted, a run and a proposal each get
exactly one outcome. The retries each race needed are printed (`-s`) and
named in the assertion messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from core import governance
from core.database import make_engine
from core.governance import (
    MATURITY_THRESHOLDS,
    ConcurrentUpdate,
    InvalidTransition,
    ProposalConflict,
)
from core.models import (
    AgentExecution,
    AgentFeedback,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    Episode,
    EpisodeAccessLog,
    ExecutionStatus,
    User,
)
from core.schema import Base
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentProposalFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.integration.races import (
    PATTERNS,
    THREADS,
    Pattern,
    errors,
    race,
    raced,
    report,
    retries,
    winners_and_losers,
)

patterns = pytest.mark.parametrize("pattern", PATTERNS)


@pytest.fixture
def race_engine(race_url: URL) -> Iterator[Engine]:
    """An engine of the test's own on the race database (a pool of its own for
    the racing threads; `engine` is the name of the suite's database fixture)."""
    engine = make_engine(race_url)
    yield engine
    engine.dispose()


def _count(engine: Engine, model: type[Any], *where: Any) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --------------------------------------------------------------------------
# Feedback: confidence and maturity
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rated:
    """One thread's rating, as plain values."""

    before: float
    after: float
    maturity: str


def sequential(confidence: float, status: AgentStatus, count: int) -> list[tuple[float, str]]:
    """Confidence and maturity after each of `count` 5/5 ratings applied one
    after another: `next_confidence`, and one level up when the next band's
    threshold is reached (written out here, not by calling `graduate`)."""
    ladder = list(MATURITY_THRESHOLDS)
    steps = []
    for _ in range(count):
        confidence = governance.next_confidence(confidence, 1.0)
        level = ladder.index(status)
        if level + 1 < len(ladder) and confidence >= MATURITY_THRESHOLDS[ladder[level + 1]]:
            status = ladder[level + 1]
        steps.append((confidence, str(status)))
    return steps


@patterns
def test_concurrent_ratings_of_one_agent_add_up_to_the_sequential_result(
    race_engine: Engine, pattern: Pattern
) -> None:
    race_ratings(race_engine, pattern)


def race_ratings(engine: Engine, pattern: Pattern) -> None:
    """THREADS people each rate a different finished run of one agent 5/5."""
    with Session(engine) as session:
        agent = AgentFactory(_session=session, student=True)
        runs = [
            AgentExecutionFactory(_session=session, agent=agent, completed=True).id
            for _ in range(THREADS)
        ]
        raters = [UserFactory(_session=session).id for _ in range(THREADS)]
        session.commit()
        agent_id, start = agent.id, (agent.confidence_score, AgentStatus(agent.status))

    def load(session: Session, thread: int) -> tuple[AgentExecution, User]:
        execution = session.get_one(AgentExecution, runs[thread])
        execution.agent  # noqa: B018 - its confidence loaded now, stale when acted on
        return execution, session.get_one(User, raters[thread])

    def act(session: Session, loaded: tuple[AgentExecution, User], _thread: int) -> Rated:
        execution, rater = loaded
        outcome = governance.record_feedback(session, execution, rater, rating=5)
        return Rated(outcome.confidence_before, outcome.confidence_after, outcome.maturity_after)

    outcomes = race(engine, pattern, load, act)

    expected = sequential(*start, THREADS)
    with Session(engine) as session:
        final = session.get_one(AgentRegistry, agent_id)
        final_state = (final.confidence_score, str(final.status))
    line = report(
        engine,
        raced("ratings", pattern),
        f"confidence {final_state[0]!r} vs sequential {expected[-1][0]!r}, "
        f"maturity {final_state[1]} vs {expected[-1][1]}; {retries(outcomes)}",
    )
    assert [outcome.error for outcome in outcomes] == [None] * THREADS, line
    assert _count(engine, AgentFeedback, AgentFeedback.agent_id == agent_id) == THREADS, line
    assert final_state == expected[-1], line  # float equality: nothing lost, nothing rounded
    # Each rating built on the one committed before it: sorted by what they
    # saw, the ratings form one chain, step by step the sequential one, and
    # the maturity each left behind agrees with its confidence.
    chain = sorted((outcome.value for outcome in outcomes), key=lambda rated: rated.before)
    assert chain[0].before == start[0], line
    assert [(rated.after, rated.maturity) for rated in chain] == expected, line
    assert [rated.before for rated in chain[1:]] == [rated.after for rated in chain[:-1]], line


# --------------------------------------------------------------------------
# Episodes: the access count
# --------------------------------------------------------------------------


def _seed_episode(engine: Engine) -> str:
    with Session(engine) as session:
        agent = AgentFactory(_session=session, autonomous=True, with_workspace=True)
        runs = [
            AgentExecutionFactory(_session=session, agent=agent, completed=True) for _ in range(2)
        ]
        episode = governance.record_episode(session, agent, runs, title="raced")
        session.commit()
        return episode.id


@patterns
def test_concurrent_reads_of_one_episode_are_all_counted(
    race_engine: Engine, pattern: Pattern
) -> None:
    race_reads(race_engine, pattern)


def race_reads(engine: Engine, pattern: Pattern) -> None:
    """THREADS sessions read one episode."""
    episode_id = _seed_episode(engine)

    def load(session: Session, _thread: int) -> Episode:
        return session.get_one(Episode, episode_id)

    def act(session: Session, episode: Episode, thread: int) -> int:
        return len(governance.read_episode(session, episode, query=f"reader {thread}"))

    outcomes = race(engine, pattern, load, act)

    with Session(engine) as session:
        access_count = session.get_one(Episode, episode_id).access_count
    logs = _count(engine, EpisodeAccessLog, EpisodeAccessLog.episode_id == episode_id)
    line = report(
        engine,
        raced("episode reads", pattern),
        f"access_count {access_count} after {THREADS} reads, {logs} logs; {retries(outcomes)}",
    )
    assert [(outcome.value, outcome.error) for outcome in outcomes] == [(2, None)] * THREADS, line
    assert (access_count, logs) == (THREADS, THREADS), line


# --------------------------------------------------------------------------
# Executions: one outcome per run
# --------------------------------------------------------------------------


@patterns
def test_of_concurrent_completions_of_one_run_exactly_one_wins(
    race_engine: Engine, pattern: Pattern
) -> None:
    with Session(race_engine) as session:
        run_id = AgentExecutionFactory(_session=session, agent=AgentFactory(_session=session)).id
        session.commit()

    def load(session: Session, _thread: int) -> AgentExecution:
        return session.get_one(AgentExecution, run_id)

    def act(session: Session, execution: AgentExecution, thread: int) -> str:
        governance.complete_execution(
            session, execution, f"thread {thread}", succeeded=thread % 2 == 0
        )
        return str(execution.status)

    outcomes = race(race_engine, pattern, load, act)

    winners, losers = winners_and_losers(outcomes)
    with Session(race_engine) as session:
        final = session.get_one(AgentExecution, run_id)
        state = (str(final.status), final.output_summary or final.error_message)
    line = report(
        race_engine,
        raced("completions", pattern),
        f"{len(winners)} winner, losers: {errors(outcomes)}, final {state}; {retries(outcomes)}",
    )
    assert len(winners) == 1, line
    winner = winners[0]
    expected_status = ExecutionStatus.COMPLETED if winner % 2 == 0 else ExecutionStatus.FAILED
    assert state == (expected_status, f"thread {winner}"), line
    # Every other thread waited for the winner and was refused with its outcome.
    assert len(losers) == THREADS - 1, line
    assert all(
        isinstance(error, InvalidTransition) and error.current == expected_status
        for error in losers
    ), line


# --------------------------------------------------------------------------
# Proposals: one decision
# --------------------------------------------------------------------------


@patterns
def test_of_concurrent_decisions_on_one_proposal_exactly_one_wins(
    race_engine: Engine, pattern: Pattern
) -> None:
    with Session(race_engine) as session:
        proposal_id = AgentProposalFactory(
            _session=session, agent=AgentFactory(_session=session)
        ).id
        deciders = [UserFactory(_session=session).id for _ in range(THREADS)]
        session.commit()

    def load(session: Session, thread: int) -> tuple[AgentProposal, User]:
        proposal = session.get_one(AgentProposal, proposal_id)
        return proposal, session.get_one(User, deciders[thread])

    def act(session: Session, loaded: tuple[AgentProposal, User], thread: int) -> str:
        proposal, user = loaded
        if thread % 2 == 0:
            governance.approve_proposal(session, proposal, user)
        else:
            governance.reject_proposal(session, proposal, user, "not now")
        return str(proposal.status)

    outcomes = race(race_engine, pattern, load, act)

    winners, losers = winners_and_losers(outcomes)
    with Session(race_engine) as session:
        final = session.get_one(AgentProposal, proposal_id)
        state = (str(final.status), final.version)
    line = report(
        race_engine,
        raced("decisions", pattern),
        f"{len(winners)} winner, losers: {errors(outcomes)}, final {state}; {retries(outcomes)}",
    )
    assert len(winners) == 1, line
    assert len(losers) == THREADS - 1, line
    assert state == (outcomes[winners[0]].value, 2), line  # one decision written, not two
    if pattern == "loaded-earlier":
        # All decided on version 1: each loser's UPDATE found the version moved on.
        assert all(isinstance(error, ProposalConflict) for error in losers), line
        assert all("was changed by another session" in str(error) for error in losers), line
    else:
        # A retried conflict reloads the proposal and meets the winner's decision.
        assert all(isinstance(error, InvalidTransition) for error in losers), line


# --------------------------------------------------------------------------
# SQLite: a commit elsewhere is no conflict
# --------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file of this test's own, begun IMMEDIATE (the default)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _seed_proposal(engine: Engine) -> tuple[str, str]:
    with Session(engine) as session:
        proposal = AgentProposalFactory(_session=session, agent=AgentFactory(_session=session))
        approver = UserFactory(_session=session)
        session.commit()
        return proposal.id, approver.id


def _unrelated_row(session: Session) -> str:
    return str(WorkspaceFactory(_session=session).id)


def _proposal_state(engine: Engine, proposal_id: str) -> tuple[str, int]:
    with Session(engine) as session:
        proposal = session.get_one(AgentProposal, proposal_id)
        return str(proposal.status), proposal.version


def test_an_unrelated_writer_waits_for_a_decision_instead_of_spoiling_it(
    sqlite_file: Engine,
) -> None:
    """Begun IMMEDIATE, the session that read first holds the write lock, so
    an unrelated writer waits for it; the decision succeeds. (Here that writer
    may wait 0.1 s only, so that the test sees its refusal instead of waiting
    for itself: a truthful, retryable error, and its retry succeeds.)"""
    proposal_id, approver_id = _seed_proposal(sqlite_file)
    impatient = make_engine(sqlite_file.url)

    @event.listens_for(impatient, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=100")

    try:
        with Session(sqlite_file) as first:
            proposal = first.get_one(AgentProposal, proposal_id)  # BEGIN IMMEDIATE
            with pytest.raises(ConcurrentUpdate) as busy:
                governance.run_unit_of_work(sessionmaker(impatient), _unrelated_row, attempts=1)
            governance.approve_proposal(first, proposal, first.get_one(User, approver_id))
            first.commit()
        later = governance.run_unit_of_work(sessionmaker(impatient), _unrelated_row)
    finally:
        impatient.dispose()

    message = str(busy.value)
    assert not isinstance(busy.value, ProposalConflict)
    assert message.startswith("the unit of work could not finish: another session held the "), (
        message
    )
    assert "write lock (SQLITE_BUSY)" in message
    assert "changed by another session" not in message
    assert message.endswith("roll back and retry the unit of work")
    assert later.retries == 0
    assert _proposal_state(sqlite_file, proposal_id) == ("approved", 2)


def test_begun_deferred_an_unrelated_commit_is_a_retryable_error_not_a_conflict(
    sqlite_file: Engine,
) -> None:
    """Opted out of IMMEDIATE, the session's snapshot predates the unrelated
    commit, so SQLite refuses its write (SQLITE_BUSY_SNAPSHOT): reported as
    what it is, and the retried unit of work succeeds."""
    proposal_id, approver_id = _seed_proposal(sqlite_file)
    deferred = sqlite_file.execution_options(sqlite_begin="deferred")
    attempts: list[str] = []

    def approve_after_an_unrelated_commit(session: Session) -> str:
        proposal = session.get_one(AgentProposal, proposal_id)  # the snapshot starts here
        approver = session.get_one(User, approver_id)
        if not attempts:
            governance.run_unit_of_work(sessionmaker(sqlite_file), _unrelated_row)
        try:
            governance.approve_proposal(session, proposal, approver)
        except ConcurrentUpdate as error:
            attempts.append(str(error))
            raise
        attempts.append("approved")
        return str(proposal.status)

    done = governance.run_unit_of_work(sessionmaker(deferred), approve_after_an_unrelated_commit)

    report(deferred, "approval across an unrelated commit", f"attempts {attempts}")
    assert (done.result, done.retries) == ("approved", 1)
    refused = attempts[0]
    assert not refused.startswith(f"proposal {proposal_id} was changed"), refused
    assert refused.startswith(f"proposal {proposal_id} could not be marked 'approved': "), refused
    assert "(SQLITE_BUSY_SNAPSHOT)" in refused
    assert refused.endswith("roll back and retry the unit of work")
    assert _proposal_state(sqlite_file, proposal_id) == ("approved", 2)


@dataclass(frozen=True)
class Loaded:
    """One of everything a governance write takes, loaded in one session."""

    agent: AgentRegistry
    running: AgentExecution
    finished: AgentExecution
    episode: Episode
    proposal: AgentProposal
    person: User


def _load_one_of_everything(engine: Engine, session: Session) -> Loaded:
    with Session(engine) as seeding:
        agent = AgentFactory(_session=seeding, autonomous=True, with_workspace=True)
        running = AgentExecutionFactory(_session=seeding, agent=agent)
        finished = AgentExecutionFactory(_session=seeding, agent=agent, completed=True)
        episode = governance.record_episode(seeding, agent, [finished], title="seen")
        proposal = AgentProposalFactory(_session=seeding, agent=agent)
        person = UserFactory(_session=seeding)
        seeding.commit()
        ids = agent.id, running.id, finished.id, episode.id, proposal.id, person.id
    return Loaded(
        session.get_one(AgentRegistry, ids[0]),
        session.get_one(AgentExecution, ids[1]),
        session.get_one(AgentExecution, ids[2]),
        session.get_one(Episode, ids[3]),
        session.get_one(AgentProposal, ids[4]),
        session.get_one(User, ids[5]),
    )


MOVES: dict[str, tuple[Callable[[Session, Loaded], object], Callable[[Loaded], str]]] = {
    "rate": (
        lambda s, x: governance.record_feedback(s, x.finished, x.person, rating=5),
        lambda x: f"execution {x.finished.id} could not be rated",
    ),
    "complete": (
        lambda s, x: governance.complete_execution(s, x.running, "done"),
        lambda x: f"execution {x.running.id} could not be marked 'completed'",
    ),
    "read": (
        lambda s, x: governance.read_episode(s, x.episode),
        lambda x: f"episode {x.episode.id} could not be read",
    ),
    "route": (
        lambda s, x: governance.route_trigger(s, x.agent, "manual", "ping", {}),
        lambda x: f"agent {x.agent.id} could not take the trigger 'ping'",
    ),
    "remember": (
        lambda s, x: governance.record_episode(s, x.agent, [x.finished], title="again"),
        lambda x: f"agent {x.agent.id} could not record the episode 'again'",
    ),
    "decide": (
        lambda s, x: governance.cancel_proposal(s, x.proposal, "moot"),
        lambda x: f"proposal {x.proposal.id} could not be marked 'cancelled'",
    ),
}


@pytest.mark.parametrize("move", MOVES)
def test_begun_deferred_every_governance_write_reports_a_lost_race_naming_its_object(
    sqlite_file: Engine, move: str
) -> None:
    act, what = MOVES[move]
    with Session(sqlite_file.execution_options(sqlite_begin="deferred")) as session:
        loaded = _load_one_of_everything(sqlite_file, session)  # the snapshot starts here
        expected = f"{what(loaded)}: {governance.LOST_RACES['SQLITE_BUSY_SNAPSHOT']}; "
        governance.run_unit_of_work(sessionmaker(sqlite_file), _unrelated_row)

        with pytest.raises(ConcurrentUpdate) as lost:
            act(session, loaded)
        session.rollback()

    assert not isinstance(lost.value, ProposalConflict)
    assert str(lost.value) == expected + "roll back and retry the unit of work"


# --------------------------------------------------------------------------
# SQLite opted out of IMMEDIATE: still exact, at the price of retries
# --------------------------------------------------------------------------


def test_begun_deferred_concurrent_ratings_still_add_up(sqlite_file: Engine) -> None:
    race_ratings(sqlite_file.execution_options(sqlite_begin="deferred"), "unit-of-work")


def test_begun_deferred_concurrent_reads_are_still_all_counted(sqlite_file: Engine) -> None:
    race_reads(sqlite_file.execution_options(sqlite_begin="deferred"), "unit-of-work")
