"""Command line: inspect and prepare the application database.

    python -m core upgrade    # alembic upgrade head, then stats
    python -m core demo       # upgrade, play a governance scenario, then stats
    python -m core stats

`DATABASE_URL` selects the database (default: the embedded SQLite file).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sqlalchemy import Engine, func, inspect, select

from core import migrate
from core.database import database_url, make_engine, make_session_factory, session_scope
from core.demo import run_demo
from core.models import Base


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every model table, in dependency order."""
    existing = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        return {
            table.name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
            if table.name in existing
        }


def format_counts(counts: dict[str, int]) -> str:
    width = max((len(name) for name in counts), default=5)
    lines = [f"{'table':<{width}}  rows", f"{'-' * width}  ----"]
    lines += [f"{name:<{width}}  {rows:>4}" for name, rows in counts.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "upgrade", help="migrate the database to the latest revision, then print its tables"
    )
    commands.add_parser("stats", help="print every table with its row count")
    commands.add_parser(
        "demo", help="upgrade, then play a governance scenario and print its audit trail"
    )
    args = parser.parse_args(argv)

    engine = make_engine()
    try:
        if args.command in ("upgrade", "demo") and not upgrade(engine):
            return 1
        if args.command == "demo":
            with session_scope(make_session_factory(engine)) as session:
                run_demo(session)
            print()
        print(f"database: {engine.url.render_as_string(hide_password=True)}")
        print(format_counts(table_counts(engine)))
    finally:
        engine.dispose()
    return 0


def upgrade(engine: Engine) -> bool:
    """Migrate to head and say so; refuse (False) a schema no migration made."""
    unversioned = migrate.unversioned_tables(engine)
    if unversioned:
        print(
            f"{engine.url.render_as_string(hide_password=True)} has tables that no "
            f"migration created ({', '.join(unversioned)}). If its schema is current, "
            "run `alembic stamp head` once; otherwise move the file away and run again."
        )
        return False
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    moved = "already at head" if after == before else f"upgraded from {before or 'empty'}"
    print(f"revision: {after} (head, {moved})")
    return True


__all__ = ["database_url", "format_counts", "main", "table_counts", "upgrade"]
