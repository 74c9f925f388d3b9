"""What the ON DELETE SET NULL hook of `core.models` costs a large delete.

The database nulls a SET NULL key when the row it points at is deleted; the
hook does the same to the objects the session has loaded, so they do not
report a key to a row that is gone. Here one flush deletes `users` users
while 40 objects per user are loaded (agents they own, workflow runs they
started, episodes they lived and supervised, and agent runs that point at no
user at all), timed with the hook and with it switched off.
"""

from __future__ import annotations

import gc
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from core.database import make_engine
from core.models import (
    AgentExecution,
    AgentRegistry,
    AgentStatus,
    Episode,
    User,
    WorkflowExecution,
    Workspace,
)

# The hook itself, to switch it off for the comparison.
from core.models import _mirror_on_delete_set_null as set_null_hook
from core.schema import Base

# Per user: 5 agents, 5 workflow runs, 5 episodes, 24 agent runs, and the user.
AGENTS, RUNS, EPISODES, EXECUTIONS = 5, 5, 5, 24
# Every model whose rows are loaded before the delete.
LOADED_MODELS: tuple[type[Base], ...] = (
    User,
    AgentRegistry,
    WorkflowExecution,
    Episode,
    AgentExecution,
)


@dataclass(frozen=True)
class SetNullCost:
    """Median times of one delete-and-flush, with and without the hook."""

    users: int
    loaded: int  # objects in the session when the users are deleted
    repeats: int
    hook_wall: float  # seconds
    hook_cpu: float
    bare_wall: float
    bare_cpu: float

    @property
    def label(self) -> str:
        return f"delete {self.users:,} users with {self.loaded:,} objects loaded"

    @property
    def ratio(self) -> float:
        """Hook over no hook, wall time."""
        return self.hook_wall / self.bare_wall


def measure_set_null(users: int, repeats: int) -> SetNullCost:
    """Time `repeats` deletes of `users` users with and without the hook, in turns."""
    engine = make_engine("sqlite://")  # in memory, like the test suite's default
    try:
        Base.metadata.create_all(engine)
        _seed(engine, users)
        times: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
        for _ in range(repeats):
            for hooked in (True, False):
                times[hooked].append(_delete_users(engine, hooked=hooked))
    finally:
        engine.dispose()

    def median(hooked: bool, which: int) -> float:
        return statistics.median(taken[which] for taken in times[hooked])

    return SetNullCost(
        users,
        times[True][0][2],
        repeats,
        median(True, 0),
        median(True, 1),
        median(False, 0),
        median(False, 1),
    )


def _seed(engine: Engine, users: int) -> None:
    """The rows, written with ORM bulk inserts; built here, not by the test factories."""
    workspace = str(uuid.uuid4())
    rows: dict[type[Base], list[dict[str, Any]]] = {model: [] for model in LOADED_MODELS}
    for n in range(users):
        user = str(uuid.uuid4())
        rows[User].append({"id": user, "email": f"user{n}@example.com"})
        agents = [str(uuid.uuid4()) for _ in range(AGENTS)]
        rows[AgentRegistry] += [
            {
                "id": agent,
                "name": f"agent {n}.{a}",
                "category": "bench",
                "module_path": "bench.agents",
                "class_name": "Agent",
                "user_id": user,
                "workspace_id": workspace,
            }
            for a, agent in enumerate(agents)
        ]
        rows[WorkflowExecution] += [
            {"workflow_id": f"workflow {r}", "user_id": user, "workspace_id": workspace}
            for r in range(RUNS)
        ]
        rows[Episode] += [
            {
                "title": f"episode {n}.{e}",
                "agent_id": agents[e % AGENTS],
                "user_id": user,
                "supervisor_id": user,
                "workspace_id": workspace,
                "maturity_at_time": AgentStatus.STUDENT,
            }
            for e in range(EPISODES)
        ]
        rows[AgentExecution] += [{"agent_id": agents[x % AGENTS]} for x in range(EXECUTIONS)]
    with Session(engine) as session:
        session.execute(insert(Workspace), [{"id": workspace, "name": "bench"}])
        for model in LOADED_MODELS:
            session.execute(insert(model), rows[model])
        session.commit()


@contextmanager
def _hook_switched(on: bool) -> Iterator[None]:
    """The SET NULL hook as it is (on) or removed for the block (off)."""
    if on:
        yield
        return
    event.remove(Base, "after_delete", set_null_hook)
    try:
        yield
    finally:
        event.listen(Base, "after_delete", set_null_hook, propagate=True)


def _delete_users(engine: Engine, *, hooked: bool) -> tuple[float, float, int]:
    """Load everything, then time deleting every user in one flush; roll back.

    Returns the wall and CPU seconds of the deletes and their flush, and how
    many objects were loaded.
    """
    with Session(engine) as session, _hook_switched(hooked):
        users = session.scalars(select(User)).all()
        agents = session.scalars(select(AgentRegistry)).all()
        # Held to the end, so that none of them leaves the identity map.
        others = [session.scalars(select(model)).all() for model in LOADED_MODELS[2:]]
        gc.collect()  # not the loading's garbage, collected during the deletes
        wall, cpu = time.perf_counter(), time.process_time()
        for user in users:
            session.delete(user)
        session.flush()
        taken = time.perf_counter() - wall, time.process_time() - cpu
        if hooked and any(agent.user_id is not None for agent in agents):
            raise RuntimeError("the SET NULL hook left an agent with its deleted owner's key")
        session.rollback()
    return *taken, len(users) + len(agents) + sum(map(len, others))
