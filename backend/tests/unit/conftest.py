"""Fixtures the unit suite's subject folders share (the harness's own, `db`
included, come from `backend/tests/conftest.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.database import (
    dispose_default_engines,
    make_engine,
)
from core.schema import Base


@pytest.fixture
def commit_and_expire(db: Session) -> Callable[[], None]:
    """Commit, then expire every object, so the next reads come from the database."""

    def commit_then_expire() -> None:
        db.commit()
        db.expire_all()

    return commit_then_expire


@pytest.fixture
def app_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`DATABASE_URL` pointed at a fresh file under `tmp_path`."""
    url = f"sqlite:///{tmp_path / 'var' / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    dispose_default_engines()  # what `session_scope()` opened on it


@pytest.fixture
def app_engine(app_url: str) -> Iterator[Engine]:
    """The schema built (`create_all`) in the database `app_url` names."""
    engine = make_engine(app_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
