"""Fixtures of the migration suite: scratch databases beside the harness's.

Upgrading to head happens once per run, into `migrated_template`; a test
that needs a migrated database gets a copy of it (`migrated_engine`), one
that needs an empty database gets a new one (`empty_engine`). MariaDB copies
no databases: there `migrated_engine` is a new database, upgraded to head.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def _upgraded(scratch: ScratchDatabases, name: str) -> URL:
    url = scratch.create(name)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
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
