"""Wall time of `make test` and of each test suite run on its own."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "backend" / "tests"


@dataclass(frozen=True)
class SuiteTime:
    suite: str
    command: str
    seconds: float
    returncode: int
    summary: str  # pytest's last line, e.g. "51 passed in 1.20s"


def time_suites() -> list[SuiteTime]:
    """`make test` (with coverage), then each directory of tests on its own."""
    results = [_timed("make test", ["make", "test"], "make test")]
    for suite in sorted(path.name for path in TESTS.iterdir() if path.is_dir()):
        if any((TESTS / suite).glob("**/test_*.py")):
            path = f"backend/tests/{suite}"
            command = [sys.executable, "-m", "pytest", "-q", path]
            results.append(_timed(suite, command, f"pytest {path}"))
    return results


def _timed(suite: str, command: list[str], shown: str) -> SuiteTime:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    return SuiteTime(suite, shown, seconds, done.returncode, _summary(done.stdout))


_PYTEST_SUMMARY = re.compile(r"^=*\s*(.*\b(?:passed|failed|errors?|no tests ran)\b.*?)\s*=*$")


def _summary(output: str) -> str:
    for line in reversed(output.splitlines()):
        match = _PYTEST_SUMMARY.match(line.strip())
        if match:
            return match.group(1)
    return ""
