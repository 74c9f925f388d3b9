"""Write throughput: the same AgentExecution rows through four paths.

- ORM unit of work: construct objects, `add_all`, `flush`, commit;
- ORM bulk insert, checked: `session.execute(insert(AgentExecution), rows)`,
  commit; the path this project recommends for bulk writes, where every row
  gets the column rules' checks and normalisation (`core.validation`);
- Core insert, unchecked: `session.execute(insert(AgentExecution.__table__),
  rows)`, commit; the deliberately unchecked fast path: only the database's
  CHECK constraints see the rows;
- the raw driver: `cursor.executemany` with a hand-written INSERT, commit.

Each path starts from the same list of dicts of Python values and ends with
the rows committed; converting values for the driver is part of its cost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from core.database import make_engine
from core.models import (
    AgentExecution,
    AgentRegistry,
    ExecutionStatus,
)
from core.schema import Base

Row = dict[str, Any]
InsertPath = Callable[[Engine, list[Row]], None]

# Every column the rows set explicitly; the others are nullable and left NULL.
COLUMNS = (
    "id",
    "agent_id",
    "status",
    "input_summary",
    "triggered_by",
    "started_at",
    "duration_seconds",
)


@dataclass(frozen=True)
class Throughput:
    path: str
    rows: int
    seconds: float  # the fastest of the repeats

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def make_rows(count: int, agent_id: str) -> list[Row]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "agent_id": agent_id,
            "status": ExecutionStatus.COMPLETED,
            "input_summary": f"scheduled run {n}",
            "triggered_by": "schedule",
            "started_at": start + timedelta(seconds=n),
            "duration_seconds": 1.5,
        }
        for n in range(count)
    ]


def orm_unit_of_work(engine: Engine, rows: list[Row]) -> None:
    with Session(engine) as session:
        session.add_all([AgentExecution(**row) for row in rows])
        session.flush()
        session.commit()


def checked_bulk_insert(engine: Engine, rows: list[Row]) -> None:
    with Session(engine) as session:
        session.execute(insert(AgentExecution), rows)
        session.commit()


def unchecked_core_insert(engine: Engine, rows: list[Row]) -> None:
    with Session(engine) as session:
        session.execute(insert(Base.metadata.tables[AgentExecution.__tablename__]), rows)
        session.commit()


def raw_executemany(engine: Engine, rows: list[Row]) -> None:
    sqlite = engine.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    sql = (
        f"INSERT INTO {AgentExecution.__tablename__} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(COLUMNS))})"
    )
    pooled = engine.raw_connection()
    try:
        driver: Any = pooled.driver_connection
        cursor = driver.cursor()
        values = [_for_driver(row, sqlite=sqlite) for row in rows]
        if sqlite:
            # make_engine turns the driver's implicit transactions off.
            cursor.execute("BEGIN")
            cursor.executemany(sql, values)
            cursor.execute("COMMIT")
        else:
            cursor.executemany(sql, values)
            driver.commit()
        cursor.close()
    finally:
        pooled.close()


def _for_driver(row: Row, *, sqlite: bool) -> tuple[Any, ...]:
    values = {**row, "status": row["status"].value}
    if sqlite:
        # As SQLAlchemy stores timestamps on SQLite: naive UTC text.
        started = row["started_at"].astimezone(UTC)
        values["started_at"] = started.strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(values[column] for column in COLUMNS)


CHECKED_BULK_PATH = "ORM bulk insert, checked: insert(Model)"
RAW_PATH = "raw driver executemany"
PATHS: dict[str, InsertPath] = {
    "ORM unit of work: add_all + flush": orm_unit_of_work,
    CHECKED_BULK_PATH: checked_bulk_insert,
    "Core insert, unchecked: insert(Model.__table__)": unchecked_core_insert,
    RAW_PATH: raw_executemany,
}


@contextmanager
def _fresh_schema(url: str | URL) -> Iterator[tuple[Engine, str]]:
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            agent = AgentRegistry(
                name="throughput", category="bench", module_path="bench", class_name="Bench"
            )
            session.add(agent)
            session.commit()
            agent_id = agent.id
        yield engine, agent_id
    finally:
        engine.dispose()


def measure_throughput(url: str | URL, rows: int, repeats: int) -> list[Throughput]:
    """Each path `repeats` times into an emptied table; the fastest run counts.

    The paths take turns, so that a slow spell on the machine is shared. A
    run's time is the work plus whatever else the machine did meanwhile,
    which only ever adds: the fastest run is the one least disturbed, and
    the shares of raw compare like with like (a median of few runs on a busy
    2-core machine moved the SQLite shares by tens of points).
    """
    runs: dict[str, list[float]] = {name: [] for name in PATHS}
    with _fresh_schema(url) as (engine, agent_id):
        data = make_rows(rows, agent_id)
        for _ in range(repeats):
            for name, path in PATHS.items():
                _empty(engine)
                start = time.perf_counter()
                path(engine, data)
                runs[name].append(time.perf_counter() - start)
                _check_count(engine, rows)
    return [Throughput(name, rows, min(times)) for name, times in runs.items()]


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # DELETE would leave dead rows and index entries behind, and each
            # later path would write into a bigger table than the first.
            connection.execute(text(f"TRUNCATE {AgentExecution.__tablename__} CASCADE"))
        else:
            connection.execute(delete(AgentExecution))


def _check_count(engine: Engine, expected: int) -> None:
    with engine.connect() as connection:
        written = connection.scalar(select(func.count()).select_from(AgentExecution))
    if written != expected:
        raise RuntimeError(f"expected {expected} rows in agent_executions, found {written}")
