"""`make bench` works: a tiny run produces every result row and valid JSON.

Runs `python -m bench` as `make bench` does, in a subprocess, with a few
tests and rows. Nothing here looks at how long anything took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests import harness

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "--tests", "2", "--warmup", "0", "--rows", "20", "--tables", "24", "--budget", "0",
    "--deletes", "10",
]  # fmt: skip

SQLITE_STRATEGIES = {
    "floor (no isolation)",
    "harness (savepoint)",
    "async floor (aiosqlite)",
    "async harness (aiosqlite)",
    "new temp file + create_all",
    "new :memory: + create_all",
    "DELETE every table",
}
POSTGRES_STRATEGIES = {
    "floor (no isolation)",
    "harness (savepoint)",
    "async floor (psycopg)",
    "async harness (psycopg)",
    "async floor (asyncpg)",
    "async harness (asyncpg)",
    "DELETE every table",
    "TRUNCATE every table",
    "clone template database",
}
MARIADB_STRATEGIES = {
    "floor (no isolation)",
    "harness (savepoint)",
    "DELETE every table",
    "TRUNCATE every table",
    "new database + create_all",
}
PATHS = {
    "ORM unit of work: add_all + flush",
    "ORM bulk insert, checked: insert(Model)",
    "Core insert, unchecked: insert(Model.__table__)",
    "raw driver executemany",
}


def run_bench(
    output: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """Run the benchmark; its printed output and the one JSON file it wrote."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *TINY, "--output-dir", str(output), *options],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "backend"), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = list(output.glob("bench-*.json"))
    assert len(written) == 1, written
    return done.stdout, json.loads(written[0].read_text())


def isolation_cases(document: dict[str, Any], backend: str) -> set[tuple[int, str]]:
    return {
        (row["tables"], row["strategy"])
        for row in document["isolation"]
        if row["backend"] == backend
    }


def test_quick_run_reports_every_sqlite_row_and_skips_absent_servers(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: no server answers there.
    stdout, document = run_bench(
        tmp_path,
        env={
            "BENCH_POSTGRES_URL": "postgresql+psycopg://postgres@127.0.0.1:9/postgres",
            "BENCH_MARIADB_URL": "mysql+pymysql://root@127.0.0.1:9/test",
        },
    )

    for title, setting in (("PostgreSQL", "BENCH_POSTGRES_URL"), ("MariaDB", "BENCH_MARIADB_URL")):
        skipped = [line for line in stdout.splitlines() if line.startswith(f"{title}: skipped")]
        assert len(skipped) == 1, stdout
        assert f"No {title} server answers at 127.0.0.1:9 " in skipped[0]
        assert f"point {setting} at one that runs" in skipped[0]
    assert isolation_cases(document, "sqlite") == {
        (tables, strategy) for tables in (17, 24) for strategy in SQLITE_STRATEGIES
    }
    assert isolation_cases(document, "postgresql") == set()
    assert isolation_cases(document, "mariadb") == set()
    for row in document["isolation"]:
        assert row["tests"] == 2
        assert 0 < row["median_ms"] <= row["p95_ms"]
        assert row["over_floor_ms"] is not None
        assert row["times_harness"] is not None
    assert {(t["backend"], t["path"]) for t in document["throughput"]} == {
        ("sqlite", path) for path in PATHS
    }
    assert all(t["rows"] == 20 and t["rows_per_second"] > 0 for t in document["throughput"])
    raw = [t for t in document["throughput"] if t["path"] == "raw driver executemany"]
    assert [t["percent_of_raw"] for t in raw] == [100.0]
    assert document["suites"] == []  # --quick never times the suites
    set_null = document["set_null"]
    assert (set_null["users"], set_null["loaded"], set_null["repeats"]) == (10, 400, 1)
    assert all(set_null[time] > 0 for time in ("hook_wall", "hook_cpu", "bare_wall", "ratio"))
    assert "delete 10 users with 400 objects loaded" in stdout
    verdicts = {t["name"]: t["met"] for t in document["targets"]}
    assert verdicts["sqlite: harness overhead above floor"] in (True, False)
    assert verdicts["sqlite: async harness (aiosqlite) overhead above async floor"] in (True, False)
    assert verdicts["postgresql: harness overhead above floor"] is None  # not measured
    assert verdicts["sqlite: SET NULL hook / no hook, large delete"] in (True, False)
    assert verdicts["sqlite: checked bulk path >= 70% of raw"] in (True, False)
    summary = [line for line in stdout.splitlines() if "checked bulk path >= 70% of raw" in line]
    assert summary[0].startswith("sqlite: checked bulk path >= 70% of raw: "), stdout
    assert document["meta"]["postgres_skipped"].startswith("No PostgreSQL server answers")
    assert document["meta"]["mariadb_skipped"].startswith("No MariaDB server answers")


# (backend, its name in the results, its title, its setting, its strategies)
SERVER_RUNS = [
    ("postgresql", "postgresql", "PostgreSQL", "BENCH_POSTGRES_URL", POSTGRES_STRATEGIES),
    ("mysql", "mariadb", "MariaDB", "BENCH_MARIADB_URL", MARIADB_STRATEGIES),
]


@pytest.mark.parametrize(
    ("backend", "name", "title", "setting", "strategies"),
    SERVER_RUNS,
    ids=[name for _, name, *_ in SERVER_RUNS],
)
def test_quick_run_on_a_server_reports_every_row(
    tmp_path: Path, backend: str, name: str, title: str, setting: str, strategies: set[str]
) -> None:
    url = make_url(harness.test_database_url())
    if url.get_backend_name() != backend:
        pytest.skip(f"needs {title} as the suite's own database (TEST_DATABASE_URL={backend}+...)")
    # The real schema only: every scratch database costs a CREATE DATABASE.
    stdout, document = run_bench(
        tmp_path, "--tables", "0", env={setting: url.render_as_string(hide_password=False)}
    )

    assert f"{title}: skipped" not in stdout
    assert isolation_cases(document, name) == {(17, strategy) for strategy in strategies}
    assert {(t["backend"], t["path"]) for t in document["throughput"]} >= {
        (name, path) for path in PATHS
    }
