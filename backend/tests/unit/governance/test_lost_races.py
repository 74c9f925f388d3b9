"""Lost races: the retryable `ConcurrentUpdate`, how a database error is
recognised as one, what each rule says when it loses one mid-write, and
`run_unit_of_work`, which retries it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from sqlalchemy import Select, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session

from core import governance
from core.governance import ConcurrentUpdate, GovernanceError, InvalidTransition, ProposalConflict
from core.models import (
    AgentStatus,
    ProposalStatus,
    Workspace,
)
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentProposalFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.unit.governance.common import count
from tests.unit.orm_executions import orm_executions
from tests.unit.readback import new_agent


def test_a_concurrent_update_says_what_failed_why_and_what_to_do() -> None:
    error = ConcurrentUpdate("episode e1 could not be read", "the write lock was busy")

    assert isinstance(error, GovernanceError)
    assert str(error) == (
        "episode e1 could not be read: the write lock was busy; "
        "roll back and retry the unit of work"
    )
    assert (error.what, error.reason) == ("episode e1 could not be read", "the write lock was busy")


def test_a_proposal_conflict_is_the_retryable_error_naming_the_proposal() -> None:
    conflict = ProposalConflict("p1", ProposalStatus.REJECTED)

    assert isinstance(conflict, ConcurrentUpdate)
    assert (conflict.proposal_id, conflict.requested) == ("p1", ProposalStatus.REJECTED)
    assert (conflict.what, conflict.reason) == (
        "proposal p1 was changed by another session before this one could mark it 'rejected'",
        "its version moved on since this session loaded it",
    )
    assert str(conflict) == (
        "proposal p1 was changed by another session before this one could mark it 'rejected': "
        "its version moved on since this session loaded it; roll back and retry the unit of work"
    )


def _sqlite_error(tmp_path: Path, name: str) -> DBAPIError:
    """A real SQLite error, as SQLAlchemy raises it: SQLITE_BUSY (the write
    lock is held), SQLITE_BUSY_SNAPSHOT (someone committed since this
    transaction's first read) or a constraint."""
    path = tmp_path / "lock.db"
    holder = sqlite3.connect(path, isolation_level=None)
    loser = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    loser.execute("BEGIN")
    loser.execute("SELECT * FROM t").fetchall()
    if name == "SQLITE_BUSY":
        holder.execute("BEGIN IMMEDIATE")
    elif name == "SQLITE_BUSY_SNAPSHOT":
        holder.execute("INSERT INTO t VALUES (1)")
    else:
        loser.execute("INSERT INTO t VALUES (1)")
    try:
        with pytest.raises(sqlite3.Error) as caught:
            loser.execute("INSERT INTO t VALUES (1)")
    finally:
        holder.close()
        loser.close()
    assert caught.value.sqlite_errorname == name
    return DBAPIError("INSERT", None, caught.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("SQLITE_BUSY", "write lock (SQLITE_BUSY)"),
     ("SQLITE_BUSY_SNAPSHOT", "may be stale reads (SQLITE_BUSY_SNAPSHOT)"),
     ("SQLITE_CONSTRAINT_UNIQUE", None)],
)  # fmt: skip
def test_sqlite_lost_races_are_told_apart_from_other_errors(
    tmp_path: Path, name: str, reason: str | None
) -> None:
    found = governance.lost_race(_sqlite_error(tmp_path, name))

    assert found is None if reason is None else reason in str(found)


@pytest.mark.parametrize(
    ("error", "code"),
    [(psycopg.errors.SerializationFailure, "40001"), (psycopg.errors.DeadlockDetected, "40P01"),
     (psycopg.errors.LockNotAvailable, "55P03"), (psycopg.errors.UniqueViolation, None)],
)  # fmt: skip
def test_postgresql_lost_races_are_told_apart_by_sqlstate(
    error: type[psycopg.Error], code: str | None
) -> None:
    wrapped = DBAPIError("UPDATE", None, error("from the server"))

    found = governance.lost_race(wrapped)

    assert found is None if code is None else f"({code})" in str(found)


def test_only_database_errors_can_be_lost_races() -> None:
    assert governance.lost_race(ValueError("SQLITE_BUSY")) is None


class DriverError(Exception):
    """A driver's error as `lost_race` reads it: its args and, depending on the
    driver, `sqlite_errorname` (sqlite3), `sqlstate` (psycopg 3) or `pgcode`
    (psycopg2, not installed here)."""

    def __init__(self, *args: object, **attributes: Any) -> None:
        super().__init__(*args)
        self.__dict__.update(attributes)


# Every lost race `LOST_RACES` knows, written out here rather than read from
# the module under test, and errors that are not lost races.
@pytest.mark.parametrize(
    ("error", "reason"),
    [(DriverError("database is locked", sqlite_errorname="SQLITE_BUSY"),
      "another session held the SQLite database's write lock (SQLITE_BUSY)"),
     (DriverError("database is locked", sqlite_errorname="SQLITE_BUSY_SNAPSHOT"),
      "another session committed after this transaction's first read, so SQLite refused "
      "to let it write on what may be stale reads (SQLITE_BUSY_SNAPSHOT)"),
     (psycopg.errors.SerializationFailure("could not serialize"),
      "PostgreSQL could not serialize this transaction with a concurrent one (40001)"),
     (psycopg.errors.DeadlockDetected("deadlock detected"),
      "PostgreSQL aborted this transaction to break a deadlock with another (40P01)"),
     (DriverError("lock timeout", pgcode="55P03"),
      "a concurrent transaction held a row lock past the lock timeout (55P03)"),
     (DriverError("deadlock detected", pgcode="40P01"),
      "PostgreSQL aborted this transaction to break a deadlock with another (40P01)"),
     (pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
      "MariaDB aborted this transaction to break a deadlock with another (1213)"),
     (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
      "a concurrent transaction held a row lock past MariaDB's lock wait timeout (1205)"),
     # MariaDB's deadlock shares PostgreSQL's 40001: the error number decides.
     (DriverError(1213, "Deadlock found", sqlstate="40001"),
      "MariaDB aborted this transaction to break a deadlock with another (1213)"),
     (pymysql.err.IntegrityError(1062, "Duplicate entry"), None),
     (DriverError("duplicate key value", pgcode="23505"), None),
     (DriverError("some other failure"), None),
     (DriverError(), None)],
    ids=["sqlite busy", "sqlite busy snapshot", "psycopg 40001", "psycopg 40P01",
         "psycopg2 55P03", "psycopg2 40P01", "mariadb 1213", "mariadb 1205",
         "mariadb 1213 with sqlstate", "mariadb 1062", "psycopg2 23505", "unknown", "bare"],
)  # fmt: skip
def test_each_lost_race_is_told_by_its_drivers_code_and_explained(
    error: Exception, reason: str | None
) -> None:
    assert governance.lost_race(DBAPIError("UPDATE", None, error)) == reason


SQLITE_BUSY = "another session held the SQLite database's write lock (SQLITE_BUSY)"


@contextmanager
def _every_flush_loses_a_race(db: Session) -> Iterator[None]:
    """Every flush with something to write fails as a busy SQLite database would."""

    def lose(*_: object) -> None:
        raise DBAPIError("INSERT", None, DriverError(sqlite_errorname="SQLITE_BUSY"))

    event.listen(db, "before_flush", lose)
    try:
        yield
    finally:
        event.remove(db, "before_flush", lose)


Attempt = tuple[Callable[[], object], str]


def _rate(db: Session) -> Attempt:
    run, rater = AgentExecutionFactory(completed=True), UserFactory()
    what = f"execution {run.id} could not be rated"
    return partial(governance.record_feedback, db, run, rater, rating=4), what


def _fail(db: Session) -> Attempt:
    run = AgentExecutionFactory()
    what = f"execution {run.id} could not be marked 'failed'"
    return partial(governance.complete_execution, db, run, "boom", succeeded=False), what


def _route(db: Session) -> Attempt:
    agent = AgentFactory(autonomous=True)
    what = f"agent {agent.id} could not take the trigger 'ping'"
    return partial(governance.route_trigger, db, agent, "manual", "ping", {}), what


def _route_unsaved(db: Session) -> Attempt:
    """The agent is not in the database yet: it is named by the id it was given."""
    agent = new_agent(status=AgentStatus.AUTONOMOUS)
    what = f"agent {agent.id} could not take the trigger 'ping'"
    return partial(governance.route_trigger, db, agent, "manual", "ping", {}), what


def _approve(db: Session) -> Attempt:
    proposal, approver = AgentProposalFactory(), UserFactory()
    what = f"proposal {proposal.id} could not be marked 'approved'"
    return partial(governance.approve_proposal, db, proposal, approver), what


def _remember(db: Session) -> Attempt:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    run = AgentExecutionFactory(agent=agent)
    what = f"agent {agent.id} could not record the episode 'Nightly'"
    return partial(governance.record_episode, db, agent, [run], title="Nightly"), what


def _read(db: Session) -> Attempt:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    episode = governance.record_episode(db, agent, [AgentExecutionFactory(agent=agent)], title="x")
    return partial(governance.read_episode, db, episode), f"episode {episode.id} could not be read"


@pytest.mark.parametrize(
    "attempt", [_rate, _fail, _route, _route_unsaved, _approve, _remember, _read]
)
def test_a_rule_that_loses_a_race_mid_write_says_what_it_could_not_do(
    db: Session, attempt: Callable[[Session], Attempt]
) -> None:
    act, what = attempt(db)

    with _every_flush_loses_a_race(db), pytest.raises(ConcurrentUpdate) as lost:
        act()

    assert (lost.value.what, lost.value.reason) == (what, SQLITE_BUSY)
    assert isinstance(lost.value.__cause__, DBAPIError)


POSTGRESQL = make_url("postgresql+psycopg://").get_dialect()()


def _row_locks(executed: list[ORMExecuteState]) -> list[str]:
    """The SELECTs among `executed` that lock rows, written as for PostgreSQL
    (the SQL a SQLite run sends has no lock clause: SQLite has no row locks)."""
    selects = (state.statement for state in executed if isinstance(state.statement, Select))
    compiled = (str(statement.compile(dialect=POSTGRESQL)) for statement in selects)
    return [sql for sql in compiled if " FOR " in sql]


def test_a_rating_locks_its_agent_yet_lets_rows_referencing_it_in(db: Session) -> None:
    """FOR NO KEY UPDATE, not FOR UPDATE: other writers of the agent wait, but
    rows that merely reference it (feedback, logs) can be inserted meanwhile
    (`core.governance._locked`)."""
    run, rater = AgentExecutionFactory(completed=True), UserFactory()

    with orm_executions(db) as executed:
        governance.record_feedback(db, run, rater, rating=4)

    (lock,) = _row_locks(executed)
    assert "FROM agent_registry" in lock
    assert lock.endswith("FOR NO KEY UPDATE")


def test_finishing_a_run_locks_it_yet_lets_rows_referencing_it_in(db: Session) -> None:
    run = AgentExecutionFactory()

    with orm_executions(db) as executed:
        governance.complete_execution(db, run, "done")

    (lock,) = _row_locks(executed)
    assert "FROM agent_executions" in lock
    assert lock.endswith("FOR NO KEY UPDATE")


class Sessions:
    """A sessionmaker for `run_unit_of_work` on the test's own transaction:
    each session commits into a savepoint, so the test still undoes it all.
    Counts the sessions made and the commits."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.made = 0
        self.commits = 0

    def __call__(self) -> Session:
        session = Session(bind=self.db.connection(), join_transaction_mode="create_savepoint")
        event.listen(session, "after_commit", self._count_commit)
        self.made += 1
        return session

    def _count_commit(self, _session: Session) -> None:
        self.commits += 1


def _losing(times: int, error: Exception) -> Callable[[Session], str]:
    """Work that writes a workspace, then loses `times` times with `error`."""
    calls: list[int] = []

    def work(session: Session) -> str:
        calls.append(1)
        workspace = WorkspaceFactory(_session=session)
        if len(calls) <= times:
            raise error
        return workspace.name

    return work


def test_a_unit_of_work_that_loses_a_race_is_run_again_and_committed_once(db: Session) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("agent a1 could not be rated", "busy")

    done = governance.run_unit_of_work(sessions, _losing(2, lost), backoff=0)

    assert (done.retries, sessions.made, sessions.commits) == (2, 3, 1)
    assert db.scalars(select(Workspace.name)).all() == [done.result]  # the lost runs left nothing


def test_a_raw_lost_race_from_the_database_is_retried_too(db: Session, tmp_path: Path) -> None:
    sessions = Sessions(db)

    done = governance.run_unit_of_work(
        sessions, _losing(1, _sqlite_error(tmp_path, "SQLITE_BUSY")), backoff=0
    )

    assert (done.retries, sessions.commits) == (1, 1)


def test_retrying_gives_up_after_the_last_attempt(db: Session) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("episode e1 could not be read", "busy")

    with pytest.raises(ConcurrentUpdate) as error:
        governance.run_unit_of_work(sessions, _losing(5, lost), attempts=3, backoff=0)

    assert error.value is lost
    assert error.value.__notes__ == ["run_unit_of_work gave up after 3 attempts"]
    assert (sessions.made, sessions.commits) == (3, 0)
    assert count(db, Workspace) == 0


@pytest.mark.parametrize(
    "refusal",
    [InvalidTransition("proposal p1", "approved", "rejected", frozenset()),
     ValueError("not a race"), DBAPIError("INSERT", None, psycopg.errors.UniqueViolation())],
    ids=["governance", "python", "database"],
)  # fmt: skip
def test_other_errors_are_not_retried(db: Session, refusal: Exception) -> None:
    sessions = Sessions(db)

    with pytest.raises(type(refusal)):
        governance.run_unit_of_work(sessions, _losing(1, refusal), backoff=0)

    assert (sessions.made, sessions.commits) == (1, 0)
    assert count(db, Workspace) == 0


def test_retries_pause_a_random_time_below_a_doubling_bound(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("time.sleep", pauses.append)
    lost = ConcurrentUpdate("execution x1 could not be rated", "busy")

    governance.run_unit_of_work(Sessions(db), _losing(3, lost), backoff=0.5)

    assert len(pauses) == 3
    assert all(0 <= pause <= 0.5 * 2**retry for retry, pause in enumerate(pauses))


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The bounds of every random pause, each pause the longest allowed (none slept)."""
    drawn: list[tuple[float, float]] = []

    def longest(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr("random.uniform", longest)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return drawn


def test_by_default_five_attempts_pausing_up_to_ten_milliseconds_doubled_each_time(
    db: Session, pauses: list[tuple[float, float]]
) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("episode e1 could not be read", "busy")

    with pytest.raises(ConcurrentUpdate) as error:
        governance.run_unit_of_work(sessions, _losing(9, lost))

    assert error.value.__notes__ == ["run_unit_of_work gave up after 5 attempts"]
    assert (sessions.made, sessions.commits) == (5, 0)
    assert pauses == [(0, 0.01), (0, 0.02), (0, 0.04), (0, 0.08)]


def test_no_backoff_means_no_pause(db: Session, pauses: list[tuple[float, float]]) -> None:
    lost = ConcurrentUpdate("episode e1 could not be read", "busy")

    done = governance.run_unit_of_work(Sessions(db), _losing(2, lost), backoff=0)

    assert (done.retries, pauses) == (2, [])


def test_a_single_attempt_is_not_retried(db: Session) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("episode e1 could not be read", "busy")

    with pytest.raises(ConcurrentUpdate) as error:
        governance.run_unit_of_work(sessions, _losing(1, lost), attempts=1, backoff=0)

    assert error.value.__notes__ == ["run_unit_of_work gave up after 1 attempts"]
    assert (sessions.made, sessions.commits) == (1, 0)


def test_a_raw_lost_race_is_raised_as_the_unit_of_work_that_could_not_finish(
    db: Session,
) -> None:
    busy = DBAPIError("INSERT", None, DriverError(sqlite_errorname="SQLITE_BUSY"))

    with pytest.raises(ConcurrentUpdate) as error:
        governance.run_unit_of_work(Sessions(db), _losing(1, busy), attempts=1, backoff=0)

    assert (error.value.what, error.value.reason) == (
        "the unit of work could not finish",
        SQLITE_BUSY,
    )
    assert error.value.__cause__ is busy


class LosingCommits(Sessions):
    """Sessions whose first `times` commits lose a race (SQLITE_BUSY)."""

    def __init__(self, db: Session, times: int) -> None:
        super().__init__(db)
        self.times = times

    def __call__(self) -> Session:
        session = super().__call__()
        if self.made <= self.times:
            event.listen(session, "before_commit", self._lose)
        return session

    @staticmethod
    def _lose(_session: Session) -> None:
        raise DBAPIError("COMMIT", None, DriverError(sqlite_errorname="SQLITE_BUSY"))


def test_a_commit_that_loses_a_race_is_retried_too(db: Session) -> None:
    sessions = LosingCommits(db, times=1)

    done = governance.run_unit_of_work(sessions, _losing(0, ValueError()), backoff=0)

    assert (done.retries, sessions.made, sessions.commits) == (1, 2, 1)
    assert db.scalars(select(Workspace.name)).all() == [done.result]


def test_a_unit_of_work_needs_at_least_one_attempt(db: Session) -> None:
    with pytest.raises(ValueError, match=r"^attempts must be at least 1, got 0$"):
        governance.run_unit_of_work(Sessions(db), _losing(0, ValueError()), attempts=0)
