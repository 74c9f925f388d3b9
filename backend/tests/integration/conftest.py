"""A database of their own for the race tests, on each backend.

Real connections, not the rolled-back `db` fixture: a race needs
transactions that really commit. Each test module gets a fresh database per
backend, a temporary SQLite file or a scratch PostgreSQL or MariaDB database
created and dropped here, and each test seeds rows of its own in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy.engine import URL, make_url

from tests import harness


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql", "mariadb"])
def race_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """A fresh database with the schema, shared by one module's tests."""
    with ExitStack() as stack:
        if request.param == "sqlite-file":
            url = make_url(f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}")
        elif request.param == "postgresql":
            url = stack.enter_context(harness.scratch_postgres("race"))
        else:
            url = stack.enter_context(harness.scratch_mariadb("race"))
        harness.create_schema(url)
        yield url
