"""A migration's refusal of a driver's error, its rows counted on SQLite.

`migrate.constraint_violation` counts the rows that break a constraint with
plain SQL, the same on every backend, so the tests of each driver's words
(sqlite3, psycopg, PyMySQL) count them in an in-memory SQLite database.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core import migrate
from core.database import make_engine

LEGACY_TABLE = "CREATE TABLE legacy (id INTEGER PRIMARY KEY, code TEXT, owner TEXT)"


def refusal_on_sqlite(error: IntegrityError, *setup: str, in_a_transaction: bool = False) -> str:
    """What `constraint_violation` says of `error`, on a fresh in-memory
    database made by the SQL statements `setup`; `in_a_transaction`: inside a
    transaction of the caller's, which it leaves open."""
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as connection:
            for statement in setup:
                connection.execute(text(statement))
        with engine.connect() as connection:
            if not in_a_transaction:
                return str(migrate.constraint_violation(error, connection))
            with connection.begin():
                refused = str(migrate.constraint_violation(error, connection))
                assert connection.in_transaction()
            return refused
    finally:
        engine.dispose()
