"""Valid values survive a save and a reload, for every column of every model.

Each test takes `db` inside `@given`, under `harness.db_examples`: every
example runs in a savepoint of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from core.schema import (
    Base,
    UTCDateTime,
    as_utc,
)
from tests.factories import FACTORY_FOR
from tests.harness import db_examples
from tests.profiles import examples_per_case
from tests.property_tests.strategies import (
    JSON_KEYS,
    JSON_VALUES,
    Field,
    all_models,
    all_value_fields,
    expected_after_reload,
    is_aware_utc,
    json_documents,
    json_shape,
    row_values,
    timestamps,
)


def create(model: type[Base], **values: Any) -> Any:
    """A flushed row of `model`, its required parents made by its factory."""
    return FACTORY_FOR[model](**values)


def reload(db: Session, obj: Base) -> None:
    db.flush()
    db.expire(obj)
    db.refresh(obj)


def fields_of_type(column_type: type[Any]) -> list[Field]:
    return [f for f in all_value_fields() if isinstance(f.column.type, column_type)]


def test_every_model_has_a_factory() -> None:
    assert set(all_models()) == set(FACTORY_FOR)


@pytest.mark.parametrize("model", all_models(), ids=lambda model: model.__name__)
@db_examples()
@given(data=st.data())
def test_valid_values_come_back_equal(db: Session, model: type[Base], data: st.DataObject) -> None:
    values = data.draw(row_values(model), label="values")
    obj = create(model, **values)
    identity = inspect(obj).identity
    db.expunge_all()
    loaded = db.get(model, identity)
    assert loaded is not None
    for key, given_value in values.items():
        field = next(f for f in inspect(model).columns if f.key == key)
        expected = expected_after_reload(Field(model, field), given_value)
        assert getattr(loaded, key) == expected, key


@pytest.fixture
def saved(db: Session, field: Field) -> Base:
    """A row of the field's model, written before the examples run."""
    obj: Base = create(field.model)
    return obj


@pytest.mark.parametrize("field", fields_of_type(UTCDateTime), ids=str)
@db_examples(max_examples=examples_per_case())
@given(moment=timestamps())
def test_timestamps_read_back_as_aware_utc(
    db: Session, field: Field, saved: Base, moment: datetime
) -> None:
    setattr(saved, field.key, moment)
    reload(db, saved)
    stored = getattr(saved, field.key)
    assert is_aware_utc(stored)
    # Naive means UTC; aware is the same instant.
    assert stored == as_utc(moment)
    if moment.tzinfo is None:
        assert stored.replace(tzinfo=None) == moment


@pytest.mark.parametrize("field", fields_of_type(JSON), ids=str)
@db_examples(max_examples=examples_per_case())
@given(data=st.data())
def test_in_place_changes_to_a_loaded_document_are_saved(
    db: Session, field: Field, saved: Base, data: st.DataObject
) -> None:
    shape = json_shape(field)
    setattr(saved, field.key, data.draw(json_documents(shape), label="initial"))
    reload(db, saved)
    document = getattr(saved, field.key)
    if shape is dict:
        key, value = data.draw(st.tuples(JSON_KEYS, JSON_VALUES), label="key, value")
        document[key] = value
        expected: Any = {**document}
    else:
        value = data.draw(JSON_VALUES, label="appended")
        document.append(value)
        expected = [*document]
    assert saved in db.dirty
    reload(db, saved)
    assert getattr(saved, field.key) == expected


@pytest.mark.parametrize(
    "field",
    [f for f in fields_of_type(JSON) if "constructor_default" in f.column.info],
    ids=str,
)
@db_examples(max_examples=examples_per_case())
@given(value=JSON_VALUES)
def test_json_defaults_are_never_shared_between_rows(db: Session, field: Field, value: Any) -> None:
    first, second = create(field.model), create(field.model)
    assert getattr(first, field.key) is not getattr(second, field.key)
    document = getattr(first, field.key)
    if json_shape(field) is dict:
        document["changed"] = value
    else:
        document.append(value)
    reload(db, first)
    reload(db, second)
    assert getattr(first, field.key) in ({"changed": value}, [value])
    assert getattr(second, field.key) == json_shape(field)()


@pytest.mark.parametrize(
    "field",
    [
        f
        for f in all_value_fields()
        if f.column.nullable and (f.column.default is not None or f.column.server_default)
    ],
    ids=str,
)
def test_an_explicit_none_is_stored_as_null_despite_a_default(db: Session, field: Field) -> None:
    obj = create(field.model, **{field.key: None})
    reload(db, obj)
    assert getattr(obj, field.key) is None
