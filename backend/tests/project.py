"""This project's wiring of the test harness: the one place that names it.

`tests/harness.py` and `tests/conftest.py` (with `tests/databases.py`,
`tests/guard.py` and `tests/strict_loading.py`) know nothing of this
application; conftest.py loads the `Project` below through the
`harness_project` ini option (default `tests.project:PROJECT`). Another
project reuses those modules unchanged: it writes its own `Project` and
names it in its pytest configuration (`harness_project = "myapp_tests:PROJECT"`),
as tests/unit/harness/test_drop_in.py does for a project of two models.
"""

from __future__ import annotations

from core.database import (
    DATABASE_URL_ENV,
    checked_url,
    database_url,
    make_engine,
    use_session_factory,
)
from core.schema import Base
from core.transactions import capture_on_commit
from tests.factories.base import bind_async_session, bind_session
from tests.harness import Project

PROJECT = Project(
    metadata=Base.metadata,
    make_engine=make_engine,
    app_database_url=database_url,
    app_url_setting=DATABASE_URL_ENV,
    check_url=checked_url,
    bind_session=bind_session,
    bind_async_session=bind_async_session,
    use_session_factory=use_session_factory,
    capture_on_commit=capture_on_commit,
)
