"""The factories' contract (the domain contract in the README), checked against the
database: parents, copies of the agent's state, which session, unique values and
order, defaults and every trait (read back from the database)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.governance import maturity_for_confidence
from core.models import (
    AgentExecution,
    AgentRegistry,
    AgentStatus,
    EpisodeSegment,
    EpisodeStatus,
    ExecutionStatus,
    ProposalStatus,
    Team,
    User,
    UserRole,
    UserStatus,
    WorkflowExecutionStatus,
    WorkflowStepExecution,
    Workspace,
    WorkspaceStatus,
)
from core.schema import Base
from tests import harness
from tests.factories import (
    ALL_FACTORIES,
    FACTORY_FOR,
    AgentExecutionFactory,
    AgentFactory,
    AgentFeedbackFactory,
    AgentProposalFactory,
    BaseFactory,
    BlockedTriggerContextFactory,
    CanvasAuditFactory,
    EpisodeAccessLogFactory,
    EpisodeFactory,
    EpisodeSegmentFactory,
    TeamFactory,
    TeamMessageFactory,
    UserFactory,
    WorkflowExecutionFactory,
    WorkflowStepExecutionFactory,
    WorkspaceFactory,
    bind_session,
    current_session,
)

AnyFactory = type[BaseFactory[Any]]


def _count(db: Session, model: type[Base]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _name(factory_class: AnyFactory) -> str:
    return factory_class.__name__


# --------------------------------------------------------------------------
# Every factory, no arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize("factory_class", ALL_FACTORIES, ids=_name)
def test_builds_with_no_arguments_and_flushes(db: Session, factory_class: AnyFactory) -> None:
    with harness.count_queries(db) as log:
        obj: Base = factory_class()
    state = inspect(obj)
    assert state.persistent, "flushed: it has a row and an identity"
    assert db.get(type(obj), state.identity) is obj
    table = type(obj).__tablename__
    assert any(sql.startswith(f"INSERT INTO {table} ") for sql in log.statements)
    assert not db.dirty
    assert not db.new


def test_factories_never_commit(db: Session) -> None:
    commits: list[Session] = []

    def record(session: Session) -> None:
        commits.append(session)

    event.listen(db, "after_commit", record)
    try:
        for factory_class in ALL_FACTORIES:
            factory_class()
    finally:
        event.remove(db, "after_commit", record)
    assert commits == []


# --------------------------------------------------------------------------
# Parents, by object and by key
# --------------------------------------------------------------------------

# Each factory's parents, by the relationship the caller gives. The key it
# sets and the parent's model are the mapper's; the parent's factory is the
# one for that model.
PARENT_RELATIONSHIPS: dict[AnyFactory, tuple[str, ...]] = {
    TeamFactory: ("workspace",),
    TeamMessageFactory: ("team", "sender"),
    AgentFactory: ("owner", "workspace"),
    AgentExecutionFactory: ("agent",),
    AgentFeedbackFactory: ("agent", "user"),
    WorkflowStepExecutionFactory: ("execution",),
    EpisodeFactory: ("agent", "workspace"),
    EpisodeSegmentFactory: ("episode",),
    EpisodeAccessLogFactory: ("episode",),
    CanvasAuditFactory: ("user",),
    BlockedTriggerContextFactory: ("agent",),
    AgentProposalFactory: ("agent",),
}


def _parent_case(
    factory_class: AnyFactory, relation: str
) -> tuple[AnyFactory, str, str, AnyFactory, type[Base]]:
    """(factory, relationship given, key given, the parent's factory, the parent's model)"""
    relationship = inspect(factory_class._meta.model).relationships[relation]
    (key_column,) = relationship.local_columns
    parent_model = relationship.mapper.class_
    return factory_class, relation, key_column.key, FACTORY_FOR[parent_model], parent_model


PARENTS = [
    _parent_case(factory_class, relation)
    for factory_class, relations in PARENT_RELATIONSHIPS.items()
    for relation in relations
]


def _parent_id(parent: Base) -> Any:
    return inspect(parent).identity[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("factory_class", "relation", "key", "parent_factory", "parent_model"),
    PARENTS,
    ids=[f"{f.__name__}.{relation}" for f, relation, *_ in PARENTS],
)
@pytest.mark.parametrize("given_as", ["object", "key"])
def test_a_given_parent_is_used_and_no_stray_one_is_created(
    db: Session,
    factory_class: AnyFactory,
    relation: str,
    key: str,
    parent_factory: AnyFactory,
    parent_model: type[Base],
    given_as: str,
) -> None:
    parent = parent_factory()
    before = _count(db, parent_model)

    given = {relation: parent} if given_as == "object" else {key: _parent_id(parent)}
    child = factory_class(**given)

    assert _count(db, parent_model) == before
    assert getattr(child, key) == _parent_id(parent)
    db.expire(child)
    assert getattr(child, relation) is parent


@pytest.mark.parametrize(
    ("factory_class", "relation", "parent_model"),
    [(f, relation, model) for f, relation, _, _, model in PARENTS if f is not AgentFactory],
    ids=[f"{f.__name__}.{relation}" for f, relation, *_ in PARENTS if f is not AgentFactory],
)
def test_a_required_parent_is_created_when_not_given(
    db: Session, factory_class: AnyFactory, relation: str, parent_model: type[Base]
) -> None:
    child = factory_class()
    assert isinstance(getattr(child, relation), parent_model)


@pytest.mark.parametrize(
    ("factory_class", "key"),
    [(f, key) for f, _, key, _, _ in PARENTS if f is not AgentFactory],
    ids=[f"{f.__name__}.{key}" for f, _, key, *_ in PARENTS if f is not AgentFactory],
)
def test_a_key_naming_no_row_fails_on_the_foreign_key(
    db: Session, factory_class: AnyFactory, key: str
) -> None:
    # As with the model's own constructor, the database says no (a step
    # whose run is missing fails first on its NOT NULL workflow_id).
    with pytest.raises(IntegrityError, match=r"(?i)foreign key|not.null|cannot be null"):
        factory_class(**{key: "no-such-row"})


# The NOT NULL failure of a `*_id` column, as SQLite, PostgreSQL and MariaDB word it.
NOT_NULL_KEY = (
    r"NOT NULL constraint failed: \w+\.\w+_id|null value in column \"\w+_id\""
    r"|Column '\w+_id' cannot be null"
)


@pytest.mark.parametrize(
    ("factory_class", "relation", "key"),
    [(f, relation, key) for f, relation, key, _, _ in PARENTS if f is not AgentFactory],
    ids=[f"{f.__name__}.{key}" for f, _, key, *_ in PARENTS if f is not AgentFactory],
)
@pytest.mark.parametrize("given_as", ["object", "key"])
def test_a_parent_given_as_none_is_none(
    db: Session, factory_class: AnyFactory, relation: str, key: str, given_as: str
) -> None:
    # `agent=None` and `agent_id=None` both mean "no agent": the NOT NULL
    # key fails at flush, and no parent is made up behind the caller's back.
    with pytest.raises(IntegrityError, match=NOT_NULL_KEY):
        factory_class(**{relation if given_as == "object" else key: None})


# --------------------------------------------------------------------------
# Copies of the agent's state
# --------------------------------------------------------------------------


@pytest.fixture
def atlas(db: Session) -> AgentRegistry:
    return AgentFactory(name="Atlas", autonomous=True)


@pytest.mark.parametrize("given_as", ["object", "key"])
def test_copies_come_from_the_given_agent(db: Session, atlas: AgentRegistry, given_as: str) -> None:
    given: dict[str, Any] = {"agent": atlas} if given_as == "object" else {"agent_id": atlas.id}

    episode = EpisodeFactory(**given)
    blocked = BlockedTriggerContextFactory(**given)
    proposal = AgentProposalFactory(**given)

    assert episode.maturity_at_time is AgentStatus.AUTONOMOUS
    assert blocked.agent_name == "Atlas"
    assert blocked.agent_maturity_at_block is AgentStatus.AUTONOMOUS
    assert blocked.confidence_score_at_block == atlas.confidence_score == 0.95
    assert proposal.agent_name == "Atlas"
    assert _count(db, AgentRegistry) == 1


def test_copies_come_from_the_created_agent_when_none_is_given(db: Session) -> None:
    blocked = BlockedTriggerContextFactory()
    assert blocked.agent_name == blocked.agent.name
    assert blocked.agent_maturity_at_block is blocked.agent.status
    assert blocked.confidence_score_at_block == blocked.agent.confidence_score
    episode = EpisodeFactory()
    assert episode.maturity_at_time is episode.agent.status
    assert AgentProposalFactory().agent_name.startswith("Agent ")


def test_explicit_copies_win(db: Session, atlas: AgentRegistry) -> None:
    episode = EpisodeFactory(agent=atlas, maturity_at_time=AgentStatus.STUDENT)
    assert episode.maturity_at_time is AgentStatus.STUDENT


# --------------------------------------------------------------------------
# Which session
# --------------------------------------------------------------------------


def test_explicit_session_takes_the_object_and_all_its_parents(engine: Engine) -> None:
    with (
        engine.connect() as connection,
        harness.isolated_session(connection) as bound,
        bind_session(bound),
    ):
        # A second session on the same connection; closed before `bound` is
        # used, because their savepoints must nest.
        with Session(bind=connection, join_transaction_mode="create_savepoint") as other:
            segment = EpisodeSegmentFactory(_session=other)
            episode = segment.episode
            created = [segment, episode, episode.agent, episode.workspace]
            assert all(obj in other for obj in created)
            assert not any(obj in bound for obj in created)
            assert len(bound.identity_map) == 0
            # The binding was for that one call only.
            assert current_session() is bound

        assert UserFactory() in bound


def test_explicit_session_with_parents_by_key_and_related_children(engine: Engine) -> None:
    with (
        engine.connect() as connection,
        harness.isolated_session(connection) as session,
    ):
        agent = AgentFactory(_session=session, intern=True)
        episode = EpisodeFactory(_session=session, agent_id=agent.id, completed=True)
        assert episode.maturity_at_time is AgentStatus.INTERN
        assert all(segment in session for segment in episode.segments)
        users = UserFactory.create_batch(3, _session=session)
        assert all(user in session for user in users)


def test_explicit_session_works_alongside_the_db_fixture(db: Session) -> None:
    assert UserFactory(_session=db) in db


def test_without_a_session_factories_say_what_to_do() -> None:
    with pytest.raises(RuntimeError) as refused:
        UserFactory()
    assert str(refused.value) == (
        "No session for factories: request the `db` fixture in this test, "
        "or pass `_session=<Session>` to the factory call."
    )


def test_no_factory_stores_a_session_in_its_meta(db: Session) -> None:
    for factory_class in ALL_FACTORIES:
        factory_class()
        factory_class(_session=db)
    assert BaseFactory._meta.sqlalchemy_session is None  # type: ignore[attr-defined]
    for factory_class in ALL_FACTORIES:
        assert factory_class._meta.sqlalchemy_session is None, factory_class.__name__  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# Unique fields and ordering
# --------------------------------------------------------------------------

THOUSAND = 1000


def test_a_thousand_of_each_collide_on_nothing(db: Session) -> None:
    # Built, then flushed in one go: the same declarations as create(), and
    # the database's unique constraints still judge them, without a
    # thousand round trips per factory.
    workspace = WorkspaceFactory()
    users = UserFactory.build_batch(THOUSAND)
    agents = AgentFactory.build_batch(THOUSAND)
    teams = TeamFactory.build_batch(THOUSAND, workspace=workspace)
    db.add_all([*users, *agents, *teams])
    db.flush()

    assert len({user.email for user in users}) == THOUSAND
    assert len({agent.name for agent in agents}) == THOUSAND
    assert len({agent.class_name for agent in agents}) == THOUSAND
    assert len({team.name for team in teams}) == THOUSAND
    assert _count(db, User) == _count(db, AgentRegistry) == _count(db, Team) == THOUSAND


def test_created_ones_collide_on_nothing_either(db: Session) -> None:
    workspace = WorkspaceFactory()
    UserFactory.create_batch(50)
    TeamFactory.create_batch(50, workspace=workspace)
    assert _count(db, User) == _count(db, Team) == 50


@pytest.mark.parametrize(
    ("parent_factory", "child_factory", "parent_key", "children"),
    [
        (EpisodeFactory, EpisodeSegmentFactory, "episode", "segments"),
        (WorkflowExecutionFactory, WorkflowStepExecutionFactory, "execution", "step_executions"),
    ],
    ids=["segments per episode", "steps per run"],
)
@pytest.mark.strict_loading(False, reason="what it checks is each parent's own lazy load")
def test_children_are_ordered_per_parent(
    db: Session, parent_factory: Any, child_factory: Any, parent_key: str, children: str
) -> None:
    parents = parent_factory(), parent_factory()
    created = [child_factory(**{parent_key: parent}) for parent in parents * 4]
    for parent in parents:
        mine = [child for child in created if getattr(child, parent_key) is parent]
        orders = [child.sequence_order for child in mine]
        assert orders == sorted(set(orders))
        db.expire(parent, [children])
        assert getattr(parent, children) == mine


# --------------------------------------------------------------------------
# Defaults and traits, read back from the database
# --------------------------------------------------------------------------


def reload(db: Session, *objects: object) -> None:
    """Flush, then read each object's columns back from the database."""
    db.flush()
    for obj in objects:
        db.expire(obj)
        db.refresh(obj)


def test_a_default_agent_is_bare(db: Session) -> None:
    agent = AgentFactory()
    db.expire(agent)
    assert agent.configuration == {}
    assert agent.schedule_config == {}
    assert agent.owner is None
    assert agent.user_id is None
    assert agent.workspace is None
    assert agent.workspace_id is None
    assert 0 <= agent.confidence_score <= 1
    assert _count(db, User) == _count(db, Workspace) == 0


@pytest.mark.parametrize(
    ("trait", "status", "confidence"),
    [
        ("student", AgentStatus.STUDENT, 0.3),
        ("intern", AgentStatus.INTERN, 0.6),
        ("supervised", AgentStatus.SUPERVISED, 0.8),
        ("autonomous", AgentStatus.AUTONOMOUS, 0.95),
    ],
)
def test_maturity_traits_agree_with_the_thresholds(
    db: Session, trait: str, status: AgentStatus, confidence: float
) -> None:
    agent = AgentFactory(**{trait: True})
    reload(db, agent)
    assert agent.status is status
    assert agent.confidence_score == confidence
    assert maturity_for_confidence(agent.confidence_score) is status


def test_agent_traits(db: Session) -> None:
    assert AgentFactory(paused=True).status is AgentStatus.PAUSED
    assert AgentFactory(deprecated=True).status is AgentStatus.DEPRECATED
    owned = AgentFactory(with_owner=True)
    assert isinstance(owned.owner, User)
    assert owned.user_id == owned.owner.id
    placed = AgentFactory(with_workspace=True)
    assert isinstance(placed.workspace, Workspace)
    assert placed.workspace_id == placed.workspace.id


def test_user_and_workspace_traits(db: Session) -> None:
    assert UserFactory(admin=True).role is UserRole.WORKSPACE_ADMIN
    assert UserFactory(team_lead=True).role is UserRole.TEAM_LEAD
    assert UserFactory(suspended=True).status is UserStatus.SUSPENDED
    assert UserFactory(sso=True).password_hash is None
    assert UserFactory().password_hash == "hash"
    assert WorkspaceFactory(trial=True).status is WorkspaceStatus.TRIAL
    startup = WorkspaceFactory(startup=True)
    assert startup.is_startup is True
    assert startup.company_size == "1-10"


def test_run_traits(db: Session) -> None:
    completed = AgentExecutionFactory(completed=True)
    failed = AgentExecutionFactory(failed=True)
    reload(db, completed, failed)
    assert completed.status is ExecutionStatus.COMPLETED
    assert completed.completed_at is not None
    assert completed.completed_at >= completed.started_at
    assert completed.output_summary == "done"
    assert completed.error_message is None
    assert failed.status is ExecutionStatus.FAILED
    assert failed.completed_at is not None
    assert failed.error_message
    assert AgentExecutionFactory().status is ExecutionStatus.RUNNING
    assert db.get(AgentExecution, failed.id) is failed

    assert WorkflowExecutionFactory(completed=True).outputs == {"ok": True}
    failed_run = WorkflowExecutionFactory(failed=True)
    assert failed_run.status is WorkflowExecutionStatus.FAILED
    assert failed_run.error == "step failed"


def test_a_completed_episode_has_ordered_segments(db: Session) -> None:
    episode = EpisodeFactory(completed=True)
    db.flush()
    db.expire_all()
    assert episode.status is EpisodeStatus.COMPLETED
    assert episode.ended_at is not None
    orders = [segment.sequence_order for segment in episode.segments]
    assert len(orders) == 3
    assert orders == sorted(set(orders))
    assert {segment.episode_id for segment in episode.segments} == {episode.id}
    assert _count(db, EpisodeSegment) == 3


def test_resolved_and_open_blocked_triggers(db: Session) -> None:
    resolved = BlockedTriggerContextFactory(resolved_trigger=True)
    open_trigger = BlockedTriggerContextFactory()
    reload(db, resolved, open_trigger)
    assert resolved.resolved is True
    assert resolved.resolved_at is not None
    assert resolved.resolution_outcome
    assert open_trigger.resolved is False
    assert open_trigger.resolved_at is None


def test_approved_and_rejected_proposals(db: Session) -> None:
    approved = AgentProposalFactory(approved=True)
    rejected = AgentProposalFactory(rejected=True)
    reload(db, approved, rejected)
    assert approved.status is ProposalStatus.APPROVED
    assert isinstance(approved.approver, User)
    assert approved.approved_by == approved.approver.id
    assert approved.approved_at is not None
    assert rejected.status is ProposalStatus.REJECTED
    assert rejected.approved_by is None
    assert AgentProposalFactory().approver is None


def test_step_and_message_defaults(db: Session) -> None:
    step = WorkflowStepExecutionFactory()
    assert step.workflow_id == step.execution.workflow_id
    assert db.get(WorkflowStepExecution, step.id) is step
    message = TeamMessageFactory()
    assert message.user_id == message.sender.id
    assert message.team_id == message.team.id


def test_a_factory_call_flushes_once_for_itself_and_the_parents_it_creates(db: Session) -> None:
    flushes: list[int] = []

    def count(session: Session, *_: Any) -> None:
        flushes.append(len(session.new))

    event.listen(db, "before_flush", count)
    try:
        feedback = AgentFeedbackFactory()  # creates its agent and its user too
    finally:
        event.remove(db, "before_flush", count)

    assert flushes == [3]  # one flush, writing the feedback and both parents
    assert not db.new
    assert inspect(feedback).persistent
    assert inspect(feedback.agent).persistent
    assert inspect(feedback.user).persistent


def test_a_parent_created_by_the_call_is_flushed_before_a_field_is_copied_from_it(
    db: Session,
) -> None:
    # The episode copies `maturity_at_time` from the agent it creates; the
    # agent's status default only exists once the agent is flushed.
    segment = EpisodeSegmentFactory()

    assert segment.episode.maturity_at_time == segment.episode.agent.status == "student"


def test_factory_boy_never_formats_resolved_values_to_say_a_parameter_was_not_given(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `parent()` and every trait ask factory_boy's resolver for names the call
    # did not give; factory_boy's own error message would repr every value
    # resolved so far (models included) only to throw it away.
    agent = AgentFactory()
    shown: list[str] = []

    def counted_repr(self: AgentRegistry) -> str:
        shown.append(self.id)
        return "agent"

    monkeypatch.setattr(AgentRegistry, "__repr__", counted_repr)

    AgentExecutionFactory(agent=agent, completed=True)

    assert shown == []
