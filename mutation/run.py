"""`make mutation`: mutation testing of `backend/core` with mutmut, and its report.

    python mutation/run.py                  mutate every module, run the tests, report
    python mutation/run.py run 'core.governance.*'   only the mutants whose names match
    python mutation/run.py report           the report of the results on disk
    python mutation/run.py rerun ['core.models.*']   run the survivors again (after new tests)
    python mutation/run.py servers [patterns]  the survivors again on MUTATION_SERVERS only
    python mutation/run.py show NAME        one mutant's diff (any mutmut command works)

mutmut copies `backend/core` into `mutants/`, compiles every mutant of every
function into it behind a switch, runs the whole test selection once to learn
which tests call which function, then, for each mutant, forks and runs the
tests that call its function (fastest first, stopping at the first failure).
A mutant is *killed* when a test fails.

Two things are done here that mutmut cannot be told in its configuration:

- **Module names.** mutmut names a mutant after its file's path
  (`backend/core/models.py` -> `backend.core.models.x_...`), but the package
  is imported as `core` (`backend/` is on the path), and the switch compares
  the two: no mutant would ever be switched on. The name is taken from the
  path below `backend/` instead.
- **Equivalent mutants.** A mutant that cannot change behaviour (a cache
  size, a message's wrapping) is listed in `mutation/equivalent.toml` with a
  line of reasoning and the mutated line; it is left out of the score. If the
  code moves and the line no longer matches, the entry is reported as stale
  and counted again.

The report (a table per file, the survivors with their diffs) is printed and
written to `mutants/report.md` and `mutants/report.json`; `mutants/` is
git-ignored.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PARENT = "backend"
EQUIVALENT_FILE = ROOT / "mutation" / "equivalent.toml"
REPORT_DIR = ROOT / "mutants"
TARGET = 95.0

# mutmut's statuses, as this report counts them.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


def _patch_mutant_names() -> None:
    """Name mutants after the module the tests import: `core.models`, not
    `backend.core.models` (see the module docstring)."""
    import mutmut.__main__
    import mutmut.mutation.file_mutation
    import mutmut.utils.format_utils as format_utils

    original = format_utils.get_mutant_name

    def get_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
        parts = Path(relative_source_path).parts
        if parts and parts[0] == PACKAGE_PARENT:
            relative_source_path = Path(*parts[1:])
        return str(original(relative_source_path, mutant_method_name))

    for module in (format_utils, mutmut.__main__, mutmut.mutation.file_mutation):
        if getattr(module, "get_mutant_name", None) is not original:
            raise SystemExit(
                f"mutation/run.py: {module.__name__}.get_mutant_name is not the function this "
                "launcher expects; the pinned mutmut version (pyproject.toml) has changed."
            )
        vars(module)["get_mutant_name"] = get_mutant_name


# --------------------------------------------------------------------------
# Equivalent mutants
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    line: str  # the mutated line, as the mutant's diff shows it after "+"
    why: str


def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text("utf-8")).get("equivalent", [])
    problems = [
        f"entry {number}: needs mutant, line and why"
        for number, entry in enumerate(entries, 1)
        if not all(
            isinstance(entry.get(key), str) and entry[key].strip()
            for key in ("mutant", "line", "why")
        )
    ]
    if problems:
        raise SystemExit(f"{path.relative_to(ROOT)}: " + "; ".join(problems))
    return [Equivalent(entry["mutant"], entry["line"].strip(), entry["why"]) for entry in entries]


def mutated_lines(diff: str) -> list[str]:
    return [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


# --------------------------------------------------------------------------
# What mutmut cannot reach
# --------------------------------------------------------------------------

# mutmut switches mutants on through a wrapper around each function; it
# leaves alone a function under any decorator but these two, and code outside
# functions (class bodies, module level). `@overload` stubs hold no code.
WRAPPABLE_DECORATORS = {"staticmethod", "classmethod", "overload"}


def unreached_functions(source: Path) -> list[str]:
    """The functions of `source` that mutmut does not mutate: decorated ones."""
    found = []
    for node in ast.walk(ast.parse(source.read_text("utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = {ast.unparse(decorator).split("(")[0] for decorator in node.decorator_list}
            if names - WRAPPABLE_DECORATORS:
                found.append(f"{node.name} (line {node.lineno}, @{', @'.join(sorted(names))})")
    return found


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------


@dataclass
class FileScore:
    path: str
    statuses: Counter[str] = field(default_factory=Counter)
    equivalent: int = 0
    survivors: list[tuple[str, str, str]] = field(default_factory=list)  # (name, status, diff)

    @property
    def counted(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in NOT_RUN)

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in KILLED)

    @property
    def score(self) -> float | None:
        """Killed, in percent of the mutants that were run; None if none was."""
        return 100.0 * self.killed / self.counted if self.counted else None


def collect_scores() -> tuple[list[FileScore], list[str]]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    equivalents = {entry.mutant: entry for entry in load_equivalents()}
    used: set[str] = set()
    stale: list[str] = []
    scores = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        score = FileScore(str(path))
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            if name in equivalents:
                used.add(name)  # the mutant exists, whatever its result (or none yet)
            status = status_by_exit_code[exit_code]
            if status in KILLED and name in equivalents:
                stale.append(f"{name}: a test kills it, so it is not equivalent")
            if status in KILLED or status in NOT_RUN:
                score.statuses[status] += 1
                continue
            diff = get_diff_for_mutant(name, path=path)
            entry = equivalents.get(name)
            if entry is not None:
                if entry.line in mutated_lines(diff):
                    score.equivalent += 1
                    continue
                stale.append(f"{name}: the listed line is no longer what this mutant writes")
            score.statuses[status] += 1
            score.survivors.append((name, status, diff))
        scores.append(score)
    stale += [f"{name}: no such mutant (any more)" for name in sorted(set(equivalents) - used)]
    return scores, stale


def render(scores: list[FileScore], stale: list[str]) -> str:
    total = FileScore("all of backend/core")
    for score in scores:
        total.statuses.update(score.statuses)
        total.equivalent += score.equivalent
    lines = [
        "# Mutation score of backend/core",
        "",
        f"Killed: a test failed (timeouts count as killed). Target: {TARGET:.0f}% per file.",
        "Equivalent mutants (mutation/equivalent.toml) are left out.",
        "",
        "| file | mutants | killed | survived | no tests | equivalent | not run | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for score in [*scores, total]:
        not_run = sum(score.statuses[status] for status in NOT_RUN)
        mutants = score.counted + not_run + score.equivalent
        if not mutants:
            continue
        if score.score is None:
            shown = "not run"
        else:
            shown = f"{score.score:.1f}%" + ("" if score.score >= TARGET else " (under target)")
        lines.append(
            f"| {score.path} | {mutants} | {score.killed} "
            f"| {score.statuses['survived'] + score.statuses['suspicious']} "
            f"| {score.statuses['no tests']} "
            f"| {score.equivalent} | {not_run} | {shown} |"
        )
    if stale:
        lines += ["", "## Stale entries in mutation/equivalent.toml", ""]
        lines += [f"- {problem}" for problem in stale]
    unreached = [(score.path, unreached_functions(ROOT / score.path)) for score in scores]
    lines += ["", "## Functions mutmut does not mutate (decorated)", ""]
    lines += [f"- {path}: {', '.join(names)}" for path, names in unreached if names]
    survivors = [survivor for score in scores for survivor in score.survivors]
    lines += ["", f"## Survivors ({len(survivors)})", ""]
    for name, status, diff in survivors:
        lines += [f"### {name} ({status})", "", "```diff", diff.strip(), "```", ""]
    return "\n".join(lines) + "\n"


def report() -> int:
    scores, stale = collect_scores()
    text = render(scores, stale)
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "report.md").write_text(text, "utf-8")
    (REPORT_DIR / "report.json").write_text(
        json.dumps(
            {
                score.path: {
                    "statuses": dict(score.statuses),
                    "equivalent": score.equivalent,
                    "score": None if score.score is None else round(score.score, 2),
                    "survivors": [name for name, _, _ in score.survivors],
                }
                for score in scores
            },
            indent=2,
        ),
        "utf-8",
    )
    table_end = text.index("\n## ") if "\n## " in text else len(text)
    print(text[:table_end])
    survivors = sum(len(score.survivors) for score in scores)
    print(f"{survivors} survivors; the diffs are in {REPORT_DIR.relative_to(ROOT)}/report.md")
    return (
        0
        if all(
            score.score is not None and score.score >= TARGET for score in scores if score.counted
        )
        else 1
    )


# --------------------------------------------------------------------------
# The servers' passes
# --------------------------------------------------------------------------

# Space-separated database URLs (the Makefile passes TEST_POSTGRES_URL and
# TEST_MARIADB_URL; empty: none). After the run on SQLite, the mutants it left
# alive (survived, or reached by no SQLite test) are run again on each server
# that answers, with that server's whole suite: its own tests
# (`@pytest.mark.server`) and its dialect's code paths can kill what SQLite
# cannot see. A mutant killed on any backend counts as killed.
SERVERS_SETTING = "MUTATION_SERVERS"

PROBE = """
import sys
from sqlalchemy import create_engine
engine = create_engine(sys.argv[1], connect_args={"connect_timeout": 5})
with engine.connect():
    pass
"""


def server_answers(url: str) -> bool:
    # In a process of its own: this one must not import the database drivers
    # (or `core`) before mutmut forks its test runs from it.
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def server_passes(patterns: list[str]) -> None:
    # mutmut's map of which test reaches which function holds for the
    # backend it was learnt on: each server learns its own (a test reaches
    # the MariaDB engine's code only on MariaDB), and SQLite's is put back
    # after (a test that skips on a server maps to nothing there).
    stats = REPORT_DIR / "mutmut-stats.json"
    kept = stats.read_bytes() if stats.exists() else None
    for url in os.environ.get(SERVERS_SETTING, "").split():
        shown = url.rsplit("@", 1)[-1]
        if not server_answers(url):
            print(f"mutation: no server answers at {shown}; its pass is skipped")
            continue
        print(f"mutation: the survivors again, on {shown}")
        environment = {**os.environ, "TEST_DATABASE_URL": url, SERVERS_SETTING: ""}
        stats.unlink(missing_ok=True)
        try:
            subprocess.run(
                [sys.executable, __file__, "rerun", *patterns], env=environment, check=False
            )
        finally:
            if kept is not None:
                stats.write_bytes(kept)


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    # Each mutant reruns its tests: the property tests' short profile (five
    # examples each) keeps that affordable. HYPOTHESIS_PROFILE=default or ci
    # for more.
    os.environ.setdefault("HYPOTHESIS_PROFILE", "dev")
    _patch_mutant_names()
    if argv[:1] == ["report"]:
        return report()
    if argv[:1] == ["servers"]:  # only the servers' passes, over the results on disk
        server_passes(argv[1:])
        return report()
    from mutmut.__main__ import cli

    command = argv or ["run"]
    if command[0] == "rerun":
        survivors = [
            name
            for score in collect_scores()[0]
            for name, _, _ in score.survivors
            if not command[1:] or any(fnmatch(name, pattern) for pattern in command[1:])
        ]
        if not survivors:
            print("no survivors to run again")
            return report()
        command = ["run", *survivors]
    try:
        cli.main(command, prog_name="mutmut", standalone_mode=False)
    except SystemExit as stop:
        if stop.code not in (0, None):
            return int(stop.code) if isinstance(stop.code, int) else 1
    if argv[:1] in ([], ["run"]):  # a run, not a rerun: the servers' passes follow
        server_passes(argv[1:])
    return report() if command[0] == "run" else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
