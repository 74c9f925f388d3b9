"""Every door of the command line: bad input ends in one or two lines that
name the problem and the fix, with a documented exit code, never a trace
(unless asked for).

The messages are checked in-process; then each door is driven once through
the command line's `main(argv)`, which is what `python -m core` runs
(`core/__main__.py`: `raise SystemExit(main())`), with the door's
DATABASE_URL, in a folder of its own: exit code, message, no trace, at most
two lines, nothing written (a door that starts from a migrated database gets
a copy of one made once per run). Every subprocess costs an interpreter start
(about a second of CPU), so the real command line is driven for what only it
shows: one database door through `python -m core` in a process of its own
(another process holding the write lock), and a malformed URL through `make
run`; `test_demo_cli.py` runs `python -m core demo` once.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from core import migrate
from core.database import (
    DATABASE_URL_ENV,
    PROJECT_ROOT,
    STARTUP_LOCK_TIMEOUT_ENV,
    SUPPORTED_BACKENDS,
    DatabaseURLError,
    checked_url,
    make_engine,
    sqlite_file,
)
from core.migrate import MigrationRefused
from core.tools import cli
from core.tools.problems import TRACEBACK_ENV, ExitCode, Problem, explain, report
from tests import databases
from tests.migrations.sample_rows import populate_every_table

CaptureFixture = pytest.CaptureFixture[str]

TRACEBACK = "Traceback (most recent call last)"
# Nothing listens on port 1: the connection is refused at once.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/governance"


@pytest.fixture(autouse=True)
def _no_trace_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)


# --------------------------------------------------------------------------
# DATABASE_URL: parsed, supported, with its driver
# --------------------------------------------------------------------------


SUPPORTED = f"point it at one of {', '.join(SUPPORTED_BACKENDS)}."
INSTALLED_DRIVER = "write postgresql+psycopg:// (installed by `make install`)."


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", ["DATABASE_URL is not a database URL (got 'nonsense'): write dialect+"]),
        ("postgresql://me:secret@db:port/x", ["not a database URL", "me:***@db:port/x"]),
        ("mssql+pymssql://me:secret@db/x", ["a mssql database (mssql+pymssql://me:***@db/x)"]),
        ("postgres://me@db/x", ["names a postgres database", SUPPORTED]),
        ("postgresql+pg8000://me@db/x", ["not available (No module named 'pg8000')"]),
        ("postgresql+nosuch://me@db/x", ["postgresql+nosuch driver", INSTALLED_DRIVER]),
    ],
)
def test_a_url_the_application_cannot_use_is_refused_naming_what_would_do(
    url: str, expected: list[str]
) -> None:
    with pytest.raises(DatabaseURLError) as refused:
        checked_url(url)

    message = str(refused.value)
    for fragment in expected:
        assert fragment in message
    assert "secret" not in message


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///var/x.db", UNREACHABLE])
def test_a_usable_url_is_returned_parsed(url: str) -> None:
    assert checked_url(url).render_as_string(hide_password=False) == url


def test_a_url_as_the_command_line_prints_it_masks_the_password() -> None:
    # `stats` prints, and `upgrade`'s refusals name, the database by its URL's str.
    assert str(checked_url("postgresql+psycopg://me:secret@db/x")) == (
        "postgresql+psycopg://me:***@db/x"
    )


def test_the_setting_is_named_in_the_message() -> None:
    with pytest.raises(DatabaseURLError, match=r"^TEST_DATABASE_URL is not"):
        checked_url("nonsense", "TEST_DATABASE_URL")


# --------------------------------------------------------------------------
# explain: which errors are doors, and what they say
# --------------------------------------------------------------------------

SQLITE = checked_url("sqlite:////data/app.db")
SERVER = checked_url("postgresql+psycopg://ada@db.example:5433/governance")


def _failure(message: str, statement: str | None = "SELECT 1") -> OperationalError:
    return OperationalError(statement, {}, Exception(message))


@pytest.mark.parametrize(
    ("error", "url", "code", "expected"),
    [
        (
            _failure("database is locked"),
            SQLITE,
            ExitCode.LOCKED,
            "The SQLite database /data/app.db is locked by another writer",
        ),
        (
            _failure("attempt to write a readonly database"),
            SQLITE,
            ExitCode.UNAVAILABLE,
            "Cannot use the SQLite database /data/app.db: attempt to write a readonly database",
        ),
        (
            _failure("unable to open database file", statement=None),
            SQLITE,
            ExitCode.UNAVAILABLE,
            "Check that the file is a SQLite database and that it and its folder are writable",
        ),
        (
            _failure("connection refused\nIs the server running?", statement=None),
            SERVER,
            ExitCode.UNAVAILABLE,
            "Cannot connect to postgresql at db.example:5433, database governance, as ada: "
            "connection refused.\nStart the server or fix DATABASE_URL",
        ),
        (
            _failure('FATAL:  database "governance" does not exist', statement=None),
            SERVER,
            ExitCode.UNAVAILABLE,
            "Create the database (governance) or fix DATABASE_URL.",
        ),
        (
            DatabaseURLError("DATABASE_URL is not a database URL"),
            None,
            ExitCode.CONFIGURATION,
            "DATABASE_URL is not a database URL",
        ),
        (
            MigrationRefused("Cannot migrate: 2 rows of table users"),
            None,
            ExitCode.REFUSED,
            "Cannot migrate: 2 rows of table users",
        ),
    ],
    ids=["locked", "read-only", "cannot-open", "no-server", "no-database", "url", "rows"],
)
def test_an_error_a_person_can_fix_is_explained(
    error: Exception, url: object, code: ExitCode, expected: str
) -> None:
    problem = explain(error, checked_url(str(url)) if url is not None else None)

    assert problem is not None
    assert (problem.code, expected in problem.message) == (code, True), problem.message
    assert len(problem.message.splitlines()) <= 2


@pytest.mark.parametrize(
    ("error", "url"),
    [
        (_failure("no such table: users"), SQLITE),  # a bug, not a setting
        (_failure("division by zero"), SERVER),  # connected, then a statement failed
        (IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), SERVER),
        (ValueError("anything else"), SQLITE),
    ],
)
def test_an_error_no_setting_fixes_is_not_explained_away(error: Exception, url: object) -> None:
    assert explain(error, checked_url(str(url))) is None


def test_report_prints_the_message_and_the_trace_only_when_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = Problem(ExitCode.LOCKED, "locked: try again")
    outputs = []
    for trace, environment in ((False, ""), (True, ""), (False, "1")):
        monkeypatch.setenv(TRACEBACK_ENV, environment)
        try:
            raise RuntimeError("underneath")
        except RuntimeError:
            assert report(problem, trace=trace) == ExitCode.LOCKED
        outputs.append(capsys.readouterr().err)

    quiet, flagged, by_environment = outputs
    assert quiet == "locked: try again\n"
    for loud in (flagged, by_environment):
        assert TRACEBACK in loud
        assert "RuntimeError: underneath" in loud
        assert loud.endswith("locked: try again\n")


# --------------------------------------------------------------------------
# SQLite locations: `stats` never creates, `upgrade` creates only what it may
# --------------------------------------------------------------------------


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _unwritable_folder(base: Path, stack: ExitStack) -> Path:
    """A folder this process cannot create files in. Permissions do not stop
    root: then sysfs, where nobody can create a regular file."""
    folder = base / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    stack.callback(folder.chmod, 0o700)
    if not _can_create_in(folder):
        return folder
    if Path("/sys").is_dir() and not _can_create_in(Path("/sys")):
        return Path("/sys")
    pytest.skip("running as root, with no /sys: no folder that refuses root")


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    with ExitStack() as stack:
        yield _unwritable_folder(tmp_path, stack)


def _refusal(path: Path, *, creates: bool) -> str:
    """The message `check_location` refuses `path` with, as unavailable."""
    url = checked_url(f"sqlite:///{path}")

    with pytest.raises(Problem) as refused:
        cli.check_location(url, creates=creates)

    assert refused.value.code == ExitCode.UNAVAILABLE
    return str(refused.value)


def test_stats_on_a_missing_file_refuses_and_creates_nothing(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "typo" / "app.db", creates=False) == (
        f"No SQLite database at {tmp_path / 'typo' / 'app.db'}: fix DATABASE_URL, or create "
        "one there with `python -m core upgrade`."
    )
    assert list(tmp_path.iterdir()) == []


def test_upgrade_refuses_a_missing_folder_it_was_not_told_to_make(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "typo" / "app.db", creates=True) == (
        f"DATABASE_URL's SQLite file {tmp_path / 'typo' / 'app.db'} is in a folder that does "
        f"not exist: {tmp_path / 'typo'}.\n"
        f"Fix the path, or create the folder first (mkdir -p {tmp_path / 'typo'})."
    )
    assert list(tmp_path.iterdir()) == []


def test_upgrade_makes_the_embedded_default_databases_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh checkout may lack the project folder's parents too.
    default = tmp_path / "project" / "var" / "agent_governance.db"
    monkeypatch.setattr(cli, "DEFAULT_DATABASE_PATH", default)

    cli.check_location(checked_url(f"sqlite:///{default}"), creates=True)

    assert default.parent.is_dir()
    assert not default.exists()  # the file is the migration's to create
    cli.check_location(checked_url(f"sqlite:///{default}"), creates=True)  # made already: fine


def test_upgrade_refuses_a_folder_as_the_database_file(tmp_path: Path) -> None:
    assert _refusal(tmp_path, creates=True) == (
        f"DATABASE_URL's SQLite file {tmp_path} is a folder.\n"
        f"Fix the path, or create the folder first (mkdir -p {tmp_path.parent})."
    )


def test_upgrade_refuses_a_folder_it_cannot_write(unwritable_folder: Path) -> None:
    assert _refusal(unwritable_folder / "app.db", creates=True) == (
        # The system's reason in its words, without errno or path.
        f"Cannot write the SQLite database {unwritable_folder / 'app.db'} (Permission denied).\n"
        "Point DATABASE_URL at a writable location, or make this one writable."
    )


NOBODY = 65534


@contextmanager
def _where_permissions_apply() -> Iterator[None]:
    """Permissions do not stop root: as root, run the block as nobody (root
    stays the saved user, to come back to)."""
    if os.geteuid() != 0:
        yield
        return
    os.setresgid(NOBODY, NOBODY, 0)
    os.setresuid(NOBODY, NOBODY, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)


def test_upgrade_refuses_a_read_only_database_file_in_a_writable_folder() -> None:
    # Not in tmp_path: nobody may not enter pytest's folders, and must enter this one.
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name).resolve()
        folder.chmod(0o777)
        (folder / "app.db").touch(mode=0o444)

        with _where_permissions_apply():
            refusal = _refusal(folder / "app.db", creates=True)

    assert refusal == (
        f"Cannot write the SQLite database {folder / 'app.db'} (app.db is read-only).\n"
        "Point DATABASE_URL at a writable location, or make this one writable."
    )


def test_in_memory_and_server_databases_have_no_location_to_check() -> None:
    for url in ("sqlite://", UNREACHABLE):
        assert sqlite_file(url) is None
        cli.check_location(checked_url(url), creates=False)


def test_a_uri_filename_is_checked_at_its_path(tmp_path: Path) -> None:
    existing = tmp_path / "app.db"
    sqlite3.connect(existing).close()
    url = f"sqlite:///file:{existing}?mode=ro&uri=true"

    assert sqlite_file(url) == existing
    cli.check_location(checked_url(url), creates=False)


# --------------------------------------------------------------------------
# main: exit codes, --traceback, and a bug reported as one
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["--traceback", "stats"], ["stats", "--traceback"]], ids=["before", "after"]
)
def test_traceback_flag_works_before_or_after_the_command(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "nonsense")

    assert cli.main(argv) == ExitCode.CONFIGURATION

    error = capsys.readouterr().err
    assert TRACEBACK in error
    assert "ArgumentError" in error  # the parser's own error, under ours
    assert error.endswith("postgresql+psycopg://user@localhost:5432/app.\n")


def test_a_bug_exits_70_in_two_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(command: str, url: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite://")
    monkeypatch.setattr(cli, "run", broken)

    assert cli.main(["stats"]) == ExitCode.BUG

    error = capsys.readouterr().err
    assert error.splitlines() == [
        "python -m core stats failed unexpectedly: ZeroDivisionError: division by zero",
        "This is a bug: rerun with --traceback (or CORE_TRACEBACK=1) and report the trace.",
    ]


HELP = """\
usage: python -m core [-h] [--traceback] {upgrade,stats,demo} ...

Command line: inspect and prepare the application database.

positional arguments:
  {upgrade,stats,demo}
    upgrade             migrate the database to the latest revision, then
                        print its tables
    stats               print every table with its row count (never creates a
                        database)
    demo                upgrade, then play a governance scenario and print its
                        audit trail

options:
  -h, --help            show this help message and exit
  --traceback           on failure, print the full trace (or set
                        CORE_TRACEBACK=1)

exit codes:
  0   done
  1   the database's contents stop the command: tables no migration made, a
      revision this code does not have, rows that break a constraint a
      migration adds
  2   bad arguments (and `alembic --sql` on SQLite)
  3   DATABASE_URL is malformed, names an unsupported backend, or a driver
      that is not installed
  4   the database cannot be reached or opened: no server answers, login
      refused, a SQLite file or folder missing or not writable
  5   another writer holds the database (SQLite): try again
  70  an unexpected error, a bug: rerun with --traceback
"""


def test_help_is_the_documented_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width

    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == HELP


def test_a_server_gets_a_connect_timeout_unless_the_url_sets_one() -> None:
    assert cli.connect_options(checked_url(UNREACHABLE)) == {
        "connect_args": {"connect_timeout": cli.CONNECT_TIMEOUT_SECONDS}
    }
    assert cli.connect_options(checked_url(UNREACHABLE + "?connect_timeout=2")) == {}
    assert cli.connect_options(checked_url("sqlite://")) == {}


def test_a_server_that_does_not_answer_is_reported_after_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It accepts the connection (the kernel does, for a listening socket) and
    # never says a word: the login waits for it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/governance"
        monkeypatch.setenv(DATABASE_URL_ENV, url)
        monkeypatch.setattr(cli, "CONNECT_TIMEOUT_SECONDS", 2)  # the shortest libpq takes
        # Without a timeout psycopg would wait two minutes: hang up at ten
        # seconds, which it reports as a closed connection, not a timeout.
        hang_up = threading.Timer(10, silent.close)
        hang_up.start()
        try:
            with databases.allowed_database(url):
                code = cli.main(["stats"])
        finally:
            hang_up.cancel()

    assert code == ExitCode.UNAVAILABLE
    assert capsys.readouterr().err.startswith(
        f"Cannot connect to postgresql at 127.0.0.1:{port}, database "
        "governance, as postgres: connection timeout expired."
    )


def test_run_works_on_the_database_it_is_given_whatever_database_url_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    given = tmp_path / "given.db"
    sqlite3.connect(given).close()
    monkeypatch.setenv(DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'other.db'}")

    cli.run("stats", checked_url(f"sqlite:///{given}"))

    assert capsys.readouterr().out.splitlines()[0] == f"database: sqlite:///{given}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["given.db"]


# --------------------------------------------------------------------------
# Each door once through the command line; the real one for what only it shows
# --------------------------------------------------------------------------


class MigratedFiles:
    """SQLite files migrated to a revision, with the sample rows: each made
    once per run, then copied into the door's folder (a door that starts at
    a revision is not a test of the upgrade to it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def copy(self, revision: str, to: Path) -> None:
        made = self.folder / f"{revision}.db"
        if not made.exists():
            engine = make_engine(f"sqlite:///{made}")
            try:
                migrate.upgrade(engine, revision)
                populate_every_table(engine)
            finally:
                engine.dispose()
        # The backup API copies a consistent database, WAL contents included.
        with closing(sqlite3.connect(made)) as original, closing(sqlite3.connect(to)) as copy:
            original.backup(copy)


@pytest.fixture(scope="session")
def migrated_files(tmp_path_factory: pytest.TempPathFactory) -> MigratedFiles:
    return MigratedFiles(tmp_path_factory.mktemp("migrated"))


Setup = Callable[[Path, ExitStack, MigratedFiles], str]


def _sqlite_at(revision: str, then: str | None = None) -> Setup:
    """A SQLite file migrated to `revision`, with the sample rows, then `then` run on it."""

    def setup(folder: Path, _stack: ExitStack, migrated: MigratedFiles) -> str:
        url = f"sqlite:///{folder / 'app.db'}"
        migrated.copy(revision, folder / "app.db")
        if then is not None:
            engine = make_engine(url)
            try:
                with engine.begin() as connection:
                    connection.execute(text(then))
            finally:
                engine.dispose()
        return url

    return setup


def _locked(folder: Path, stack: ExitStack, migrated: MigratedFiles) -> str:
    """A migrated SQLite file whose write lock another connection holds."""
    url = _sqlite_at("head")(folder, stack, migrated)
    holder = stack.enter_context(closing(sqlite3.connect(folder / "app.db", isolation_level=None)))
    holder.execute("BEGIN IMMEDIATE")
    return url


def _unwritable(folder: Path, stack: ExitStack, _migrated: MigratedFiles) -> str:
    return f"sqlite:///{_unwritable_folder(folder, stack) / 'app.db'}"


DOORS: dict[str, tuple[list[str], Setup, ExitCode, str]] = {
    "malformed-url": (
        ["stats"],
        lambda *_: "nonsense",
        ExitCode.CONFIGURATION,
        "DATABASE_URL is not a database URL",
    ),
    "unsupported-backend": (
        ["demo"],
        lambda *_: "mssql+pymssql://root@127.0.0.1/governance",
        ExitCode.CONFIGURATION,
        "names a mssql database (mssql+pymssql://root@127.0.0.1/governance), which this "
        "application does not support: point it at one of sqlite, postgresql, mysql.",
    ),
    "unreachable-server": (
        ["demo"],
        lambda *_: UNREACHABLE,
        ExitCode.UNAVAILABLE,
        "Cannot connect to postgresql at 127.0.0.1:1, database governance, as postgres",
    ),
    "missing-location": (
        ["stats"],
        lambda folder, *_: f"sqlite:///{folder / 'typo' / 'app.db'}",
        ExitCode.UNAVAILABLE,
        "No SQLite database at",
    ),
    "unwritable-location": (
        ["upgrade"],
        _unwritable,
        ExitCode.UNAVAILABLE,
        "Cannot write the SQLite database",
    ),
    "unknown-revision": (
        ["upgrade"],
        _sqlite_at("head", "UPDATE alembic_version SET version_num = 'deadbeef0000'"),
        ExitCode.REFUSED,
        "is at revision deadbeef0000, which this code's migrations",
    ),
    "rows-break-a-new-constraint": (
        ["demo"],
        # Before the revision that refuses a second "@" in an email.
        _sqlite_at("471e0a1e9e28", "UPDATE users SET email = id || '@old@example.com'"),
        ExitCode.REFUSED,
        "2 rows of table users break CHECK constraint ck_users_email_format",
    ),
    "locked-by-another-writer": (
        ["upgrade"],
        _locked,
        ExitCode.LOCKED,
        "is locked by another writer",
    ),
    "unknown-command": (["frobnicate"], lambda *_: "sqlite://", ExitCode.USAGE, "invalid choice"),
}


def _run(command: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The locked door waits for the lock a second, not start-up's two minutes.
    environment = {**os.environ, DATABASE_URL_ENV: url, STARTUP_LOCK_TIMEOUT_ENV: "1"}
    environment.pop(TRACEBACK_ENV, None)
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def _main_in_process(
    argv: list[str], url: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: CaptureFixture
) -> subprocess.CompletedProcess[str]:
    """What `python -m core *argv` does, in this process: `main(argv)`, its
    return value (or the code argparse exits with) as the exit code, with the
    environment and folder `_run` gives a subprocess."""
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, "1")
    monkeypatch.chdir(cwd)
    capfd.readouterr()
    with ExitStack() as stack:
        if url == UNREACHABLE:
            # Allowed on purpose: nothing listens there, the connection is refused.
            stack.enter_context(databases.allowed_database(url))
        try:
            code = cli.main(argv)
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 1
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["python", "-m", "core", *argv], code, out, err)


def _assert_one_clear_failure(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert TRACEBACK not in done.stdout + done.stderr
    assert expected in done.stderr, done.stderr


def _assert_the_door(
    door: str,
    folder: Path,
    migrated: MigratedFiles,
    command: Callable[[list[str], str], subprocess.CompletedProcess[str]],
) -> None:
    argv, setup, code, expected = DOORS[door]
    with ExitStack() as stack:
        url = setup(folder, stack, migrated)
        before = sorted(folder.rglob("*"))

        done = command(argv, url)

        assert done.returncode == code, done.stderr
        _assert_one_clear_failure(done, expected)
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
    # Refused means untouched: no file or folder appeared, none went away
    # (SQLite's own -wal/-shm files aside).
    after = sorted(path for path in folder.rglob("*") if not path.name.endswith(("-wal", "-shm")))
    assert after == [path for path in before if not path.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("door", list(DOORS))
def test_each_door_of_the_command_line(
    door: str,
    tmp_path: Path,
    migrated_files: MigratedFiles,
    monkeypatch: pytest.MonkeyPatch,
    capfd: CaptureFixture,
) -> None:
    _assert_the_door(
        door,
        tmp_path,
        migrated_files,
        lambda argv, url: _main_in_process(argv, url, tmp_path, monkeypatch, capfd),
    )


def test_a_database_door_of_python_dash_m_core_in_a_process_of_its_own(
    tmp_path: Path, migrated_files: MigratedFiles
) -> None:
    # The real entry point, for a door another process opens: this one holds
    # SQLite's write lock, `python -m core upgrade` waits a second for it.
    _assert_the_door(
        "locked-by-another-writer",
        tmp_path,
        migrated_files,
        lambda argv, url: _run([sys.executable, "-m", "core", *argv], url, tmp_path),
    )


def test_make_run_with_a_malformed_url_ends_with_the_message(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    # -o: take .venv as built, so a stale stamp cannot start a reinstall here.
    done = _run(["make", "-s", "-o", ".venv/.installed", "run"], "nonsense", PROJECT_ROOT)

    assert done.returncode == 2  # make's own code for a failed recipe
    _assert_one_clear_failure(done, "DATABASE_URL is not a database URL (got 'nonsense')")
    assert "Error 3" in done.stderr  # python -m core's code, as make reports it


# --------------------------------------------------------------------------
# `make` rebuilds a .venv that another Python made
# --------------------------------------------------------------------------


def _fake_python(folder: Path, identity: str) -> Path:
    """A "python" that only answers the Makefile's question: who are you?"""
    script = folder / "python"
    script.write_text(f"#!/bin/sh\necho '{identity}'\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("made_by", "asked_for", "rebuilt"),
    [
        ("3.11.7 /usr/bin/python3.11", "3.11.7 /usr/bin/python3.11", False),
        ("3.11.7 /usr/bin/python3.11", "3.12.1 /usr/bin/python3.12", True),
    ],
    ids=["same-python", "another-python"],
)
def test_make_rebuilds_a_venv_made_by_another_python(
    tmp_path: Path, made_by: str, asked_for: str, rebuilt: bool
) -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / ".python").write_text(made_by + "\n")
    (venv / ".installed").touch()  # newer than pyproject.toml

    done = subprocess.run(
        ["make", "-n", "install", f"PYTHON={_fake_python(tmp_path, asked_for)}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert ("-m venv" in done.stdout) is rebuilt, done.stdout
    assert ("rm -rf .venv" in done.stdout) is rebuilt, done.stdout
