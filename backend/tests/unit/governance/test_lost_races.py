"""Lost races: the retryable `ConcurrentUpdate`, how a database error is
recognised as one, and `run_unit_of_work`, which retries it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core import governance
from core.governance import ConcurrentUpdate, GovernanceError, InvalidTransition, ProposalConflict
from core.models import (
    ProposalStatus,
    Workspace,
)
from tests.factories import WorkspaceFactory
from tests.unit.governance.common import count


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


def test_a_unit_of_work_needs_at_least_one_attempt(db: Session) -> None:
    with pytest.raises(ValueError, match=r"^attempts must be at least 1, got 0$"):
        governance.run_unit_of_work(Sessions(db), _losing(0, ValueError()), attempts=0)
