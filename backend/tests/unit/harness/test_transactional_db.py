"""`transactional_db`: code that opens its own sessions, connections or threads
really commits, into the run's database, which is empty again afterwards.

pytest-django's `transactional_db`, Django's `TransactionTestCase`. On a
server (and a SQLite file) it is the run's own database; the default
in-memory SQLite cannot be shared by threads or connections, so there it is
a SQLite file of the run's own. `session_scope()` without a factory uses it
(`core.database.use_session_factory`).
"""

from __future__ import annotations

import textwrap
import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from core import governance
from core.database import (
    is_memory_sqlite,
    session_scope,
    use_session_factory,
)
from core.models import (
    AgentExecution,
    AgentFeedback,
    User,
)
from tests import harness
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentFeedbackFactory,
    EpisodeFactory,
    EpisodeSegmentFactory,
    TeamMessageFactory,
    UserFactory,
)
from tests.harness import CommittingDatabase


def _users(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(User)) or 0)


def test_it_is_the_runs_own_database_or_a_file_of_the_runs_own(
    engine: Engine, transactional_db: CommittingDatabase
) -> None:
    if is_memory_sqlite(engine.url):
        assert transactional_db.url.get_backend_name() == "sqlite"
        assert not is_memory_sqlite(transactional_db.url)
        assert str(transactional_db.url.database).endswith("transactional.db")
    else:
        assert transactional_db.url == engine.url
        assert transactional_db.engine is engine


def test_threads_commit_and_every_other_connection_sees_it(
    transactional_db: CommittingDatabase,
) -> None:
    def sign_up(number: int) -> None:
        with transactional_db.sessions() as session:
            session.add(User(email=f"thread{number}@example.com"))
            session.commit()

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _users(transactional_db.engine) == 4


def test_session_scope_without_a_factory_commits_into_it(
    transactional_db: CommittingDatabase,
) -> None:
    with session_scope() as session:
        session.add(User(email="scoped@example.com"))
    assert _users(transactional_db.engine) == 1


def test_use_session_factory_nests_and_restores(transactional_db: CommittingDatabase) -> None:
    inner = sessionmaker(bind=transactional_db.engine, info={"name": "inner"})
    with use_session_factory(inner), session_scope() as session:
        assert session.info == {"name": "inner"}
    with session_scope() as session:
        assert session.info == {}  # the fixture's factory again
    assert transactional_db.sessions().info == {}


def test_a_unit_of_work_that_fails_is_rolled_back(transactional_db: CommittingDatabase) -> None:
    def fails_after_a_write() -> None:
        with session_scope() as session:
            session.add(User(email="failed@example.com"))
            session.flush()
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails_after_a_write()
    assert _users(transactional_db.engine) == 0


def test_empty_tables_empties_every_table_children_first(
    transactional_db: CommittingDatabase,
) -> None:
    """Rows in every kind of relation (foreign keys, SET NULL, many-to-many),
    committed, then emptied."""
    with transactional_db.sessions() as session:
        agent = AgentFactory(_session=session, with_workspace=True, with_owner=True)
        run = AgentExecutionFactory(_session=session, agent=agent, completed=True)
        AgentFeedbackFactory(_session=session, agent=agent, execution=run)
        EpisodeSegmentFactory(_session=session, episode=EpisodeFactory(_session=session))
        TeamMessageFactory(_session=session)
        member = UserFactory(_session=session)
        assert agent.workspace is not None
        member.workspaces.append(agent.workspace)
        session.commit()
    with transactional_db.engine.connect() as connection:
        assert len(harness.tables_with_rows(connection)) >= 8

    harness.empty_tables(transactional_db.engine)

    with transactional_db.engine.connect() as connection:
        assert harness.tables_with_rows(connection) == {}


def test_code_that_commits_leaves_nothing_for_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_generated=textwrap.dedent(
            """
            from sqlalchemy import func, select

            from core.database import session_scope
            from core.models import AgentExecution
            from tests.factories import AgentExecutionFactory

            def test_commits(transactional_db):
                with session_scope() as session:
                    AgentExecutionFactory(_session=session)

            def test_commits_again_and_finds_only_its_own(transactional_db):
                with session_scope() as session:
                    AgentExecutionFactory(_session=session)
                with transactional_db.sessions() as session:
                    assert session.scalar(select(func.count(AgentExecution.id))) == 1

            def test_a_rolled_back_test_finds_nothing_either(db):
                assert db.scalar(select(func.count(AgentExecution.id))) == 0
            """
        )
    )
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-pno:randomly",
        "-pno:xdist",
        "--check-isolation",
    )
    result.assert_outcomes(passed=3)


def test_a_test_cannot_have_both_db_and_transactional_db(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_generated="""
def test_both(db, transactional_db):
    pass
"""
    )
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-pno:randomly",
        "-pno:xdist",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*asks for both `db` and `transactional_db`*Use one of them.*"])


def test_rows_a_thread_commits_are_there_for_the_next_unit_of_work(
    transactional_db: CommittingDatabase,
) -> None:
    with transactional_db.sessions() as session:
        run_id = AgentExecutionFactory(_session=session, completed=True).id
        session.commit()
    worker = threading.Thread(target=_rate, args=(transactional_db, run_id))
    worker.start()
    worker.join()
    with session_scope() as session:
        rated = session.scalars(
            select(AgentFeedback).where(AgentFeedback.agent_execution_id == run_id)
        )
        assert [feedback.rating for feedback in rated] == [5]
        assert session.get_one(AgentExecution, run_id).agent.confidence_score > 0


def _rate(database: CommittingDatabase, run_id: str) -> None:
    with database.sessions() as session:
        run = session.get_one(AgentExecution, run_id)
        governance.record_feedback(session, run, UserFactory(_session=session), rating=5)
        session.commit()
