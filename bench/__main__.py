"""`python -m bench`: run every benchmark, print the tables, write the JSON.

Needs `backend` on the import path (`make bench` sets PYTHONPATH), because
the harness and the factories live in the `tests` package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.isolation import (
    Strategy,
    mariadb_strategies,
    measure,
    postgres_strategies,
    sqlite_strategies,
)
from bench.report import (
    IsolationRow,
    isolation_rows,
    isolation_table,
    set_null_table,
    share_of_raw,
    suites_table,
    targets,
    targets_table,
    throughput_summary,
    throughput_table,
)
from bench.schema import Schema, grown_schema, real_schema
from bench.servers import MARIADB, POSTGRESQL, SERVER_KINDS, BenchServer, connect_server
from bench.set_null import SetNullCost, measure_set_null
from bench.suites import SuiteTime, time_suites
from bench.throughput import Throughput, measure_throughput
from tests import harness
from tests.project import PROJECT

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_ENV = "BENCH_QUICK"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    quick_default = os.environ.get(QUICK_ENV, "") not in ("", "0")
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=quick_default,
        help=f"a short smoke run: few tests and rows, no suite timings (or {QUICK_ENV}=1)",
    )
    parser.add_argument("--tests", type=int, help="tests per strategy (default 200; quick 5)")
    parser.add_argument("--rows", type=int, help="rows per write path (default 10000; quick 500)")
    parser.add_argument(
        "--repeats", type=int, help="runs per write path, the fastest counts (default 5; quick 1)"
    )
    parser.add_argument(
        "--deletes",
        type=int,
        help="users deleted at once in the SET NULL hook run, 40 objects loaded each "
        "(default 500; quick 100)",
    )
    parser.add_argument(
        "--tables",
        type=int,
        help="tables in the grown schema (default 150; quick 40; at most the real schema: none)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds of tests after which a slow strategy stops early (default 30; 0: none)",
    )
    parser.add_argument(
        "--warmup", type=int, help="untimed tests per strategy first (default 2; quick 1)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL parts")
    parser.add_argument("--no-mariadb", action="store_true", help="skip the MariaDB parts")
    parser.add_argument("--no-suites", action="store_true", help="skip timing the test suites")
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    args.tests = args.tests or (5 if args.quick else 200)
    args.warmup = (1 if args.quick else 2) if args.warmup is None else args.warmup
    args.tables = (40 if args.quick else 150) if args.tables is None else args.tables
    args.rows = args.rows or (500 if args.quick else 10_000)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.deletes = args.deletes or (100 if args.quick else 500)
    args.no_suites = args.no_suites or args.quick
    return args


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Each server's isolation strategies.
SERVER_STRATEGIES: dict[str, Callable[[BenchServer], list[Strategy]]] = {
    POSTGRESQL.name: postgres_strategies,
    MARIADB.name: mariadb_strategies,
}


def connect_servers(args: argparse.Namespace) -> tuple[list[BenchServer], dict[str, str]]:
    """The servers that answer, and why each other one is skipped."""
    servers: list[BenchServer] = []
    skipped: dict[str, str] = {}
    left_out = {
        POSTGRESQL.name: "--no-postgres" if args.no_postgres else "",
        MARIADB.name: "--no-mariadb" if args.no_mariadb else "",
    }
    for kind in SERVER_KINDS:
        flag = left_out[kind.name]
        server, reason = (None, flag) if flag else connect_server(kind)
        if server is None:
            skipped[kind.name] = reason
            print(f"{kind.title}: skipped ({reason})", flush=True)
        else:
            servers.append(server)
    return servers, skipped


def run_isolation(args: argparse.Namespace, servers: list[BenchServer]) -> list[IsolationRow]:
    rows: list[IsolationRow] = []
    schemas: list[Schema] = [real_schema()]
    if args.tables > len(schemas[0].tables):
        schemas.append(grown_schema(args.tables))
    backends = [("sqlite", sqlite_strategies())]
    backends += [(s.kind.name, SERVER_STRATEGIES[s.kind.name](s)) for s in servers]
    for backend, strategies in backends:
        # Both schemas in one run, so that they share the machine's moods.
        cases = [(schema, strategy) for schema in schemas for strategy in strategies]
        progress(f"isolation: {backend}, {len(cases)} (schema, strategy) cases")
        samples = measure(cases, args.tests, budget_seconds=args.budget or None, warmup=args.warmup)
        for schema in schemas:
            by_name = {
                strategy.name: taken
                for (case_schema, strategy), taken in zip(cases, samples, strict=True)
                if case_schema is schema
            }
            rows += isolation_rows(backend, schema.label, len(schema.tables), by_name)
    return rows


def run_throughput(
    args: argparse.Namespace, servers: list[BenchServer]
) -> dict[str, list[Throughput]]:
    results = {}
    progress(f"throughput: sqlite, {args.rows:,} rows x 4 paths")
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as directory:
        results["sqlite"] = measure_throughput(
            f"sqlite:///{directory}/throughput.db", args.rows, args.repeats
        )
    for server in servers:
        progress(f"throughput: {server.kind.name}, {args.rows:,} rows x 4 paths")
        with server.scratch_database("throughput") as url:
            results[server.kind.name] = measure_throughput(url, args.rows, args.repeats)
    return results


def run_set_null(args: argparse.Namespace) -> SetNullCost:
    progress(f"SET NULL hook: delete {args.deletes:,} users, with and without the hook")
    return measure_set_null(args.deletes, args.repeats)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The harness strategies run the test harness's own code, outside pytest:
    # point it at this project, as tests/conftest.py does for a test run.
    harness.configure(PROJECT)
    started, load_at_start = time.perf_counter(), os.getloadavg()
    servers, skipped = connect_servers(args)
    isolation = run_isolation(args, servers)
    throughput = run_throughput(args, servers)
    set_null = run_set_null(args)
    suites: list[SuiteTime] = []
    if not args.no_suites:
        progress("suites: make test, then each suite on its own")
        suites = time_suites()
    found = targets(isolation, throughput, set_null)

    print("\nIsolation, per test (same body: 7 factory inserts, 2 selects, 1 commit)\n")
    print(isolation_table(isolation))
    print(f"\nWrite throughput, AgentExecution rows (fastest of {args.repeats} runs)\n")
    print(throughput_table(throughput))
    print(f"\nON DELETE SET NULL hook, one flush, SQLite in memory (median of {args.repeats})\n")
    print(set_null_table(set_null))
    print()
    print(throughput_summary(throughput))
    if suites:
        print("\nTest suites, wall time\n")
        print(suites_table(suites))
    print("\nTargets (reported, never asserted)\n")
    print(targets_table(found))

    document = {
        "meta": {
            **_meta(args, skipped, time.perf_counter() - started),
            "load_average_at_start": load_at_start,
        },
        "isolation": [asdict(row) for row in isolation],
        "throughput": [
            {
                **asdict(t),
                "backend": backend,
                "rows_per_second": t.rows_per_second,
                "percent_of_raw": share_of_raw(measured).get(t.path),
            }
            for backend, measured in throughput.items()
            for t in measured
        ],
        "set_null": {**asdict(set_null), "ratio": set_null.ratio},
        "suites": [asdict(suite) for suite in suites],
        "targets": [{**asdict(t), "met": t.met} for t in found],
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.output_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nResults written to {path}")
    return 0


def _meta(args: argparse.Namespace, skipped: dict[str, str], seconds: float) -> dict[str, Any]:
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "quick": args.quick,
        "tests_per_strategy": args.tests,
        "warmup": args.warmup,
        "budget_seconds": args.budget,
        "rows": args.rows,
        "repeats": args.repeats,
        "deletes": args.deletes,
        "grown_tables": args.tables,
        "postgres_skipped": skipped.get(POSTGRESQL.name),
        "mariadb_skipped": skipped.get(MARIADB.name),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        # Other work on the machine shows up in every wall time.
        "load_average_at_end": os.getloadavg(),
    }


if __name__ == "__main__":
    sys.exit(main())
