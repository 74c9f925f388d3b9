"""Fixtures of the migration suite: scratch databases beside the harness's.

Upgrading to head happens once per run, into `migrated_template`; a test
that needs a migrated database gets a copy of it (`migrated_engine`), one
that needs an empty database gets a new one (`empty_engine`). A test that
starts at an older revision gets a copy of a database at that revision
(`engine_at(revision)`), each made once per run by upgrading a copy of the
one before it a step. MariaDB copies no databases: there each of these is a
new database, upgraded to its revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import URL, Engine

from core import migrate
from core.database import make_engine
from tests.migrations.databases import ScratchDatabases


@pytest.fixture(scope="session")
def scratch(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDatabases]:
    databases = ScratchDatabases(engine.url, tmp_path_factory.mktemp("migrations"))
    yield databases
    databases.drop_all()


def _upgraded(
    scratch: ScratchDatabases, name: str, revision: str = "head", template: URL | None = None
) -> URL:
    """A new database `name` (empty, or a copy of `template`) upgraded to `revision`."""
    url = scratch.create(name, template=template)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, revision)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def migrated_template(scratch: ScratchDatabases) -> URL | None:
    return _upgraded(scratch, "mig_template") if scratch.can_copy else None


def _scratch_engine(scratch: ScratchDatabases, url: URL) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        scratch.drop(url)


@pytest.fixture
def empty_engine(scratch: ScratchDatabases) -> Iterator[Engine]:
    yield from _scratch_engine(scratch, scratch.create("mig_empty"))


@pytest.fixture
def migrated_engine(scratch: ScratchDatabases, migrated_template: URL | None) -> Iterator[Engine]:
    if migrated_template is None:
        url = _upgraded(scratch, "mig_copy")
    else:
        url = scratch.create("mig_copy", template=migrated_template)
    yield from _scratch_engine(scratch, url)


@pytest.fixture(scope="session")
def revision_templates(
    scratch: ScratchDatabases, migrated_template: URL | None
) -> dict[str | None, URL]:
    """Databases at each revision, filled in as tests ask (`engine_at`):
    revision -> its template, the head's being `migrated_template`."""
    templates: dict[str | None, URL] = {}
    if migrated_template is not None:
        templates[migrate.script_directory().get_current_head()] = migrated_template
    return templates


def _template_at(scratch: ScratchDatabases, templates: dict[str | None, URL], revision: str) -> URL:
    """The template at `revision`: a copy of the one before it, upgraded a step."""
    if revision not in templates:
        script = migrate.script_directory().get_revision(revision)
        assert script is not None, revision
        previous = script.down_revision
        assert previous is None or isinstance(previous, str), "no merge revisions here"
        before = None if previous is None else _template_at(scratch, templates, previous)
        templates[revision] = _upgraded(scratch, f"mig_at_{revision}", revision, before)
    return templates[revision]


@pytest.fixture
def engine_at(
    scratch: ScratchDatabases, revision_templates: dict[str | None, URL]
) -> Iterator[Callable[[str], Engine]]:
    """`engine_at(revision)`: an engine on a new database at `revision`, dropped
    after the test (a copy of that revision's template; on MariaDB, upgraded)."""
    with ExitStack() as stack:

        def at(revision: str) -> Engine:
            if scratch.can_copy:
                template = _template_at(scratch, revision_templates, revision)
                url = scratch.create("mig_at", template=template)
            else:
                url = _upgraded(scratch, "mig_at", revision)
            engine = make_engine(url)
            stack.callback(scratch.drop, url)
            stack.callback(engine.dispose)
            return engine

        yield at
