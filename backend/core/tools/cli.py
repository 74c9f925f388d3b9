"""Command line: inspect and prepare the application database.

    python -m core upgrade    # alembic upgrade head, then stats
    python -m core demo       # upgrade, play a governance scenario, then stats
    python -m core stats

`DATABASE_URL` selects the database (default: the embedded SQLite file).
Bad input ends in one or two lines naming the problem and the fix, and an
exit code from `core.tools.problems.ExitCode`; `--traceback` shows the trace.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import URL

from core import migrate
from core.database import (
    DEFAULT_DATABASE_PATH,
    SQLITE_BEGIN,
    checked_url,
    database_url,
    make_engine,
    sqlite_file,
)
from core.models import Base
from core.tools.demo import play_round
from core.tools.problems import (
    EXIT_CODE_MEANINGS,
    TRACEBACK_ENV,
    ExitCode,
    Problem,
    explain,
    report,
    trace_requested,
    unexpected,
)

# How long to wait for a database server before saying it does not answer
# (unless DATABASE_URL sets connect_timeout itself).
CONNECT_TIMEOUT_SECONDS = 10


def reading(engine: Engine) -> Engine:
    """`engine` for transactions that only read. On a SQLite file they begin
    DEFERRED, so they read beside another process's start-up (which holds the
    write lock while it migrates or plays its round) instead of queueing
    behind it for the busy timeout."""
    return engine.execution_options(**{SQLITE_BEGIN: "deferred"})


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


def parser() -> argparse.ArgumentParser:
    codes = "\n".join(
        textwrap.fill(meaning, 78, initial_indent=f"  {int(code):<4}", subsequent_indent=" " * 6)
        for code, meaning in EXIT_CODE_MEANINGS.items()
    )
    traceback_flag = argparse.ArgumentParser(add_help=False)
    traceback_flag.add_argument(
        "--traceback",
        action="store_true",
        # On the subcommands too, without resetting a flag given before them.
        default=argparse.SUPPRESS,
        help=f"on failure, print the full trace (or set {TRACEBACK_ENV}=1)",
    )
    main_parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Command line: inspect and prepare the application database.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[traceback_flag],
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("upgrade", "migrate the database to the latest revision, then print its tables"),
        ("stats", "print every table with its row count (never creates a database)"),
        ("demo", "upgrade, then play a governance scenario and print its audit trail"),
    ):
        commands.add_parser(name, help=help_text, parents=[traceback_flag])
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    url: URL | None = None
    try:
        url = checked_url(database_url())
        run(args.command, url)
    except Exception as error:
        problem = explain(error, url) or unexpected(error, f"python -m core {args.command}")
        # --traceback is in `args` only when given (its default is SUPPRESS).
        return report(problem, trace="traceback" in args or trace_requested())
    return 0


def run(command: str, url: URL) -> None:
    check_location(url, creates=command != "stats")
    engine = make_engine(url, **connect_options(url))
    try:
        if command in ("upgrade", "demo"):
            upgrade(engine)
        if command == "demo":
            play_round(engine)
            print()
        counts = table_counts(reading(engine))
        print(f"database: {engine.url}")  # a URL's str masks its password
        print(format_counts(counts))
    finally:
        engine.dispose()


def connect_options(url: URL) -> dict[str, Any]:
    """A server that does not answer is reported in seconds, not minutes."""
    if url.get_backend_name() == "sqlite" or "connect_timeout" in url.query:
        return {}
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}


def check_location(url: URL, *, creates: bool) -> None:
    """Refuse a SQLite path before anything is created there.

    `stats` only reads: a missing file is a mistyped path, not a database to
    create. `upgrade` and `demo` create the file, and the embedded default's
    folder, but not another missing folder (a typo would scatter databases),
    nor one they cannot write (SQLite writes its journal beside the file).
    """
    path = sqlite_file(url)
    if path is None:
        return
    if not creates:
        if not path.is_file():
            raise Problem(
                ExitCode.UNAVAILABLE,
                f"No SQLite database at {path}: fix DATABASE_URL, or create one there "
                "with `python -m core upgrade`.",
            )
        return
    folder = path.parent
    if path == DEFAULT_DATABASE_PATH:
        folder.mkdir(parents=True, exist_ok=True)
    if path.is_dir() or not folder.is_dir():
        raise Problem(
            ExitCode.UNAVAILABLE,
            f"DATABASE_URL's SQLite file {path} "
            + ("is a folder" if path.is_dir() else f"is in a folder that does not exist: {folder}")
            + f".\nFix the path, or create the folder first (mkdir -p {folder}).",
        )
    try:
        # A real write, not os.access: it also sees read-only file systems,
        # and permissions that do not stop root.
        with tempfile.TemporaryFile(dir=folder):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(f"{path.name} is read-only")
    except OSError as error:
        raise Problem(
            ExitCode.UNAVAILABLE,
            f"Cannot write the SQLite database {path} ({error.strerror or error}).\n"
            "Point DATABASE_URL at a writable location, or make this one writable.",
        ) from error


def upgrade(engine: Engine) -> None:
    """Migrate to head and say so; refuse a schema no migration made, or one
    stamped with a revision this code does not have."""
    # A check that finds anything refuses the upgrade. The messages name the
    # database by its URL's str, which masks the password.
    refusals = (
        (
            migrate.unversioned_tables,
            "{url} has tables that no migration created ({found}).\n"
            "If its schema is current, run `alembic stamp head` once; otherwise move the "
            "file away and run again.",
        ),
        (
            migrate.unknown_revisions,
            "{url} is at revision {found}, which this code's migrations "
            "(backend/migrations/versions) do not have: newer code migrated it, or a revision "
            "file was deleted.\nRun the code that migrated it, or restore the file; if the "
            "schema is the models', `alembic stamp --purge head` adopts it.",
        ),
    )
    for check, message in refusals:
        found = check(reading(engine))
        if found:
            raise Problem(ExitCode.REFUSED, message.format(url=engine.url, found=", ".join(found)))
    before, after = migrate.upgrade(engine)
    moved = "already at head" if after == before else f"upgraded from {before or 'empty'}"
    print(f"revision: {after} (head, {moved})")


__all__ = ["database_url", "format_counts", "main", "table_counts", "upgrade"]
