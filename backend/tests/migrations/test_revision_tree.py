"""The revision tree itself: one line of history, self-contained scripts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Computed, DefaultClause, Table, create_engine, func, make_url
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateTable

from core.migrate import compare_server_default, migration_options, render_item, script_directory
from core.models import Workspace
from core.schema import Base

# What a revision may import: frozen history depends on nothing that changes.
ALLOWED_IMPORTS = {"alembic", "sqlalchemy", "collections", "typing", "datetime", "__future__"}


def revision_files() -> list[Path]:
    return sorted(Path(script.path) for script in script_directory().walk_revisions())


def test_there_is_exactly_one_head() -> None:
    heads = script_directory().get_heads()

    assert len(heads) == 1, (
        f"the migration tree has {len(heads)} heads {heads}: two revisions were made from the "
        'same parent. Run `.venv/bin/alembic merge heads -m "merge"`, or rebase one of them.'
    )


def test_every_revision_imports_only_alembic_and_sqlalchemy() -> None:
    offending = []
    for path in revision_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            offending += [
                f"{path.name}: {module}"
                for module in modules
                if module.split(".")[0] not in ALLOWED_IMPORTS
            ]

    assert revision_files()
    assert not offending, f"revisions must not import application code: {offending}"


def test_every_revision_has_a_real_downgrade() -> None:
    empty = []
    for path in revision_files():
        functions = {
            node.name: node
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef)
        }
        for name in ("upgrade", "downgrade"):
            body = [
                statement
                for statement in functions[name].body
                if not isinstance(statement, ast.Pass)
                and not (
                    isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                )
            ]
            if not body:
                empty.append(f"{path.name}: {name}()")

    assert not empty, f"empty migration functions: {empty}"


def test_autogenerate_renders_portable_code_without_project_imports() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=migration_options(connection.dialect))
        operations = produce_migrations(context, Base.metadata)
    assert operations.upgrade_ops is not None
    code = render_python_code(operations.upgrade_ops, render_item=render_item)

    assert "core." not in code
    assert "UTCDateTime" not in code
    assert "sa.DateTime(timezone=True)" in code
    assert ".with_variant(postgresql.JSONB(none_as_null=True), 'postgresql')" in code
    assert "server_default=sa.func.now()" in code
    assert "server_default=sa.false()" in code
    assert "server_default=sa.true()" in code
    # Alembic's own JSONB rendering names a Text type that no revision imports.
    assert "astext_type" not in code


@pytest.mark.parametrize(
    ("url", "batch", "transactional_ddl"),
    [
        ("sqlite://", True, True),
        ("postgresql+psycopg://", False, True),
        ("mysql+pymysql://", False, False),  # MariaDB commits each DDL statement
    ],
)
def test_each_backend_migrates_and_compares_with_these_options(
    url: str, batch: bool, transactional_ddl: bool
) -> None:
    dialect = make_url(url).get_dialect()()

    assert migration_options(dialect) == {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "compare_server_default": compare_server_default,
        "render_as_batch": batch,
        "transactional_ddl": transactional_ddl,
        "render_item": render_item,
    }


def test_autogenerate_sees_a_changed_type_and_a_changed_server_default() -> None:
    engine = create_engine("sqlite://")
    workspaces = Workspace.__table__
    assert isinstance(workspaces, Table)
    created = str(CreateTable(workspaces).compile(dialect=engine.dialect))
    drifted = created.replace("name VARCHAR(255)", "name VARCHAR(80)").replace(
        "DEFAULT 'standard'", "DEFAULT 'free'"
    )
    with engine.begin() as connection:
        connection.exec_driver_sql(drifted)
        context = MigrationContext.configure(connection, opts=migration_options(connection.dialect))
        differences = compare_metadata(context, Base.metadata)

    # Column changes come as lists: (kind, schema, table, column, ...).
    changed = [change[0][:4] for change in differences if isinstance(change, list)]
    assert changed == [
        ("modify_type", None, "workspaces", "name"),
        ("modify_default", None, "workspaces", "plan_tier"),
    ]


class _AutogenContext:
    def __init__(self) -> None:
        self.imports: set[str] = set()


def test_a_jsonb_column_is_rendered_with_the_import_it_needs() -> None:
    context = _AutogenContext()

    rendered = render_item("type", JSONB(none_as_null=True), context)  # type: ignore[arg-type]

    assert rendered == "postgresql.JSONB(none_as_null=True)"
    assert context.imports == {"from sqlalchemy.dialects import postgresql"}


def test_a_server_default_that_is_no_default_clause_is_left_to_alembic() -> None:
    context = _AutogenContext()

    assert render_item("server_default", Computed("price * 2"), context) is False  # type: ignore[arg-type]
    assert render_item("type", DefaultClause(func.now()), context) is False  # type: ignore[arg-type]
    assert context.imports == set()
