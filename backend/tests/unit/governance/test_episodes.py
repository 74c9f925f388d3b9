"""Episodes: a run of executions remembered as ordered segments, and every
read of it logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import governance
from core.governance import GovernanceError
from core.models import (
    Episode,
    EpisodeAccessLog,
    EpisodeSegment,
    ExecutionStatus,
)
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentFeedbackFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.unit.governance.common import count, row_counts, stored_row

START = datetime(2026, 1, 1, 9, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def test_an_episode_holds_its_runs_as_ordered_segments(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    late, early, middle = (
        AgentExecutionFactory(
            agent=agent, completed=True, started_at=start + timedelta(minutes=m), output_summary=s
        )
        for m, s in ((20, "third"), (0, "first"), (10, "second"))
    )
    governance.record_feedback(db, early, UserFactory(), rating=5)
    governance.record_feedback(db, late, UserFactory(), rating=1)

    episode = governance.record_episode(db, agent, [late, early, middle], title="Morning")

    db.expire_all()
    assert [s.content for s in episode.segments] == ["first", "second", "third"]
    assert [s.sequence_order for s in episode.segments] == [0, 1, 2]
    assert [s.source_id for s in episode.segments] == [early.id, middle.id, late.id]
    assert episode.execution_ids == [early.id, middle.id, late.id]
    assert len(episode.feedback_ids or []) == 2
    assert episode.aggregate_feedback_score == 0.0
    assert episode.started_at == start
    assert episode.workspace_id == agent.workspace_id
    assert episode.maturity_at_time == "autonomous"
    assert episode.status == "completed"


def test_an_episode_takes_the_workspace_of_its_runs_when_the_agent_has_none(
    db: Session,
) -> None:
    agent = AgentFactory(autonomous=True)
    workspace = WorkspaceFactory()
    execution = AgentExecutionFactory(agent=agent, workspace_id=workspace.id)

    episode = governance.record_episode(db, agent, [execution], title="Orphaned agent")

    assert episode.workspace_id == workspace.id
    assert episode.aggregate_feedback_score is None


def test_an_episode_is_refused_without_runs_foreign_runs_or_a_workspace(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    other = AgentExecutionFactory()
    own = AgentExecutionFactory(agent=agent)
    before = row_counts(db)

    with pytest.raises(GovernanceError, match="at least one execution"):
        governance.record_episode(db, agent, [], title="Empty")
    with pytest.raises(GovernanceError, match="are not runs of agent"):
        governance.record_episode(db, agent, [own, other], title="Mixed")
    with pytest.raises(GovernanceError, match="belong to no workspace"):
        governance.record_episode(db, agent, [own], title="Nowhere")

    assert row_counts(db) == before


def test_reading_an_episode_writes_an_access_log(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = [AgentExecutionFactory(agent=agent, completed=True) for _ in range(2)]
    episode = governance.record_episode(db, agent, runs, title="Two runs")
    reader = UserFactory()

    segments = governance.read_episode(
        db, episode, user=reader, agent=agent, access_type="semantic", query="refunds"
    )

    assert [s.sequence_order for s in segments] == [0, 1]
    db.expire_all()
    log = db.scalars(select(EpisodeAccessLog)).one()
    assert (log.episode_id, log.accessed_by, log.accessed_by_agent) == (
        episode.id,
        reader.id,
        agent.id,
    )
    assert (log.access_type, log.retrieval_query, log.results_count) == ("semantic", "refunds", 2)
    assert log.agent_maturity_at_access == "autonomous"
    assert episode.access_count == 1

    governance.read_episode(db, episode)
    assert count(db, EpisodeAccessLog) == 2
    assert episode.access_count == 2
    assert sorted(db.scalars(select(EpisodeAccessLog.access_type))) == ["retrieval", "semantic"]


# --------------------------------------------------------------------------
# What an episode records
# --------------------------------------------------------------------------


def test_an_episode_row_records_its_runs_feedback_span_and_maturity(db: Session) -> None:
    agent = AgentFactory(supervised=True, with_workspace=True)
    # Given out of order; the first to start finishes last.
    late = AgentExecutionFactory(
        agent=agent, completed=True, started_at=_at(20), completed_at=_at(25)
    )
    first = AgentExecutionFactory(
        agent=agent, completed=True, started_at=_at(0), completed_at=_at(40)
    )
    middle = AgentExecutionFactory(
        agent=agent, failed=True, started_at=_at(10), completed_at=_at(12)
    )
    rater, asker = UserFactory(), UserFactory()
    on_late = governance.record_feedback(db, late, rater, thumbs_up=True).feedback
    on_first = governance.record_feedback(db, first, rater, rating=2).feedback

    episode = governance.record_episode(
        db, agent, [late, first, middle], title="Refunds", user=asker
    )

    expected = {
        "title": "Refunds",
        "agent_id": agent.id,
        "user_id": asker.id,
        "workspace_id": agent.workspace_id,
        "execution_ids": [first.id, middle.id, late.id],
        "feedback_ids": [on_first.id, on_late.id],
        "aggregate_feedback_score": 0.25,  # targets 0.25 and 1.0
        "maturity_at_time": "supervised",
        "started_at": _at(0),
        "ended_at": _at(40),  # the latest end, not the last run's
        "status": "completed",
        "access_count": 0,
    }
    assert stored_row(db, Episode, episode.id, *expected) == expected


def test_a_run_still_going_ends_the_episode_no_earlier_than_its_start(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    done = AgentExecutionFactory(
        agent=agent, completed=True, started_at=_at(0), completed_at=_at(5)
    )
    going = AgentExecutionFactory(agent=agent, started_at=_at(30))

    episode = governance.record_episode(db, agent, [going, done], title="Still going")

    assert stored_row(db, Episode, episode.id, "started_at", "ended_at") == {
        "started_at": _at(0),
        "ended_at": _at(30),
    }


def test_an_episode_nobody_asked_for_has_no_user(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    run = AgentExecutionFactory(agent=agent, completed=True)

    episode = governance.record_episode(db, agent, [run], title="Nightly")

    assert stored_row(db, Episode, episode.id, "user_id") == {"user_id": None}


# Runs given out of start order: (started at minute, triggered_by, status,
# output, error, input), and the segment each leaves (content, summary).
SEGMENT_RUNS = [
    ((3, "manual", ExecutionStatus.RUNNING, None, None, None), ("", "manual: running")),
    ((0, "execution:manual", ExecutionStatus.COMPLETED, "sent", "retried", "ticket 42"),
     ("sent", "execution:manual: completed")),
    ((2, "proposal", ExecutionStatus.COMPLETED, None, None, "ticket 44"),
     ("ticket 44", "proposal: completed")),
    ((1, "supervision:manual", ExecutionStatus.FAILED, None, "CRM down", "ticket 43"),
     ("CRM down", "supervision:manual: failed")),
]  # fmt: skip


def test_each_segment_records_its_run_in_start_order(db: Session) -> None:
    """The content is the run's output, else its error, else its input, else empty."""
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = []
    for (minute, trigger, status, output, error, given), _ in SEGMENT_RUNS:
        runs.append(
            AgentExecutionFactory(
                agent=agent,
                started_at=_at(minute),
                triggered_by=trigger,
                status=status,
                output_summary=output,
                error_message=error,
                input_summary=given,
            )
        )

    episode = governance.record_episode(db, agent, runs, title="Four runs")

    rows = db.execute(
        select(
            EpisodeSegment.sequence_order,
            EpisodeSegment.segment_type,
            EpisodeSegment.source_type,
            EpisodeSegment.source_id,
            EpisodeSegment.content,
            EpisodeSegment.content_summary,
        )
        .where(EpisodeSegment.episode_id == episode.id)
        .order_by(EpisodeSegment.sequence_order)
    ).all()
    by_start = sorted(zip(runs, SEGMENT_RUNS, strict=True), key=lambda pair: pair[0].started_at)
    assert [tuple(row) for row in rows] == [
        (order, "execution", "agent_execution", run.id, *segment)
        for order, (run, (_, segment)) in enumerate(by_start)
    ]


def test_an_agent_with_a_workspace_keeps_its_own_over_its_runs(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    run = AgentExecutionFactory(agent=agent, workspace_id=WorkspaceFactory().id)

    episode = governance.record_episode(db, agent, [run], title="Home")

    assert stored_row(db, Episode, episode.id, "workspace_id") == {
        "workspace_id": agent.workspace_id
    }


def test_an_agent_without_a_workspace_takes_the_first_run_that_has_one(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    workspace = WorkspaceFactory()
    homeless = AgentExecutionFactory(agent=agent, started_at=_at(0))
    housed = AgentExecutionFactory(agent=agent, started_at=_at(1), workspace_id=workspace.id)

    episode = governance.record_episode(db, agent, [homeless, housed], title="Borrowed")

    assert stored_row(db, Episode, episode.id, "workspace_id") == {"workspace_id": workspace.id}


def test_each_refusal_says_why(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    own = AgentExecutionFactory(agent=agent)
    others = [AgentExecutionFactory(), AgentExecutionFactory()]

    with pytest.raises(GovernanceError) as empty:
        governance.record_episode(db, agent, [], title="Empty")
    with pytest.raises(GovernanceError) as mixed:
        governance.record_episode(db, agent, [own, *others], title="Mixed")
    with pytest.raises(GovernanceError) as nowhere:
        governance.record_episode(db, agent, [own], title="Nowhere")

    assert str(empty.value) == "an episode needs at least one execution"
    assert str(mixed.value) == (
        f"executions {[others[0].id, others[1].id]} are not runs of agent {agent.id}"
    )
    assert str(nowhere.value) == (f"agent {agent.id} and its executions belong to no workspace")


# A verdict on one run: given to `record_feedback`, or "comment" for feedback
# with neither a rating nor a thumb (a correction), which does not count.
Verdict = dict[str, Any] | str


@pytest.mark.parametrize(
    ("verdicts", "score"),
    [([{"thumbs_up": True}, {"thumbs_up": True}, {"thumbs_up": True}, {"thumbs_up": False}], 0.5),
     ([{"rating": 5}, {"rating": 2}], 0.25),
     ([{"rating": 4}, {"thumbs_up": False}], -0.25),
     (["comment", {"thumbs_up": True}], 1.0),
     (["comment"], None),
     ([], None)],
    ids=["thumbs only", "ratings only", "mixed", "comments do not count", "comments only",
         "no feedback"],
)  # fmt: skip
def test_the_feedback_score_is_the_mean_target_on_minus_one_to_one(
    db: Session, verdicts: list[Verdict], score: float | None
) -> None:
    """2 * mean(target) - 1: a rating r aims at (r - 1) / 4, a thumb at 1 or 0."""
    agent = AgentFactory(autonomous=True, with_workspace=True)
    rater = UserFactory()
    runs = []
    for minute, verdict in enumerate([*verdicts, "no verdict"]):
        run = AgentExecutionFactory(agent=agent, completed=True, started_at=_at(minute))
        if verdict == "comment":
            AgentFeedbackFactory(agent=agent, execution=run, user=rater, rating=None)
        elif isinstance(verdict, dict):
            governance.record_feedback(db, run, rater, **verdict)
        runs.append(run)

    episode = governance.record_episode(db, agent, runs, title="Scored")

    stored = stored_row(db, Episode, episode.id, "aggregate_feedback_score", "feedback_ids")
    assert stored["aggregate_feedback_score"] == score
    assert len(stored["feedback_ids"]) == len(verdicts)


def test_a_read_by_nobody_in_particular_is_logged_as_such_and_counted(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = [AgentExecutionFactory(agent=agent, started_at=_at(minute)) for minute in (1, 0, 2)]
    episode = governance.record_episode(db, agent, runs, title="Three runs")

    segments = governance.read_episode(db, episode)

    in_order = select(EpisodeSegment.id).where(EpisodeSegment.episode_id == episode.id)
    assert [s.id for s in segments] == list(db.scalars(in_order.order_by("sequence_order")))
    log = db.scalars(select(EpisodeAccessLog.id)).one()
    expected = {
        "episode_id": episode.id,
        "accessed_by": None,
        "accessed_by_agent": None,
        "access_type": "retrieval",
        "retrieval_query": None,
        "agent_maturity_at_access": None,
        "results_count": 3,
    }
    assert stored_row(db, EpisodeAccessLog, log, *expected) == expected
    assert stored_row(db, Episode, episode.id, "access_count") == {"access_count": 1}
