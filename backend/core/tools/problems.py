"""Failures a person can fix, each told in one or two lines with an exit code.

`python -m core` and the `alembic` command (through env.py) turn the errors
they recognise into a `Problem` and print only its message: what is wrong and
the fix. `--traceback` (the command line) or `CORE_TRACEBACK=1` adds the full
trace. An error not recognised here is a bug, and is reported as one.
"""

from __future__ import annotations

import os
import sys
import traceback
from enum import IntEnum

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from core.database import (
    SettingError,
    sqlite_file,
)
from core.migrate import MigrationRefused

TRACEBACK_ENV = "CORE_TRACEBACK"


class ExitCode(IntEnum):
    """What `python -m core` exits with: part of its interface, documented
    in `--help` (from `EXIT_CODE_MEANINGS`) and in the README."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    CONFIGURATION = 3
    UNAVAILABLE = 4
    LOCKED = 5
    BUG = 70


EXIT_CODE_MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.REFUSED: "the database's contents stop the command: tables no migration made, "
    "a revision this code does not have, rows that break a constraint a migration adds",
    ExitCode.USAGE: "bad arguments (and `alembic --sql` on SQLite)",
    ExitCode.CONFIGURATION: "DATABASE_URL is malformed, names an unsupported backend, "
    "or a driver that is not installed",
    ExitCode.UNAVAILABLE: "the database cannot be reached or opened: no server answers, "
    "login refused, a SQLite file or folder missing or not writable",
    ExitCode.LOCKED: "another writer holds the database (SQLite): try again",
    ExitCode.BUG: "an unexpected error, a bug: rerun with --traceback",
}


class Problem(Exception):
    """A failure with its exit code and a message that names the fix."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def explain(error: BaseException, url: URL | None = None) -> Problem | None:
    """The Problem `error` stands for, or None if it is not one a setting or
    the data can fix. `url` is the database the command was working on."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, SettingError):
        return Problem(ExitCode.CONFIGURATION, str(error))
    if isinstance(error, MigrationRefused):
        return Problem(ExitCode.REFUSED, str(error))
    if isinstance(error, DBAPIError) and url is not None:
        return _database_problem(error, url)
    return None


# What the sqlite3 driver says when the file cannot be opened or written.
_SQLITE_CANNOT_OPEN = (
    "unable to open database file",
    "readonly database",
    "file is not a database",
    "disk i/o error",
)


def _database_problem(error: DBAPIError, url: URL) -> Problem | None:
    # The first line of the driver's message; a driver may give none.
    lines = str(error.orig if error.orig else error).strip().splitlines()
    reason = lines[0] if lines else ""
    path = sqlite_file(url)
    if url.get_backend_name() == "sqlite":
        where = path or "in memory"
        if "database is locked" in reason:
            return Problem(
                ExitCode.LOCKED,
                f"The SQLite database {where} is locked by another writer (waited for its "
                "busy timeout): let the other program commit or close, then try again.",
            )
        if any(sign in reason.lower() for sign in _SQLITE_CANNOT_OPEN):
            return Problem(
                ExitCode.UNAVAILABLE,
                f"Cannot use the SQLite database {where}: {reason}. Check that the file is a "
                "SQLite database and that it and its folder are writable, or fix DATABASE_URL.",
            )
        return None
    if error.statement is not None and not error.connection_invalidated:
        return None  # connected, then a statement failed: not a door, a bug
    server = (url.host or "localhost") + (f":{url.port}" if url.port else "")
    fix = "Start the server or fix DATABASE_URL (host, port, user, password, database)."
    if "does not exist" in reason:
        fix = f"Create the database ({url.database}) or fix DATABASE_URL."
    return Problem(
        ExitCode.UNAVAILABLE,
        f"Cannot connect to {url.get_backend_name()} at {server}, database {url.database}, "
        f"as {url.username or 'the default user'}: {reason}.\n{fix}",
    )


def unexpected(error: BaseException, doing: str) -> Problem:
    """A failure nobody foresaw: one line, and how to see the rest."""
    lines = str(error).strip().splitlines()
    return Problem(
        ExitCode.BUG,
        f"{doing} failed unexpectedly: {type(error).__name__}: {lines[0] if lines else ''}\n"
        f"This is a bug: rerun with --traceback (or {TRACEBACK_ENV}=1) and report the trace.",
    )


def trace_requested() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def report(problem: Problem, *, trace: bool = False) -> int:
    """Print `problem` (after the trace of the error being handled, if asked
    for) on stderr; return its exit code."""
    if trace or trace_requested():
        traceback.print_exc()
    print(problem.message, file=sys.stderr)
    return int(problem.code)
