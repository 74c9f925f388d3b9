"""`core.tools.problems`: the exact words of each explained failure, with
the parts of a URL that may be missing (no host, port or user; SQLite in
memory), and of an unexpected error (a bug), with a message or with none.

The doors themselves (which errors are explained, through the real command
line) are in test_command_line_errors.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from core.database import checked_url
from core.tools.problems import TRACEBACK_ENV, ExitCode, explain, trace_requested, unexpected


def _refused(message: str) -> OperationalError:
    """A failure to connect: no statement was sent."""
    return OperationalError(None, {}, Exception(message))


@pytest.mark.parametrize(
    ("url", "orig", "code", "expected"),
    [
        (
            "sqlite://",
            "database is locked",
            ExitCode.LOCKED,
            "The SQLite database in memory is locked by another writer (waited for its busy "
            "timeout): let the other program commit or close, then try again.",
        ),
        (
            "sqlite://",
            "disk I/O error",
            ExitCode.UNAVAILABLE,
            "Cannot use the SQLite database in memory: disk I/O error. Check that the file is "
            "a SQLite database and that it and its folder are writable, or fix DATABASE_URL.",
        ),
        (
            "postgresql+psycopg:///governance",
            "connection refused",
            ExitCode.UNAVAILABLE,
            "Cannot connect to postgresql at localhost, database governance, as the default "
            "user: connection refused.\n"
            "Start the server or fix DATABASE_URL (host, port, user, password, database).",
        ),
        (
            "mysql+pymysql://ada@db.example/governance",
            "Can't connect to MySQL server",
            ExitCode.UNAVAILABLE,
            "Cannot connect to mysql at db.example, database governance, as ada: "
            "Can't connect to MySQL server.\n"
            "Start the server or fix DATABASE_URL (host, port, user, password, database).",
        ),
    ],
    ids=["locked-in-memory", "cannot-use-in-memory", "no-host-port-user", "no-port"],
)  # fmt: skip
def test_an_explained_failure_says_exactly_this(
    url: str, orig: str, code: ExitCode, expected: str
) -> None:
    problem = explain(_refused(orig), checked_url(url))

    assert problem is not None
    assert (problem.code, problem.message) == (code, expected)


def test_a_failure_with_no_driver_error_is_told_in_sqlalchemys_words() -> None:
    # `orig` is Optional on the error, though not in the constructor's signature.
    error = OperationalError(None, {}, None)  # type: ignore[arg-type]

    problem = explain(error, checked_url("postgresql+psycopg://ada@db.example:5433/governance"))

    assert problem is not None
    assert problem.message.splitlines()[0] == (
        "Cannot connect to postgresql at db.example:5433, database governance, as ada: "
        "(builtins.NoneType) None."
    )


def test_a_driver_error_with_no_message_is_still_explained() -> None:
    error = OperationalError(None, {}, Exception(""))

    problem = explain(error, checked_url("postgresql+psycopg://ada@db.example/governance"))

    assert problem is not None
    assert problem.code == ExitCode.UNAVAILABLE
    assert problem.message.splitlines()[0] == (
        "Cannot connect to postgresql at db.example, database governance, as ada: ."
    )


@pytest.mark.parametrize(
    ("error", "command", "first_line"),
    [
        (
            KeyError("round"),
            "python -m core demo",
            "python -m core demo failed unexpectedly: KeyError: 'round'",
        ),
        (
            RuntimeError(""),
            "python -m core migrate",
            "python -m core migrate failed unexpectedly: RuntimeError: ",
        ),
    ],
    ids=["with-message", "no-message-leaves-the-line-empty"],
)
def test_an_unexpected_error_says_it_is_a_bug_and_how_to_see_the_trace(
    error: Exception, command: str, first_line: str
) -> None:
    problem = unexpected(error, command)

    assert problem.code == ExitCode.BUG
    assert problem.message == (
        f"{first_line}\n"
        "This is a bug: rerun with --traceback (or CORE_TRACEBACK=1) and report the trace."
    )


@pytest.mark.parametrize(
    ("value", "requested"),
    [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)],
)  # fmt: skip
def test_the_trace_is_requested_by_any_value_but_empty_or_zero(
    monkeypatch: pytest.MonkeyPatch, value: str | None, requested: bool
) -> None:
    if value is None:
        monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    else:
        monkeypatch.setenv(TRACEBACK_ENV, value)

    assert trace_requested() is requested
