"""The migration tree against real databases: up, down, with data, and
identical to the schema the fast harness builds with `create_all`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pprint import pformat

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from core import migrate
from core.database import PROJECT_ROOT
from core.schema import Base
from tests.migrations.databases import leftovers, schema_snapshot, snapshot_differences
from tests.migrations.sample_rows import populate_every_table, primary_keys

FIX = 'change the models or the migrations until they agree: `make revision m="..."`'


def revisions_in_order() -> list[str]:
    """Every revision id, oldest first."""
    return [
        script.revision for script in reversed(list(migrate.script_directory().walk_revisions()))
    ]


def test_an_upgraded_database_matches_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts=migrate.migration_options(connection.dialect)
        )
        differences = compare_metadata(context, Base.metadata)

    assert not differences, (
        f"the models differ from the migrated schema:\n{pformat(differences)}\n{FIX}"
    )


def test_alembic_check_passes_on_a_freshly_upgraded_database(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        command.check(migrate.alembic_config(connection))


def test_the_alembic_command_works_from_the_repository_root(empty_engine: Engine) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": empty_engine.url.render_as_string(hide_password=False),
    }

    # The `alembic` console script's own entry point, with the arguments a
    # person types, in one interpreter: starting three would cost seconds.
    script = (
        "from alembic.config import main\n"
        "main(['upgrade', 'head'])\n"
        "print('current:', flush=True)\n"
        "main(['current'])\n"
        "main(['check'])\n"
        "main(['downgrade', 'base'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    head = revisions_in_order()[-1]
    assert f"current:\n{head} (head)" in done.stdout
    assert "No new upgrade operations detected" in done.stdout + done.stderr
    assert f"Running downgrade {head} -> " in done.stderr
    assert leftovers(empty_engine) == []


def test_the_migrated_schema_is_the_create_all_schema(
    migrated_engine: Engine, engine: Engine
) -> None:
    # `engine` is the harness's own database, built by create_all.
    migrated, created = schema_snapshot(migrated_engine), schema_snapshot(engine)

    assert set(created) == set(Base.metadata.tables)
    differences = snapshot_differences(migrated, created)
    assert not differences, (
        "the migrations build another schema than create_all (got: migrated, "
        "expected: create_all):\n" + "\n".join(differences) + f"\n{FIX}\n"
        "Autogenerate does not see CHECK constraints added to existing tables: "
        "add them to the revision by hand (batch_op.create_check_constraint)."
    )


def test_round_trip_head_to_base_and_back_one_step_at_a_time(empty_engine: Engine) -> None:
    revisions = revisions_in_order()
    schemas = [schema_snapshot(empty_engine)]
    for _ in revisions:
        migrate.upgrade(empty_engine, "+1")
        schemas.append(schema_snapshot(empty_engine))
    assert migrate.current_revision(empty_engine) == revisions[-1]

    for revision, expected in zip(
        reversed([None, *revisions[:-1]]), reversed(schemas[:-1]), strict=True
    ):
        migrate.downgrade(empty_engine, "-1")
        assert migrate.current_revision(empty_engine) == revision
        differences = snapshot_differences(schema_snapshot(empty_engine), expected)
        assert not differences, (
            f"downgrading to {revision or 'base'} does not restore its schema:\n"
            + "\n".join(differences)
        )
    assert leftovers(empty_engine) == [], "base must leave nothing behind, alembic_version included"

    for _ in revisions:
        migrate.upgrade(empty_engine, "+1")
    assert schema_snapshot(empty_engine) == schemas[-1]


@pytest.mark.parametrize("revision", revisions_in_order())
def test_rows_written_at_a_revision_survive_the_upgrade_to_head(
    engine_at: Callable[[str], Engine], revision: str
) -> None:
    at_revision = engine_at(revision)
    assert migrate.current_revision(at_revision) == revision
    before = populate_every_table(at_revision)

    migrate.upgrade(at_revision, "head")

    after = primary_keys(at_revision, list(before))
    lost = {table: keys - after[table] for table, keys in before.items() if keys - after[table]}
    assert not lost, f"upgrading from {revision} to head lost rows: {lost}"
