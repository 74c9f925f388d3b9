"""SQLite batch migrations rebuild a table by copy, drop and rename: with
foreign keys on, that DROP would take the table's children with it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, exc, func, make_url, select, table

from core import migrate
from tests import harness
from tests.migrations.sample_rows import populate_every_table

TEAMS = table("teams")


pytestmark = pytest.mark.skipif(
    make_url(harness.test_database_url()).get_backend_name() != "sqlite",
    reason="SQLite only: PostgreSQL and MariaDB alter tables in place, with no foreign_keys pragma",
)


@pytest.fixture
def populated(migrated_engine: Engine) -> Engine:
    populate_every_table(migrated_engine)
    return migrated_engine


def rebuild_workspaces(engine: Engine, *, foreign_keys_off: bool) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=migrate.migration_options(connection.dialect)
        )
        guard: AbstractContextManager[None] = (
            migrate.sqlite_foreign_keys_off(connection) if foreign_keys_off else nullcontext()
        )
        with guard, context.begin_transaction():
            with Operations(context).batch_alter_table("workspaces", recreate="always"):
                pass
            migrate.check_foreign_keys(connection)


def count_teams(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(TEAMS)) or 0)


def test_a_rebuilt_parent_keeps_its_children_when_migrated_as_env_py_does(
    populated: Engine,
) -> None:
    teams = count_teams(populated)

    rebuild_workspaces(populated, foreign_keys_off=True)

    assert count_teams(populated) == teams > 0


def test_without_turning_foreign_keys_off_the_rebuild_breaks(populated: Engine) -> None:
    with pytest.raises(exc.IntegrityError, match="FOREIGN KEY constraint failed"):
        rebuild_workspaces(populated, foreign_keys_off=False)


def test_foreign_keys_cannot_be_turned_off_inside_a_transaction(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        connection.execute(select(1))
        with (
            pytest.raises(RuntimeError, match="outside a transaction"),
            migrate.sqlite_foreign_keys_off(connection),
        ):
            pass


def test_a_dangling_reference_stops_the_migration(populated: Engine) -> None:
    with (
        populated.connect() as connection,
        migrate.sqlite_foreign_keys_off(connection),
        connection.begin(),
    ):
        connection.exec_driver_sql("DELETE FROM workspaces")
        with pytest.raises(RuntimeError, match=r"dangling foreign keys: .* -> workspaces"):
            migrate.check_foreign_keys(connection)


def test_the_refusal_lists_every_dangling_reference() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id REFERENCES parent (id))"
        )
        connection.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (1, 7), (2, 8)")
        with pytest.raises(migrate.MigrationRefused) as refused:
            migrate.check_foreign_keys(connection)

    assert str(refused.value) == (
        "the migration left rows with dangling foreign keys: child rowid 1 -> parent, "
        "child rowid 2 -> parent; it was rolled back.\n"
        "Delete those rows or restore their parents, then upgrade again."
    )


def test_a_stored_non_integer_stops_the_integer_checks_upgrade_naming_it(
    engine_at: Callable[[str], Engine],
) -> None:
    # Before revision 1f855b9f8987, SQLite stored whatever an INTEGER column
    # was given; the upgrade refuses to adopt such a row, and changes nothing.
    before = "d5e08e6c2b32"
    at_revision = engine_at(before)
    populate_every_table(at_revision)
    with at_revision.begin() as connection:
        connection.exec_driver_sql("UPDATE agent_feedback SET rating = 3.5")

    with pytest.raises(
        migrate.MigrationRefused,
        match="1 row of table agent_feedback breaks CHECK constraint ck_agent_feedback_rating",
    ):
        migrate.upgrade(at_revision, "1f855b9f8987")

    assert migrate.current_revision(at_revision) == before
    with at_revision.connect() as connection:
        assert connection.exec_driver_sql("SELECT rating FROM agent_feedback").scalars().all() == [
            3.5
        ]
