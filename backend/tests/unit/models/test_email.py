"""The email column's rule, `info=normalized_by(normalize_email)`: what it
refuses on assignment (naming the field), the database's CHECK for raw SQL,
and uniqueness after normalisation. How an address is stored:
`TestUserModel` in `test_models_orm.py`; properties over generated
addresses: `property_tests/test_email.py`."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    User,
    ValidationError,
    normalize_email,
)
from tests.factories import UserFactory
from tests.unit.readback import stored, table_of


@pytest.mark.parametrize(
    ("given", "message"),
    [
        *((email, f"{email!r} is not a valid email address (expected name@domain.tld)")
          for email in ("", "plain", "no-at.example.com", "a@b", "two@@example.com",
                        "sp ace@example.com")),
        (42, "expected a string, got 42"),
    ],
)  # fmt: skip
def test_malformed_email_is_rejected(given: object, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        User(email=given)
    assert error.value.field == "User.email"
    assert str(error.value) == f"User.email: {message}"


@pytest.mark.parametrize(
    ("given", "message"),
    [(42, "expected a string, got 42"),
     ("a@b", "'a@b' is not a valid email address (expected name@domain.tld)")],
)  # fmt: skip
def test_the_rule_itself_names_the_field(given: object, message: str) -> None:
    # Called directly, as a caller's own code may: not only through the column.
    with pytest.raises(ValidationError) as error:
        normalize_email(given)  # type: ignore[arg-type]
    assert error.value.field == "User.email"
    assert error.value.message == message


def test_email_is_unique_after_normalisation(db: Session) -> None:
    UserFactory(_session=db, email="grace@example.com")
    db.add(User(email="GRACE@example.com "))

    with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
        db.flush()


def test_database_rejects_an_unnormalised_email(db: Session) -> None:
    user = UserFactory()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(update(table_of(User)).values(email="Upper@Example.com"))
    assert stored(db, User, "email", user.id) == user.email
