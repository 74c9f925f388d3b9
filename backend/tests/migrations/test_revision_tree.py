"""The revision tree itself: one line of history, self-contained scripts."""

from __future__ import annotations

import ast
from pathlib import Path

from alembic.autogenerate import produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Computed, DefaultClause, create_engine, func
from sqlalchemy.dialects.postgresql import JSONB

from core.migrate import migration_options, render_item, script_directory
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
