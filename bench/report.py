"""Statistics, the printed tables, and the targets the numbers are held to."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.isolation import Samples
from bench.set_null import SetNullCost
from bench.suites import SuiteTime
from bench.throughput import CHECKED_BULK_PATH, RAW_PATH, Throughput
from core.database import ASYNC_DRIVERS

FLOOR = "floor (no isolation)"
HARNESS = "harness (savepoint)"
SEED_STRATEGY = "new temp file + create_all"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with `fraction` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class IsolationRow:
    backend: str
    schema: str
    tables: int
    strategy: str
    tests: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    cpu_median_ms: float
    over_floor_ms: float | None = None  # median minus the floor's median
    times_harness: float | None = None  # median divided by the harness's median


def isolation_rows(
    backend: str, schema: str, tables: int, samples: dict[str, Samples]
) -> list[IsolationRow]:
    def ms(values: list[int]) -> list[float]:
        return [value / 1e6 for value in values]

    rows = [
        IsolationRow(
            backend,
            schema,
            tables,
            name,
            len(taken.wall),
            statistics.median(ms(taken.wall)),
            percentile(ms(taken.wall), 0.95),
            statistics.fmean(ms(taken.wall)),
            statistics.median(ms(taken.cpu)),
        )
        for name, taken in samples.items()
    ]
    medians = {row.strategy: row.median_ms for row in rows}
    floor, harness = medians.get(FLOOR), medians.get(HARNESS)
    return [
        IsolationRow(
            **{
                **asdict(row),
                "over_floor_ms": None if floor is None else row.median_ms - floor,
                "times_harness": None if harness is None else row.median_ms / harness,
            }
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None  # None: not measured in this run
    limit: float
    unit: str
    at_most: bool  # True: the value must not exceed the limit

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.met:
            return "met"
        return f"MISSED by {abs(self.value - self.limit):.2f} {self.unit}"


def targets(
    isolation: list[IsolationRow],
    throughput: dict[str, list[Throughput]],
    set_null: SetNullCost | None = None,
) -> list[Target]:
    def median(backend: str, strategy: str, grown: bool) -> float | None:
        for row in isolation:
            is_grown = row.schema.startswith("grown")
            if (row.backend, row.strategy, is_grown) == (backend, strategy, grown):
                return row.median_ms
        return None

    def difference(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    found = []
    for backend, limit in (("sqlite", 0.5), ("postgresql", 1.5), ("mariadb", 1.5)):
        real, grown = (
            difference(median(backend, HARNESS, is_grown), median(backend, FLOOR, is_grown))
            for is_grown in (False, True)
        )
        found.append(Target(f"{backend}: harness overhead above floor", real, limit, "ms", True))
        # Flat: the overhead above the floor, measured in the same run, does
        # not grow with the schema. The floor absorbs the machine's drift,
        # which a ratio of raw medians would blame on the harness.
        growth = difference(grown, real)
        found.append(
            Target(f"{backend}: overhead growth, real -> grown schema", growth, limit, "ms", True)
        )
        # The async harness against the async floor (the same body in a plain
        # AsyncSession): what isolation costs in async tests, held to the same
        # limit; the floors' difference is what async itself costs.
        for driver in ASYNC_DRIVERS.get(backend, ()):  # bench names MariaDB "mariadb": none
            over = difference(
                median(backend, f"async harness ({driver})", False),
                median(backend, f"async floor ({driver})", False),
            )
            name = f"{backend}: async harness ({driver}) overhead above async floor"
            found.append(Target(name, over, limit, "ms", True))
    speedup = ratio(median("sqlite", SEED_STRATEGY, False), median("sqlite", HARNESS, False))
    found.append(
        Target("sqlite: harness speed-up over temp file + create_all", speedup, 20, "x", False)
    )
    hook_ratio = None if set_null is None else set_null.ratio
    found.append(Target("sqlite: SET NULL hook / no hook, large delete", hook_ratio, 2, "x", True))
    return found + checked_bulk_targets(throughput)


# The checked ORM bulk insert must keep this share of the raw driver's rows/s.
CHECKED_BULK_TARGET = 70.0


def share_of_raw(measured: list[Throughput]) -> dict[str, float]:
    """Each path's rows/s as a percentage of the raw driver's (none without it)."""
    raw = next((t.rows_per_second for t in measured if t.path == RAW_PATH), None)
    if not raw:
        return {}
    # (rows/s / raw) first: the raw path itself is then exactly 100.
    return {t.path: 100 * (t.rows_per_second / raw) for t in measured}


def checked_bulk_targets(throughput: dict[str, list[Throughput]]) -> list[Target]:
    return [
        Target(
            f"{backend}: checked bulk path >= {CHECKED_BULK_TARGET:.0f}% of raw",
            share_of_raw(results).get(CHECKED_BULK_PATH),
            CHECKED_BULK_TARGET,
            "%",
            False,
        )
        for backend, results in throughput.items()
    ]


# --------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _is_number(value: Any) -> bool:
    return value is None or isinstance(value, int | float)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def isolation_table(rows: list[IsolationRow]) -> str:
    headers = (
        "backend",
        "schema",
        "strategy",
        "tests",
        "median ms",
        "p95 ms",
        "CPU ms",
        "over floor",
        "x harness",
    )
    return table(
        headers,
        [
            (
                r.backend,
                r.schema,
                r.strategy,
                r.tests,
                r.median_ms,
                r.p95_ms,
                r.cpu_median_ms,
                r.over_floor_ms,
                r.times_harness,
            )
            for r in rows
        ],
    )


def throughput_table(results: dict[str, list[Throughput]]) -> str:
    rows = []
    for backend, measured in results.items():
        shares = share_of_raw(measured)
        for t in measured:
            share = shares.get(t.path)
            rows.append((backend, t.path, t.rows, t.seconds, round(t.rows_per_second), share))
    return table(("backend", "path", "rows", "seconds", "rows/s", "% of raw"), rows)


def throughput_summary(results: dict[str, list[Throughput]]) -> str:
    """One line per backend: the checked bulk path's share of raw, and its verdict."""
    return "\n".join(
        f"{t.name}: {t.verdict()}" + ("" if t.value is None else f" ({t.value:.0f}%)")
        for t in checked_bulk_targets(results)
    )


def set_null_table(cost: SetNullCost) -> str:
    def ms(seconds: float) -> float:
        return seconds * 1000

    return table(
        ("case", "hook ms", "hook CPU ms", "no hook ms", "no hook CPU ms", "x no hook"),
        [
            (
                cost.label,
                ms(cost.hook_wall),
                ms(cost.hook_cpu),
                ms(cost.bare_wall),
                ms(cost.bare_cpu),
                cost.ratio,
            )
        ],
    )


def suites_table(results: list[SuiteTime]) -> str:
    return table(
        ("suite", "command", "seconds", "exit", "pytest says"),
        [(s.suite, s.command, s.seconds, s.returncode, s.summary) for s in results],
    )


def targets_table(found: list[Target]) -> str:
    return table(
        ("target", "value", "limit", "verdict"),
        [
            (t.name, t.value, f"{'<=' if t.at_most else '>='} {t.limit} {t.unit}", t.verdict())
            for t in found
        ],
    )
