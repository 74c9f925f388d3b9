"""The factories' base: which session they write to, and flush-not-commit.

Factories never choose a session by mutating class state. They ask
`current_session()`, which is the session passed as `_session=` for the
duration of that one call, or else the one the test harness bound for the
current test (`bind_session`). A context variable keeps both thread- and
task-safe.

A factory call flushes once, when the outermost call is done: the parents it
creates for itself (SubFactory, RelatedFactory) are added to the session and
written by that one flush, not by one flush each.

Async tests create rows with `await async_create(XFactory, **fields)` (and
`async_create_batch`): the factory runs inside `AsyncSession.run_sync`, on
the async session's own sync session, so its flush is awaited like any
other. factory_boy itself stays sync; nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import factory
from factory import declarations
from factory.alchemy import SQLAlchemyModelFactory
from factory.builder import Resolver
from factory.enums import CREATE_STRATEGY
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

ModelT = TypeVar("ModelT")
Made = TypeVar("Made")
Bound = TypeVar("Bound")

_current_session: ContextVar[Session | None] = ContextVar("factory_session", default=None)
# True inside a factory call: nested calls (the parents it creates) add, the
# outermost one flushes.
_inside_factory_call: ContextVar[bool] = ContextVar("inside_factory_call", default=False)


def current_session() -> Session:
    """The session factories write to; a clear error when there is none."""
    session = _current_session.get()
    if session is None and _current_async_session.get() is not None:
        raise RuntimeError(
            "This test's session is an AsyncSession (`async_db`), and a factory "
            "flushes, which async code must await: create rows with "
            "`await async_create(XFactory, **fields)` (tests.factories)."
        )
    if session is None:
        raise RuntimeError(
            "No session for factories: request the `db` fixture in this test, "
            "or pass `_session=<Session>` to the factory call."
        )
    return session


def bind_session(session: Session) -> AbstractContextManager[Session]:
    """Make `session` the factories' session inside the block."""
    return _bound(_current_session, session)


@contextmanager
def _bound(variable: ContextVar[Bound | None], value: Bound) -> Iterator[Bound]:
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


class BaseFactory(SQLAlchemyModelFactory, Generic[ModelT]):
    """Creates, adds and flushes into the current session; never commits.

    Subclasses name their model twice, as `BaseFactory[Model]` (so type
    checkers know what `XFactory()` returns) and as `Meta.model`.
    """

    if TYPE_CHECKING:

        def __new__(cls, *args: Any, **kwargs: Any) -> ModelT:  # type: ignore[misc]
            raise NotImplementedError

    class Meta:
        abstract = True
        sqlalchemy_session_factory = current_session
        # Added, not flushed, by factory_boy: `_generate` flushes once.
        sqlalchemy_session_persistence = None

    @classmethod
    def _generate(cls, strategy: Any, params: dict[str, Any]) -> Any:
        # `_session` is ours, not factory_boy's: take it off before the
        # declarations are resolved, so SubFactory parents share the session.
        session = params.pop("_session", None)
        with ExitStack() as stack:
            if session is not None:
                stack.enter_context(bind_session(session))
            if _inside_factory_call.get():
                return super()._generate(strategy, params)  # type: ignore[no-untyped-call]
            token = _inside_factory_call.set(True)
            stack.callback(_inside_factory_call.reset, token)
            obj = super()._generate(strategy, params)  # type: ignore[no-untyped-call]
            if strategy == CREATE_STRATEGY:
                current_session().flush()
            return obj

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        # factory_boy's own _create stores the session in cls._meta, which is
        # shared by every caller; ask the hook each time instead.
        session_factory = cls._meta.sqlalchemy_session_factory  # type: ignore[attr-defined]
        return cls._save(model_class, session_factory(), args, kwargs)  # type: ignore[no-untyped-call]


def parent(key: str, factory_class: Any, **defaults: Any) -> factory.Maybe:
    """A required parent: created only when neither it nor its key is given.

    `TeamFactory(workspace=w)` and `TeamFactory(workspace_id=w.id)` both use
    `w`; an unconditional SubFactory would create a stray parent and, at
    flush, overwrite the given key with it. A key given as None is given:
    like `workspace=None`, it leaves the team without a workspace.
    """
    return factory.Maybe(
        factory.LazyAttribute(lambda resolver: _was_given(resolver, key)),
        no_declaration=factory.SubFactory(factory_class, **defaults),
    )


def _was_given(resolver: Any, name: str) -> bool:
    # The resolver knows the call's keyword arguments and the declarations;
    # it raises AttributeError for any other name.
    try:
        getattr(resolver, name)
    except AttributeError:
        return False
    return True


def given(resolver: Any, name: str, key: str, model: Any) -> Any:
    """The parent a factory call was given, by object or by key (else None)."""
    obj = getattr(resolver, name, None)
    if isinstance(obj, declarations.Skip):  # the `parent` was not created
        obj = None
    if obj is None and getattr(resolver, key, None) is not None:
        obj = current_session().get(model, getattr(resolver, key))
    return obj


def copied_from(name: str, key: str, model: Any, attribute: str, *, missing: Any) -> Any:
    """A field copied from the parent the call was given, by object or by key.

    `missing` stands in when the key names no row, so that the flush fails on
    the foreign key with `IntegrityError`, as it would without the factory.
    """

    def copy(resolver: Any) -> Any:
        found = given(resolver, name, key, model)
        if found is None:
            return missing
        if inspect(found).pending:
            # A parent this call created is not flushed yet, and its column
            # defaults (an agent's status) are only applied by the flush.
            current_session().flush()
        return getattr(found, attribute)

    return factory.LazyAttribute(copy)


def _answer_unknown_parameters_cheaply() -> None:
    """Make factory_boy's "unknown parameter" AttributeError cheap to raise.

    factory_boy asks its resolver for every trait and every `Maybe` decider by
    name, expecting AttributeError when the call did not give it (our
    `parent()` does too). Its message formats the repr of every value and
    declaration resolved so far, models included, and is then thrown away:
    about 15% of a factory call (factory_boy issue #1125, open). Names the
    resolver knows still go to factory_boy; an unknown one raises at once.
    """
    resolve = Resolver.__getattr__
    private = ("_Resolver__pending", "_Resolver__values", "_Resolver__declarations")

    def __getattr__(self: Resolver, name: str) -> Any:
        if name in private or any(name in self.__dict__.get(part, ()) for part in private):
            return resolve(self, name)  # type: ignore[no-untyped-call]
        raise AttributeError(f"The parameter {name!r} is unknown to {self!r}.")

    if not getattr(resolve, "answers_unknown_cheaply", False):
        __getattr__.answers_unknown_cheaply = True  # type: ignore[attr-defined]
        Resolver.__getattr__ = __getattr__  # type: ignore[method-assign]


_answer_unknown_parameters_cheaply()
# --------------------------------------------------------------------------
# Async tests
# --------------------------------------------------------------------------

_current_async_session: ContextVar[AsyncSession | None] = ContextVar(
    "factory_async_session", default=None
)


def bind_async_session(session: AsyncSession) -> AbstractContextManager[AsyncSession]:
    """Make `session` the async factories' session inside the block (`async_db`)."""
    return _bound(_current_async_session, session)


def current_async_session() -> AsyncSession:
    """The session `async_create` writes to; a clear error when there is none."""
    session = _current_async_session.get()
    if session is None:
        raise RuntimeError(
            "No async session for factories: request the `async_db` fixture in this "
            "test, or pass `_session=<AsyncSession>` to async_create."
        )
    return session


async def async_create(
    factory_class: type[BaseFactory[ModelT]],
    /,
    *,
    _session: AsyncSession | None = None,
    **fields: Any,
) -> ModelT:
    """`factory_class(**fields)` from async code, flushed into `_session` (by
    default the one `async_db` bound): `await async_create(AgentFactory, name="x")`.

    Parents, traits and sequences behave exactly as in a sync test.
    """
    return await _in_run_sync(_session, lambda sync: factory_class(_session=sync, **fields))


async def async_create_batch(
    factory_class: type[BaseFactory[ModelT]],
    size: int,
    /,
    *,
    _session: AsyncSession | None = None,
    **fields: Any,
) -> list[ModelT]:
    """`factory_class.create_batch(size, **fields)` from async code; see `async_create`."""
    return await _in_run_sync(
        _session, lambda sync: list(factory_class.create_batch(size, _session=sync, **fields))
    )


async def _in_run_sync(session: AsyncSession | None, call: Callable[[Session], Made]) -> Made:
    # run_sync hands `call` the AsyncSession's own sync Session, inside the
    # greenlet where its flush can await the driver.
    return await (session or current_async_session()).run_sync(call)
