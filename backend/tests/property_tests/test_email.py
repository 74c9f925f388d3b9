"""Email normalisation: idempotent, and uniqueness holds across case variants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import normalize_email
from core.validation import ValidationError
from tests.factories import UserFactory
from tests.harness import db_examples
from tests.property_tests.strategies import TEXT_ALPHABET, case_variants, emails


@given(st.text(TEXT_ALPHABET, max_size=40) | emails())
def test_normalising_twice_changes_nothing(address: str) -> None:
    try:
        once = normalize_email(address)
    except ValidationError:
        return  # malformed: see test_rejection
    assert normalize_email(once) == once
    assert once == once.strip().lower()


@given(st.data())
def test_case_variants_normalise_to_the_same_address(data: st.DataObject) -> None:
    address = data.draw(emails(), label="address")
    variant = data.draw(case_variants(normalize_email(address)), label="variant")
    assert normalize_email(variant) == normalize_email(address)


@db_examples()
@given(data=st.data())
def test_uniqueness_holds_across_case_variants(db: Session, data: st.DataObject) -> None:
    address = data.draw(emails(), label="address")
    variant = data.draw(case_variants(normalize_email(address)), label="variant")
    UserFactory(email=address)
    with pytest.raises(IntegrityError), db.begin_nested():
        UserFactory(email=variant)
