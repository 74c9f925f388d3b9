"""Running one move in many sessions at once, and what each one got.

Every thread has a session of its own and waits at a `threading.Barrier`
until all are ready, so the moves really overlap. Two ways a session can act
on what it read while another commits (`Pattern`):

- "unit-of-work": each thread loads and acts in one transaction, through
  `core.governance.run_unit_of_work`, which retries a lost race; the number
  of runs is counted.
- "loaded-earlier": each thread loads in a transaction that ends, then all
  act at once on what they loaded (a form shown, then submitted). Their
  objects are stale by design: the case a read-modify-write that trusts the
  loaded value gets wrong on every backend.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.database import SQLITE_BEGIN
from core.governance import GovernanceError, ProposalConflict, run_unit_of_work
from core.models import (
    AgentProposal,
    ProposalStatus,
)

# Threads per race (the brief asks for at least 10).
THREADS = 12
# Retries allowed to one thread's unit of work: enough for every thread to
# lose to every other once, with room to spare.
ATTEMPTS = 4 * THREADS

Pattern = Literal["unit-of-work", "loaded-earlier"]
PATTERNS: tuple[Pattern, ...] = ("unit-of-work", "loaded-earlier")

# load(session, thread) -> what the thread acts on; act(session, loaded, thread) -> a plain
# value (the session is gone afterwards: return numbers and strings, not ORM objects).
Load = Callable[[Session, int], Any]
Act = Callable[[Session, Any, int], Any]


@dataclass(frozen=True)
class Outcome:
    """What one thread's move came to: a value or a governance error, and how
    many times its unit of work ran (1: no retry)."""

    value: Any
    error: GovernanceError | None
    runs: int

    @property
    def retries(self) -> int:
        return self.runs - 1


def race(engine: Engine, pattern: Pattern, load: Load, act: Act) -> list[Outcome]:
    """Run `act` in THREADS sessions at once, one outcome per thread, in thread order."""
    start = threading.Barrier(THREADS)
    sessions = sessionmaker(engine)

    def in_one_unit_of_work(thread: int) -> Outcome:
        runs = 0

        def work(session: Session) -> Any:
            nonlocal runs
            runs += 1
            return act(session, load(session, thread), thread)

        start.wait(timeout=60)
        try:
            done = run_unit_of_work(sessions, work, attempts=ATTEMPTS)
        except GovernanceError as error:
            return Outcome(None, error, runs)
        assert done.retries == runs - 1
        return Outcome(done.result, None, runs)

    def on_what_was_loaded_earlier(thread: int) -> Outcome:
        with Session(engine, expire_on_commit=False) as session:
            loaded = load(session, thread)
            session.commit()  # the read transaction ends; the objects keep what they read
            start.wait(timeout=60)
            try:
                value = act(session, loaded, thread)
                session.commit()
            except GovernanceError as error:
                session.rollback()
                return Outcome(None, error, 1)
            return Outcome(value, None, 1)

    move = in_one_unit_of_work if pattern == "unit-of-work" else on_what_was_loaded_earlier
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(move, thread) for thread in range(THREADS)]
        return [future.result(timeout=300) for future in futures]


def winners_and_losers(outcomes: Sequence[Outcome]) -> tuple[list[int], list[GovernanceError]]:
    """The threads whose move went through, and the errors the others met."""
    winners = [thread for thread, outcome in enumerate(outcomes) if outcome.error is None]
    return winners, [outcome.error for outcome in outcomes if outcome.error is not None]


def retries(outcomes: Sequence[Outcome]) -> str:
    """The retries each thread needed, for the report: `[0, 2, 0, ...] (2 in all)`."""
    each = [outcome.retries for outcome in outcomes]
    return f"retries per thread {each} ({sum(each)} in all)"


def report(engine: Engine, what: str, summary: str) -> str:
    """One line the lead can quote, printed (run with -s) and used as the
    assertion message: `[race] <backend>: <what>: <summary>`."""
    backend = "mariadb" if getattr(engine.dialect, "is_mariadb", False) else engine.dialect.name
    if backend == "sqlite":
        begin = engine.get_execution_options().get(SQLITE_BEGIN, "immediate")
        backend = f"sqlite file, {begin} BEGIN"
    line = f"[race] {backend}: {what}: {summary}"
    print(line)
    return line


def raced(name: str, pattern: Pattern) -> str:
    """`report`'s `what` for a race: `ratings (unit-of-work, 12 threads)`."""
    return f"{name} ({pattern}, {THREADS} threads)"


def errors(outcomes: Sequence[Outcome]) -> str:
    """The errors the threads met, counted by class: `11 InvalidTransition`."""
    counted = Counter(type(o.error).__name__ for o in outcomes if o.error is not None)
    return ", ".join(f"{count} {name}" for name, count in sorted(counted.items())) or "none"


def check_one_decision_won(
    outcomes: Sequence[str | ProposalConflict],
    final: AgentProposal,
    *,
    first: str,
    second_approves: bool,
) -> None:
    """Two deciders raced on one proposal (`first` approving, the other
    approving or rejecting), each outcome a winner's user id or the loser's
    conflict: exactly one decision was written, the winner's."""
    winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, ProposalConflict)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert f"proposal {final.id} was changed by another session" in str(losers[0])
    assert final.version == 2  # one decision written, not two
    if winners == [first] or second_approves:
        assert final.status == ProposalStatus.APPROVED
        assert final.approved_by == winners[0]
    else:
        assert final.status == ProposalStatus.REJECTED
        assert final.approved_by is None
