"""N+1 detection (`tests.strict_loading`): Rails' strict_loading n_plus_one_only.

A relationship lazy-loaded for two or more objects of one class, one SELECT
each, fails the block, naming the class, the relationship, the statement and
where each load came from; a single lazy load, loads the identity map
answers, eager loads, and loads in separate units of work stay allowed.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.base import ExecutableOption

from core import governance
from core.models import (
    AgentExecution,
    AgentFeedback,
)
from tests import harness
from tests.factories import AgentExecutionFactory, AgentFactory, AgentFeedbackFactory
from tests.strict_loading import NPlusOneError, strict_loading

RUNS = 3


@pytest.fixture
def run_ids(db: Session) -> list[str]:
    """RUNS finished runs of one agent, each rated once; the session then
    forgets them, so that what the test loads, it loads from the database."""
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = [AgentExecutionFactory(agent=agent, completed=True) for _ in range(RUNS)]
    for run in runs:
        AgentFeedbackFactory(agent=agent, execution=run)
    db.expunge_all()
    return [run.id for run in runs]


def _runs(db: Session, *options: ExecutableOption) -> Sequence[AgentExecution]:
    return db.scalars(select(AgentExecution).order_by(AgentExecution.id).options(*options)).all()


def _ratings(runs: Sequence[AgentExecution]) -> list[int | None]:
    return [item.rating for run in runs for item in run.feedback]  # one lazy load per run


def test_a_planted_n_plus_one_fails_naming_the_relationship_and_each_load(
    db: Session, run_ids: list[str]
) -> None:
    with pytest.raises(NPlusOneError) as failure, strict_loading():
        _ratings(_runs(db))

    lines = str(failure.value).splitlines()
    assert lines[0] == "N+1 lazy loading (the same relationship loaded one object at a time):"
    assert lines[1] == (
        f"AgentExecution.feedback was lazy-loaded for {RUNS} AgentExecution objects, "
        "one SELECT each:"
    )
    assert lines[2].startswith("  SELECT agent_feedback.id, ")
    assert lines[2].endswith(" = agent_feedback.agent_execution_id")
    loads = lines[3 : 3 + RUNS]
    assert [line.split(".")[0].strip() for line in loads] == ["1", "2", "3"]
    for line, run_id in zip(loads, sorted(run_ids), strict=True):
        # The key each SELECT was for, and the line of code that loaded it.
        assert f"('{run_id}',) at " in line
        assert "test_strict_loading.py:" in line
        assert line.endswith(" in <listcomp>")
    assert lines[-1].startswith("Load it for all of them in one statement: add selectinload(")


def test_the_eager_version_passes_in_two_statements(db: Session, run_ids: list[str]) -> None:
    with strict_loading() as seen, harness.count_queries(db, 2):
        ratings = _ratings(_runs(db, selectinload(AgentExecution.feedback)))
    assert ratings == [4] * RUNS
    assert seen.lazy_loads == []


def test_a_single_lazy_load_is_allowed(db: Session, run_ids: list[str]) -> None:
    with strict_loading() as seen:
        run = db.get_one(AgentExecution, run_ids[0])
        assert [item.rating for item in run.feedback] == [4]
    assert [(loads.relationship, len(loads.objects)) for loads in seen.lazy_loads] == [
        ("feedback", 1)
    ]
    assert seen.n_plus_ones == []


def test_loads_the_identity_map_answers_are_not_counted(db: Session, run_ids: list[str]) -> None:
    with strict_loading() as seen:
        agents = {run.agent.id for run in _runs(db)}  # one SELECT: the same agent every time
    assert len(agents) == 1
    assert [(loads.relationship, len(loads.objects)) for loads in seen.lazy_loads] == [("agent", 1)]


def test_units_of_work_that_each_load_one_object_are_no_n_plus_one(
    db: Session, run_ids: list[str]
) -> None:
    with strict_loading() as seen:
        for run_id in run_ids:
            assert len(db.get_one(AgentExecution, run_id).feedback) == 1
            db.commit()  # the unit of work ends (here: the test's savepoint)
    assert len(seen.lazy_loads) == RUNS
    assert seen.n_plus_ones == []


def test_the_same_relationship_of_two_classes_or_two_relationships_are_apart(
    db: Session, run_ids: list[str]
) -> None:
    with strict_loading() as seen:
        run = db.get_one(AgentExecution, run_ids[0])
        run.feedback[0].execution  # noqa: B018 - the identity map answers
        run.feedback[0].user  # noqa: B018 - one load of another relationship
    assert sorted(loads.relationship for loads in seen.lazy_loads) == ["feedback", "user"]
    assert seen.n_plus_ones == []


def test_an_n_plus_one_in_another_thread_is_caught(
    transactional_db: harness.CommittingDatabase,
) -> None:
    with transactional_db.sessions() as session:
        agent = AgentFactory(_session=session)
        for _ in range(2):
            AgentFeedbackFactory(
                _session=session, agent=agent, execution=AgentExecutionFactory(_session=session)
            )
        session.commit()

    def loop_in_a_thread() -> None:
        with transactional_db.sessions() as session:
            _ratings(session.scalars(select(AgentExecution)).all())

    def loop_in_a_thread_in_a_block() -> None:
        with strict_loading():
            thread = threading.Thread(target=loop_in_a_thread)
            thread.start()
            thread.join()

    with pytest.raises(NPlusOneError, match=r"AgentExecution.feedback was lazy-loaded for 2 "):
        loop_in_a_thread_in_a_block()


def test_a_block_that_fails_keeps_its_own_error(db: Session, run_ids: list[str]) -> None:
    def n_plus_one_then_an_error() -> None:
        with strict_loading():
            _ratings(_runs(db))
            raise KeyError("the block's own error")

    with pytest.raises(KeyError):
        n_plus_one_then_an_error()


def test_record_episode_loads_every_runs_feedback_in_one_statement(
    db: Session, run_ids: list[str]
) -> None:
    """The N+1 --strict-loading found in `core.governance.record_episode`
    (one SELECT of feedback per run), fixed with selectinload."""
    runs = _runs(db)
    agent = runs[0].agent
    with strict_loading() as seen, harness.count_queries(db) as log:
        episode = governance.record_episode(db, agent, runs, title="three runs")
    assert seen.lazy_loads == []
    feedback_selects = [sql for sql in log.statements if "FROM agent_feedback" in sql]
    assert len(feedback_selects) == 1, log.describe()
    assert episode.feedback_ids is not None
    assert len(episode.feedback_ids) == RUNS
    stored = db.scalars(
        select(AgentFeedback.id).where(AgentFeedback.agent_execution_id.in_(run_ids))
    )
    assert sorted(episode.feedback_ids) == sorted(stored)


def test_record_episode_queries_nothing_more_when_the_feedback_is_loaded(
    db: Session, run_ids: list[str]
) -> None:
    runs = _runs(db, selectinload(AgentExecution.feedback))
    agent = runs[0].agent
    with harness.count_queries(db) as log:
        governance.record_episode(db, agent, runs, title="loaded")
    assert not [sql for sql in log.statements if "FROM agent_feedback" in sql], log.describe()


# --------------------------------------------------------------------------
# In the suite: the marker and --strict-loading
# --------------------------------------------------------------------------

SUITE = """
    import pytest
    from sqlalchemy import select

    from core.models import AgentExecution
    from tests.factories import AgentExecutionFactory, AgentFactory

    def _seed_and_loop(db):
        agent = AgentFactory()
        for _ in range(2):
            AgentExecutionFactory(agent=agent)
        db.expunge_all()
        return [len(run.feedback) for run in db.scalars(select(AgentExecution)).all()]

    def test_unmarked(db):
        assert _seed_and_loop(db) == [0, 0]

    @pytest.mark.strict_loading
    def test_marked(db):
        assert _seed_and_loop(db) == [0, 0]

    @pytest.mark.strict_loading(False, reason="the subject is one object's lazy load")
    def test_exempt(db):
        assert _seed_and_loop(db) == [0, 0]

    def test_single(db):
        AgentExecutionFactory()
        db.expunge_all()
        assert len(db.scalars(select(AgentExecution)).one().feedback) == 0
"""


# The suites run in this process: an N+1 of a generated test that no block of
# its own catches would land in this test's block under --strict-loading.
OWN_SUITES_N_PLUS_ONES = pytest.mark.strict_loading(
    False, reason="the N+1s of the suites it runs are its subject"
)


def _run_suite(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_generated=textwrap.dedent(source))
    return pytester.runpytest(
        *harness.INNER_RUN,
        *harness_plugins_off(),
        *args,
    )


def harness_plugins_off() -> list[str]:
    # Of INNER_RUN's plugins, hypothesis's is not used here (pytest-randomly
    # is not loaded: the suites run in the order written).
    return ["-pno:hypothesispytest"]


@OWN_SUITES_N_PLUS_ONES
def test_the_marker_fails_only_the_marked_test(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, SUITE)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAILED test_generated.py::test_marked - Failed: N+1 lazy loading*",
        ]
    )


@OWN_SUITES_N_PLUS_ONES
def test_the_flag_fails_every_n_plus_one_but_the_exempt(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, SUITE, "--strict-loading")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AgentExecution.feedback was lazy-loaded for 2 AgentExecution objects, one SELECT*",
        ]
    )
    failed = {
        line.split("::")[1].split(" ")[0] for line in result.outlines if line.startswith("FAILED")
    }
    assert failed == {"test_unmarked", "test_marked"}


def test_an_exemption_without_a_reason_is_refused(pytester: pytest.Pytester) -> None:
    result = _run_suite(
        pytester,
        """
        import pytest

        @pytest.mark.strict_loading(False)
        def test_exempt():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*strict_loading(False) needs a reason=*"])


def test_a_planted_n_plus_one_inside_its_own_block_passes_under_the_flag(
    pytester: pytest.Pytester,
) -> None:
    """A load belongs to the innermost block: the flag's own block around the
    test does not see the N+1 the test plants, and catches, in its block."""
    planted = textwrap.dedent(SUITE).split("def test_unmarked")[0] + textwrap.dedent(
        """
        from tests.strict_loading import NPlusOneError, strict_loading

        def test_planted(db):
            with pytest.raises(NPlusOneError), strict_loading():
                _seed_and_loop(db)
        """
    )
    result = _run_suite(pytester, planted, "--strict-loading")
    result.assert_outcomes(passed=1)


def test_an_engine_fixture_alone_sees_no_detector(engine: Engine) -> None:
    with strict_loading() as seen, Session(engine) as session:
        session.scalars(select(AgentExecution)).all()
    assert seen.lazy_loads == []
